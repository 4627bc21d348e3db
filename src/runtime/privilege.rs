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
//!
//! The same facts say which of the capabilities a lab names (`capabilities:`)
//! the runtime can grant: Docker before 23.0 knows none past CAP_AUDIT_READ
//! (it answers `unknown capability: "CAP_BPF"`, and likewise for
//! CAP_PERFMON and CAP_CHECKPOINT_RESTORE, measured on 20.10.24), and no
//! runtime grants one past the kernel's last.

use crate::lab::{Capability, RuntimeKind};

/// What the host can grant; [`HostSupport::FULL`] when it can grant
/// everything labctl asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSupport {
    /// Why this host cannot give a node CAP_BPF, or `None` if it can.
    pub no_cap_bpf: Option<String>,
    /// Why an af_xdp node cannot use an XDP program labctl attached from
    /// the host (the node then only opens the map labctl pinned for it,
    /// which needs no capability: Linux 6.5 or later, or
    /// `kernel.unprivileged_bpf_disabled = 0`), or `None` if it can.
    pub no_pinned_xdp: Option<String>,
    /// Which runtime this is: what a capability reaches depends on it
    /// ([`Capability::reach`]).
    pub runtime: RuntimeKind,
    /// The capabilities this runtime cannot grant on this host, each with
    /// why, by number.
    pub ungrantable: Vec<(Capability, String)>,
}

/// How a runtime gives an af_xdp node what AF_XDP needs, least privilege
/// first (docs/runtime.md#security-model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfXdpGrant {
    /// labctl loads and attaches the XDP program from the host and pins
    /// its XSKMAP in the node's `/lab/xdp`; the node gets CAP_NET_RAW and
    /// CAP_IPC_LOCK only, and bpf() only to open and update that map.
    Pinned,
    /// The node loads the program itself: CAP_BPF, CAP_NET_ADMIN.
    CapBpf,
    /// A `privileged: true` node where CAP_BPF cannot be granted.
    SysAdmin,
    /// None of them: the lab is refused ([`super::needs::privilege_preflight`]).
    Refused,
}

impl HostSupport {
    pub const FULL: HostSupport = HostSupport {
        no_cap_bpf: None,
        no_pinned_xdp: None,
        runtime: RuntimeKind::Docker,
        ungrantable: Vec::new(),
    };

    /// Why this host cannot grant `cap`, or `None` if it can.
    pub fn cannot_grant(&self, cap: Capability) -> Option<&str> {
        self.ungrantable
            .iter()
            .find(|(c, _)| *c == cap)
            .map(|(_, why)| why.as_str())
    }

    /// What a node gets for af_xdp on this host. A privileged node keeps
    /// loading the program itself (what `privileged` has always meant).
    pub fn af_xdp_grant(&self, privileged: bool) -> AfXdpGrant {
        match (privileged, self.cap_bpf(), self.pinned_xdp()) {
            (false, _, true) => AfXdpGrant::Pinned,
            (_, true, _) => AfXdpGrant::CapBpf,
            (true, false, _) => AfXdpGrant::SysAdmin,
            (false, false, false) => AfXdpGrant::Refused,
        }
    }

    pub fn pinned_xdp(&self) -> bool {
        self.no_pinned_xdp.is_none()
    }

    /// The Docker daemon at `engine` (its `/version`: "20.10.24+dfsg1"),
    /// on a kernel of release `kernel` (the daemon's, which is the one that
    /// matters when DOCKER_HOST is another machine).
    pub fn docker(engine: &str, kernel: &str) -> HostSupport {
        Self::docker_with(engine, kernel, unprivileged_bpf_disabled())
    }

