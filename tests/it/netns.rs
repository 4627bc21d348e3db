//! The netns runtime through the library: nodes as named namespaces with
//! the node's sysctls, wired with the same netlink code, steps as host
//! processes inside them with the node's capabilities and `/lab/out`, and
//! nothing left after teardown, even of processes a crashed labctl left.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use labctl::lab::Lab;
use labctl::links::Netlink;
use labctl::run::running::Running;
use labctl::runtime::deploy::{deploy, DeployOptions, DeployOutcome};
use labctl::runtime::netns::{self, ns, NetnsBackend, NetnsLauncher};
use labctl::runtime::process::Launcher;
use labctl::runtime::teardown::teardown;
use labctl::runtime::{NoProgress, Scope};

use crate::support::lab::netns_leftovers as leftovers;
use crate::support::skip::skip_without_root;
use crate::support::{bin, unique};

/// The tools next to the test's binaries, as labctl finds them next to
/// itself.
fn tools_env() {
    let dir = bin("lab-ping").parent().unwrap().to_owned();
    std::env::set_var("LABCTL_TOOLS_DIR", dir);
}

fn skip() -> bool {
    if skip_without_root("the netns runtime") {
        return true;
    }
    tools_env();
    false
}

const PAIR: &str = r#"
name: {name}
nodes:
  a: { env: { GREETING: hello }, sysctls: { net.ipv4.ip_forward: "1", net.ipv4.conf.eth1.rp_filter: "2" } }
  b: { datalink: af_xdp }
