//! One way for a test to say it cannot run on this host (no root, no
//! /dev/netmap, a program missing): [`skip`] and the caller returns.
//!
//! A skip is never a silent pass. libtest hides what a passing test
//! prints with `eprintln!`, so the line is written to the process's
//! stderr directly, where every run shows it: `skipped: <test>: <reason>`
//! (`cargo test ... 2>&1 | grep '^skipped:'` lists them). With
//! `LABCTL_REQUIRE_ALL=1` a skip fails its test instead, for a host that
//! must run everything; `LABCTL_MAY_LACK=netmap,...` names the features
//! such a host may still lack (CI's has no netmap module), whose skips
//! then stay skips ([`skip_lacking`]).

use std::fmt::Display;
use std::io::Write;
use std::path::Path;

use super::netns::have_root;

/// Set to 1: a test that would be skipped fails, naming the reason.
pub const REQUIRE_ALL: &str = "LABCTL_REQUIRE_ALL";
/// A comma-separated list of features (`netmap`) whose absence is still a
/// skip under [`REQUIRE_ALL`]: what the host cannot have, as opposed to
/// what it forgot to install.
pub const MAY_LACK: &str = "LABCTL_MAY_LACK";

/// Skips the calling test (or, with "part:" in `reason`, a part of it),
/// which then returns: one line on the terminal, or a panic under
/// [`REQUIRE_ALL`].
pub fn skip(reason: impl Display) {
    skip_lacking("", reason)
}

/// [`skip`] for want of `feature`, which [`MAY_LACK`] can excuse under
/// [`REQUIRE_ALL`].
pub fn skip_lacking(feature: &str, reason: impl Display) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let excused = !feature.is_empty()
        && std::env::var(MAY_LACK)
            .is_ok_and(|list| list.split(',').any(|item| item.trim() == feature));
    if !excused && std::env::var_os(REQUIRE_ALL).is_some_and(|value| value == "1") {
        panic!("{test} cannot run here ({REQUIRE_ALL}=1 forbids a skip): {reason}");
    }
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {reason}");
}

/// True, after [`skip`] for `reason`, when the host is `lacking`.
pub fn skip_if(lacking: bool, reason: impl Display) -> bool {
    if lacking {
        skip(reason);
    }
    lacking
}

/// True, after [`skip`], when this process is not root: `what` needs
/// namespaces, veths or a daemon of its own.
pub fn skip_without_root(what: &str) -> bool {
    skip_if(!have_root(), format!("{what} needs root"))
}

/// True, after [`skip`], when the netmap kernel module is not loaded.
pub fn skip_without_netmap() -> bool {
    let lacking = !has_netmap();
    if lacking {
        skip_lacking(
            "netmap",
            "needs /dev/netmap: the netmap kernel module is not loaded on this machine",
        );
    }
    lacking
}

/// True, after [`skip`], when the netmap kernel module is loaded: the test
/// checks what happens without it.
pub fn skip_with_netmap() -> bool {
    skip_if(
        has_netmap(),
        "this host has /dev/netmap, so what happens without it cannot be seen",
    )
}

fn has_netmap() -> bool {
    Path::new("/dev/netmap").exists()
}

/// True, after [`skip_lacking`] (feature `live_frames`), when this kernel
/// refuses `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`: upstream has
/// it from 5.18 for root, but a hardened 6.18 answers EPERM once the
/// program is loaded, which no privilege changes.
pub fn skip_without_live_frames() -> bool {
    let refused = live_frames_refused();
    if let Some(why) = refused {
        skip_lacking("live_frames", format!("XDP live frames: {why}"));
    }
    refused.is_some()
}

/// Why a one-frame live run of an XDP_DROP program fails here, if it does
/// (the frame is dropped: nothing is sent anywhere). Asked once.
pub fn live_frames_refused() -> Option<&'static str> {
    use labctl::bpf::asm::mov_k;
    use labctl::bpf::{
        Insn, Program, XdpTestRun, BPF_EXIT, BPF_F_TEST_XDP_LIVE_FRAMES, BPF_JMP,
        BPF_PROG_TYPE_XDP, BPF_XDP, XDP_DROP,
    };
    use std::os::fd::AsFd;
    use std::sync::OnceLock;

    static ANSWER: OnceLock<Option<String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let insns = [
                mov_k(0, XDP_DROP),
                Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
            ];
            let program = match (Program {
                prog_type: BPF_PROG_TYPE_XDP,
                expected_attach_type: BPF_XDP,
                name: b"labctl_probe",
                insns: &insns,
            })
            .load()
            {
                Ok(program) => program,
                Err(e) => return Some(format!("loading an XDP program: {}", e.error)),
            };
            let frame = [0u8; 64];
            XdpTestRun {
                program: program.as_fd(),
                data: &frame,
                data_out: None,
                ingress_ifindex: 0,
                repeat: 1,
                flags: BPF_F_TEST_XDP_LIVE_FRAMES,
                batch_size: 0,
            }
            .run()
            .err()
            .map(|e| format!("this kernel refuses a live-frames run of an XDP_DROP program ({e})"))
        })
        .as_deref()
}