    /// As [`HostSupport::docker`], with the value of
    /// `kernel.unprivileged_bpf_disabled` given (`None`: unreadable).
    pub fn docker_with(
        engine: &str,
        kernel: &str,
        unprivileged_bpf_disabled: Option<u32>,
    ) -> HostSupport {
        let no_pinned_xdp = kernel_without_pinned_xdp(kernel, unprivileged_bpf_disabled);
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
        let docker_knows = match version(engine) {
            Some(v) if v >= DOCKER_WITH_CAP_BPF => None,
            Some(_) => Some(format!("Docker {engine} does not know")),
            None => Some(format!(
                "Docker's version {engine:?} is not one labctl can read, so it may not know"
            )),
        };
        let last = kernel_last_cap(kernel);
        let ungrantable = Capability::all()
            .filter_map(|cap| {
                let why = kernel_lacks(kernel, last, cap).or_else(|| {
                    let unknown = docker_knows.as_ref()?;
                    (cap > Capability::AUDIT_READ)
                        .then(|| format!("{unknown} CAP_{cap} (Docker 23.0 or later does)"))
                })?;
                Some((cap, why))
            })
            .collect();
        HostSupport {
            no_cap_bpf,
            no_pinned_xdp,
            runtime: RuntimeKind::Docker,
            ungrantable,
        }
    }

    /// Host processes (the netns runtime): only the kernel decides, and
    /// the steps load the program themselves (they can get CAP_BPF).
    pub fn kernel(kernel: &str) -> HostSupport {
        let last = host_last_cap().or_else(|| kernel_last_cap(kernel));
        Self::kernel_with(kernel, last)
    }

