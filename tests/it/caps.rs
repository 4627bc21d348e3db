//! A node's `capabilities` through the real binary, on both runtimes: its
//! steps and `labctl exec` hold them on top of the datalink's own and can
//! use them (set an MTU, add a route) where a node without them cannot; a
//! node that asks nothing still holds NET_RAW alone; what the runtime
//! cannot grant, or may not without `privileged: true`, is refused before
//! anything is created.

use std::process::Output;

use labctl::lab::Capability;

use crate::support::lab::{
    assert_nothing_left, assert_success, busybox_image, docker_host_support, labctl, stderr,
    stdout, TestLab,
};

crate::on_both_runtimes!(
    steps_hold_and_use_the_nodes_capabilities_and_a_node_without_them_cannot,
    exec_holds_the_nodes_capabilities_and_a_node_without_them_cannot,
);

const EXIT_RUNTIME: i32 = 3;

const NET_RAW: u64 = 1 << 13;
const NET_ADMIN: u64 = 1 << 12;
const NET_BIND_SERVICE: u64 = 1 << 10;

fn skip(runtime: &str) -> bool {
    if runtime == "netns" && crate::support::skip::skip_without_root("the netns runtime") {
        return true;
    }
    // The netns runtime finds the tools next to labctl.
    let dir = crate::support::bin("lab-ping").parent().unwrap().to_owned();
    std::env::set_var("LABCTL_TOOLS_DIR", dir);
    false
}

/// Two nodes on one link, `r1` asking for NET_ADMIN and NET_BIND_SERVICE,
/// `r2` for nothing; on Docker both run busybox (the tools image has no
/// `ip`), on netns the host's `ip` and `sh`. `steps` are appended.
fn router_lab(runtime: &str, steps: &str) -> String {
    let image = match runtime {
        "docker" => format!(", image: \"{}\"", busybox_image()),
        _ => String::new(),
    };
    format!(
        "name: {{name}}\nruntime: {runtime}\nnodes:\n  \
         r1: {{ kernel: normal, capabilities: [NET_ADMIN, NET_BIND_SERVICE]{image} }}\n  \
         r2: {{ kernel: normal{image} }}\n\
         links:\n  - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n    \
         ipv4: [\"198.18.23.1/24\", \"198.18.23.2/24\"]\n{steps}"
    )
}

/// The `CapXxx:` set of a /proc/PID/status text.
fn cap_set(status: &str, set: &str) -> u64 {
    let prefix = format!("{set}:");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {set} in {status:?}"));
    u64::from_str_radix(hex.trim(), 16).expect("a hex set")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Runs the lab through `labctl run`, with its run directory in a
/// temporary folder.
fn run(lab: &TestLab, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runs = dir.path().join("runs");
    let mut args = vec!["run", lab.path(), "--runs-dir", runs.to_str().unwrap()];
    args.extend_from_slice(extra);
    labctl(&args)
}

fn steps_hold_and_use_the_nodes_capabilities_and_a_node_without_them_cannot(runtime: &str) {
    if skip(runtime) {
        return;
    }
    // Each `try` step prints `exit N` and the command's words, so a
    // refused command fails the step's check, not the step itself.
    let attempt = |node: &str, name: &str, command: &str, expect: &str| {
        format!(
            "  - name: {name}\n    node: {node}\n    \
             exec: [sh, -c, \"{command} 2>&1; echo exit $?\"]\n    \
             expect:\n      stdout:\n        - {expect}\n"
        )
    };
    let steps = [
        "steps:\n  - name: r1 caps\n    node: r1\n    exec: [grep, -E, '^Cap(Eff|Bnd|Amb)', /proc/self/status]\n"
            .to_owned(),
        attempt(
            "r1",
            "r1 sets its mtu",
            "ip link set eth1 mtu 1400 && ip link show eth1",
            "{match: 'mtu 1400'}\n        - {contains: 'exit 0'}",
        ),
        attempt(
            "r1",
            "r1 adds a route",
            "ip route add 198.18.123.0/24 via 198.18.23.2 && ip route show 198.18.123.0/24",
            "{contains: '198.18.123.0/24 via 198.18.23.2'}\n        - {contains: 'exit 0'}",
        ),
        attempt(
            "r2",
            "r2 cannot",
            "ip link set eth1 mtu 1400",
            "{contains: 'not permitted'}\n        - {match: '^exit [1-9]'}",
        ),
        "  - name: r2 caps\n    node: r2\n    exec: [grep, -E, '^CapEff', /proc/self/status]\n"
            .to_owned(),
    ]
    .concat();
    let lab = TestLab::new("cstep", &router_lab(runtime, &steps));
    let dir = tempfile::tempdir().expect("temporary directory");
    let runs = dir.path().join("runs");
    let out = labctl(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--runtime",
        runtime,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("5 passed"), "{}", describe(&out));

    // The capabilities the steps printed, from their output files.
    let step_out = |file: &str| -> String {
        let found: Vec<_> = walk(&runs)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == file))
            .collect();
        assert_eq!(found.len(), 1, "one {file} in {runs:?}: {found:?}");
        std::fs::read_to_string(&found[0]).expect("step output")
    };
    let r1 = step_out("01-r1_caps.stdout");
    for set in ["CapEff", "CapBnd"] {
        assert_eq!(
            cap_set(&r1, set),
            NET_RAW | NET_ADMIN | NET_BIND_SERVICE,
            "{set}: {r1}"
        );
    }
    if runtime == "netns" {
        // A host process keeps them across exec of a program that is not
        // root, too.
        assert_eq!(
            cap_set(&r1, "CapAmb"),
            NET_RAW | NET_ADMIN | NET_BIND_SERVICE
        );
    }
    // Least privilege stays the default.
    assert_eq!(cap_set(&step_out("05-r2_caps.stdout"), "CapEff"), NET_RAW);
    assert_nothing_left(&lab.name);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn exec_holds_the_nodes_capabilities_and_a_node_without_them_cannot(runtime: &str) {
    if skip(runtime) {
        return;
    }
    let lab = TestLab::new("cexec", &router_lab(runtime, ""));
    let out = labctl(&["deploy", lab.path(), "--runtime", runtime]);
    assert_success(&out, "labctl deploy");
    let exec = |node: &str, argv: &[&str]| {
        let mut args = vec!["exec", lab.name.as_str(), node, "--"];
        args.extend_from_slice(argv);
        labctl(&args)
    };
    let status = |node: &str| {
        let out = exec(node, &["cat", "/proc/self/status"]);
        assert_success(&out, "labctl exec cat /proc/self/status");
        stdout(&out)
    };
    assert_eq!(
        cap_set(&status("r1"), "CapEff"),
        NET_RAW | NET_ADMIN | NET_BIND_SERVICE
    );
    assert_eq!(cap_set(&status("r2"), "CapEff"), NET_RAW);

    let out = exec("r1", &["ip", "link", "set", "eth1", "mtu", "1400"]);
    assert_success(&out, "labctl exec ip link set (NET_ADMIN)");
    let out = exec("r1", &["ip", "link", "show", "eth1"]);
    assert!(stdout(&out).contains("mtu 1400"), "{}", describe(&out));
    let out = exec("r2", &["ip", "link", "set", "eth1", "mtu", "1400"]);
    // labctl exec passes on the refusal's exit code: 2, from iproute2 (a
    // refused netlink request) and from busybox's ip (a refused ioctl) alike.
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("not permitted"), "{}", describe(&out));
    let out = exec("r2", &["ip", "link", "show", "eth1"]);
    assert!(!stdout(&out).contains("mtu 1400"), "{}", describe(&out));

    assert_success(&labctl(&["destroy", &lab.name]), "labctl destroy");
    assert_nothing_left(&lab.name);
}

