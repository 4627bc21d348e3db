//! Rootless labs: `labctl run` as an ordinary user (created here) builds a
//! netns lab inside a user namespace of its own, passes, leaves nothing on
//! the host, leaves nothing when killed, and refuses a lab that needs
//! root in one line (exit 4) before making anything.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;
use crate::support::lab::{netns_leftovers, stderr, stdout};
use crate::support::skip::skip;
use crate::support::unique;
use crate::support::user::{processes_of, test_user, UserDir};

fn as_user(user: (u32, u32), dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    crate::support::user::as_user(user, dir, &bin("labctl"), args)
}

/// Held by the tests that count the user's processes, so one does not
/// count the other's.
static USER_PROCESSES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn user_or_skip() -> Option<(u32, u32)> {
    match test_user() {
        Ok(ids) => Some(ids),
        Err(reason) => {
            skip(format!("rootless labs: {reason}"));
            None
        }
    }
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

#[test]
fn an_ordinary_user_runs_the_icmp_lab_without_root() {
    let Some(user) = user_or_skip() else { return };
    let _alone = USER_PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = UserDir::new(user);
    let icmp =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/icmp.yaml")).unwrap();
    let lab = dir.lab("icmp", &icmp);
    let instance = unique("rl");
    let out = as_user(
        user,
        dir.path(),
        &["run", lab.to_str().unwrap(), "--name", &instance],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("icmp: 5 steps, 5 passed, 0 failed"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains("running without root"),
        "{}",
        show(&out)
    );
    // The run directory is the user's, with the pong side's capture.
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].as_ref().unwrap().path();
    let pcap = run.join("nodes/ponger/ponger-eth1.pcap");
    assert!(pcap.is_file(), "no {}", pcap.display());
    // Nothing on the host: no node of the instance, no process of the user.
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
    assert_eq!(processes_of(user.0), Vec::<i32>::new());
}

#[test]
fn a_lab_that_needs_root_says_so_in_one_line_and_makes_nothing() {
    let Some(user) = user_or_skip() else { return };
    let dir = UserDir::new(user);
    let lab = dir.lab(
        "xdp",
        "name: xdp\nnodes:\n  a: {}\n  b: { datalink: af_xdp }\nlinks:\n  - endpoints: \
         [\"a:eth1\", \"b:eth1\"]\n    impair: { loss: 5% }\nsteps:\n  - { name: s, node: a, \
         exec: [\"true\"] }\n",
    );
    let out = as_user(user, dir.path(), &["run", lab.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{}", show(&out));
    assert!(
        err.starts_with("labctl: lab xdp needs root: nodes b use af_xdp")
            && err.contains("links a:eth1 - b:eth1 have a loss impairment")
            && err.contains("sudo"),
        "{}",
        show(&out)
    );
    assert!(
        !dir.path().join("runs").exists(),
        "a run directory was made"
    );
}

#[test]
fn killing_a_rootless_run_leaves_no_process_and_no_namespace() {
    let Some(user) = user_or_skip() else { return };
    let _alone = USER_PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = UserDir::new(user);
    let instance = unique("rk");
    let lab = dir.lab(
        "slow",
        "name: slow\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n\
         steps:\n  - { name: bg, node: b, exec: [sleep, \"300\"], background: true }\n  - { name: \
         fg, node: a, exec: [sleep, \"301\"], timeout: 10m }\n",
    );
    let mut child = as_user(
        user,
        dir.path(),
        &["run", lab.to_str().unwrap(), "--name", &instance],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Both steps up: two sleeps of the user.
    let sleeping = |uid: u32| {
        processes_of(uid)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
            .count()
    };
    let start = Instant::now();
    while sleeping(user.0) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the steps did not start"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("labctl ended before its steps started: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL to the labctl the user started: nothing can clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while !processes_of(user.0).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "processes of the user survive labctl: {:?}",
            processes_of(user.0)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
}

#[test]
fn a_run_directory_outside_the_hosts_directories_is_refused_not_lost() {
    let Some(user) = user_or_skip() else { return };
    let dir = UserDir::new(user);
    let icmp =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/icmp.yaml")).unwrap();
    let lab = dir.lab("icmp", &icmp);
    // `/runs` exists in no host directory: inside the user namespace's own
    // root it would vanish with the process, so writing it must fail.
    let out = as_user(
        user,
        std::path::Path::new("/"),
        &["run", lab.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        stderr(&out).contains("writing runs: Read-only file system"),
        "{}",
        show(&out)
    );
}
