//! Docker dying mid-run, on a daemon of the test's own: labctl says the lab
//! may still be up and prints the exact `labctl destroy` to run; once the
//! daemon is back, that command removes everything.

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use crate::support::dockerd::PrivateDockerd;
use crate::support::lab::{host_veths_of, labctl_command, TestLab};
use crate::support::skip::skip;

const LAB: &str = r#"name: {name}
nodes:
  a: {}
  b: {}
links:
  - endpoints: ["a:eth1", "b:eth1"]
    ipv4: ["198.18.77.1/24", "198.18.77.2/24"]
steps:
  - name: long pong
    node: b
    exec: [lab-pong, eth1]
    timeout: 5m
"#;

#[test]
fn docker_dying_mid_step_says_the_lab_may_be_up_and_the_printed_destroy_removes_it() {
    let daemon = match PrivateDockerd::start() {
        Ok(d) => d,
        Err(why) => {
            skip(format!(
                "no Docker daemon of the test's own can run here: {why}"
            ));
            return;
        }
    };
    let lab = TestLab::new("ddead", LAB);
    let runs = tempfile::tempdir().unwrap();
    let mut child = labctl_command(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .env("DOCKER_HOST", daemon.host())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start labctl run");
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
    // The tools image is built on the fresh daemon first.
    let running = rx.recv_timeout(Duration::from_secs(400));
    if running.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the step never ran; labctl said:\n{}\ndaemon log:\n{}",
            reader.join().unwrap(),
            daemon.log_tail()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill();

    let status = child.wait().expect("wait for labctl");
    let err = reader.join().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let said = format!("stdout:\n{out}\nstderr:\n{err}");
    // The lab could not be torn down: exit 3.
    assert_eq!(status.code(), Some(3), "{said}");
    // The step that lost its process says so, and teardown's errors come
    // after it, then what to do.
    assert!(out.contains("FAIL  long pong"), "{said}");
    assert!(out.contains("ERROR teardown: "), "{said}");
    let destroy = out
        .lines()
        .find(|l| l.contains("may still be up"))
        .unwrap_or_else(|| panic!("no 'may still be up' line: {said}"));
    let command = destroy
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {destroy:?}"));
    let instance = command
        .strip_prefix("labctl destroy ")
        .unwrap_or_else(|| panic!("not a destroy command: {command:?}"));
    assert!(instance.starts_with(&lab.name), "{destroy}");
    assert!(
        destroy.contains(&format!("lab {instance} may still be up")),
        "{destroy}"
    );

    // Docker is back: the printed command removes what is left.
    daemon.run().expect("restart the daemon");
    let destroyed = labctl_command(&["destroy", instance])
        .env("DOCKER_HOST", daemon.host())
        .output()
        .expect("run labctl destroy");
    assert!(
        destroyed.status.success(),
        "labctl destroy {instance}: {}{}",
        String::from_utf8_lossy(&destroyed.stdout),
        String::from_utf8_lossy(&destroyed.stderr)
    );
    let label = format!("label=labctl.lab={}", lab.name);
    let left = daemon.docker(&["ps", "-aq", "--filter", &label]);
    assert!(left.status.success());
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers left"
    );
    assert_eq!(host_veths_of(&lab.name), Vec::<String>::new(), "veths left");
}
