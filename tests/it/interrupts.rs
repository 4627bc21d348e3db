//! Signals during the evidence copy and during teardown, through the real
//! binary and the real daemon: exit 130, the report says interrupted, the
//! copy is cut short, teardown completes and nothing of the lab is left.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use crate::support::lab::{assert_nothing_left, busybox_image, labctl_command, TestLab};

/// A node writing `bytes` of real (non-zero) data into /lab/out, so that
/// copying it out takes a while.
fn big_artifact_lab(nodes: usize, bytes: u64, then: &str) -> String {
    let image = busybox_image();
    let mut yaml = "name: {name}\nnodes:\n".to_owned();
    for n in 0..nodes {
        yaml.push_str(&format!("  box{n}: {{ image: \"{image}\" }}\n"));
    }
    yaml.push_str(&format!(
        "steps:\n  - name: write\n    node: box0\n    exec: [sh, -c, 'yes 0123456789abcdef | head -c {bytes} > /lab/out/big']\n    timeout: 5m\n{then}"
    ));
    yaml
}

struct Started {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    _runs: tempfile::TempDir,
}

fn start(lab: &TestLab) -> Started {
    let runs = tempfile::tempdir().expect("temporary directory");
    let mut child = labctl_command(&[
        "run",
        lab.path(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start labctl run");
    let pipe = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Started {
        child,
        lines,
        stderr,
        _runs: runs,
    }
}

impl Started {
    /// Waits for a stderr line containing `text`.
    fn wait_for(&self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!(
            "no stderr line with {text:?}; stderr was:\n{}",
            seen.join("\n")
        );
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// (exit code, stdout, stderr).
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().expect("wait for labctl");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut out).unwrap();
        (status.code(), out, self.stderr.join().unwrap())
    }
}

#[test]
fn sigterm_during_the_evidence_copy_cuts_it_tears_down_and_exits_130() {
    let lab = TestLab::new("icopy", &big_artifact_lab(1, 1_000_000_000, ""));
    let run = start(&lab);
    run.wait_for("copying the nodes' /lab/out");
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("interrupted while copying the nodes' /lab/out: the files of node box0"),
        "{out}"
    );
    assert!(out.contains("removed: container"), "{out}");
    assert_nothing_left(&lab.name);
}

#[test]
fn a_second_signal_cuts_the_copy_an_interrupted_run_still_makes_and_teardown_completes() {
    let long = "  - name: long\n    node: box0\n    exec: [sleep, \"120\"]\n";
    let lab = TestLab::new("icut", &big_artifact_lab(1, 1_000_000_000, long));
    let run = start(&lab);
    run.wait_for("long: running");
    std::thread::sleep(Duration::from_millis(300));
    // The first signal stops the steps; the copy still runs (the files of
    // an interrupted run are worth keeping)...
    run.signal(libc::SIGTERM);
    run.wait_for("copying the nodes' /lab/out");
    std::thread::sleep(Duration::from_millis(300));
    // ...until the second.
    run.signal(libc::SIGTERM);
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("labctl: stopping now"), "{err}");
    assert!(out.contains("INTR  long"), "{out}");
    assert!(
        out.contains("interrupted while copying the nodes' /lab/out"),
        "{out}"
    );
    assert!(out.contains("removed: container"), "{out}");
    assert_nothing_left(&lab.name);
}

#[test]
fn sigterm_during_teardown_lets_it_complete_and_exits_130() {
    // Several nodes: teardown takes long enough for the signal to land in
    // it, mostly. On a loaded machine the signal can still come after a
    // quick teardown (8 removed in 0.05 s, seen in CI); the run then says
    // "after the steps" and tears down all the same, and the scenario is
    // run again, up to three times, for a signal that lands in teardown.
    let nodes = 8;
    for attempt in 1..=3 {
        let lab = TestLab::new("itear", &big_artifact_lab(nodes, 1000, ""));
        let run = start(&lab);
        run.wait_for("tearing the lab down");
        run.signal(libc::SIGTERM);
        // Teardown had begun (the line above comes right before it). The
        // run says "during teardown" only for a signal that came while
        // teardown ran (one after it is "after the steps"), so this line
        // proves where the signal landed; counting the containers left
        // after the signal raced with a quick teardown.
        let (code, out, err) = run.finish();
        assert_eq!(code, Some(130), "stdout:\n{out}\nstderr:\n{err}");
        for n in 0..nodes {
            assert!(
                out.contains(&format!(".box{n}")),
                "box{n} not removed: {out}"
            );
        }
        assert_nothing_left(&lab.name);
        if out.contains("interrupted during teardown, which ran to its end") {
            return;
        }
        assert!(
            out.contains("interrupted (Ctrl-C or SIGTERM) after the steps"),
            "{out}"
        );
        eprintln!("attempt {attempt}: the signal came after teardown; again");
    }
    panic!("in 3 attempts the signal never landed during teardown");
}
