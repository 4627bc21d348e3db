//! The git commit labctl is built from, for `labctl --version`. Used by
//! build.rs (through `#[path]`) and unit-tested with the binary.
//!
//! Only a checkout whose top level is the package itself counts: a package
//! unpacked from a tarball (`cargo install` from crates.io) inside some
//! other repository must not report that repository's commit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git` in `dir`, its trimmed stdout if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The short commit of the checkout whose top level is `package`, or
/// `None` (no git, not a checkout, or `package` is not its top level).
pub fn commit_of(package: &Path) -> Option<String> {
    let top = PathBuf::from(git(package, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != package.canonicalize().ok()? {
        return None;
    }
    git(package, &["rev-parse", "--short=12", "HEAD"])
}

/// The files whose change means another commit: HEAD, the branch it
/// points to, packed-refs (those that exist; cargo treats a missing file as
/// always changed).
pub fn files_to_watch(package: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut refs = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(package, &["rev-parse", "--symbolic-full-name", "HEAD"]) {
        refs.push(branch);
    }
    for name in refs {
        if let Some(path) = git(package, &["rev-parse", "--git-path", &name]) {
            let path = package.join(path);
            if path.exists() {
                paths.push(path);
            }
        }
    }
    paths
}

/// The version line's tail: `(commit abc123def456)`, or `(commit unknown)`.
pub fn describe(commit: Option<&str>) -> String {
    format!("(commit {})", commit.unwrap_or("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_checkout_gives_its_commit_and_anything_else_none() {
        if git(Path::new("/"), &["--version"]).is_none() {
            eprintln!("SKIPPED: git is not installed");
            return;
        }
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        run(r, &["init", "-q"]);
        std::fs::write(r.join("f"), "x").unwrap();
        run(r, &["add", "f"]);
        run(
            r,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "t",
            ],
        );
        let commit = commit_of(r).expect("the commit of a checkout");
        assert_eq!(commit.len(), 12, "{commit}");
        assert!(commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
        assert!(files_to_watch(r).iter().any(|p| p.ends_with("HEAD")));
        assert_eq!(describe(Some(&commit)), format!("(commit {commit})"));

        // A package unpacked inside another repository: not its commit.
        let inner = r.join("unpacked");
        std::fs::create_dir(&inner).unwrap();
        assert_eq!(commit_of(&inner), None);
        // No repository at all.
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(commit_of(plain.path()), None);
        assert_eq!(describe(None), "(commit unknown)");
    }
}