#[test]
fn a_capability_docker_does_not_know_is_refused_before_anything_is_created() {
    let host = docker_host_support();
    let Some(why) = host.cannot_grant(Capability::BPF).map(str::to_owned) else {
        crate::support::skip::skip("this Docker grants CAP_BPF (23.0 or later)");
        return;
    };
    let lab = TestLab::new(
        "cbpf",
        "name: {name}\nnodes:\n  a: { capabilities: [NET_ADMIN, BPF] }\n  b: {}\n\
         links:\n  - endpoints: [a:eth1, b:eth1]\n",
    );
    let refusal = format!("node a asks for BPF, but {why}");
    let out = run(&lab, &["--runtime", "docker"]);
    assert_eq!(out.status.code(), Some(EXIT_RUNTIME), "{}", describe(&out));
    assert!(stdout(&out).contains(&refusal), "{}", describe(&out));
    assert_nothing_left(&lab.name);
    // deploy says it in one line.
    let out = labctl(&["deploy", lab.path(), "--runtime", "docker"]);
    assert_eq!(out.status.code(), Some(EXIT_RUNTIME), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&refusal), "{err}");
    assert_nothing_left(&lab.name);
}

/// On netns a step is a host process: DAC_OVERRIDE and SYS_PTRACE there
/// are root on the host, refused unless the lab is trusted like root.
#[test]
fn a_netns_node_gets_host_reaching_capabilities_only_when_privileged() {
    if skip("netns") {
        return;
    }
    // DAC_OVERRIDE (1), SYS_PTRACE (19), af_packet's NET_RAW.
    const EFFECTIVE: u64 = 1 << 1 | 1 << 19 | NET_RAW;
    let yaml = |privileged: bool| {
        format!(
            "name: {{name}}\nruntime: netns\nnodes:\n  \
             a: {{ capabilities: [DAC_OVERRIDE, SYS_PTRACE], privileged: {privileged} }}\n\
             steps:\n  - name: caps\n    node: a\n    exec: [grep, '^CapEff', /proc/self/status]\n    \
             expect:\n      stdout:\n        - {{contains: \"{EFFECTIVE:016x}\"}}\n"
        )
    };
    let refused = TestLab::new("cpriv", &yaml(false));
    let out = labctl(&["deploy", refused.path()]);
    assert_eq!(out.status.code(), Some(EXIT_RUNTIME), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("node a (DAC_OVERRIDE, SYS_PTRACE) asks for capabilities that reach beyond")
            && err.contains("privileged: true"),
        "{err}"
    );
    assert_nothing_left(&refused.name);

    let trusted = TestLab::new("cpriv", &yaml(true));
    let out = run(&trusted, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_nothing_left(&trusted.name);
    // `labctl run --privileged` trusts it as the key does.
    let out = run(&refused, &["--privileged"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
