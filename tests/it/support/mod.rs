//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod chain;
pub mod dockerd;
pub mod lab;
pub mod netns;
pub mod process;
pub mod tools;

use std::path::PathBuf;

/// A binary of this package, built by cargo for the integration tests.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "labctl" => PathBuf::from(env!("CARGO_BIN_EXE_labctl")),
        "lab-ping" => PathBuf::from(env!("CARGO_BIN_EXE_lab-ping")),
        "lab-pong" => PathBuf::from(env!("CARGO_BIN_EXE_lab-pong")),
        "lab-capture" => PathBuf::from(env!("CARGO_BIN_EXE_lab-capture")),
        "lab-fwd" => PathBuf::from(env!("CARGO_BIN_EXE_lab-fwd")),
        "lab-init" => PathBuf::from(env!("CARGO_BIN_EXE_lab-init")),
        "lab-gen" => PathBuf::from(env!("CARGO_BIN_EXE_lab-gen")),
        "lab-sink" => PathBuf::from(env!("CARGO_BIN_EXE_lab-sink")),
        other => panic!("no binary named {other}"),
    }
}

/// A name no other test (or concurrent test run) uses: `prefix` plus the
/// process id and a counter, short enough for an interface name.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n:x}", std::process::id() & 0xffff)
}