    /// As [`HostSupport::kernel`], with the kernel's last capability given
    /// (`/proc/sys/kernel/cap_last_cap`; `None`: unknown).
    pub fn kernel_with(kernel: &str, last_cap: Option<u32>) -> HostSupport {
        HostSupport {
            no_cap_bpf: kernel_without_cap_bpf(kernel),
            no_pinned_xdp: Some("the netns runtime's steps load the XDP program themselves".into()),
            runtime: RuntimeKind::Netns,
            ungrantable: Capability::all()
                .filter_map(|cap| Some((cap, kernel_lacks(kernel, last_cap, cap)?)))
                .collect(),
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
/// Linux 6.5 dropped the global unprivileged check from the bpf() map
/// commands (BPF_OBJ_GET, BPF_MAP_UPDATE_ELEM), measured on 6.18 with
/// `unprivileged_bpf_disabled = 2`; before it they need CAP_BPF unless
/// `unprivileged_bpf_disabled` is 0.
const KERNEL_WITH_UNPRIVILEGED_MAP_ACCESS: (u32, u32) = (6, 5);

fn kernel_without_pinned_xdp(
    kernel: &str,
    unprivileged_bpf_disabled: Option<u32>,
) -> Option<String> {
    match version(kernel) {
        Some(v) if v >= KERNEL_WITH_UNPRIVILEGED_MAP_ACCESS => None,
        _ if unprivileged_bpf_disabled == Some(0) => None,
        _ => Some(format!(
            "Linux {kernel} lets a process without CAP_BPF use a BPF map only with \
             kernel.unprivileged_bpf_disabled = 0 (Linux 6.5 or later does)"
        )),
    }
}

/// `kernel.unprivileged_bpf_disabled` of this host.
fn unprivileged_bpf_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}
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

/// The last capability of a kernel of release `kernel`: CAP_AUDIT_READ
/// came in Linux 3.16, CAP_PERFMON and CAP_BPF in 5.8,
/// CAP_CHECKPOINT_RESTORE in 5.9. `None` for a release labctl cannot read
/// (or one before 3.16, which Docker does not support either).
fn kernel_last_cap(kernel: &str) -> Option<u32> {
    let last = match version(kernel)? {
        v if v >= (5, 9) => Capability::CHECKPOINT_RESTORE,
        v if v >= KERNEL_WITH_CAP_BPF => Capability::BPF,
        v if v >= (3, 16) => Capability::AUDIT_READ,
        _ => return None,
    };
    Some(last.number())
}

/// This host's `/proc/sys/kernel/cap_last_cap`, which a distribution's
/// backports may move past what the release says.
fn host_last_cap() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a kernel whose last capability is `last` cannot grant `cap`.
fn kernel_lacks(kernel: &str, last: Option<u32>, cap: Capability) -> Option<String> {
    let last = Capability::from_number(last?)?;
    (cap > last).then(|| format!("Linux {kernel} has no CAP_{cap} (its last is CAP_{last})"))
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

    #[test]
    fn docker_before_23_knows_no_capability_past_audit_read_and_no_kernel_one_past_its_last() {
        let names = |host: &HostSupport| -> Vec<&str> {
            host.ungrantable.iter().map(|(c, _)| c.name()).collect()
        };
        let old = HostSupport::docker("20.10.24+dfsg1", "6.18.44");
        assert_eq!(names(&old), ["PERFMON", "BPF", "CHECKPOINT_RESTORE"]);
        assert_eq!(
            old.cannot_grant(Capability::PERFMON),
            Some("Docker 20.10.24+dfsg1 does not know CAP_PERFMON (Docker 23.0 or later does)")
        );
        assert_eq!(old.cannot_grant(Capability::AUDIT_READ), None);
        assert!(HostSupport::docker("23.0.1", "6.18.44")
            .ungrantable
            .is_empty());
        let kernel_5_8 = HostSupport::docker("27.0.1", "5.8.18");
        assert_eq!(names(&kernel_5_8), ["CHECKPOINT_RESTORE"]);
        assert_eq!(
            names(&HostSupport::docker("27.0.1", "5.4.0-150-generic")),
            ["PERFMON", "BPF", "CHECKPOINT_RESTORE"]
        );
        assert_eq!(names(&HostSupport::docker("unknown", "6.1")).len(), 3);
        // netns: cap_last_cap decides, the release when it is unknown.
        assert!(HostSupport::kernel_with("6.18.44", Some(40))
            .ungrantable
            .is_empty());
        let at_39 = HostSupport::kernel_with("6.18.44", Some(39));
        assert_eq!(
            at_39.cannot_grant(Capability::CHECKPOINT_RESTORE),
            Some("Linux 6.18.44 has no CAP_CHECKPOINT_RESTORE (its last is CAP_BPF)")
        );
        // A kernel newer than labctl: nothing it names is beyond it.
        assert!(HostSupport::kernel_with("7.9", Some(45))
            .ungrantable
            .is_empty());
        // This machine.
        assert_eq!(
            HostSupport::kernel(&running_kernel()).runtime,
            RuntimeKind::Netns
        );
    }

    #[test]
    fn pinned_maps_need_linux_6_5_or_unprivileged_bpf_allowed() {
        let docker = |kernel, ubd| HostSupport::docker_with("20.10.24+dfsg1", kernel, ubd);
        assert!(docker("6.18.44", Some(2)).pinned_xdp());
        assert!(docker("6.5.0", None).pinned_xdp());
        assert!(docker("6.1.0", Some(0)).pinned_xdp());
        let old = docker("6.1.0", Some(2));
        assert!(old
            .no_pinned_xdp
            .as_deref()
            .unwrap()
            .contains("Linux 6.1.0 lets a process without CAP_BPF"));
        assert!(!docker("6.4.9", None).pinned_xdp());
        assert!(
            !HostSupport::kernel("6.18").pinned_xdp(),
            "netns: steps load it"
        );
    }

    #[test]
    fn the_least_privilege_that_works_is_chosen() {
        use AfXdpGrant::*;
        let here = HostSupport::docker_with("20.10.24", "6.18.44", Some(2));
        assert_eq!(here.af_xdp_grant(false), Pinned);
        assert_eq!(
            here.af_xdp_grant(true),
            SysAdmin,
            "privileged keeps its meaning"
        );
        let new = HostSupport::docker_with("27.0.1", "6.18.44", Some(2));
        assert_eq!(new.af_xdp_grant(false), Pinned);
        assert_eq!(new.af_xdp_grant(true), CapBpf);
        let old_kernel = HostSupport::docker_with("27.0.1", "6.1.0", Some(2));
        assert_eq!(old_kernel.af_xdp_grant(false), CapBpf);
        let neither = HostSupport::docker_with("20.10.24", "6.1.0", Some(2));
        assert_eq!(neither.af_xdp_grant(false), Refused);
        assert_eq!(neither.af_xdp_grant(true), SysAdmin);
        assert_eq!(HostSupport::kernel("6.18").af_xdp_grant(false), CapBpf);
    }
}
