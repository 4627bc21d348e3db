//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod chain;
pub mod dockerd;
pub mod hosts;
pub mod lab;
pub mod netns;
pub mod process;
pub mod run;
pub mod skip;
pub mod tools;
pub mod user;

use std::path::PathBuf;

/// A binary of this package, built by cargo for the integration tests:
/// labctl, or one of `labctl::tools::TOOLS`. Cargo puts every binary of
/// the package in one directory (labctl finds its tools there too), so
/// the tools are found next to labctl: `env!("CARGO_BIN_EXE_<name>")`
/// would want each name written here once more.
pub fn bin(name: &str) -> PathBuf {
    let labctl = PathBuf::from(env!("CARGO_BIN_EXE_labctl"));
    if name == "labctl" {
        return labctl;
    }
    assert!(
        labctl::tools::TOOLS.contains(&name),
        "no binary named {name}: not labctl nor in labctl::tools::TOOLS"
    );
    labctl.with_file_name(name)
}

/// A name no other test (or concurrent test run) uses: `prefix` plus the
/// process id and a counter, short enough for an interface name.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n:x}", std::process::id() & 0xffff)
}
