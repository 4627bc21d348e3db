//! Runs that share a host (issue 16.2) and names that cannot collide
//! (issue 15.3), through the real binary and the real Docker daemon.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;
use crate::support::lab::{
    assert_nothing_left, assert_success, containers_of, labctl, stderr, stdout, TestLab,
    PING_PAIR_LAB,
};

/// A lab that stays up for a minute (a long ping), so a test can look at
/// it while its run is alive.
const LONG_LAB: &str = "\
name: {name}
nodes:
  a: {}
  b: {}
links:
  - endpoints: [\"a:eth1\", \"b:eth1\"]
    ipv4: [\"198.18.7.1/24\", \"198.18.7.2/24\"]
steps:
  - name: pong
    node: b
    exec: [lab-pong, eth1]
    background: true
    ready: \"listening on eth1\"
  - name: ping
    node: a
    exec: [lab-ping, eth1, 198.18.7.2, --count, \"600\", --interval, 100ms]
    timeout: 90s
";

fn spawn_run(lab: &TestLab, runs: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(bin("labctl"))
        .args(["run", lab.path(), "--runs-dir", runs.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start labctl run")
}

/// Reads `run`'s stderr until a line containing `text` (its progress, e.g.
/// a step running), then drains the rest on a thread, whose handle gives
/// back everything it read.
fn wait_for_line(run: &mut Child, text: &str) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(run.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(text) {
                    break;
                }
            }
            _ => panic!("the run ended its stderr before {text:?}:\n{seen}"),
        }
    }
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    })
}

fn wait_for_containers(lab: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers_of(lab).len() < n {
        assert!(Instant::now() < deadline, "lab {lab} never came up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_same_lab_file_runs_twice_at_once_and_both_pass() {
    let lab = TestLab::new("twice", PING_PAIR_LAB);
    let runs = tempfile::tempdir().unwrap();
    let first = spawn_run(&lab, runs.path(), &[]);
    let second = spawn_run(&lab, runs.path(), &[]);
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    for out in [&first, &second] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        );
        assert!(stdout(out).contains("2 steps, 2 passed"), "{}", stdout(out));
    }
    // Two instances, two run directories.
    let dirs: Vec<_> = std::fs::read_dir(runs.path()).unwrap().collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert_nothing_left(&lab.name);
}

#[test]
fn lab_a_node_b_x_and_lab_a_b_node_x_run_side_by_side() {
    let base = crate::support::unique("n");
    // Node `a` of PING_PAIR_LAB renamed.
    let yaml = |node: &str| {
        PING_PAIR_LAB
            .replace("a:", &format!("{node}:"))
            .replace("node: a", &format!("node: {node}"))
    };
    let one = TestLab::named(base.clone(), &yaml("b-x"));
    let two = TestLab::named(format!("{base}-b"), &yaml("x"));
    one.deploy();
    two.deploy();
    // Two labs, each with its own containers.
    let names = |lab: &str| {
        let out = crate::support::lab::docker(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=labctl.lab={lab}"),
        ]);
        let mut names: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&one.name),
        [format!("labctl-{base}.b"), format!("labctl-{base}.b-x")]
    );
    assert_eq!(
        names(&two.name),
        [format!("labctl-{base}-b.b"), format!("labctl-{base}-b.x")]
    );
    for (lab, node) in [(&one.name, "b-x"), (&two.name, "x")] {
        let out = labctl(&["exec", lab, node, "--", "lab-ping", "--version"]);
        assert_success(&out, "labctl exec");
    }
    // Destroying one leaves the other as it was.
    assert_success(&labctl(&["destroy", &one.name]), "labctl destroy");
    assert_nothing_left(&one.name);
    assert_eq!(names(&two.name).len(), 2);
}

