//! The install path (issue 16.5 and 16.6): labctl found in a bin directory
//! with its tools next to it, as `cargo install --path .` leaves them;
//! tools that are not statically linked refused before anything is made;
//! an unprivileged user told in one line what `run` needs, while the verbs
//! that only read files work for anyone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use labctl::tools::TOOLS;

use crate::support::bin;
use crate::support::lab::{assert_nothing_left, stderr, stdout, TestLab, PING_PAIR_LAB};
use crate::support::skip::skip;

/// labctl's exit code when it cannot build labs here (cli/exit.rs).
const EXIT_SETUP: i32 = 4;

/// A bin directory holding labctl and its tools (hard links into the
/// target directory: the same files, no copy of 1 GB of debug builds).
fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for name in std::iter::once("labctl").chain(TOOLS) {
        std::fs::hard_link(bin(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// labctl from `dir`, finding its tools next to itself (never through
/// LABCTL_TOOLS_DIR, which other tests of this process set).
fn labctl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(dir.join("labctl"))
        .args(args)
        .env_remove("LABCTL_TOOLS_DIR")
        .output()
        .unwrap()
}

#[test]
fn a_labctl_in_a_bin_dir_with_its_tools_next_to_it_runs_a_lab() {
    let dir = bin_dir();
    let lab = TestLab::new("inst", PING_PAIR_LAB);
    let runs = tempfile::tempdir().unwrap();
    let out = labctl_in(
        dir.path(),
        &[
            "run",
            lab.path(),
            "--runtime",
            "docker",
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("passed"), "{}", stdout(&out));
    assert_nothing_left(&lab.name);
}

#[test]
fn tools_that_are_not_statically_linked_are_refused_before_anything_is_made() {
    let Ok(ls) = std::fs::read("/bin/ls") else {
        skip("no /bin/ls to stand for a dynamically linked tool");
        return;
    };
    let dir = bin_dir();
    // A dynamically linked lab-ping, as `cargo install --git` without
    // crt-static builds it.
    let ping = dir.path().join("lab-ping");
    std::fs::remove_file(&ping).unwrap();
    std::fs::write(&ping, ls).unwrap();
    std::fs::set_permissions(&ping, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lab = TestLab::new("stat", PING_PAIR_LAB);
    let runs = tempfile::tempdir().unwrap();
    let out = labctl_in(
        dir.path(),
        &[
            "run",
            lab.path(),
            "--runtime",
            "docker",
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(EXIT_SETUP), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    for words in [
        format!("the packet tool {} is dynamically linked", ping.display()),
        "target-feature=+crt-static".to_owned(),
        "--target x86_64-unknown-linux-gnu".to_owned(),
    ] {
        assert!(err.contains(&words), "{words:?} not in: {err}");
    }
    // Nothing was made: no container, veth, run directory.
    assert_nothing_left(&lab.name);
    assert_eq!(std::fs::read_dir(runs.path()).unwrap().count(), 0);
    // The netns runtime runs the tools on the host, where they work.
    let out = labctl_in(
        dir.path(),
        &[
            "run",
            lab.path(),
            "--runtime",
            "netns",
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ],
    );
    // There ls, standing for lab-ping, runs: it fails the step as ls fails
    // on its arguments (exit 2), so the run exits 1, not 4.
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL  ping") && said.contains("found exit code 2"),
        "{said}"
    );
    assert!(!said.contains("dynamically linked"), "{said}");
    assert_nothing_left(&lab.name);
}

/// `labctl ARGS` as the user nobody, with no capability; `None` (with the
/// reason printed) where setpriv is missing.
fn as_nobody(args: &[&str]) -> Option<Output> {
    match Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin("labctl"))
        .args(args)
        .current_dir("/")
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            skip(format!("setpriv (util-linux) cannot run: {e}"));
            None
        }
    }
}

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// (`labctl run` by an ordinary user runs rootless instead:
/// tests/it/rootless.rs.)
#[test]
fn an_unprivileged_user_gets_one_line_for_deploy_and_can_still_read_labs() {
    let icmp = repo("labs/icmp.yaml");
    for verb in [
        vec!["deploy", icmp.as_str()],
        vec!["destroy", "icmp"],
        vec!["inspect"],
        vec!["exec", "icmp", "pinger", "--", "true"],
    ] {
        let Some(out) = as_nobody(&verb) else { return };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(EXIT_SETUP), "{verb:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{verb:?}: {err}");
        assert!(
            err.starts_with(&format!("labctl: `labctl {}` needs root", verb[0]))
                && err.contains("(uid 65534) lacks CAP_NET_ADMIN and CAP_SYS_ADMIN")
                && err.contains("sudo"),
            "{verb:?}: {err}"
        );
    }
    for verb in [
        vec!["validate", icmp.as_str()],
        vec!["graph", icmp.as_str()],
        vec!["schema"],
        vec!["schema", "--report"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--version"],
    ] {
        let Some(out) = as_nobody(&verb) else { return };
        assert_eq!(out.status.code(), Some(0), "{verb:?}: {}", stderr(&out));
        assert!(!out.stdout.is_empty(), "{verb:?}");
    }
}

/// An invalid lab is a usage error (exit 2) for anyone: validation comes
/// before the check of what the process may do (exit 4).
#[test]
fn an_unprivileged_run_of_an_invalid_lab_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("bad.yaml");
    std::fs::write(&lab, "name: bad\nnodes:\n  a: { colour: red }\n").unwrap();
    // Readable by nobody: a directory of the tests is 0700.
    for (path, mode) in [(dir.path(), 0o755), (lab.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let lab = lab.to_str().unwrap();
    for verb in ["run", "deploy"] {
        let Some(out) = as_nobody(&[verb, lab]) else {
            return;
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{verb}: {err}");
        assert_eq!(err.lines().count(), 1, "{verb}: {err}");
        assert!(
            err.contains("bad.yaml:3:8: unknown key `colour` in node \"a\""),
            "{verb}: {err}"
        );
        assert!(!err.contains("needs root"), "{verb}: {err}");
    }
}
