//! labctl deploy, destroy, inspect and exec against the real Docker daemon
//! and kernel. Every test uses its own lab name, so they run in parallel,
//! and a guard ([`TestLab`]) destroys its lab even when an assertion fails.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use labctl::runtime::{DockerRuntime, ExecOutput};

use crate::support::lab::{
    assert_nothing_left, assert_success, busybox_image, containers_of, docker, docker_inspect,
    host_veths_of, labctl, labctl_command, remove_leftovers, stderr, stdout, TestLab,
};
use crate::support::skip::skip_with_netmap;
use crate::support::{bin, unique};

/// Two nodes on the tools image, one af_packet, one af_xdp, with an
/// address, a MAC, an MTU, env and an interface sysctl.
const PAIR: &str = r#"
name: {name}
nodes:
  a:
    env: { GREETING: hello }
    sysctls: { net.ipv4.conf.eth1.rp_filter: "2" }
  b: { datalink: af_xdp, privileged: true }
links:
  - endpoints:
      - { node: a, interface: eth1, ipv4: 198.18.0.1/24, mac: "02:00:00:00:00:0a" }
      - { node: b, interface: eth1, ipv4: 198.18.0.2/24 }
    mtu: 9000
"#;

/// A node on a plain busybox image next to a tools node.
fn busybox_lab() -> String {
    format!(
        r#"
name: {{name}}
nodes:
  box: {{ image: "{}", env: {{ FOO: bar }} }}
  tools: {{}}
links:
  - endpoints: ["box:eth1", "tools:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
"#,
        busybox_image()
    )
}

#[test]
fn deploy_builds_nodes_as_the_lab_says() {
    let lab = TestLab::new("rdep", PAIR);
    let out = lab.deploy();
    assert!(stdout(&out).contains(&format!("deployed lab {}", lab.name)));

    for (node, caps) in [
        ("a", vec!["NET_RAW"]),
        (
            "b",
            if crate::support::lab::docker_grants_cap_bpf() {
                vec!["BPF", "IPC_LOCK", "NET_ADMIN", "NET_RAW"]
            } else {
                // `privileged: true` on a Docker that cannot grant CAP_BPF.
                vec!["IPC_LOCK", "NET_RAW", "SYS_ADMIN"]
            },
        ),
    ] {
        let info = docker_inspect(&lab.container(node));
        assert_eq!(info["State"]["Running"], true, "{node} not running");
        let labels = &info["Config"]["Labels"];
        assert_eq!(labels["labctl.lab"], lab.name.as_str());
        assert_eq!(labels["labctl.node"], node);
        assert_eq!(labels["labctl.file"], lab.path());
        assert_eq!(labels["labctl.run"].as_str().map(str::len), Some(12));
        let host = &info["HostConfig"];
        assert_eq!(host["NetworkMode"], "none");
        assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
        assert_eq!(host["CapAdd"], serde_json::json!(caps));
    }

    // Only NET_RAW (bit 13) is effective in the af_packet node.
    let status = std::fs::read_to_string(format!("/proc/{}/status", lab.pid("a"))).unwrap();
    assert!(status.contains("CapEff:\t0000000000002000"), "{status}");
    let environ = std::fs::read(format!("/proc/{}/environ", lab.pid("a"))).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains("LABCTL_DATALINK_eth1=af_packet\0"),
        "{environ}"
    );
    assert!(environ.contains("GREETING=hello\0"), "{environ}");
    let environ_b = std::fs::read(format!("/proc/{}/environ", lab.pid("b"))).unwrap();
    assert!(String::from_utf8_lossy(&environ_b).contains("LABCTL_DATALINK_eth1=af_xdp\0"));

    // The interface, as the lab describes it, inside the node.
    let link = lab.in_netns("a", &["ip", "-o", "link", "show", "eth1"]);
    assert!(link.contains("state UP"), "{link}");
    assert!(link.contains("mtu 9000"), "{link}");
    assert!(link.contains("link/ether 02:00:00:00:00:0a"), "{link}");
    assert!(
        link.contains(&format!("alias labctl:{}:", lab.name)),
        "{link}"
    );
    let addr = lab.in_netns("a", &["ip", "-o", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains("inet 198.18.0.1/24"), "{addr}");
    assert!(
        !addr.contains("inet6"),
        "IPv6 must stay off lab interfaces: {addr}"
    );
    let addr_b = lab.in_netns("b", &["ip", "-o", "addr", "show", "dev", "eth1"]);
    assert!(addr_b.contains("inet 198.18.0.2/24"), "{addr_b}");

    // The kernel stays silent on the moved-in interface.
    let sysctl = |node: &str, key: &str| {
        lab.in_netns(node, &["cat", &format!("/proc/sys/net/{key}")])
            .trim()
            .to_owned()
    };
    assert_eq!(sysctl("a", "ipv4/conf/eth1/arp_ignore"), "8");
    assert_eq!(sysctl("b", "ipv4/conf/eth1/arp_ignore"), "8");
    assert_eq!(sysctl("a", "ipv6/conf/eth1/disable_ipv6"), "1");
    assert_eq!(sysctl("a", "ipv4/icmp_echo_ignore_all"), "1");
    // The lab's interface sysctl, applied once eth1 existed.
    assert_eq!(sysctl("a", "ipv4/conf/eth1/rp_filter"), "2");

    // Nothing of the lab is on the host.
    assert_eq!(host_veths_of(&lab.name), Vec::<String>::new());
}

#[test]
fn deploy_of_a_lab_already_up_reports_it_and_reconfigure_redeploys() {
    let lab = TestLab::new("rre", PAIR);
    lab.deploy();
    let first = containers_of(&lab.name);
    assert_eq!(first.len(), 2);

    let again = labctl(&["deploy", lab.path()]);
    assert_success(&again, "second deploy");
    assert!(
        stdout(&again).contains("already deployed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(containers_of(&lab.name), first, "nothing may change");

    let redeployed = labctl(&["deploy", "--reconfigure", "--timings", lab.path()]);
    assert_success(&redeployed, "deploy --reconfigure");
    let second = containers_of(&lab.name);
    assert_eq!(second.len(), 2);
    assert!(
        second.iter().all(|id| !first.contains(id)),
        "{first:?} {second:?}"
    );
    let timings = stderr(&redeployed);
    for phase in ["teardown", "image", "containers", "links"] {
        assert!(timings.contains(&format!("timing: {phase}")), "{timings}");
    }
    let link = lab.in_netns("b", &["ip", "-o", "link", "show", "eth1"]);
    assert!(link.contains("state UP"), "{link}");
}

#[test]
fn deploy_of_another_file_with_the_same_lab_name_is_refused() {
    let lab = TestLab::new("rcf", PAIR);
    lab.deploy();
    let other = TestLab::named(lab.name.clone(), PAIR);
    let out = labctl(&["deploy", other.path()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("already deployed from another file"));
    // Both guards destroy the shared name; the second finds nothing.
}

#[test]
fn inspect_shows_nodes_state_pids_and_interfaces() {
    let lab = TestLab::new("rins", PAIR);
    lab.deploy();

    let out = labctl(&["inspect", &lab.name]);
    assert_success(&out, "labctl inspect");
    let table = stdout(&out);
    assert!(table.starts_with("LAB"), "{table}");
    let row_a = table
        .lines()
        .find(|l| l.contains(&lab.container("a")))
        .unwrap_or_else(|| panic!("no row for a: {table}"));
    for cell in [
        "running",
        &lab.pid("a").to_string(),
        "eth1",
        "af_packet",
        "up",
        "198.18.0.1/24",
        "b:eth1",
    ] {
        assert!(row_a.contains(cell), "{cell:?} missing from {row_a:?}");
    }
    assert!(table.contains("af_xdp"), "{table}");

    // By file too, and as JSON.
    let out = labctl(&["inspect", "--json", lab.path()]);
    assert_success(&out, "labctl inspect --json");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let labs = json["labs"].as_array().unwrap();
    assert_eq!(labs.len(), 1);
    assert_eq!(labs[0]["name"], lab.name.as_str());
    assert_eq!(labs[0]["file"], lab.path());
    let nodes = labs[0]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for node in nodes {
        assert_eq!(node["state"], "running");
        assert!(node["pid"].as_u64().unwrap() > 1);
        let iface = &node["interfaces"][0];
        assert_eq!(iface["name"], "eth1");
        assert_eq!(iface["live"]["up"], true);
        assert_eq!(iface["live"]["addresses"][0], iface["ipv4"]);
    }
    assert_eq!(nodes[1]["interfaces"][0]["datalink"], "af_xdp");

    // Every lab: ours is among them.
    let all = labctl(&["inspect", "--json"]);
    assert_success(&all, "labctl inspect --json (all)");
    assert!(stdout(&all).contains(&format!("\"name\": \"{}\"", lab.name)));

    // A lab that is not deployed is not an error.
    let none = labctl(&["inspect", &unique("rnone")]);
    assert_success(&none, "labctl inspect of nothing");
    assert!(stderr(&none).contains("nothing deployed"));
}

/// A container listed, then removed before labctl inspects it (another
/// lab's teardown racing `labctl inspect`, seen in CI as a 404 and exit
/// 3): inspect goes on, the node is shown without a pid.
#[test]
fn inspect_takes_a_container_removed_meanwhile_as_not_running() {
    let lab = TestLab::new("rgone", PAIR);
    lab.deploy();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let _proxy = docker_proxy_where_gone(&socket, lab.container("a"));

    let out = labctl_command(&["inspect", "--json", &lab.name])
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .unwrap();
    assert_success(&out, "labctl inspect --json, node a gone meanwhile");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let nodes = json["labs"][0]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{json}");
    assert_eq!(nodes[0]["node"], "a");
    assert!(nodes[0]["pid"].is_null(), "{json}");
    assert_eq!(nodes[1]["pid"].as_u64(), Some(u64::from(lab.pid("b"))));
}

/// A proxy to the real Docker socket that answers inspecting `gone` as
/// Docker does a removed container (404, "No such container"), and passes
/// every other request through, one per connection.
fn docker_proxy_where_gone(socket: &std::path::Path, gone: String) -> std::thread::JoinHandle<()> {
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let gone = gone.clone();
            std::thread::spawn(move || {
                let _ = pass_through_unless_gone(client, &gone);
            });
        }
    })
}

fn pass_through_unless_gone(
    mut client: std::os::unix::net::UnixStream,
    gone: &str,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut from_client = BufReader::new(client.try_clone()?);
    let Some(head) = http_head(&mut from_client)? else {
        return Ok(());
    };
    if head[0].starts_with("GET ") && head[0].contains(&format!("/containers/{gone}/json")) {
        let body = format!(r#"{{"message":"No such container: {gone}"}}"#);
        return write!(
            client,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let length = head
        .iter()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    from_client.read_exact(&mut body)?;
    let docker = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
    let mut upstream = std::os::unix::net::UnixStream::connect(docker)?;
    // One request a connection both ways, so that the client never sends
    // a second one on a connection this proxy does not read again.
    upstream.write_all(closing(&head).as_bytes())?;
    upstream.write_all(&body)?;
    let mut from_docker = BufReader::new(upstream);
    let Some(answer) = http_head(&mut from_docker)? else {
        return Ok(());
    };
    client.write_all(closing(&answer).as_bytes())?;
    std::io::copy(&mut from_docker, &mut client)?;
    Ok(())
}

/// The lines of an HTTP message's head, without their CRLF; `None` at EOF.
fn http_head(from: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

/// `head` with `Connection: close` in place of any Connection header.
fn closing(head: &[String]) -> String {
    let mut out = String::new();
    for line in head.iter().filter(|line| {
        !line
            .split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("connection"))
    }) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

#[test]
fn exec_streams_both_outputs_and_exits_with_the_commands_code() {
    let lab = TestLab::new("rexe", &busybox_lab());
    lab.deploy();

    let out = labctl(&[
        "exec",
        &lab.name,
        "box",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; echo \"$FOO $LABCTL_DATALINK_eth1\"; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\nbar af_packet\n");
    assert_eq!(stderr(&out), "err\n");

    // LAB may be the file; arguments are passed as they are, no shell.
    let out = labctl(&["exec", lab.path(), "box", "--", "echo", "a b", "$HOME"]);
    assert_success(&out, "labctl exec echo");
    assert_eq!(stdout(&out), "a b $HOME\n");

    let out = labctl(&["exec", &lab.name, "box", "--", "false"]);
    assert_eq!(out.status.code(), Some(1));
    let out = labctl(&["exec", &lab.name, "box", "--", "no-such-command"]);
    assert!(matches!(out.status.code(), Some(126 | 127)), "{out:?}");

    let out = labctl(&["exec", &lab.name, "nobody", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no node nobody (its nodes: box, tools)"),
        "{}",
        stderr(&out)
    );
    let out = labctl(&["exec", &unique("rnot"), "box", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not deployed"));
}

#[test]
fn a_node_with_its_own_image_gets_the_tools_and_lab_init() {
    let lab = TestLab::new("rimg", &busybox_lab());
    lab.deploy();
    let run = |script: &str| {
        let out = labctl(&["exec", &lab.name, "box", "--", "sh", "-c", script]);
        assert_success(&out, script);
        stdout(&out)
    };
    assert!(run("echo $PATH").starts_with("/lab/bin:/usr/sbin:"));
    for tool in ["lab-init", "lab-ping", "lab-pong", "lab-capture"] {
        assert_eq!(
            run(&format!("command -v {tool}")).trim(),
            format!("/lab/bin/{tool}")
        );
    }
    // With the image's command, its CMD (sh, which ends at once).
    assert_eq!(
        run("cat /proc/1/cmdline | tr '\\0' ' '").trim(),
        "/lab/bin/lab-init -- sh"
    );
    assert_eq!(run("test -d /lab/out && echo yes").trim(), "yes");
    // The tools are mounted read-only.
    // touch's own refusal (exec exits with its code), not any failure.
    let out = labctl(&["exec", &lab.name, "box", "--", "touch", "/lab/bin/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // The busybox node is wired like any other.
    let link = run("ip -o addr show dev eth1");
    assert!(link.contains("inet 198.18.0.1/24"), "{link}");
    let info = docker_inspect(&lab.container("box"));
    assert_eq!(info["Config"]["Image"], busybox_image().as_str());
}

#[test]
fn lab_init_reaps_orphans_and_stops_on_sigterm() {
    let lab = TestLab::new("rini", &busybox_lab());
    lab.deploy();
    // `sh` exits at once; its `sleep` child is re-parented to PID 1.
    let out = labctl(&[
        "exec",
        &lab.name,
        "box",
        "--",
        "sh",
        "-c",
        "sleep 0.3 & exit 0",
    ]);
    assert_success(&out, "orphan maker");
    std::thread::sleep(Duration::from_millis(800));
    let out = labctl(&[
        "exec",
        &lab.name,
        "box",
        "--",
        "sh",
        "-c",
        "cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l",
    ]);
    assert_success(&out, "zombie count");
    assert_eq!(stdout(&out).trim(), "0", "lab-init left zombies");

    let started = Instant::now();
    let out = docker(&["stop", "-t", "20", &lab.container("tools")]);
    assert_success(&out, "docker stop");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM was ignored"
    );
    let info = docker_inspect(&lab.container("tools"));
    assert_eq!(info["State"]["ExitCode"], 0);
}

#[test]
fn destroy_by_name_and_by_file_leaves_nothing_and_is_idempotent() {
    let by_name = TestLab::new("rdn", PAIR);
    by_name.deploy();
    let out = labctl(&["destroy", &by_name.name, "--timings"]);
    assert_success(&out, "destroy by name");
    assert!(stdout(&out).contains("2 containers"), "{}", stdout(&out));
    assert!(stderr(&out).contains("timing: teardown"));
    assert_nothing_left(&by_name.name);
    let again = labctl(&["destroy", &by_name.name]);
    assert_success(&again, "second destroy");
    assert!(stdout(&again).contains("nothing to remove"));

    // By file, even once the file no longer validates.
    let by_file = TestLab::new("rdf", PAIR);
    by_file.deploy();
    let broken = format!("name: {}\nnodes: 12\nunknown: [\n", by_file.name);
    std::fs::write(&by_file.file, broken).unwrap();
    let out = labctl(&["destroy", by_file.path()]);
    assert_success(&out, "destroy by (broken) file");
    assert_nothing_left(&by_file.name);
}

#[test]
fn destroy_all_with_a_prefix_removes_only_those_labs() {
    // Bare `--all` would also remove labs of tests running beside this one
    // (and of anyone else on this daemon): the prefix scopes it to ours,
    // through the same code path (`--all` is the empty prefix).
    let prefix = unique("rall");
    let one = TestLab::named(format!("{prefix}-1"), PAIR);
    let two = TestLab::named(format!("{prefix}-2"), PAIR);
    let bystander = TestLab::new("rby", PAIR);
    for lab in [&one, &two, &bystander] {
        lab.deploy();
    }
    let out = labctl(&["destroy", "--all", "--prefix", &prefix]);
    assert_success(&out, "destroy --all --prefix");
    assert!(stdout(&out).contains("4 containers"), "{}", stdout(&out));
    assert_nothing_left(&one.name);
    assert_nothing_left(&two.name);
    assert_eq!(
        containers_of(&bystander.name).len(),
        2,
        "a bystander was removed"
    );

    let usage = labctl(&["destroy", "--prefix", &prefix]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn a_failed_deploy_removes_what_it_created() {
    // `c` cannot start (the kernel has no such sysctl), after `a` and `b`
    // may well have.
    let lab = TestLab::new(
        "rfail",
        r#"
name: {name}
nodes:
  a: {}
  b: {}
  c: { sysctls: { net.ipv4.no_such_setting: "1" } }
links:
  - endpoints: ["a:eth1", "b:eth1"]
"#,
    );
    // A deploy that builds the tools image also prints the build's
    // progress on stderr, and this test wants the error alone.
    warm_tools_image();
    let out = labctl(&["deploy", lab.path()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains(&format!("starting container {}", lab.container("c"))),
        "{message}"
    );
    assert!(message.contains("rolled back: removed"), "{message}");
    assert_nothing_left(&lab.name);
}

#[test]
fn docker_unreachable_exits_3_naming_the_socket() {
    let lab = TestLab::new("runr", PAIR);
    // Never `destroy --all` here: were DOCKER_HOST ignored, it would remove
    // every lab on the machine.
    for args in [
        vec!["deploy", lab.path()],
        vec!["inspect"],
        vec!["destroy", &lab.name],
    ] {
        let out = labctl_command(&args)
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .expect("run labctl");
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let message = stderr(&out);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("unix:///nonexistent.sock"), "{message}");
        assert!(message.contains("start the daemon"), "{message}");
    }
}

#[test]
fn a_netmap_lab_without_dev_netmap_exits_3_before_creating_anything() {
    if skip_with_netmap() {
        return;
    }
    let lab = TestLab::new(
        "rnm",
        r#"
name: {name}
datalink: netmap
nodes: { a: {}, b: {} }
links:
  - endpoints: ["a:eth1", "b:eth1"]
"#,
    );
    let out = labctl(&["deploy", lab.path()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("/dev/netmap") && message.contains("netmap kernel module"),
        "{message}"
    );
    assert!(containers_of(&lab.name).is_empty());
}

#[test]
fn destroy_after_sigkill_mid_deploy_leaves_no_container_veth_or_label() {
    let lab = TestLab::new("rkill", &chain(8));
    let mut deploy = deploy_until_containers_appear(&lab, Stdio::null());
    deploy.kill().expect("SIGKILL labctl");
    let _ = deploy.wait();
    let created = containers_of(&lab.name).len();
    assert!(created > 0, "the kill came too late to test anything");

    // A veth a crash left on the host, marked as this lab's.
    let stray = unique("lks");
    let peer = unique("lkp");
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert_success(&out, &format!("ip {}", args.join(" ")));
    };
    ip(&["link", "add", &stray, "type", "veth", "peer", "name", &peer]);
    ip(&[
        "link",
        "set",
        &stray,
        "alias",
        &format!("labctl:{}:0badc0ffee00", lab.name),
    ]);

    let out = labctl(&["destroy", &lab.name]);
    assert_success(&out, "destroy after SIGKILL");
    assert!(stdout(&out).contains(&stray), "{}", stdout(&out));
    assert_nothing_left(&lab.name);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &peer])
        .output()
        .unwrap();
    assert!(!link.status.success(), "the stray's peer is left");
    remove_leftovers(&lab.name);
}

/// Sends SIGINT to a child process.
fn interrupt(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

/// Waits for a child for at most `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_during_deploy_rolls_back_and_exits_130() {
    // Sixteen nodes: more than start at once, so the deploy is still
    // going when the signal lands.
    let lab = TestLab::new("rint", &chain(16));
    let mut deploy = deploy_until_containers_appear(&lab, Stdio::piped());
    interrupt(&deploy);
    let status = wait_for(&mut deploy, Duration::from_secs(60));
    let mut message = String::new();
    if let Some(mut err) = deploy.stderr.take() {
        let _ = err.read_to_string(&mut message);
    }
    assert_eq!(status.code(), Some(130), "{message}");
    assert!(message.contains("interrupted"), "{message}");
    assert!(message.contains("rolled back: removed"), "{message}");
    // Rolled back by labctl itself, without a destroy.
    assert_nothing_left(&lab.name);
}

#[test]
fn exec_passes_ctrl_c_to_the_command_and_exits_with_its_code() {
    let lab = TestLab::new("rexi", &busybox_lab());
    lab.deploy();
    let mut exec = labctl_command(&[
        "exec",
        &lab.name,
        "box",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 30",
    ])
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn labctl exec");
    let mut first = String::new();
    let stdout = exec.stdout.take().expect("piped stdout");
    BufReader::new(stdout).read_line(&mut first).expect("read");
    assert_eq!(first, "ready\n");
    interrupt(&exec);
    let status = wait_for(&mut exec, Duration::from_secs(10));
    // sleep died of SIGINT: 128 + 2.
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exec_api_streams_output_and_gives_pid_and_exit_code() {
    let lab = TestLab::new("rapi", &busybox_lab());
    lab.deploy();
    let runtime = DockerRuntime::connect().await.expect("connect");
    let argv: Vec<String> = ["sh", "-c", "echo ready; echo oops >&2; exec sleep 30"]
        .map(String::from)
        .to_vec();
    let (handle, mut output) = runtime.exec(&lab.name, "box", &argv).await.expect("exec");
    let (mut out, mut err) = (String::new(), String::new());
    while !out.contains("ready\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), output.next())
            .await
            .expect("output in time")
            .expect("output before the end")
            .expect("no stream error");
        match chunk {
            ExecOutput::Stdout(b) => out.push_str(&String::from_utf8_lossy(&b)),
            ExecOutput::Stderr(b) => err.push_str(&String::from_utf8_lossy(&b)),
        }
    }
    // A host pid: the command itself, seen from the host. "ready" comes
    // from the shell just before it execs sleep, so give the exec a moment.
    let pid = handle.host_pid().await.expect("inspect").expect("running");
    let cmdline = || std::fs::read(format!("/proc/{pid}/cmdline")).expect("host /proc");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cmdline().starts_with(b"sleep\0") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cmdline().starts_with(b"sleep\0"), "{:?}", cmdline());

    handle.signal(libc::SIGINT).await.expect("signal");
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(10), output.collect::<Vec<_>>())
        .await
        .expect("the stream ends once the command is gone");
    for chunk in rest {
        if let Ok(ExecOutput::Stderr(b)) = chunk {
            err.push_str(&String::from_utf8_lossy(&b));
        }
    }
    assert_eq!(err, "oops\n");
    assert_eq!(handle.exit_code().await.expect("exit code"), 130);
    // Signalling a command that has ended is not an error.
    handle.signal(libc::SIGINT).await.expect("late signal");
}

/// A chain of `nodes` nodes, each linked to the next (`nI:eth1` to
/// `nI+1:eth2`), with `{name}` for the lab's name.
fn chain(nodes: usize) -> String {
    let mut yaml = String::from("name: {name}\nnodes:\n");
    for i in 0..nodes {
        yaml.push_str(&format!("  n{i}: {{}}\n"));
    }
    yaml.push_str("links:\n");
    for i in 1..nodes {
        yaml.push_str(&format!(
            "  - endpoints: [\"n{}:eth1\", \"n{i}:eth2\"]\n",
            i - 1
        ));
    }
    yaml
}

/// Deploys a one-node lab and removes it, so the tools image exists and a
/// later deploy goes straight to its containers.
fn warm_tools_image() {
    TestLab::new("rwarm", "name: {name}\nnodes: { a: {} }\n").deploy();
}

/// Starts `labctl deploy` on `lab` (tools image warmed first) and returns
/// once its first container exists: the moment to interrupt or kill it.
fn deploy_until_containers_appear(lab: &TestLab, stderr: Stdio) -> std::process::Child {
    warm_tools_image();
    let deploy = labctl_command(&["deploy", lab.path()])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn labctl deploy");
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_of(&lab.name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    deploy
}

/// Runs that fill a fresh tools volume at once all get every tool: Docker
/// skips its copy into a volume that is not empty, so without labctl's
/// lock the second run saw half the tools ("stat /lab/bin/lab-init").
#[test]
fn runs_filling_a_fresh_tools_volume_at_once_all_get_every_tool() {
    let yaml = format!(
        r#"
name: {{name}}
nodes:
  box: {{ image: "{}" }}
steps:
  - name: tools
    node: box
    exec: [/lab/bin/lab-ping, --version]
"#,
        busybox_image()
    );
    let labs: Vec<TestLab> = (0..3).map(|_| TestLab::new("rfill", &yaml)).collect();
    // A fresh volume of this test's own: a copy of the tools whose
    // lab-capture has a few bytes more at its end (after the ELF's last
    // section: it runs as before) hashes to a tools image and volume no
    // other test uses. Removing the shared volume instead raced with other
    // tests' fills.
    let tools = tempfile::tempdir().unwrap();
    for tool in labctl::tools::TOOLS {
        std::fs::copy(bin(tool), tools.path().join(tool)).unwrap();
    }
    let mut capture = std::fs::OpenOptions::new()
        .append(true)
        .open(tools.path().join("lab-capture"))
        .unwrap();
    std::io::Write::write_all(&mut capture, labs[0].name.as_bytes()).unwrap();
    drop(capture);
    let tools_volumes = || {
        let out = docker(&["volume", "ls", "-q", "--filter", "name=labctl-tools-"]);
        stdout(&out).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let before = tools_volumes();
    let dirs: Vec<tempfile::TempDir> = labs.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<Child> = labs
        .iter()
        .zip(&dirs)
        .map(|(lab, dir)| {
            labctl_command(&[
                "run",
                lab.path(),
                "--runs-dir",
                dir.path().to_str().unwrap(),
            ])
            .env("LABCTL_TOOLS_DIR", tools.path())
            // Where labctl caches the copy's hash: gone with the test.
            .env("XDG_CACHE_HOME", tools.path().join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("labctl run")
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|child| child.wait_with_output().expect("labctl run"))
        .collect();
    // The volume the runs made, then its image: removed before any assert.
    let made: Vec<String> = tools_volumes()
        .into_iter()
        .filter(|volume| !before.contains(volume))
        .collect();
    for volume in &made {
        docker(&["volume", "rm", volume]);
        let image = volume.replacen("labctl-tools-", "labctl-tools:", 1);
        docker(&["image", "rm", &image]);
    }
    for (out, lab) in outs.iter().zip(&labs) {
        assert_success(out, &format!("run of {}", lab.name));
        assert_nothing_left(&lab.name);
    }
    assert_eq!(
        made.len(),
        1,
        "one fresh tools volume for the three runs: {made:?}"
    );
}
