//! A node's pids and memory limits hold against a hostile program, through
//! the real binary and the real daemon: a fork bomb stops at the pids
//! limit, a node allocating past its memory limit is OOM-killed, and the
//! run tears everything down either way.

use crate::support::lab::{assert_nothing_left, busybox_image, labctl, stderr, stdout, TestLab};

fn describe(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

fn run(lab: &TestLab) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runs = dir.path().join("runs");
    let out = labctl(&["run", lab.path(), "--runs-dir", runs.to_str().unwrap()]);
    (out, dir)
}

/// The bomb: an inner shell forks `sleep`s until fork fails (ash then exits
/// 2), writing how many it started after each; the outer shell reports the
/// count with builtins only (no fork is left to it), then frees the pids.
/// Without the limit it would start all 2000 and the bound check fails.
const BOMB: &str =
    "sh -c 'i=0; while [ $i -lt 2000 ]; do sleep 30 & i=$((i+1)); echo $i > /dev/shm/n; done'; \
read n < /dev/shm/n; echo \"started $n\"; kill -9 -1; exit 0";

#[test]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_lab_goes_away() {
    let lab = TestLab::new(
        "lbomb",
        &format!(
            r#"
name: {{name}}
nodes:
  box: {{ image: "{}", limits: {{ pids: 64, memory: 64MiB }} }}
steps:
  - name: bomb
    node: box
    exec: [sh, -c, "{}"]
    timeout: 60s
    expect:
      stdout:
        - match: '^started ([0-9]+)$'
          at_least: 30
          at_most: 64
      stderr:
        - contains: "can't fork"
"#,
            busybox_image(),
            BOMB.replace('"', "\\\"")
        ),
    );
    let (out, _dir) = run(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("1 passed"), "{}", describe(&out));
    assert_nothing_left(&lab.name);
}

#[test]
fn a_node_past_its_memory_limit_is_oom_killed_and_the_lab_goes_away() {
    // dd reads 200 MB into one buffer in one read(2), against a 32 MiB
    // limit (no swap: memory_swap equals memory): the kernel's OOM killer
    // stops it with SIGKILL, which the shell reports as 137. In one system
    // call, so the cgroup has no program text to evict and fault back in
    // meanwhile: a pipe into a growing `tail -c` buffer once thrashed
    // that way past the step's minute, no OOM kill in the kernel log (a CI
    // rehearsal).
    let lab = TestLab::new(
        "loom",
        &format!(
            r#"
name: {{name}}
nodes:
  box: {{ image: "{}", limits: {{ memory: 32MiB }} }}
steps:
  - name: hog
    node: box
    exec: [sh, -c, "dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; echo \"dd exit $?\""]
    timeout: 60s
    expect:
      stdout:
        - match: '^dd exit 137$'
"#,
            busybox_image()
        ),
    );
    let (out, _dir) = run(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("1 passed"), "{}", describe(&out));
    assert_nothing_left(&lab.name);
}
