//! `labctl run` end to end: the real binary, the real daemon, real veths.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::lab::{assert_nothing_left, labctl, stderr, stdout, TestLab};
use crate::support::run::{repo_lab_text, Run};
use crate::support::skip::{skip, skip_if, skip_with_netmap};

crate::on_both_runtimes!(
    the_icmp_lab_passes_with_a_clean_junit_a_pcap_and_nothing_left,
    an_impossible_expectation_exits_1_and_the_junit_says_which_check,
    ctrl_c_during_a_long_step_stops_it_tears_down_and_reports,
    sigterm_during_a_long_step_stops_it_tears_down_and_reports,
    a_step_past_its_timeout_fails_the_run_and_the_lab_is_removed,
    keep_leaves_the_lab_up_and_says_how_to_remove_it,
    two_labs_with_different_names_run_side_by_side,
    a_full_run_directory_still_tears_the_lab_down_and_says_so,
);

/// How many nodes of lab `lab` are up on `runtime`.
fn nodes_up(lab: &str, runtime: &str) -> usize {
    match runtime {
        "netns" => crate::support::lab::netns_leftovers(lab)
            .iter()
            .filter(|l| l.starts_with("/run/netns/"))
            .count(),
        _ => crate::support::lab::containers_of(lab).len(),
    }
}

/// What `runtime` calls a node in a run's summary.
fn node_noun(runtime: &str) -> &'static str {
    match runtime {
        "netns" => "node",
        _ => "container",
    }
}

fn repo_lab(path: &str) -> String {
    repo_lab_text(Path::new(path))
}

fn the_icmp_lab_passes_with_a_clean_junit_a_pcap_and_nothing_left(runtime: &str) {
    let lab = TestLab::new("ricmp", &repo_lab("labs/icmp.yaml"));
    let run = Run::of(&lab, &["--runtime", runtime]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());

    let junit = run.junit();
    let suite = junit
        .lines()
        .find(|l| l.trim_start().starts_with("<testsuite "))
        .unwrap_or_else(|| panic!("no testsuite in {junit}"));
    for attribute in [
        r#"tests="5""#,
        r#"skipped="0""#,
        r#"failures="0""#,
        r#"errors="0""#,
    ] {
        assert!(suite.contains(attribute), "{attribute} in {suite}");
    }
    assert!(junit.contains(r#"<testcase name="ping""#), "{junit}");
    let report = run.json();
    assert_eq!(report["outcome"], "passed");
    assert_eq!(report["steps"].as_array().unwrap().len(), 5);

    // Evidence: each step's output and the pcap from the ponger's /lab/out,
    // which tshark reads with every frame the capture counted.
    let dir = run.run_dir();
    let ping = std::fs::read_to_string(dir.join("steps/03-ping.stdout")).unwrap();
    assert!(
        ping.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{ping}"
    );
    let pcap = dir.join("nodes/ponger/ponger-eth1.pcap");
    let tshark = std::process::Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap()])
        .output()
        .expect("run tshark");
    assert!(tshark.status.success(), "{}", stderr(&tshark));
    assert_eq!(stdout(&tshark).lines().count(), 8, "{}", stdout(&tshark));
    assert!(dir.join("junit.xml").exists() && dir.join("summary.txt").exists());

    let summary = stdout(&run.out);
    assert!(
        summary.contains("5 steps, 5 passed, 0 failed, 0 skipped"),
        "{summary}"
    );
    // The run's own instance names what it created.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let instance = report["instance"]
        .as_str()
        .expect("instance in report.json");
    assert!(
        instance.starts_with(&format!("{}-", lab.name)),
        "{instance}"
    );
    assert!(
        summary.contains(&format!("{} labctl-{instance}.pinger", node_noun(runtime))),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("run directory: {}", dir.display())),
        "{summary}"
    );
    assert_nothing_left(&lab.name);
}

