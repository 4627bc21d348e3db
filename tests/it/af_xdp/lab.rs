//! Labs on af_xdp through labctl: the example lab deployed with only the
//! capabilities af_xdp needs, one node on an image that is not the tools
//! image, lab-pong and lab-capture sharing the ponger's eth1; and every
//! lab in labs/ through `labctl run --datalink af_xdp`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::bin;
use crate::support::lab::{
    assert_nothing_left, busybox_image, containers_of, docker_af_xdp_grant, docker_inspect, labctl,
    stderr, stdout, xdp_pins_of, TestLab,
};
use crate::support::process::Running;
use crate::support::skip::skip_if;
use labctl::runtime::privilege::AfXdpGrant;

const MODE: &str = "af_xdp, native XDP, copy mode";

/// The example lab; its nodes say `privileged: true` if `privileged`.
fn lab_yaml_with(privileged: bool) -> String {
    format!(
        r#"
name: "{{name}}"
datalink: af_xdp
nodes:
  pinger: {{ privileged: {privileged} }}
  ponger: {{ image: "{}", privileged: {privileged} }}
links:
  - endpoints: ["pinger:eth1", "ponger:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
"#,
        busybox_image()
    )
}

/// The example lab as this host can run it: privileged only where
/// neither labctl's pinned maps nor CAP_BPF work.
fn lab_yaml() -> String {
    lab_yaml_with(docker_af_xdp_grant() == AfXdpGrant::Refused)
}

/// What an af_xdp node gets on this host.
fn expected_caps() -> serde_json::Value {
    match docker_af_xdp_grant() {
        AfXdpGrant::Pinned => serde_json::json!(["IPC_LOCK", "NET_RAW"]),
        AfXdpGrant::CapBpf => serde_json::json!(["BPF", "IPC_LOCK", "NET_ADMIN", "NET_RAW"]),
        AfXdpGrant::SysAdmin | AfXdpGrant::Refused => {
            serde_json::json!(["IPC_LOCK", "NET_RAW", "SYS_ADMIN"])
        }
    }
}

/// CAP_SYS_ADMIN's bit in /proc/PID/status's CapEff.
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capabilities of a node's init.
fn cap_eff(lab: &TestLab, node: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", lab.pid(node))).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff in status");
    u64::from_str_radix(hex.trim(), 16).expect("CapEff is hex")
}

/// A tool run in a node with `docker exec`; the tools end by themselves
/// (--count), since stopping `docker exec` would not stop them.
fn exec(lab: &TestLab, node: &str, argv: &[&str]) -> Running {
    let mut command = Command::new("docker");
    command.args(["exec", &lab.container(node)]).args(argv);
    Running::start(format!("{node}: {}", argv.join(" ")), command)
}

