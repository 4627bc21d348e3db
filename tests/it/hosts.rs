//! Labs across hosts: private Docker daemons, each in a network namespace
//! of its own standing for a host, joined by an underlay bridge on
//! 198.19.0.0/16 (support::hosts). A client on host a, lab-fwd on host b,
//! a server on host c: both links are VXLAN tunnels. Everything goes
//! through labctl's binary, Docker's API on each daemon and the helper
//! containers it runs there.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::hosts::{HostOpts, Hosts, Via};
use crate::support::lab::{labctl_command, stderr, stdout, TestLab};
use crate::support::skip::skip;

/// The three hosts, or a printed reason why they cannot run here.
fn three_hosts(opts: HostOpts) -> Option<Hosts> {
    match Hosts::start(&["a", "b", "c"], opts) {
        Ok(hosts) => Some(hosts),
        Err(why) => {
            skip(format!("no private Docker hosts can run here: {why}"));
            None
        }
    }
}

/// `labctl ARGS` with the hosts' record directory of this test.
fn labctl_in(records: &Path, args: &[&str]) -> Command {
    let mut cmd = labctl_command(args);
    cmd.env("LABCTL_HOSTS_DIR", records);
    cmd
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

fn records_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

const ACROSS: &str = r#"name: {name}
datalink: af_packet
{hosts}
nodes:
  client: { host: a }
  dut: { host: b }
  server: { host: c }
links:
  - endpoints:
      - { node: client, interface: eth1, ipv4: 198.18.31.1/24, impair: { rate: 100mbit } }
      - { node: dut, interface: west }
  - endpoints:
      - { node: dut, interface: east }
      - { node: server, interface: eth1, ipv4: 198.18.31.2/24 }
    vxlan: { vni: 4242 }
steps:
  - name: forwarder
    node: dut
    exec: [lab-fwd, west, east]
    background: true
    ready: "^forwarding west <-> east "
  - name: server pongs
    node: server
    exec: [lab-pong, eth1]
    background: true
    ready: "listening on eth1"
  - name: pings across both tunnels
    node: client
    exec: [lab-ping, eth1, 198.18.31.2, --count, "3", --interval, 200ms]
    timeout: 20s
    expect:
      stdout:
        - contains: "3 packets transmitted, 3 received"
  - name: cut across hosts
    link: "dut:east"
    state: down
  - name: nothing crosses the cut
    node: client
    exec: [lab-ping, eth1, 198.18.31.2, --count, "2", --interval, 200ms]
    timeout: 20s
    expect:
      exit: 1
      stderr:
        - contains: "no ARP reply from 198.18.31.2"
  - name: restore
    link: "dut:east"
    state: up
  - name: pings again
    node: client
    exec: [lab-ping, eth1, 198.18.31.2, --count, "3", --interval, 200ms]
    timeout: 20s
    expect:
      stdout:
        - contains: "3 packets transmitted, 3 received"
  - name: sink
    node: server
    exec: [lab-sink, eth1]
    background: true
    ready: "^receiving on eth1 "
  - name: traffic
    node: client
    exec: [lab-gen, eth1, 198.18.31.2, --rate, "2000", --count, "2000", --size, "1000"]
    timeout: 30s
    expect:
      stdout:
        - contains: "sent 2000 frames"
  - name: sink counted every frame
    wait: sink
    expect:
      stdout:
        - match: '^received ([0-9]+) frames, lost'
          at_least: 2000
          at_most: 2000
        - match: ', duplicates ([0-9]+),'
          at_most: 0
"#;

/// One set of three hosts for every scenario, in order: each daemon
/// builds the tools image and the wiring helper's image once (from debug
/// binaries, over a gigabyte of build context per host).
#[test]
fn labs_across_three_hosts() {
    let Some(hosts) = three_hosts(HostOpts {
        tls: true,
        ssh: true,
    }) else {
        return;
    };
    let started = Instant::now();
    for (name, scenario) in [
        (
            "a run: pings, traffic, a cut, nothing left",
            a_run_pings_carries_traffic_survives_a_cut_and_leaves_nothing as fn(&Hosts),
        ),
        (
            "deploy, inspect, exec, destroy",
            the_nodes_are_on_their_hosts_and_the_links_are_vxlan_over_the_underlay,
        ),
        (
            "bad input",
            bad_hosts_are_refused_in_one_line_before_anything_is_made,
        ),
        ("SIGTERM mid-run", sigterm_mid_run_tears_down_every_host),
        (
            "a host dies mid-run",
            a_host_that_dies_mid_run_is_named_the_others_are_torn_down_and_destroy_finishes_later,
        ),
    ] {
        let at = Instant::now();
        scenario(&hosts);
        eprintln!("{name}: passed in {:.1} s", at.elapsed().as_secs_f64());
    }
    eprintln!(
        "labs across three hosts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn a_run_pings_carries_traffic_survives_a_cut_and_leaves_nothing(hosts: &Hosts) {
    let records = tempfile::tempdir().unwrap();
    // Each host by another of Docker's ways: a unix socket, tcp:// with
    // TLS client certificates, ssh:// (through the test's own agent).
    let via = hosts.hosts_yaml_via(&[Via::Unix, Via::Tls, Via::Ssh]);
    let lab = TestLab::new("hx", &ACROSS.replace("{hosts}", &via));
    let runs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = labctl_in(
        records.path(),
        &[
            "run",
            lab.path(),
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    )
    .envs(hosts.ssh_env())
    .output()
    .unwrap();
    eprintln!(
        "labctl run over three hosts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("10 steps, 10 passed"), "{text}");
    // Each node ran on its own host: its container is in that daemon's
    // history (the run's evidence names the steps' nodes, not the hosts).
    let leftovers = hosts.leftovers();
    assert!(leftovers.is_empty(), "left on the hosts: {leftovers:?}");
    assert!(
        records_in(records.path()).is_empty(),
        "the record stays after a clean teardown"
    );
}

fn the_nodes_are_on_their_hosts_and_the_links_are_vxlan_over_the_underlay(hosts: &Hosts) {
    let records = tempfile::tempdir().unwrap();
    let lab = TestLab::new("hd", &ACROSS.replace("{hosts}", &hosts.hosts_yaml()));
    let out = labctl_in(records.path(), &["deploy", lab.path()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let record = std::fs::read_to_string(records.path().join(format!("{}.json", lab.name)))
        .expect("a record of the hosts once deployed");
    for host in ["a", "b", "c"] {
        assert!(record.contains(&hosts.endpoint(host)), "{record}");
    }
    for (node, host) in [("client", "a"), ("dut", "b"), ("server", "c")] {
        let ps = hosts.docker(host, &["ps", "--format", "{{.Names}}"]);
        let names = String::from_utf8_lossy(&ps.stdout);
        assert!(
            names.contains(&format!("labctl-{}.{node}", lab.name)),
            "{host}: {names}"
        );
        for other in ["a", "b", "c"].iter().filter(|h| **h != host) {
            let ps = hosts.docker(other, &["ps", "--format", "{{.Names}}"]);
            let names = String::from_utf8_lossy(&ps.stdout);
            assert!(
                !names.contains(&format!(".{node}")),
                "{node} also on {other}: {names}"
            );
        }
    }
    // The dut's east end is a VXLAN device whose UDP socket is in host b's
    // namespace, towards host c's underlay, on the lab's VNI.
    let dut = node_pid(hosts, "b", &lab.name, "dut");
    let link = in_node(&dut, &["ip", "-d", "link", "show", "east"]);
    assert!(link.contains("vxlan id 4242"), "{link}");
    assert!(
        link.contains(&format!("remote {}", hosts.underlay("c"))),
        "{link}"
    );
    assert!(
        link.contains(&format!("local {}", hosts.underlay("b"))),
        "{link}"
    );
    assert!(link.contains("dstport 4789"), "{link}");
    // MTU: 1500 on the underlay less 50 bytes of VXLAN, as none was given.
    assert!(link.contains("mtu 1450"), "{link}");
    // The client's end is impaired on its host (a helper there put the
    // tbf on it): 100 Mbit/s.
    let client = node_pid(hosts, "a", &lab.name, "client");
    let qdisc = in_node(&client, &["tc", "qdisc", "show", "dev", "eth1"]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("rate 100Mbit"),
        "{qdisc}"
    );
    // The other link got a VNI labctl picked.
    let west = in_node(&dut, &["ip", "-d", "link", "show", "west"]);
    assert!(
        west.contains("vxlan id ") && !west.contains("vxlan id 4242"),
        "{west}"
    );
    // labctl inspect finds the nodes on their hosts.
    let inspect = labctl_in(records.path(), &["inspect", &lab.name, "--json"])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", describe(&inspect));
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        json["labs"][0]["nodes"].as_array().map(Vec::len),
        Some(3),
        "{json}"
    );
    // labctl exec reaches a node on another host than the first.
    let exec = labctl_in(
        records.path(),
        &["exec", &lab.name, "server", "--", "lab-ping", "--help"],
    )
    .output()
    .unwrap();
    // The server's container exists on host c alone.
    assert!(exec.status.success(), "{}", describe(&exec));
    assert!(
        stdout(&exec).contains("Usage: lab-ping"),
        "{}",
        describe(&exec)
    );
    let destroy = labctl_in(records.path(), &["destroy", &lab.name])
        .output()
        .unwrap();
    assert!(destroy.status.success(), "{}", describe(&destroy));
    assert!(hosts.leftovers().is_empty(), "{:?}", hosts.leftovers());
    assert!(records_in(records.path()).is_empty());
}

const LONG: &str = r#"name: {name}
{hosts}
nodes:
  client: { host: a }
  dut: { host: b }
  server: { host: c }
links:
  - endpoints: ["client:eth1", "dut:west"]
  - endpoints: ["dut:east", "server:eth1"]
steps:
  - name: long pong
    node: server
    exec: [lab-pong, eth1]
    timeout: 5m
"#;

fn a_host_that_dies_mid_run_is_named_the_others_are_torn_down_and_destroy_finishes_later(
    hosts: &Hosts,
) {
    let records = tempfile::tempdir().unwrap();
    let (lab, mut child, reader, _runs) = run_until_the_step_runs(hosts, records.path(), "hk");
    hosts.kill("c");
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(!status.success(), "{out}\n{err}");
    let all = format!("{out}\n{err}");
    let named = all
        .lines()
        .find(|l| l.contains("host c (") && l.contains("did not answer"))
        .unwrap_or_else(|| panic!("no line names host c:\n{all}"));
    assert!(
        named.contains(&format!("labctl destroy {}", lab.name)),
        "{named}"
    );
    // a and b are clean already; c's part waits for its daemon.
    let left: Vec<String> = hosts
        .leftovers()
        .into_iter()
        .filter(|l| !l.starts_with("host c:"))
        .collect();
    assert!(left.is_empty(), "left on a and b: {left:?}");
    assert_eq!(
        records_in(records.path()).len(),
        1,
        "the record stays while c is down"
    );

    hosts.restart("c").expect("restart host c's daemon");
    let destroy = labctl_in(records.path(), &["destroy", &lab.name])
        .output()
        .unwrap();
    assert!(destroy.status.success(), "{}", describe(&destroy));
    assert!(hosts.leftovers().is_empty(), "{:?}", hosts.leftovers());
    assert!(records_in(records.path()).is_empty());
}

/// Starts `labctl run` on the LONG lab and returns it once its step runs,
/// with the reader of its stderr.
fn run_until_the_step_runs(
    hosts: &Hosts,
    records: &Path,
    prefix: &str,
) -> (
    TestLab,
    std::process::Child,
    std::thread::JoinHandle<String>,
    tempfile::TempDir,
) {
    let lab = TestLab::new(prefix, &LONG.replace("{hosts}", &hosts.hosts_yaml()));
    let runs = tempfile::tempdir().unwrap();
    let mut child = labctl_in(
        records,
        &[
            "run",
            lab.path(),
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if line.contains("long pong: running") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(400)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the step never ran:\n{}", reader.join().unwrap());
    }
    (lab, child, reader, runs)
}

fn sigterm_mid_run_tears_down_every_host(hosts: &Hosts) {
    let records = tempfile::tempdir().unwrap();
    let (_lab, mut child, reader, _runs) = run_until_the_step_runs(hosts, records.path(), "ht");
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        hosts.leftovers().is_empty(),
        "{:?}\n{err}",
        hosts.leftovers()
    );
    assert!(records_in(records.path()).is_empty(), "{err}");
}

/// The host pid of node `node` of instance `lab`, asked of host `host`.
fn node_pid(hosts: &Hosts, host: &str, lab: &str, node: &str) -> String {
    let container = format!("labctl-{lab}.{node}");
    let out = hosts.docker(host, &["inspect", "-f", "{{.State.Pid}}", &container]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What `argv` prints in the network namespace of process `pid`.
fn in_node(pid: &str, argv: &[&str]) -> String {
    let out = Command::new("nsenter")
        .args(["-t", pid, "-n"])
        .args(argv)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One line, its exit code, and nothing made on any host.
fn refused(hosts: &Hosts, yaml: &str, code: i32, words: &[&str]) {
    let records = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let lab = TestLab::new("hb", yaml);
    let out = labctl_in(
        records.path(),
        &[
            "run",
            lab.path(),
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.lines().any(|l| words.iter().all(|w| l.contains(w))),
        "no line with {words:?}:\n{said}"
    );
    assert!(records_in(records.path()).is_empty(), "{said}");
    let ps: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|h| {
            let out = hosts.docker(h, &["ps", "-a", "--format", "{{.Names}}"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|n| n.contains(&lab.name))
                .map(|n| format!("{h}: {n}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(ps.is_empty(), "made before the refusal: {ps:?}");
}

fn bad_hosts_are_refused_in_one_line_before_anything_is_made(hosts: &Hosts) {
    let good = hosts.hosts_yaml();
    let lab = |hosts_yaml: &str, mtu: &str, vni: &str| {
        format!(
            "name: {{name}}\n{hosts_yaml}\nnodes:\n  client: {{ host: a }}\n  dut: {{ host: b }}\n  \
             server: {{ host: c }}\nlinks:\n  - endpoints: [\"client:eth1\", \"dut:west\"]\n{mtu}{vni}  \
             - endpoints: [\"dut:east\", \"server:eth1\"]\nsteps:\n  - name: s\n    node: client\n    \
             exec: [lab-ping, --help]\n"
        )
    };
    // A host whose daemon is not there.
    let dead = good.replace(&hosts.endpoint("c"), "unix:///nonexistent/docker.sock");
    refused(
        hosts,
        &lab(&dead, "", ""),
        3,
        &["host c", "/nonexistent/docker.sock"],
    );
    // An underlay address the host does not hold.
    let wrong = good.replace(
        &format!("underlay: {}", hosts.underlay("b")),
        "underlay: 198.19.254.254",
    );
    refused(
        hosts,
        &lab(&wrong, "", ""),
        4,
        &["host b", "198.19.254.254", "underlay"],
    );
    // An MTU the underlay cannot carry with VXLAN's 50 bytes.
    refused(
        hosts,
        &lab(&good, "    mtu: 1500\n", ""),
        4,
        &["MTU 1500", "1450", "client:eth1 <-> dut:west"],
    );
    // A VNI another lab holds on the same hosts.
    let records = tempfile::tempdir().unwrap();
    let holder = TestLab::new("hv", &lab(&good, "", "    vxlan: { vni: 777 }\n"));
    let out = labctl_in(records.path(), &["deploy", holder.path()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    refused(
        hosts,
        &lab(&good, "", "    vxlan: { vni: 777 }\n"),
        3,
        &["VNI 777", &holder.name],
    );
    let out = labctl_in(records.path(), &["destroy", &holder.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(hosts.leftovers().is_empty(), "{:?}", hosts.leftovers());
}

/// A Docker daemon of API 1.24 (Docker 1.12), as far as labctl asks: it
/// refuses a newer client version the way the real one does ("client
/// version ... is too new. Maximum supported API version is 1.24") and
/// answers /v1.24/version.
fn old_daemon(socket: &Path) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let (status, body) = if line.contains("/v1.24/") || line.contains(" /version") {
                (
                    "200 OK",
                    r#"{"Version":"1.12.6","ApiVersion":"1.24","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64","KernelVersion":"4.4.0"}"#.to_owned(),
                )
            } else if line.contains("/_ping") {
                ("200 OK", "OK".to_owned())
            } else {
                let asked = line
                    .split('/')
                    .nth(1)
                    .and_then(|v| v.strip_prefix('v'))
                    .unwrap_or("1.53")
                    .to_owned();
                (
                    "400 Bad Request",
                    format!(
                        r#"{{"message":"client version {asked} is too new. Maximum supported API version is 1.24"}}"#
                    ),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.24\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })
}

#[test]
fn a_host_with_an_older_docker_api_is_refused_in_one_line_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("old.sock");
    let _daemon = old_daemon(&socket);
    let records = tempfile::tempdir().unwrap();
    let lab = TestLab::new(
        "ho",
        &format!(
            "name: {{name}}\nhosts:\n  old: {{ docker: \"unix://{}\", underlay: 198.19.240.1 }}\n  \
             also: {{ docker: \"unix://{}\", underlay: 198.19.240.2 }}\nnodes:\n  a: {{ host: old }}\n  \
             b: {{ host: also }}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\nsteps:\n  \
             - name: s\n    node: a\n    exec: [lab-ping, --help]\n",
            socket.display(),
            socket.display()
        ),
    );
    let out = labctl_in(records.path(), &["run", lab.path()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("host old") || l.contains("host also"))
        .unwrap_or_else(|| panic!("no line names the host:\n{err}"));
    for words in ["API 1.24", "Docker 1.12.6", "1.40"] {
        assert!(line.contains(words), "{words:?} not in: {line}");
    }
    assert!(
        records_in(records.path()).is_empty(),
        "a record before anything was made"
    );
}

/// A chain of `n` nodes (`n0 - n1 - ... `), each on the host `place(i)`
/// gives (`None`: a lab without `hosts`).
fn chain(n: usize, hosts_yaml: &str, place: &dyn Fn(usize) -> Option<&'static str>) -> String {
    let mut yaml = format!("name: {{name}}\n{hosts_yaml}\nnodes:\n");
    for i in 0..n {
        match place(i) {
            Some(host) => yaml.push_str(&format!("  n{i}: {{ host: {host} }}\n")),
            None => yaml.push_str(&format!("  n{i}: {{}}\n")),
        }
    }
    yaml.push_str("links:\n");
    for i in 0..n - 1 {
        yaml.push_str(&format!(
            "  - endpoints: [\"n{i}:right\", \"n{}:left\"]\n",
            i + 1
        ));
    }
    yaml.push_str("steps:\n  - name: s\n    node: n0\n    exec: [lab-ping, --help]\n");
    yaml
}

/// Seconds `labctl ARGS` took, asserting it passed.
fn timed(records: &Path, envs: &[(&str, &str)], args: &[&str]) -> f64 {
    let started = Instant::now();
    let mut cmd = labctl_in(records, args);
    cmd.envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    started.elapsed().as_secs_f64()
}

/// The figures of docs/scaling.md ("Measured"), not a test: 60 nodes on
/// one host (a lab without `hosts`, on one private daemon) against 3 hosts
/// x 20 (the same chain, two links across hosts), deploy and destroy, the
/// images built beforehand. `cargo test --test it hosts::scaling_figures
/// -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run it by name with --ignored"]
fn scaling_figures() {
    let Some(hosts) = three_hosts(HostOpts::default()) else {
        return;
    };
    let records = tempfile::tempdir().unwrap();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let across = TestLab::new(
        "hs",
        &chain(60, &hosts.hosts_yaml(), &|i| Some(["a", "b", "c"][i / 20])),
    );
    let one = TestLab::new("h1", &chain(60, "", &|_| None));
    let on_a = [("DOCKER_HOST", hosts.endpoint("a"))];
    let on_a: Vec<(&str, &str)> = on_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Images first, on every host.
    timed(records.path(), &[], &["deploy", across.path()]);
    timed(records.path(), &[], &["destroy", &across.name]);
    timed(records.path(), &on_a, &["deploy", one.path()]);
    timed(records.path(), &on_a, &["destroy", &one.name]);
    for round in 1..=2 {
        let l = load();
        let one_up = timed(records.path(), &on_a, &["deploy", one.path()]);
        let one_down = timed(records.path(), &on_a, &["destroy", &one.name]);
        let across_up = timed(records.path(), &[], &["deploy", across.path()]);
        let across_down = timed(records.path(), &[], &["destroy", &across.name]);
        eprintln!(
            "round {round}: one host 60: deploy {one_up:.1} s, destroy {one_down:.1} s; \
             3 hosts x 20: deploy {across_up:.1} s, destroy {across_down:.1} s; load {}",
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
    assert!(hosts.leftovers().is_empty(), "{:?}", hosts.leftovers());
}

/// A VXLAN end whose VNI and port a device still holds for a moment (as a
/// lab torn down just before leaves them until the kernel cleans its
/// namespaces up) is created once the device goes; one that stays is the
/// one-line "in use" after a bounded wait. No Docker: a namespace for the
/// node, the VXLAN socket in the test's own.
#[tokio::test(flavor = "current_thread")]
async fn a_vxlan_end_waits_out_a_vni_being_freed_and_names_one_that_is_not() {
    use labctl::links::{Netlink, VethEnd, VxlanEnd};
    if !crate::support::netns::have_root() {
        skip("a_vxlan_end_waits_out_a_vni_being_freed: needs root (netns, VXLAN)");
        return;
    }
    let ns = crate::support::unique("vxw");
    let blocker = crate::support::unique("vxb");
    // Unique per process: a run right after this one must not meet its
    // ends still being cleaned up.
    let vni = 3_000_000 + std::process::id() % 100_000;
    let port = (40_000 + std::process::id() % 20_000) as u16;
    let block = || {
        let vni = vni.to_string();
        let port = port.to_string();
        crate::support::netns::ip(&[
            "link",
            "add",
            &blocker,
            "type",
            "vxlan",
            "id",
            &vni,
            "dstport",
            &port,
            "local",
            "198.18.251.1",
            "remote",
            "198.18.251.2",
        ]);
    };
    crate::support::netns::ip(&["netns", "add", &ns]);
    // Whatever happens, the namespace (and its ends) and the blocker go.
    struct Cleanup(Vec<Vec<String>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for args in &self.0 {
                let _ = Command::new("ip").args(args).output();
            }
        }
    }
    let _cleanup = Cleanup(vec![
        vec!["link".into(), "del".into(), blocker.clone()],
        vec!["netns".into(), "del".into(), ns.clone()],
    ]);
    let end = |interface: &str| VxlanEnd {
        alias: "labctl:vxw:test".into(),
        mtu: Some(1450),
        end: VethEnd {
            node: "n".into(),
            interface: interface.into(),
            ipv4: None,
            mac: None,
            sysctls: Vec::new(),
            impair: None,
        },
        vni,
        port,
        local: "198.18.251.1".parse().unwrap(),
        remote: "198.18.251.3".parse().unwrap(),
    };
    let path = std::path::PathBuf::from(format!("/run/netns/{ns}"));
    let netlink = Netlink::connect().unwrap();

    block();
    let freeing = {
        let blocker = blocker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            crate::support::netns::ip(&["link", "del", &blocker]);
        })
    };
    let at = Instant::now();
    let waited = netlink.wire_vxlan(&end("eth1"), &path).await;
    freeing.join().unwrap();
    assert!(waited.is_ok(), "{waited:?}");
    assert!(
        at.elapsed() >= Duration::from_millis(600),
        "{:?}",
        at.elapsed()
    );

    // Held for good (the end above holds it now): one line, within bounds.
    let at = Instant::now();
    let refused = netlink.wire_vxlan(&end("eth2"), &path).await;
    let said = refused.expect_err("a VNI and port in use").to_string();
    assert!(
        said.contains("that VNI and port are in use on this host"),
        "{said}"
    );
    assert!(at.elapsed() < Duration::from_secs(10), "{:?}", at.elapsed());
}