fn an_impossible_expectation_exits_1_and_the_junit_says_which_check(runtime: &str) {
    let lab = TestLab::new("rfail", &repo_lab("tests/labs/failing-expectation.yaml"));
    let run = Run::of(&lab, &["--runtime", runtime]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let junit = run.junit();
    assert!(junit.contains(r#"failures="1""#), "{junit}");
    assert!(
        junit.contains("stdout match &apos;^64 bytes from 198\\.18\\.0\\.2: &apos;: expected exactly 4 matching lines, found 3")
            || junit.contains("stdout match '^64 bytes from 198\\.18\\.0\\.2: ': expected exactly 4 matching lines, found 3"),
        "{junit}"
    );
    let summary = stdout(&run.out);
    assert!(summary.contains("FAIL  ping"), "{summary}");
    assert!(
        summary.contains("3 packets transmitted, 3 received"),
        "the tail of the output is shown: {summary}"
    );
    assert_nothing_left(&lab.name);
}

/// Two nodes, one veth pair, lab-pong ready on the ponger; then `steps`.
fn pong_then(steps: &str) -> String {
    format!("{PAIR_WITH_PONG}{steps}")
}

const PAIR_WITH_PONG: &str = r#"name: {name}
nodes:
  pinger: {}
  ponger: {}
links:
  - endpoints: ["pinger:eth1", "ponger:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
steps:
  - name: pong
    node: ponger
    exec: [lab-pong, eth1]
    background: true
    ready: "listening on eth1"
"#;

const LONG_STEP: &str = r#"
  - name: long ping
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "1000", --interval, 200ms]
    timeout: 5m
  - name: never reached
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "1"]
"#;

fn ctrl_c_during_a_long_step_stops_it_tears_down_and_reports(runtime: &str) {
    interrupt_a_long_step(runtime, libc::SIGINT);
}

fn sigterm_during_a_long_step_stops_it_tears_down_and_reports(runtime: &str) {
    interrupt_a_long_step(runtime, libc::SIGTERM);
}

fn interrupt_a_long_step(runtime: &str, signal: i32) {
    let lab = TestLab::new("rintr", &pong_then(LONG_STEP));
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let mut child = crate::support::lab::labctl_command(&[
        "run",
        lab.path(),
        "--runtime",
        runtime,
        "--runs-dir",
        dir.path().join("runs").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start labctl run");

    // Wait until the long step runs (progress goes to stderr, plain lines).
    let stderr_pipe = child.stderr.take().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("long ping: running") {
                let _ = seen_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    seen_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the long step started");
    std::thread::sleep(Duration::from_millis(700));

    let stopped_at = Instant::now();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().expect("wait for labctl");
    let took = stopped_at.elapsed();
    let err = reader.join().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();

    assert_eq!(status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(took < Duration::from_secs(10), "clean exit took {took:?}");
    assert!(out.contains("INTR  long ping"), "{out}");
    assert!(out.contains("SKIP  never reached"), "{out}");
    assert!(
        out.contains(&format!("removed: {}", node_noun(runtime))),
        "{out}"
    );
    let junit = std::fs::read_to_string(&junit).expect("JUnit written on Ctrl-C");
    assert!(junit.contains(r#"errors="1""#), "{junit}");
    assert_nothing_left(&lab.name);
}

const TIMEOUT: &str = r#"
  - name: slow ping
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "50", --interval, 200ms]
    timeout: 1s
"#;

fn a_step_past_its_timeout_fails_the_run_and_the_lab_is_removed(runtime: &str) {
    let lab = TestLab::new("rtime", &pong_then(TIMEOUT));
    let run = Run::of(&lab, &["--runtime", runtime]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let summary = stdout(&run.out);
    assert!(
        summary.contains("timed out after 1s and was stopped"),
        "{summary}"
    );
    // lab-ping stopped by SIGINT still prints its statistics.
    assert!(summary.contains("packets transmitted"), "{summary}");
    assert_nothing_left(&lab.name);
}

fn keep_leaves_the_lab_up_and_says_how_to_remove_it(runtime: &str) {
    let lab = TestLab::new("rkeep", &repo_lab("labs/icmp.yaml"));
    let run = Run::of(&lab, &["--keep", "--runtime", runtime]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let summary = stdout(&run.out);
    assert!(
        summary.contains(&format!("labctl destroy {}-", lab.name)),
        "{summary}"
    );
    assert_eq!(nodes_up(&lab.name, runtime), 2, "both nodes still up");
    // The guard destroys it; prove destroy works on a kept lab.
    let out = labctl(&["destroy", &lab.name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&lab.name);
}

#[test]
fn an_invalid_lab_exits_2_and_creates_nothing() {
    let lab = TestLab::new("rbad", "name: {name}\nnodes:\n  a: {imgae: x}\n");
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.describe());
    assert!(stderr(&run.out).contains("imgae"), "{}", run.describe());
    assert!(
        !run.dir.path().join("runs").exists(),
        "no run directory for an invalid lab"
    );
    assert_nothing_left(&lab.name);
}

#[test]
fn a_delay_without_netem_exits_3_naming_netem_before_creating_anything() {
    if skip_if(
        Path::new("/sys/module/sch_netem").exists(),
        "this kernel has netem, so the lab would deploy",
    ) {
        return;
    }
    let src = repo_lab("labs/icmp.yaml").replace(
        "    mtu: 1500\n",
        "    mtu: 1500\n    impair: {delay: 10ms}\n",
    );
    assert!(src.contains("delay"), "labs/icmp.yaml changed shape");
    let lab = TestLab::new("rnetem", &src);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(3), "{}", run.describe());
    assert!(
        stderr(&run.out).contains("netem") || stdout(&run.out).contains("netem"),
        "{}",
        run.describe()
    );
    assert_nothing_left(&lab.name);
}

#[test]
fn datalink_netmap_without_dev_netmap_exits_3_before_creating_anything() {
    if skip_with_netmap() {
        return;
    }
    let lab = TestLab::new("rnmap", &repo_lab("labs/icmp.yaml"));
    let run = Run::of(&lab, &["--datalink", "netmap"]);
    assert_eq!(run.code(), Some(3), "{}", run.describe());
    assert!(
        stdout(&run.out).contains("/dev/netmap") || stderr(&run.out).contains("/dev/netmap"),
        "{}",
        run.describe()
    );
    let junit = run.junit();
    assert!(junit.contains(r#"<testcase name="lab""#), "{junit}");
    assert!(junit.contains("netmap kernel module"), "{junit}");
    assert_nothing_left(&lab.name);
}

fn two_labs_with_different_names_run_side_by_side(runtime: &str) {
    let first = TestLab::new("rsa", &repo_lab("labs/icmp.yaml"));
    let second = TestLab::new("rsb", &repo_lab("labs/icmp.yaml"));
    // Same topology, same interface names and addresses, at the same time.
    let other = std::thread::spawn({
        let path = second.path().to_owned();
        let runtime = runtime.to_owned();
        move || {
            let runtime = runtime.as_str();
            let dir = tempfile::tempdir().unwrap();
            let runs = dir.path().join("runs");
            labctl(&[
                "run",
                &path,
                "--runtime",
                runtime,
                "--runs-dir",
                runs.to_str().unwrap(),
            ])
        }
    });
    let run = Run::of(&first, &["--runtime", runtime]);
    let other = other.join().expect("second run");
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_eq!(
        other.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&other),
        stderr(&other)
    );
    assert_nothing_left(&first.name);
    assert_nothing_left(&second.name);
}

#[test]
fn a_deployed_lab_is_not_run_over_and_a_run_beside_it_passes() {
    let lab = TestLab::new("rup", &repo_lab("labs/icmp.yaml"));
    lab.deploy();
    // Its own instance: runs beside the deployed one.
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_eq!(crate::support::lab::containers_of(&lab.name).len(), 2);
    // The deployed instance's name: refused; its deploy has ended, so
    // removing it is the advice.
    let run = Run::of(&lab, &["--name", &lab.name]);
    assert_eq!(run.code(), Some(3), "{}", run.describe());
    assert!(
        stdout(&run.out).contains(&format!(
            "remove it with `labctl destroy {}` first",
            lab.name
        )),
        "{}",
        run.describe()
    );
    // The lab someone else deployed is left as it was.
    assert_eq!(crate::support::lab::containers_of(&lab.name).len(), 2);
}

/// A tmpfs of `size` mounted on `path`, unmounted on drop (even when an
/// assertion failed).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None`, with the reason printed, when this host cannot mount one
    /// (not root, no CAP_SYS_ADMIN).
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        if !out.status.success() {
            skip(format!(
                "cannot mount a tmpfs here ({}); the full-disk run is not tested",
                stderr(&out).trim()
            ));
            return None;
        }
        Some(Tmpfs(path.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// A ping that prints a line per reply: far more than 16 KiB.
const CHATTY: &str = r#"
  - name: chatty
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "600", --interval, 1ms]
"#;

fn a_full_run_directory_still_tears_the_lab_down_and_says_so(runtime: &str) {
    let lab = TestLab::new("rfull", &pong_then(CHATTY));
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let Some(_tmpfs) = Tmpfs::mount(&runs, "16k") else {
        return;
    };
    let json = dir.path().join("report.json");
    let out = labctl(&[
        "run",
        lab.path(),
        "--runtime",
        runtime,
        "--runs-dir",
        runs.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let describe = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    // The lab is gone: no container with its label, no veth.
    assert_nothing_left(&lab.name);
    assert_eq!(out.status.code(), Some(3), "{describe}");

    let run_dir = std::fs::read_dir(&runs)
        .expect("runs dir")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("the run directory was made");
    // One line names the file in the run directory and the disk error.
    let summary = stdout(&out);
    let written = format!("ERROR writing {}/", run_dir.display());
    assert!(
        summary
            .lines()
            .any(|l| l.contains(&written) && l.contains("No space left on device")),
        "{describe}"
    );
    // The steps themselves passed, and the report outside the full disk
    // has every problem.
    assert!(summary.contains("PASS  chatty"), "{describe}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).unwrap();
    assert_eq!(report["outcome"], "error");
    assert_eq!(report["problems"][0]["kind"], "write", "{report}");
    assert!(
        report["removed"].as_array().is_some_and(|r| r.len() == 2),
        "{report}"
    );
}

const LINK_CUT: &str = r#"
  - name: before
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "2", --interval, 100ms]
  - name: cut
    link: "pinger:eth1"
    state: down                 # its connected route goes with it
  - name: during
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "2", --interval, 100ms, --timeout, 500ms]
    expect:
      exit: 1
      stderr:
        - contains: "no route to 198.18.0.2 out of eth1"
  - name: restore
    link: "pinger:eth1"
    state: up
  - name: after
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "2", --interval, 100ms]
    expect:
      stdout:
        - contains: "2 packets transmitted, 2 received"
"#;

const PEER_CUT: &str = r#"
  - name: cut the far end
    link: "ponger:eth1"
    state: down
  - name: during
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "2", --interval, 100ms, --timeout, 300ms]
    expect:
      exit: 1
      stderr:
        - contains: "no ARP reply from 198.18.0.2"
  - name: restore
    link: "ponger:eth1"
    state: up
  - name: after
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "2", --interval, 100ms]
"#;

/// With the far end down the veth has no carrier: lab-ping's requests are
/// refused by the queue, which is a lost try, never a fatal error.
#[test]
fn a_ping_across_a_cut_far_end_is_lost_not_an_error() {
    let lab = TestLab::new("rpeer", &pong_then(PEER_CUT));
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_nothing_left(&lab.name);
}

#[test]
fn link_state_steps_cut_a_link_mid_run_and_restore_it() {
    let lab = TestLab::new("rlink", &pong_then(LINK_CUT));
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let summary = stdout(&run.out);
    assert!(summary.contains("PASS  cut"), "{summary}");
    assert!(summary.contains("PASS  restore"), "{summary}");
    let json = run.json();
    let kinds: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "link").count(),
        2,
        "{kinds:?}"
    );
    assert_nothing_left(&lab.name);
}

/// A step printing one 300 kB line (beyond what memory keeps), what XML
/// 1.0 forbids (U+FFFF, control characters) and a 20 kB line: junit.xml stays well-formed (xmllint), and neither the
/// summary, the terminal nor junit.xml carries the whole line.
#[test]
fn garbage_output_keeps_the_reports_valid_and_small() {
    let Some(xmllint) = which_xmllint() else {
        skip("xmllint is not installed (ci/setup installs libxml2-utils)");
        return;
    };
    let yaml = format!(
        r#"name: {{name}}
nodes:
  box: {{ image: "{}" }}
  tools: {{}}
links:
  - endpoints: ["box:eth1", "tools:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
steps:
  - name: garbage
    node: box
    exec: [sh, -c, 'head -c 300000 /dev/zero | tr "\0" x; echo; printf "u\357\277\277 bell\007 esc\033[0m nul\000 end\n"; head -c 20000 /dev/zero | tr "\0" y; echo; printf "err\357\277\276\001\n" >&2; exit 1']
"#,
        crate::support::lab::busybox_image()
    );
    let lab = TestLab::new("rgarb", &yaml);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let junit_path = run.dir.path().join("junit.xml");
    let lint = std::process::Command::new(xmllint)
        .arg("--noout")
        .arg(&junit_path)
        .output()
        .expect("run xmllint");
    assert!(
        lint.status.success(),
        "junit.xml is not well-formed: {}",
        String::from_utf8_lossy(&lint.stderr)
    );
    let junit = run.junit();
    assert!(
        junit.contains("u\u{fffd} bell\u{fffd} esc"),
        "{junit:.2000}"
    );
    assert!(junit.contains("more bytes cut]"), "{junit:.2000}");
    // The 300 kB line is beyond the 64 KiB memory keeps: junit says so.
    assert!(
        junit.contains("bytes cut; the whole output is in the run directory]"),
        "{junit:.2000}"
    );
    assert!(junit.len() < 200_000, "junit.xml is {} bytes", junit.len());
    let summary = std::fs::read_to_string(run.run_dir().join("summary.txt")).expect("summary");
    assert!(
        summary.len() < 20_000,
        "summary.txt is {} bytes",
        summary.len()
    );
    assert!(summary.contains("more bytes cut]"), "{summary:.2000}");
    assert!(
        run.out.stdout.len() + run.out.stderr.len() < 20_000,
        "terminal got {} bytes",
        run.out.stdout.len() + run.out.stderr.len()
    );
    assert_nothing_left(&lab.name);
}

fn which_xmllint() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("xmllint"))
        .find(|p| p.is_file())
}

/// A node of its own image gets the lab's binds (read-only unless `:rw`),
/// its routes before any step runs, and with `kernel: normal` its kernel
/// defaults; the other node stays silenced.
#[test]
fn binds_routes_and_kernel_mode_reach_a_node_of_its_own_image() {
    let host = tempfile::tempdir().unwrap();
    let ro = host.path().join("ro");
    let rw = host.path().join("rw");
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(ro.join("hello"), "hello from the host\n").unwrap();
    let yaml = format!(
        r#"name: {{name}}
nodes:
  box:
    image: "{image}"
    kernel: normal
    binds:
      - {ro}:/data/ro
      - {rw}:/data/rw:rw
    routes:
      - {{ to: 198.18.9.0/24, via: 198.18.0.2 }}
  quiet: {{ image: "{image}" }}
links:
  - endpoints: ["box:eth1", "quiet:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
steps:
  - name: read the bind
    node: box
    exec: [cat, /data/ro/hello]
    expect:
      stdout:
        - contains: "hello from the host"
  - name: a read-only bind refuses writes
    node: box
    exec: [touch, /data/ro/new]
    expect:
      exit: 1
      stderr:
        - contains: "Read-only file system"
  - name: a rw bind takes them
    node: box
    exec: [touch, /data/rw/new]
  - name: the route is there
    node: box
    exec: [ip, route]
    expect:
      stdout:
        - match: '^198\.18\.9\.0/24 via 198\.18\.0\.2 dev eth1'
  - name: a normal kernel answers ping
    node: box
    exec: [cat, /proc/sys/net/ipv4/icmp_echo_ignore_all, /proc/sys/net/ipv4/conf/all/arp_ignore]
    expect:
      stdout:
        - match: '^0$'
          count: 2
  - name: a quiet one does not
    node: quiet
    exec: [cat, /proc/sys/net/ipv4/icmp_echo_ignore_all]
    expect:
      stdout:
        - match: '^1$'
"#,
        image = crate::support::lab::busybox_image(),
        ro = ro.display(),
        rw = rw.display(),
    );
    let lab = TestLab::new("rbind", &yaml);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert!(
        rw.join("new").exists(),
        "the rw bind wrote through to the host"
    );
    assert!(!ro.join("new").exists());
    assert_nothing_left(&lab.name);
}

/// One netns node whose background step makes /lab/out/ready after 2 s,
/// then a step that waits for it with `until` (`{until}`, `{every}`).
const CONVERGES: &str = r#"name: {name}
runtime: netns
nodes:
  r1: {}
steps:
  - name: daemon
    node: r1
    exec: [sh, -c, "sleep 2; touch /lab/out/ready; exec sleep 60"]
    background: true
  - name: converged
    node: r1
    exec: [sh, -c, "if test -f /lab/out/ready; then echo ready; else echo not yet; exit 3; fi"]
    until: {until}
    every: {every}
    timeout: 5s
    expect:
      stdout:
        - contains: ready
"#;

#[test]
fn a_step_with_until_passes_once_its_condition_holds() {
    if crate::support::skip::skip_without_root("the netns runtime") {
        return;
    }
    let yaml = CONVERGES
        .replace("{until}", "20s")
        .replace("{every}", "500ms");
    let lab = TestLab::new("runtil", &yaml);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());

    let json = run.json();
    let step = &json["steps"][1];
    assert_eq!(step["status"], "passed", "{json}");
    let tries = step["tries"].as_u64().expect("tries in report.json");
    // The file appears about 2 s in; tries every 0.5 s.
    assert!((3..=8).contains(&tries), "{tries} tries: {json}");
    assert_eq!(step["stdout"], "ready\n", "the passing try's output");
    assert!(json["steps"][0].get("tries").is_none(), "{json}");

    let summary = stdout(&run.out);
    assert!(
        summary.contains(&format!("s ({tries} tries)\n")),
        "{summary}"
    );
    let junit = run.junit();
    assert!(
        junit.contains(&format!("<system-out>[{tries} tries; ")),
        "{junit}"
    );
    let xmllint = which_xmllint();
    if xmllint.is_none() {
        eprintln!("junit.xml not checked against junit-10.xsd: no xmllint (ci/setup installs it)");
    }
    if let Some(xmllint) = xmllint {
        let file = run.dir.path().join("junit.xml");
        let lint = std::process::Command::new(xmllint)
            .args(["--noout", "--schema"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(lint.status.success(), "{}\n{junit}", stderr(&lint));
    }
    // The step's file has every try, each after its header line.
    let file = std::fs::read_to_string(run.run_dir().join("steps/02-converged.stdout")).unwrap();
    assert_eq!(
        file.matches("--- labctl: try ").count() as u64,
        tries,
        "{file}"
    );
    assert_eq!(
        file.matches("not yet\n").count() as u64,
        tries - 1,
        "{file}"
    );
    assert!(file.ends_with("ready\n"), "{file}");
    assert_nothing_left(&lab.name);
}

#[test]
fn a_step_with_until_fails_at_its_deadline_with_the_tries_and_the_last_output() {
    if crate::support::skip::skip_without_root("the netns runtime") {
        return;
    }
    // The file never comes.
    let yaml = CONVERGES
        .replace("sleep 2; touch /lab/out/ready; ", "")
        .replace("{until}", "3s")
        .replace("{every}", "1s");
    let lab = TestLab::new("runtilx", &yaml);
    let began = Instant::now();
    let run = Run::of(&lab, &[]);
    let took = began.elapsed();
    assert_eq!(run.code(), Some(1), "{}", run.describe());

    let json = run.json();
    let step = &json["steps"][1];
    assert_eq!(step["status"], "failed", "{json}");
    let tries = step["tries"].as_u64().expect("tries in report.json");
    // Tries at about 0, 1 and 2 s; a fourth would start past 3 s.
    assert_eq!(tries, 3, "{json}");
    assert_eq!(step["stdout"], "not yet\n", "{json}");
    assert_eq!(step["exit"], 3, "{json}");
    let summary = stdout(&run.out);
    assert!(
        summary.contains("did not pass within 3s: 3 tries; last try: 2 checks failed"),
        "{summary}"
    );
    assert!(summary.contains("(3 tries)\n"), "{summary}");
    assert!(summary.contains("  | not yet"), "{summary}");
    // Deploy and teardown of one namespace take well under a second; a
    // step that ignored its deadline would run for its 3 s again and again.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_nothing_left(&lab.name);
}