#[test]
fn the_example_lab_runs_on_af_xdp_in_containers() {
    let lab = TestLab::new("axlab", &lab_yaml());
    lab.deploy();
    for node in ["pinger", "ponger"] {
        let host = &docker_inspect(&lab.container(node))["HostConfig"];
        assert_eq!(host["CapAdd"], expected_caps(), "{node}");
        // labctl's own seccomp profile, which allows bpf().
        let opt = host["SecurityOpt"][0].as_str().unwrap_or_default();
        assert!(opt.starts_with("seccomp="), "{node}: {opt}");
        assert!(opt.contains("SCMP_ACT_ERRNO"), "{node}: {opt}");
    }

    let ready = Duration::from_secs(10);
    let mut pong = exec(&lab, "ponger", &["lab-pong", "eth1", "--count", "3"]);
    let listening = pong.wait_for("listening on", ready);
    assert!(listening.ends_with(&format!("{MODE})")), "{listening}");
    let mut capture = exec(&lab, "ponger", &["lab-capture", "eth1", "--count", "8"]);
    let capturing = capture.wait_for("capturing on", ready);
    assert!(
        capturing.starts_with(&format!("capturing on eth1 ({MODE}, shared with pid ")),
        "{capturing}"
    );

    let mut ping = Command::new(bin("labctl"));
    ping.args(["exec", &lab.name, "pinger", "--"]).args([
        "lab-ping",
        "eth1",
        "198.18.0.2",
        "--count",
        "3",
        "--interval",
        "200ms",
    ]);
    let pinged = Running::start("ping".into(), ping).finish(Duration::from_secs(30));
    assert!(pinged.status.success(), "{pinged:?}");
    assert!(
        pinged
            .stdout
            .contains(&"3 packets transmitted, 3 received, 0% packet loss".to_owned()),
        "{pinged:?}"
    );

    let ponged = pong.finish(Duration::from_secs(10));
    let captured = capture.finish(Duration::from_secs(10));
    assert!(ponged.status.success(), "{ponged:?}");
    assert!(captured.status.success(), "{captured:?}");
    let replies = ponged
        .stdout
        .iter()
        .filter(|l| l.contains("ICMP echo reply"))
        .count();
    assert_eq!(replies, 3, "{ponged:?}");
    assert_eq!(
        captured.stdout.last().map(String::as_str),
        Some("8 packets captured, 0 dropped, 0 malformed"),
        "{captured:?}"
    );
    let link = lab.in_netns("ponger", &["ip", "-d", "link", "show", "eth1"]);
    if docker_af_xdp_grant() == AfXdpGrant::Pinned {
        // labctl's program stays while the lab is up; the tools loaded none.
        assert_eq!(link.matches("prog/xdp").count(), 1, "{link}");
        assert!(link.contains("name labctl_xsk"), "{link}");
    } else {
        // The tools are gone, and so is their XDP program.
        assert!(!link.contains("prog/xdp"), "{link}");
    }
}