#[test]
fn a_lab_in_use_by_a_live_run_is_not_destroyed_without_force_and_sigterm_tears_it_down() {
    let lab = TestLab::new("owned", LONG_LAB);
    let runs = tempfile::tempdir().unwrap();
    let run = spawn_run(
        &lab,
        runs.path(),
        &["--name", &format!("{}-mine", lab.name)],
    );
    wait_for_containers(&lab.name, 2);
    let instance = format!("{}-mine", lab.name);

    // By lab name and by instance name: refused, one line, exit 2.
    for name in [lab.name.as_str(), instance.as_str()] {
        let out = labctl(&["destroy", name]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("pid {}", run.id())) && err.contains("--force"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(containers_of(&lab.name).len(), 2, "still up");

    // Another run under the same name is refused, and told not to destroy.
    let clash = labctl(&[
        "run",
        lab.path(),
        "--name",
        &instance,
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ]);
    assert_eq!(clash.status.code(), Some(3), "{}", stdout(&clash));
    let said = format!("{}{}", stdout(&clash), stderr(&clash));
    assert!(said.contains("in use by another labctl process"), "{said}");
    assert!(!said.contains("labctl destroy"), "{said}");
    assert_eq!(
        containers_of(&lab.name).len(),
        2,
        "the first run's lab untouched"
    );

    // SIGTERM (how CI cancels) is treated like Ctrl-C: teardown, exit 130.
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_nothing_left(&lab.name);
}

#[test]
fn destroy_force_removes_a_lab_in_use() {
    let lab = TestLab::new("force", LONG_LAB);
    let runs = tempfile::tempdir().unwrap();
    let mut run = spawn_run(&lab, runs.path(), &[]);
    // In the steps, not the deploy (which a removed node fails as well).
    let progress = wait_for_line(&mut run, "ping: running");
    let out = labctl(&["destroy", &lab.name, "--force"]);
    assert_success(&out, "labctl destroy --force");
    assert!(containers_of(&lab.name).is_empty());
    // The run notices its lab is gone: the running step fails (exit 1).
    let out = run.wait_with_output().unwrap();
    let (said, progress) = (stdout(&out), progress.join().unwrap());
    assert_eq!(out.status.code(), Some(1), "{said}{progress}");
    assert!(
        said.contains("FAIL  ping") && said.contains("2 steps, 1 passed, 1 failed"),
        "{said}"
    );
    assert_nothing_left(&lab.name);
}

#[test]
fn exec_inspect_and_destroy_find_a_lab_by_instance_or_by_lab() {
    let lab = TestLab::new("inst", PING_PAIR_LAB);
    let (one, two) = (format!("{}-one", lab.name), format!("{}-two", lab.name));
    for name in [&one, &two] {
        assert_success(
            &labctl(&["deploy", lab.path(), "--name", name]),
            "labctl deploy --name",
        );
    }
    // By instance: exactly that one.
    let out = labctl(&["exec", &one, "a", "--", "lab-ping", "--version"]);
    assert_success(&out, "labctl exec INSTANCE");
    let out = labctl(&["inspect", &two, "--json"]);
    assert_success(&out, "labctl inspect");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labs = json["labs"].as_array().unwrap();
    assert_eq!(labs.len(), 1, "{json}");
    assert_eq!(labs[0]["instance"], two.as_str());
    assert_eq!(labs[0]["name"], lab.name.as_str());
    // By lab name with two up: inspect shows both, exec asks which.
    let out = labctl(&["inspect", &lab.name, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["labs"].as_array().unwrap().len(), 2, "{json}");
    let out = labctl(&["exec", &lab.name, "a", "--", "lab-ping", "--version"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&one) && err.contains(&two), "{err}");
    // Destroy one instance, then the lab's others.
    assert_success(&labctl(&["destroy", &one]), "labctl destroy INSTANCE");
    assert_eq!(
        containers_of(&lab.name).len(),
        2,
        "the other instance stays"
    );
    assert_success(&labctl(&["destroy", &lab.name]), "labctl destroy LAB");
    assert_nothing_left(&lab.name);
}
