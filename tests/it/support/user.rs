//! An ordinary user for the tests of rootless labs, created by the test
//! setup (`useradd`, as root), and what such tests need around it.
//! Shared by the `it` binary and `tests/rootless_api.rs`.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn have_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The ordinary user the tests run labctl as.
pub const USER: &str = "labctl-rootless";

/// The test user's uid and gid, creating the user once (needs root and
/// `useradd`), or why there is none.
pub fn test_user() -> Result<(u32, u32), String> {
    static USER_IDS: OnceLock<Result<(u32, u32), String>> = OnceLock::new();
    USER_IDS
        .get_or_init(|| {
            if !have_root() {
                return Err("creating an ordinary user for it needs root".into());
            }
            if let Some(ids) = lookup(USER) {
                return Ok(ids);
            }
            let made = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg(USER)
                .output()
                .map_err(|e| format!("useradd: {e}"))?;
            // Another test process may have made it meanwhile.
            lookup(USER).ok_or_else(|| {
                format!(
                    "useradd {USER} failed: {}",
                    String::from_utf8_lossy(&made.stderr).trim()
                )
            })
        })
        .clone()
}

fn lookup(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

/// A directory the test user owns (lab files, runs), removed at the end.
pub struct UserDir {
    dir: tempfile::TempDir,
}

impl UserDir {
    pub fn new((uid, gid): (u32, u32)) -> UserDir {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        UserDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a lab file, readable by the user.
    pub fn lab(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }
}

/// `PROGRAM ARGS` as the test user, in `dir`, with nothing of root's
/// environment but PATH.
pub fn as_user((uid, gid): (u32, u32), dir: &Path, program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .uid(uid)
        .gid(gid);
    cmd
}

/// Host pids of the processes running as `uid`.
pub fn processes_of(uid: u32) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
                    line.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(uid)
        })
        .collect()
}