links:
  - endpoints: ["a:eth1", "b:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
"#;

fn lab(yaml: &str, name: &str) -> Lab {
    labctl::lab::parse(
        &yaml.replace("{name}", name),
        Path::new("/tmp/netns-test.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Removes the lab at the end of a test, whatever happened.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        crate::support::lab::remove_leftovers(&self.0);
    }
}

async fn up(lab: &Lab) -> Netlink {
    let netlink = Netlink::connect().unwrap();
    match deploy(
        &NetnsBackend,
        &netlink,
        lab,
        &DeployOptions::default(),
        &NoProgress,
    )
    .await
    {
        Ok(DeployOutcome::Deployed(_)) => netlink,
        other => panic!("deploy: {other:?}"),
    }
}

/// Runs `argv` in `node` to its end: (exit code, stdout, stderr).
async fn exec(lab: &str, node: &str, argv: &[&str]) -> (i64, String, String) {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let launched = NetnsLauncher::new(lab).launch(node, &argv).await.unwrap();
    let mut running = Running::collect(launched);
    running.ended_async().await;
    let code = running.control.exit_code().await.unwrap();
    let out = running.snapshot();
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ip_in(netns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", netns])
        .args(args)
        .output()
        .expect("run ip");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sysctl_in(netns: &str, key: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "sysctl", "-n", key])
        .output()
        .expect("run sysctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_is_a_named_namespace_with_its_sysctls_links_and_lo() {
    if skip() {
        return;
    }
    let name = unique("nsn");
    let _guard = Guard(name.clone());
    let lab = lab(PAIR, &name);
    let netlink = up(&lab).await;
    let a = format!("labctl-{name}.a");
    assert!(ns::is_namespace(&ns::netns_path(&a)));
    // `ip netns` sees it: the iproute2 layout.
    let addrs = ip_in(&a, &["-o", "addr", "show", "dev", "eth1"]);
    assert!(addrs.contains("198.18.0.1/24"), "{addrs}");
    let lo = ip_in(&a, &["-o", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    // Silence, then the lab's own sysctls, interface ones included.
    assert_eq!(sysctl_in(&a, "net.ipv4.conf.eth1.arp_ignore"), "8");
    assert_eq!(sysctl_in(&a, "net.ipv4.icmp_echo_ignore_all"), "1");
    assert_eq!(sysctl_in(&a, "net.ipv4.ip_forward"), "1");
    assert_eq!(sysctl_in(&a, "net.ipv4.conf.eth1.rp_filter"), "2");
    assert_eq!(sysctl_in(&a, "net.ipv6.conf.eth1.disable_ipv6"), "1");
    // The host's namespace is untouched.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/icmp_echo_ignore_all")
            .unwrap()
            .trim(),
        "0"
    );

    let removed = teardown(&NetnsBackend, &netlink, &Scope::Named(name.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    assert_eq!(removed.containers.len(), 2);
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_runs_in_the_node_with_its_env_caps_hostname_and_out_dir() {
    if skip() {
        return;
    }
    let name = unique("nss");
    let _guard = Guard(name.clone());
    let lab = lab(PAIR, &name);
    let netlink = up(&lab).await;

    let script = "hostname; pwd; echo \"$GREETING $LABCTL_DATALINK_eth1\"; \
                  command -v lab-ping; grep -E '^Cap(Eff|Bnd)' /proc/self/status; \
                  echo evidence > /lab/out/a.txt; ip -o addr show dev eth1; exit 7";
    let (code, out, err) = exec(&name, "a", &["sh", "-c", script]).await;
    assert_eq!(code, 7, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "a");
    assert_eq!(lines[1], "/lab/out");
    assert_eq!(lines[2], "hello af_packet");
    assert_eq!(lines[3], "/lab/bin/lab-ping");
    // NET_RAW only (bit 13), in the bounding set as well.
    assert_eq!(lines[4], "CapEff:\t0000000000002000", "{out}");
    assert_eq!(lines[5], "CapBnd:\t0000000000002000", "{out}");
    assert!(lines[6].contains("198.18.0.1/24"), "{out}");
    // af_xdp's capabilities on b: NET_ADMIN, NET_RAW, IPC_LOCK, BPF (no
    // SYS_ADMIN: host processes can be given CAP_BPF).
    let (_, out, _) = exec(&name, "b", &["grep", "^CapEff", "/proc/self/status"]).await;
    assert_eq!(out.trim(), "CapEff:\t0000008000007000");
    // The tools are read-only, the node cannot write to them.
    // sh's own refusal (2 from dash, 1 from bash), not any failure.
    let (code, _, err) = exec(&name, "a", &["sh", "-c", "echo x > /lab/bin/x"]).await;
    assert!(matches!(code, 1 | 2), "{code}: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
    // Signals: a process killed by one ends with 128 + its number.
    let (code, _, _) = exec(&name, "a", &["sh", "-c", "kill -9 $$"]).await;
    assert_eq!(code, 137);

    // /lab/out is the node's own directory, copied out as evidence.
    let dest = tempfile::tempdir().unwrap();
    let files = netns::copy_out(&name, "a", dest.path()).await.unwrap();
    assert_eq!(files, vec![dest.path().join("a.txt")]);
    assert_eq!(
        std::fs::read_to_string(dest.path().join("a.txt")).unwrap(),
        "evidence\n"
    );
    assert!(
        netns::copy_out(&name, "b", dest.path())
            .await
            .unwrap()
            .is_empty(),
        "b's /lab/out is its own"
    );
    // The mounts were the step's own: nothing on the host's /lab/out.
    assert!(!Path::new("/lab/out/a.txt").exists());

    let removed = teardown(&NetnsBackend, &netlink, &Scope::Named(name.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// Starts `sleep` inside a node as a process labctl does not know about,
/// as steps a killed labctl left running would be.
fn orphan_in(netns: &str) -> u32 {
    // `setsid -f`: the sleep is nobody's child but init's, and ip returns.
    let status = Command::new("ip")
        .args(["netns", "exec", netns, "setsid", "-f", "sleep", "1000"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("start sleep in the node");
    assert!(status.success());
    let path = ns::netns_path(netns);
    for _ in 0..200 {
        if let Some(pid) = ns::pids_in(&path).first() {
            return *pid as u32;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no process appeared in {netns}");
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie has exited; only its parent has yet to reap it.
    !stat.is_empty() && !stat.contains(") Z ")
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_from_nothing_but_the_host_kills_every_process_and_removes_all() {
    if skip() {
        return;
    }
    let name = unique("nsk");
    let _guard = Guard(name.clone());
    let lab = lab(PAIR, &name);
    drop(up(&lab).await);
    let pids = [
        orphan_in(&format!("labctl-{name}.a")),
        orphan_in(&format!("labctl-{name}.b")),
    ];
    assert!(pids.iter().all(|p| alive(*p)));

    // A fresh engine and netlink: what `labctl destroy` in another process
    // after a crash has.
    let netlink = Netlink::connect().unwrap();
    let listed =
        labctl::runtime::backend::Backend::list(&NetnsBackend, &Scope::Named(name.clone()))
            .await
            .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.is_running() && c.run.len() == 12));
    let removed = teardown(&NetnsBackend, &netlink, &Scope::Named(name.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "processes of the lab survive"
    );
    assert_eq!(leftovers(&name), Vec::<String>::new());
    // Again: nothing to do, no error.
    let again = teardown(&NetnsBackend, &netlink, &Scope::Named(name.clone())).await;
    assert!(again.is_empty() && again.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_made_node_is_found_and_removed() {
    if skip() {
        return;
    }
    let name = unique("nsh");
    let _guard = Guard(name.clone());
    // A crash after the directory, before the namespace.
    let half = format!("labctl-{name}.a");
    std::fs::create_dir_all(ns::out_path(&half)).unwrap();
    let netlink = Netlink::connect().unwrap();
    let removed = teardown(&NetnsBackend, &netlink, &Scope::Named(name.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    assert_eq!(removed.containers, [half]);
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deploy_rolls_back_every_namespace() {
    if skip() {
        return;
    }
    let name = unique("nsf");
    let _guard = Guard(name.clone());
    // The kernel has no such sysctl: node c fails after a and b are made.
    let yaml = "name: {name}\nnodes:\n  a: {}\n  b: {}\n  c: { sysctls: { net.ipv4.no_such_thing: \"1\" } }\n\
                links:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = lab(yaml, &name);
    let netlink = Netlink::connect().unwrap();
    let err = deploy(
        &NetnsBackend,
        &netlink,
        &lab,
        &DeployOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no_such_thing"), "{err}");
    assert!(err.rollback.is_some());
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_labs_with_the_same_addresses_run_side_by_side() {
    if skip() {
        return;
    }
    let (one, two) = (unique("nsa"), unique("nsb"));
    let _guards = (Guard(one.clone()), Guard(two.clone()));
    let icmp =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/icmp.yaml"))
            .unwrap()
            .replace("name: icmp", "name: {name}");
    let (lab1, lab2) = (lab(&icmp, &one), lab(&icmp, &two));
    let (n1, n2) = tokio::join!(up(&lab1), up(&lab2));
    for name in [&one, &two] {
        let pong = NetnsLauncher::new(name)
            .launch("ponger", &["lab-pong".into(), "eth1".into()])
            .await
            .unwrap();
        let mut pong = Running::collect(pong);
        pong.watch(|c| {
            String::from_utf8_lossy(&c.stdout)
                .contains("listening")
                .then_some(())
        })
        .await;
    }
    let ping = [
        "lab-ping",
        "eth1",
        "198.18.0.2",
        "--count",
        "2",
        "--interval",
        "50ms",
    ];
    let ((c1, o1, _), (c2, o2, _)) =
        tokio::join!(exec(&one, "pinger", &ping), exec(&two, "pinger", &ping));
    assert_eq!((c1, c2), (0, 0), "{o1}\n{o2}");
    assert!(o1.contains("2 received") && o2.contains("2 received"));

    // Removing one leaves the other whole.
    let removed = teardown(&NetnsBackend, &n1, &Scope::Named(one.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    assert_eq!(leftovers(&one), Vec::<String>::new());
    let (c2, o2, _) = exec(&two, "pinger", &ping).await;
    assert_eq!(c2, 0, "{o2}");
    let removed = teardown(&NetnsBackend, &n2, &Scope::Named(two.clone())).await;
    assert!(removed.errors.is_empty(), "{:?}", removed.errors);
    assert_eq!(leftovers(&two), Vec::<String>::new());
}

// The verbs through the real binary.

use crate::support::lab::{assert_nothing_left, labctl, labctl_command, stderr, stdout, TestLab};

fn repo_lab(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("name:") {
                "name: {name}"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn deploy_inspect_exec_destroy_on_the_netns_runtime() {
    if skip_without_root("the netns runtime") {
        return;
    }
    let lab = TestLab::new("nsv", &repo_lab("labs/icmp.yaml"));
    let out = labctl(&["deploy", "--runtime", "netns", lab.path()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("2 nodes, 1 link"), "{}", stdout(&out));

    let out = labctl(&["inspect", &lab.name, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = &json["labs"][0]["nodes"];
    assert_eq!(nodes.as_array().unwrap().len(), 2, "{json}");
    assert_eq!(nodes[0]["image"], "(netns)");
    assert_eq!(nodes[0]["state"], "running");
    let live = &nodes[0]["interfaces"][0]["live"];
    assert_eq!(live["up"], true, "{json}");
    assert_eq!(live["addresses"][0], "198.18.0.1/24", "{json}");

    // exec streams both outputs and exits with the command's code.
    let out = labctl(&[
        "exec",
        &lab.name,
        "pinger",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; hostname; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(stdout(&out), "out\npinger\n");
    assert_eq!(stderr(&out), "err\n");
    let out = labctl(&["exec", &lab.name, "nosuch", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("has no node nosuch"), "{out:?}");
    // A deployed lab is reported, as on Docker.
    let out = labctl(&["deploy", "--runtime", "netns", lab.path()]);
    assert!(stdout(&out).contains("already deployed"), "{out:?}");

    let out = labctl(&["destroy", &lab.name]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("2 nodes"), "{}", stdout(&out));
    assert_nothing_left(&lab.name);
    let out = labctl(&["destroy", &lab.name]);
    assert!(stdout(&out).contains("nothing to remove"), "{out:?}");
}

const LONG: &str = r#"
steps:
  - name: pong
    node: ponger
    exec: [lab-pong, eth1]
    background: true
    ready: "listening on eth1"
  - name: long ping
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "1000", --interval, 100ms]
"#;

#[test]
fn sigkill_of_a_run_then_destroy_leaves_nothing() {
    if skip_without_root("the netns runtime") {
        return;
    }
    let pair = "name: {name}\nnodes: { pinger: {}, ponger: {} }\nlinks:\n  - endpoints: [\"pinger:eth1\", \"ponger:eth1\"]\n    ipv4: [198.18.0.1/24, 198.18.0.2/24]\n";
    let lab = TestLab::new("nsk", &format!("{pair}{LONG}"));
    let runs = tempfile::tempdir().unwrap();
    let mut child = labctl_command(&[
        "run",
        "--runtime",
        "netns",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let err = child.stderr.take().unwrap();
    let started = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("long ping: running"))
    });
    assert!(started.join().unwrap() || child.try_wait().unwrap().is_none());
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    // The steps outlive labctl, in the lab's namespaces.
    let pinger = ns::netns_path(
        &crate::support::lab::netns_node_of(&lab.name, "pinger").expect("the pinger namespace"),
    );
    let orphans = ns::pids_in(&pinger);
    assert!(!orphans.is_empty(), "lab-ping still runs after the SIGKILL");

    let out = labctl(&["destroy", &lab.name]);
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(orphans.iter().all(|p| !alive(*p as u32)), "{orphans:?}");
    assert_nothing_left(&lab.name);
}

/// A socket file nothing listens on: what a dead daemon leaves.
fn dead_socket() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    (dir, format!("unix://{}", path.display()))
}

#[test]
fn without_docker_run_uses_netns_and_says_so_unless_the_lab_needs_an_image() {
    if skip_without_root("the netns runtime") {
        return;
    }
    let (_dir, host) = dead_socket();
    let lab = TestLab::new("nsd", &repo_lab("labs/icmp.yaml"));
    let runs = tempfile::tempdir().unwrap();
    let out = labctl_command(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .env("DOCKER_HOST", &host)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("netns runtime"))
        .map(str::to_owned)
        .collect();
    assert_eq!(said.len(), 1, "{}", stderr(&out));
    assert!(
        said[0].contains(&host) && said[0].contains(&lab.name),
        "{said:?}"
    );
    assert!(stdout(&out).contains("5 passed"), "{}", stdout(&out));
    // A netns node is a node, in what teardown removed and in the phases.
    let summary = stdout(&out);
    assert!(summary.contains("removed: node labctl-"), "{summary}");
    let phases = summary.lines().find(|l| l.starts_with("phases: "));
    assert!(phases.is_some_and(|l| l.contains("nodes ")), "{summary}");
    assert!(!summary.contains("container"), "{summary}");
    assert_nothing_left(&lab.name);

    // A node with an image needs Docker: exit 3, naming it.
    let image = TestLab::new(
        "nsi",
        "name: {name}\nnodes:\n  a: { image: \"busybox:1\" }\n",
    );
    let out = labctl_command(&[
        "run",
        image.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .env("DOCKER_HOST", &host)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr(&out).contains("Docker"), "{out:?}");
    assert!(!stderr(&out).contains("netns runtime"), "{out:?}");
    // Asked for explicitly, netns refuses the image before anything.
    let out = labctl(&["run", "--runtime", "netns", image.path()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("has image busybox:1"), "{out:?}");
    // And `--runtime docker` never falls back.
    let out = labctl_command(&[
        "run",
        "--runtime",
        "docker",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .env("DOCKER_HOST", &host)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