/// Where labctl attaches the XDP programs from the host: each af_xdp node
/// sees only its own pins at /lab/xdp, has neither CAP_SYS_ADMIN nor
/// CAP_BPF nor CAP_NET_ADMIN, and the pins go at teardown and with
/// `labctl destroy` after labctl was killed (SIGKILL) mid-run.
#[test]
fn host_attached_xdp_pins_are_per_node_and_removed_by_teardown_and_destroy() {
    if skip_if(
        docker_af_xdp_grant() != AfXdpGrant::Pinned,
        "on this host af_xdp nodes load their own XDP programs",
    ) {
        return;
    }
    let lab = TestLab::new("axpins", &lab_yaml());
    lab.deploy();
    let pins = xdp_pins_of(&lab.name);
    assert_eq!(pins.len(), 2, "{pins:?}");
    for node in ["pinger", "ponger"] {
        let listed = crate::support::lab::docker(&["exec", &lab.container(node), "ls", "/lab/xdp"]);
        // The FROM-scratch pinger has no ls: look from the host instead.
        let seen = if listed.status.success() {
            stdout(&listed)
        } else {
            let root = format!("/proc/{}/root/lab/xdp", lab.pid(node));
            std::fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned() + "\n")
                .collect()
        };
        assert_eq!(seen.trim(), "eth1", "{node}: only its own map, no link");
        let caps = cap_eff(&lab, node);
        // CAP_NET_ADMIN 12, CAP_SYS_ADMIN 21, CAP_BPF 39.
        for bit in [12, CAP_SYS_ADMIN, 39] {
            assert_eq!(
                caps & (1 << bit),
                0,
                "{node}: CapEff {caps:x} has bit {bit}"
            );
        }
    }
    // Without the pin the tool would load its own program: the node may
    // not (no CAP_BPF, and the profile allows no BPF_MAP_CREATE).
    let own = crate::support::lab::docker(&[
        "exec",
        "-e",
        "LABCTL_XDP_DIR=/nowhere",
        &lab.container("ponger"),
        "lab-pong",
        "eth1",
        "--count",
        "1",
    ]);
    assert!(!own.status.success(), "{}", stdout(&own));
    assert!(
        stderr(&own).contains("af_xdp is not available: bpf() was refused (EPERM)"),
        "{}",
        stderr(&own)
    );
    let out = labctl(&["destroy", &lab.name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&lab.name);

    // SIGKILL in the middle of a step, then destroy.
    let slow = lab_yaml().replace(
        "links:",
        "steps:\n  - { name: wait, node: ponger, exec: [sleep, \"30\"] }\nlinks:",
    );
    let lab = TestLab::new("axpinkill", &slow);
    let runs = tempfile::tempdir().unwrap();
    let mut run = crate::support::lab::labctl_command(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while containers_of(&lab.name).len() < 2 || xdp_pins_of(&lab.name).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the lab never came up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    run.kill().expect("SIGKILL labctl");
    let _ = run.wait();
    assert_eq!(
        xdp_pins_of(&lab.name).len(),
        2,
        "a killed labctl removed nothing"
    );
    let out = labctl(&["destroy", &lab.name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&lab.name);
}

/// A lab file of the repository under a fresh name (labs run side by side
/// with other tests).
fn repo_lab_renamed(path: &Path) -> String {
    crate::support::run::repo_lab_text(path)
}

/// Every lab in labs/ passes with `labctl run LAB --datalink af_xdp`, its
/// tools say they ran on af_xdp, and nothing is left.
#[test]
fn every_lab_passes_with_labctl_run_datalink_af_xdp() {
    let labs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
    let mut labs: Vec<_> = std::fs::read_dir(&labs_dir)
        .expect("labs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    labs.sort();
    assert!(!labs.is_empty(), "no lab in {labs_dir:?}");
    for path in labs {
        let lab = TestLab::new("axrun", &repo_lab_renamed(&path));
        let out_dir = tempfile::tempdir().unwrap();
        let runs = out_dir.path().join("runs");
        let json = out_dir.path().join("report.json");
        // No --privileged: af_xdp nodes without CAP_SYS_ADMIN.
        let out = labctl(&[
            "run",
            lab.path(),
            "--datalink",
            "af_xdp",
            "--runs-dir",
            runs.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        let what = format!(
            "{}: exit {:?}\n{}\n{}",
            path.display(),
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{what}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["outcome"], "passed", "{what}");
        let outputs: String = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["stdout"].as_str())
            .collect();
        // Human lines say "(af_xdp, ...", --json events "datalink":"af_xdp, ...".
        assert!(
            outputs.contains(&format!("({MODE}"))
                || outputs.contains(&format!("\"datalink\":\"{MODE}")),
            "{what}\n{outputs}"
        );
        assert!(!outputs.contains("af_packet"), "{what}\n{outputs}");
        assert_nothing_left(&lab.name);
    }
}

/// Where Docker cannot grant CAP_BPF, an af_xdp lab whose nodes do not say
/// `privileged: true` is refused in one line, exit 3, before anything is
/// created.
#[test]
fn without_cap_bpf_an_unprivileged_af_xdp_lab_is_refused_before_anything_is_created() {
    if docker_af_xdp_grant() != AfXdpGrant::Refused {
        eprintln!(
            "skipped: this host gives af_xdp nodes CAP_BPF or labctl's pinned maps, so nothing \
             is refused (the refusal's wording is unit-tested in runtime::needs)"
        );
        return;
    }
    let lab = TestLab::new("axrefuse", &lab_yaml_with(false));
    let runs = tempfile::tempdir().unwrap();
    let run = labctl(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ]);
    let said = stdout(&run) + &stderr(&run);
    assert_eq!(run.status.code(), Some(3), "{said}");
    let refusal = "nodes pinger, ponger use af_xdp, but Docker ";
    assert_eq!(said.matches(refusal).count(), 1, "{said}");
    assert!(containers_of(&lab.name).is_empty());
    // deploy says it in one line, and that line says what to do.
    let out = labctl(&["deploy", lab.path()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(refusal)
            && err.contains("cannot grant CAP_BPF")
            && err.contains("`privileged: true`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(containers_of(&lab.name).is_empty());
    assert_nothing_left(&lab.name);
}

/// The two escapes of issue 15 from an af_xdp node of a custom image fail:
/// remounting the shared tools volume read-write, and a fresh procfs to
/// write the host's core_pattern. labctl's seccomp profile refuses mount(2)
/// whatever the capabilities (so even a `privileged: true` node on a host
/// without CAP_BPF, which gets CAP_SYS_ADMIN, cannot); without
/// CAP_SYS_ADMIN the kernel refuses it too. The node is not privileged
/// (on this host: labctl attached its XDP program) and has no
/// CAP_SYS_ADMIN.
#[test]
fn an_af_xdp_node_cannot_remount_the_tools_or_mount_proc() {
    if skip_if(
        docker_af_xdp_grant() == AfXdpGrant::Refused,
        "on this host af_xdp nodes must be privileged",
    ) {
        return;
    }
    let lab = TestLab::new("axescape", &lab_yaml_with(false));
    lab.deploy();
    let caps = cap_eff(&lab, "ponger");
    assert_eq!(
        caps & (1 << CAP_SYS_ADMIN),
        0,
        "CapEff {caps:x} has CAP_SYS_ADMIN"
    );
    let node = lab.container("ponger");
    let script = "mount -o remount,rw,bind /lab/bin; echo remount=$?; \
                  mkdir -p /mnt/p; mount -t proc proc /mnt/p; echo proc=$?; \
                  echo '|/bin/true' > /mnt/p/sys/kernel/core_pattern; echo core=$?; \
                  touch /lab/bin/x; echo write=$?; \
                  unshare -m true; echo unshare=$?";
    let out = crate::support::lab::docker(&["exec", &node, "sh", "-c", script]);
    let said = stdout(&out);
    for line in ["remount=", "proc=", "core=", "write=", "unshare="] {
        let value = said
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no {line} in {said}\n{}", stderr(&out)));
        assert_ne!(value, "0", "{line} succeeded:\n{said}\n{}", stderr(&out));
    }
    let core = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(!core.contains("/bin/true"), "{core}");
    // af_xdp still works in that node, under that profile.
    let mut pong = exec(&lab, "ponger", &["lab-pong", "eth1", "--count", "1"]);
    pong.wait_for("listening on", Duration::from_secs(10));
    let pinged = labctl(&[
        "exec",
        &lab.name,
        "pinger",
        "--",
        "lab-ping",
        "eth1",
        "198.18.0.2",
        "--count",
        "1",
    ]);
    assert!(pinged.status.success(), "{}", stderr(&pinged));
    assert!(pong.finish(Duration::from_secs(10)).status.success());
}

/// `labctl run --privileged` still means what it did (every node as if it
/// said `privileged: true`: here CAP_SYS_ADMIN, no pins), and without it
/// the same lab's af_xdp nodes run without CAP_SYS_ADMIN.
#[test]
fn run_privileged_trusts_the_lab_like_root_and_without_it_no_node_has_sys_admin() {
    if skip_if(
        docker_af_xdp_grant() != AfXdpGrant::Pinned,
        "checks the pinned-map host (Docker without CAP_BPF, Linux 6.5+)",
    ) {
        return;
    }
    let caps_step = lab_yaml_with(false).replace(
        "links:",
        "steps:\n  - { name: caps, node: ponger, exec: [grep, CapEff, /proc/self/status] }\nlinks:",
    );
    for privileged in [true, false] {
        let lab = TestLab::new("axflag", &caps_step);
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("report.json");
        let mut args = vec!["run", lab.path()];
        if privileged {
            args.push("--privileged");
        }
        let runs = dir.path().join("runs");
        args.extend([
            "--runs-dir",
            runs.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        let out = labctl(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let line = report["steps"][0]["stdout"].as_str().unwrap().to_owned();
        let hex = line
            .trim()
            .strip_prefix("CapEff:")
            .expect("CapEff line")
            .trim();
        let caps = u64::from_str_radix(hex, 16).unwrap();
        assert_eq!(
            caps & (1 << CAP_SYS_ADMIN) != 0,
            privileged,
            "privileged {privileged}: CapEff {caps:x}"
        );
        assert_nothing_left(&lab.name);
    }
}
