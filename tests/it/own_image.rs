//! A node's own image runs as built: its entrypoint and command start
//! under lab-init, their output is the node's console in the run
//! directory, an early failure fails the run, SIGTERM reaches them at the
//! end. The real binary, the real daemon, an image built here.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::support::lab::{
    assert_nothing_left, assert_success, busybox_image, docker, labctl, stderr, stdout, TestLab,
};

/// An image whose entrypoint says as whom, where and with what it starts,
/// then runs its command; the command a daemon that says when it stops.
fn daemon_image() -> String {
    static BUILT: Mutex<Option<String>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tag) = built.as_ref() {
        return tag.clone();
    }
    let tag = "labctl-test-daemon:2".to_owned();
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\n\
             WORKDIR /srv\n\
             ENV GREETING=from-the-image\n\
             USER 1000:1000\n\
             ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo entrypoint as $(id -u) in $(pwd) $GREETING $NODE_VAR; exec \\\"$@\\\"\", \"entry\"]\n\
             CMD [\"sh\", \"-c\", \"echo started; trap 'echo stopping; exit 0' TERM; while :; do sleep 1; done\"]\n",
            busybox_image()
        ),
    )
    .expect("write Dockerfile");
    let out = docker(&["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
    assert_success(&out, "docker build of the daemon image");
    *built = Some(tag.clone());
    tag
}

/// `labctl run` on a lab, its reports in a temporary folder.
struct Run {
    out: std::process::Output,
    dir: tempfile::TempDir,
}

impl Run {
    fn of(lab: &TestLab) -> Run {
        let dir = tempfile::tempdir().expect("temporary directory");
        let runs = dir.path().join("runs");
        let out = labctl(&["run", lab.path(), "--runs-dir", runs.to_str().unwrap()]);
        Run { out, dir }
    }

    fn run_dir(&self) -> PathBuf {
        let runs = self.dir.path().join("runs");
        let mut dirs: Vec<_> = std::fs::read_dir(&runs)
            .expect("runs dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run directory in {runs:?}");
        dirs.pop().unwrap()
    }

    fn console(&self, node: &str) -> String {
        let path = self.run_dir().join("nodes").join(node).join("console.log");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), self.describe()))
    }

    fn json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.run_dir().join("report.json")).expect("JSON");
        serde_json::from_str(&text).expect("valid JSON")
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.out.status.code(),
            stdout(&self.out),
            stderr(&self.out)
        )
    }
}

#[test]
fn the_images_entrypoint_and_command_run_and_sigterm_reaches_them_at_the_end() {
    let lab = TestLab::new(
        "oimg",
        &format!(
            r#"
name: {{name}}
nodes:
  dut: {{ image: "{}", env: {{ NODE_VAR: from-the-lab }} }}
steps:
  - name: init
    node: dut
    exec: [cat, /proc/1/cmdline]
    expect: {{ stdout: [{{ contains: "lab-init" }}] }}
  - name: steps-as-root
    node: dut
    exec: [id, -u]
    expect: {{ stdout: [{{ match: "^0$" }}] }}
  - name: daemon
    node: dut
    exec: [ps, -o, "pid,user,args"]
    expect: {{ stdout: [{{ match: '^ *[0-9]+ +1000 +sh -c echo started' }}] }}
"#,
            daemon_image()
        ),
    );
    let run = Run::of(&lab);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.describe());
    let console = run.console("dut");
    // The image's USER, WorkingDir and Env, the node's env, the
    // entrypoint before the command.
    assert!(
        console.contains("entrypoint as 1000 in /srv from-the-image from-the-lab\nstarted\n"),
        "{console}"
    );
    // Stopped at the end: the command heard SIGTERM and said so, and
    // lab-init said what ended it.
    assert!(
        console.contains("lab-init: forwarding signal 15 to"),
        "{console}"
    );
    assert!(console.contains("stopping\n"), "{console}");
    assert!(console.contains("exited with status 0"), "{console}");
    assert_eq!(run.json()["problems"], serde_json::json!([]));
    assert_nothing_left(&lab.name);
}

#[test]
fn cmd_replaces_the_images_command_and_an_empty_one_runs_nothing() {
    let image = daemon_image();
    let lab = TestLab::new(
        "ocmd",
        &format!(
            r#"
name: {{name}}
nodes:
  over:
    image: "{image}"
    cmd: [sh, -c, "echo overridden; exec sleep 1000"]
  none: {{ image: "{image}", cmd: [] }}
steps:
  - name: nothing-runs
    node: none
    exec: [ps, -o, args]
    expect:
      stdout:
        - {{ contains: "lab-init" }}
        - {{ match: "sleep|while", count: 0 }}
"#
        ),
    );
    let run = Run::of(&lab);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.describe());
    let console = run.console("over");
    // The entrypoint stays, the lab's command replaces the image's.
    assert!(
        console.contains("entrypoint as 1000 in /srv from-the-image\noverridden\n"),
        "{console}"
    );
    assert!(!console.contains("started"), "{console}");
    // sleep dies of the forwarded SIGTERM: labctl's stop, no failure.
    assert!(console.contains("killed by signal 15"), "{console}");
    assert!(
        !run.run_dir().join("nodes/none/console.log").exists(),
        "a node that runs nothing has no console"
    );
    assert_eq!(run.json()["problems"], serde_json::json!([]));
    assert_nothing_left(&lab.name);
}

#[test]
fn a_command_that_fails_before_the_steps_end_fails_the_run_naming_the_node() {
    let image = daemon_image();
    let lab = TestLab::new(
        "ofail",
        &format!(
            r#"
name: {{name}}
nodes:
  bad:
    image: "{image}"
    cmd: [sh, -c, "echo failing; exit 3"]
  oneshot:
    image: "{image}"
    cmd: [sh, -c, "echo set up"]
steps:
  - name: wait
    node: oneshot
    exec: [sleep, "1"]
"#
        ),
    );
    let run = Run::of(&lab);
    assert_eq!(run.out.status.code(), Some(1), "{}", run.describe());
    let console = run.console("bad");
    assert!(console.contains("failing\n"), "{console}");
    let path = run.run_dir().join("nodes/bad/console.log");
    let expected = format!(
        "node bad: its command `/bin/sh -c 'echo entrypoint as $(id -u) in $(pwd) $GREETING $NODE_VAR; \
         exec \"$@\"' entry sh -c 'echo failing; exit 3'` exited with status 3 before the \
         steps ended; its output is in {}",
        path.display()
    );
    let report = run.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(
        report["problems"],
        serde_json::json!([{ "kind": "node_command", "message": expected }]),
        "the one-shot node that exited 0 is no problem"
    );
    assert_eq!(report["steps"][0]["status"], "passed");
    let summary = stdout(&run.out);
    assert!(summary.contains(&format!("ERROR {expected}")), "{summary}");
    let junit = std::fs::read_to_string(run.run_dir().join("junit.xml")).unwrap();
    assert!(junit.contains(r#"type="node_command""#), "{junit}");
    assert!(run.console("oneshot").contains("set up\n"));
    assert_nothing_left(&lab.name);
}
