//! Whether this host lets a runtime give an af_xdp node CAP_BPF, which is
//! what decides between the least-privilege grant (CAP_BPF, CAP_NET_ADMIN,
//! CAP_NET_RAW, CAP_IPC_LOCK) and CAP_SYS_ADMIN, which only a node that
//! says `privileged: true` may get (docs/runtime.md#security-model).
//!
//! Two facts decide, both known before anything is created:
//! - the kernel: CAP_BPF exists since Linux 5.8;
//! - for Docker, the daemon's version: Docker 20.10 refuses `CapAdd: BPF`
//!   ("unknown capability", measured on 20.10.24: its capability list
//!   stops at CAP_AUDIT_READ, even for `--privileged`); Docker 23.0 is the
//!   first release that knows CAP_BPF.

/// What the host can grant; [`HostSupport::FULL`] when it can grant
/// everything labctl asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSupport {
    /// Why this host cannot give a node CAP_BPF, or `None` if it can.
    pub no_cap_bpf: Option<String>,
}

impl HostSupport {
    pub const FULL: HostSupport = HostSupport { no_cap_bpf: None };

    /// The Docker daemon at `engine` (its `/version`: "20.10.24+dfsg1"),
    /// on a kernel of release `kernel` (the daemon's, which is the one that
    /// matters when DOCKER_HOST is another machine).
    pub fn docker(engine: &str, kernel: &str) -> HostSupport {
        let no_cap_bpf = kernel_without_cap_bpf(kernel).or_else(|| match version(engine) {
            Some(v) if v >= DOCKER_WITH_CAP_BPF => None,
            Some(_) => Some(format!(
                "Docker {engine} cannot grant CAP_BPF (Docker 23.0 or later can)"
            )),
            None => Some(format!(
                "Docker's version {engine:?} is not one labctl can read, so CAP_BPF cannot be \
                 relied on"
            )),
        });
        HostSupport { no_cap_bpf }
    }

    /// Host processes (the netns runtime): only the kernel decides.
    pub fn kernel(kernel: &str) -> HostSupport {
        HostSupport {
            no_cap_bpf: kernel_without_cap_bpf(kernel),
        }
    }

    pub fn cap_bpf(&self) -> bool {
        self.no_cap_bpf.is_none()
    }
}

impl Default for HostSupport {
    fn default() -> Self {
        Self::FULL
    }
}

const DOCKER_WITH_CAP_BPF: (u32, u32) = (23, 0);
const KERNEL_WITH_CAP_BPF: (u32, u32) = (5, 8);

fn kernel_without_cap_bpf(kernel: &str) -> Option<String> {
    match version(kernel) {
        Some(v) if v >= KERNEL_WITH_CAP_BPF => None,
        Some(_) => Some(format!(
            "Linux {kernel} has no CAP_BPF (it came in Linux 5.8)"
        )),
        None => Some(format!(
            "the kernel release {kernel:?} is not one labctl can read, so CAP_BPF cannot be \
             relied on"
        )),
    }
}

/// The `SecurityOpt` entry labctl gives af_xdp nodes under Docker
/// (`seccomp=<its profile as JSON>`), for tests and tooling.
pub fn af_xdp_security_opt() -> String {
    super::seccomp::security_opt()
}

/// The release of the running kernel, as `uname -r` says it.
pub fn running_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `major.minor` of "6.18.44-fc", "20.10.24+dfsg1", "23.0.1".
fn version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_their_first_two_numbers() {
        assert_eq!(version("6.18.44-fc-v857"), Some((6, 18)));
        assert_eq!(version("20.10.24+dfsg1"), Some((20, 10)));
        assert_eq!(version("5.8"), Some((5, 8)));
        assert_eq!(version("v5"), None);
        assert_eq!(version(""), None);
    }

    #[test]
    fn docker_before_23_or_a_kernel_before_5_8_cannot_grant_cap_bpf() {
        assert!(HostSupport::docker("23.0.1", "6.1.0").cap_bpf());
        assert!(HostSupport::docker("27.3.1", "5.8.0").cap_bpf());
        let old = HostSupport::docker("20.10.24+dfsg1", "6.18.44");
        assert_eq!(
            old.no_cap_bpf.as_deref(),
            Some("Docker 20.10.24+dfsg1 cannot grant CAP_BPF (Docker 23.0 or later can)")
        );
        let old_kernel = HostSupport::docker("27.0.0", "5.4.0-150-generic");
        assert!(old_kernel
            .no_cap_bpf
            .unwrap()
            .contains("Linux 5.4.0-150-generic has no CAP_BPF"),);
        assert!(!HostSupport::docker("unknown", "6.1").cap_bpf());
        assert!(HostSupport::kernel("6.18.44").cap_bpf());
        assert!(!HostSupport::kernel("5.7.19").cap_bpf());
    }
}
