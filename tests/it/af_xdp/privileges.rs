//! What af_xdp needs from the process: each missing capability named in
//! one line, and the documented ones enough, in a namespace (setpriv,
//! prlimit) and in a FROM-scratch container under Docker's seccomp.

use std::process::{Command, Stdio};

use labctl::tools::datalink::af_xdp;

use super::*;
use crate::support::netns::VethPair;

/// Runs the child with only `caps` (setpriv drops the rest from the
/// bounding set, so even root gets no more) and returns its verdict.
fn verdict_with_caps(caps: &[&str], memlock_kib: Option<u64>) -> String {
    let pair = VethPair::new(true);
    let bounding = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{}", c.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",");
    let bounding_arg = format!("--bounding-set={bounding}");
    let memlock_arg = memlock_kib.map(|k| format!("--memlock={}", k * 1024));
    let mut wrapper = Vec::new();
    if let Some(memlock) = &memlock_arg {
        wrapper.extend(["prlimit", memlock.as_str()]);
    }
    wrapper.extend(["setpriv", "--inh-caps=-all", bounding_arg.as_str()]);
    let mut child = KillOnDrop(spawn_child(&pair.b.netns, &wrapper));
    child_verdict(&mut child.0)
}

#[test]
fn the_documented_capabilities_are_enough() {
    let verdict = verdict_with_caps(af_xdp::CAPABILITIES, Some(64));
    assert_eq!(verdict, "opened: af_xdp, native XDP, copy mode");
}

#[test]
fn without_cap_bpf_or_net_admin_bpf_is_refused_and_named() {
    for caps in [
        ["NET_RAW", "IPC_LOCK", "NET_ADMIN"],
        ["NET_RAW", "IPC_LOCK", "BPF"],
    ] {
        let verdict = verdict_with_caps(&caps, None);
        assert!(
            verdict.starts_with("error: af_xdp is not available: bpf() was refused (EPERM)")
                && verdict.contains("needs CAP_BPF and CAP_NET_ADMIN"),
            "{caps:?}: {verdict}"
        );
    }
}

#[test]
fn sys_admin_still_covers_bpf_and_net_admin() {
    let verdict = verdict_with_caps(af_xdp::SYS_ADMIN_CAPABILITIES, Some(64));
    assert_eq!(verdict, "opened: af_xdp, native XDP, copy mode");
}

#[test]
fn without_net_raw_the_socket_is_refused_and_named() {
    let verdict = verdict_with_caps(&["SYS_ADMIN", "IPC_LOCK"], None);
    assert!(
        verdict.starts_with("error: af_xdp is not available: socket(AF_XDP) was refused")
            && verdict.contains("CAP_NET_RAW"),
        "{verdict}"
    );
}

#[test]
fn without_ipc_lock_a_small_memlock_limit_is_named() {
    let verdict = verdict_with_caps(&["SYS_ADMIN", "NET_RAW"], Some(64));
    assert!(
        verdict.contains("does not fit the locked-memory limit (64 KiB")
            && verdict.contains("CAP_IPC_LOCK"),
        "{verdict}"
    );
}

/// A FROM-scratch image holding only this (static) test binary, removed
/// on drop.
struct ScratchImage(String);

impl ScratchImage {
    fn with_this_binary() -> ScratchImage {
        let name = format!("labctl-test-afxdp:{}", crate::support::unique("i"));
        let exe = std::env::current_exe().expect("the test binary");
        let mut import = Command::new("docker")
            .args(["import", "--change", r#"ENTRYPOINT ["/it"]"#, "-", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker import");
        {
            let mut tar = tar::Builder::new(import.stdin.take().expect("piped stdin"));
            // docker import knows no GNU sparse entries.
            tar.sparse(false);
            tar.append_path_with_name(&exe, "it")
                .expect("tar the binary");
            tar.finish().expect("finish the tar");
        }
        assert!(import.wait().unwrap().success(), "docker import failed");
        ScratchImage(name)
    }

    /// Runs the child test in a container with no network but lo, with
    /// `docker_args` (capabilities); returns its verdict line.
    fn verdict(&self, docker_args: &[&str]) -> String {
        let container = crate::support::unique("labctl-afxdp-");
        let out = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--name", &container])
            .args([
                "-e",
                &format!("{CHILD_ENV}=lo"),
                "-e",
                &format!("{HOLD_ENV}=0"),
            ])
            .args(docker_args)
            .arg(&self.0)
            .args([
                "--exact",
                "af_xdp::child_opens_af_xdp",
                "--ignored",
                "--nocapture",
            ])
            .output()
            .expect("docker run");
        let _ = Command::new("docker")
            .args(["rm", "-f", &container])
            .stderr(Stdio::null())
            .output();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("opened: ") || l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no verdict from the container: {out:?}"))
            .to_owned()
    }
}

impl Drop for ScratchImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// In a FROM-scratch image: where Docker grants CAP_BPF, the documented
/// capabilities under labctl's seccomp profile are enough; where it does
/// not (Docker 20.10: "unknown capability"), SYS_ADMIN under Docker's
/// default profile is; without either, bpf() is refused, and the message
/// says what to add.
#[test]
fn in_a_scratch_container_exactly_the_documented_capabilities_work() {
    let image = ScratchImage::with_this_binary();
    let cap_bpf = crate::support::lab::docker_grants_cap_bpf();
    let (caps, profile) = if cap_bpf {
        (af_xdp::CAPABILITIES, Some(labctl_seccomp_file()))
    } else {
        eprintln!("this Docker cannot grant CAP_BPF: checking the SYS_ADMIN fallback only");
        (af_xdp::SYS_ADMIN_CAPABILITIES, None)
    };
    let mut only_documented = vec!["--cap-drop".to_owned(), "ALL".to_owned()];
    for cap in caps {
        only_documented.extend(["--cap-add".to_owned(), cap.to_string()]);
    }
    if let Some(file) = &profile {
        only_documented.extend([
            "--security-opt".to_owned(),
            format!("seccomp={}", file.path().display()),
        ]);
    }
    let only_documented: Vec<&str> = only_documented.iter().map(String::as_str).collect();
    assert_eq!(
        image.verdict(&only_documented),
        "opened: af_xdp, generic XDP, copy mode"
    );

    let verdict = image.verdict(&[
        "--cap-add",
        "NET_RAW",
        "--cap-add",
        "IPC_LOCK",
        "--cap-add",
        "NET_ADMIN",
    ]);
    assert!(
        verdict.starts_with("error: af_xdp is not available: bpf() was refused (EPERM)")
            && verdict.contains("CAP_BPF and CAP_NET_ADMIN"),
        "{verdict}"
    );
}

/// labctl's seccomp profile in a file, for `docker run --security-opt`.
fn labctl_seccomp_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    let opt =
        labctl::runtime::seccomp::security_opt(labctl::runtime::privilege::AfXdpGrant::CapBpf);
    let json = opt.strip_prefix("seccomp=").expect("a seccomp option");
    std::fs::write(file.path(), json).expect("write the profile");
    file
}
