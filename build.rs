//! Tells the tests whether this machine has netmap: tests that need
//! /dev/netmap are marked ignored (with the reason) where it is absent,
//! never reported as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(labctl_has_netmap)");
    println!("cargo::rerun-if-changed=/dev/netmap");
    if std::path::Path::new("/dev/netmap").exists() {
        println!("cargo::rustc-cfg=labctl_has_netmap");
    }
}
