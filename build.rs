//! Build-time facts:
//! - the git commit, for `labctl --version` (`LABCTL_COMMIT` overrides it,
//!   for packagers building from a tarball; none at all is "unknown");
//! - whether this machine has netmap: tests that need /dev/netmap are
//!   marked ignored (with the reason) where it is absent, never reported as
//!   passed.

#[path = "src/cli/commit.rs"]
mod commit;

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/cli/commit.rs");
    println!("cargo::rerun-if-env-changed=LABCTL_COMMIT");
    let package = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let package = Path::new(&package);
    let commit = std::env::var("LABCTL_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| commit::commit_of(package));
    for path in commit::files_to_watch(package) {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    println!(
        "cargo::rustc-env=LABCTL_VERSION={} {}",
        env!("CARGO_PKG_VERSION"),
        commit::describe(commit.as_deref())
    );

    println!("cargo::rustc-check-cfg=cfg(labctl_has_netmap)");
    // Watched only where it exists: cargo counts a missing file as changed
    // on every build, which rebuilt the whole package each time. Where
    // netmap is loaded after a build, `touch build.rs` makes the tests see it.
    if Path::new("/dev/netmap").exists() {
        println!("cargo::rerun-if-changed=/dev/netmap");
        println!("cargo::rustc-cfg=labctl_has_netmap");
    }
}
