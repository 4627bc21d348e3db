//! lab-init: PID 1 of every lab node.
//!
//! As PID 1 it must reap the children that `docker exec` leaves behind
//! (orphans are re-parented to it) and end cleanly on SIGTERM or SIGINT:
//! the kernel ignores signals PID 1 has no handler for, so without this a
//! node would only stop on SIGKILL. It also makes `/lab/out`, where the
//! tools write their artifacts, in images that lack it.
//!
//! std and libc only: it runs in the FROM-scratch tools image and is
//! mounted into any other image.

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = std::fs::create_dir_all("/lab/out") {
        eprintln!("lab-init: cannot create /lab/out: {e}");
    }
    match wait_for_stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks SIGCHLD, SIGTERM and SIGINT and takes them one at a time with
/// `sigwait`, so no handler runs concurrently with anything else.
fn wait_for_stop() -> std::io::Result<()> {
    let signals = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT];
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t; the signal
    // numbers are valid constants.
    unsafe {
        libc::sigemptyset(&mut set);
        for signal in signals {
            libc::sigaddset(&mut set, signal);
        }
    }
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    // Children may have exited before the mask was in place.
    reap_children();
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is initialised and `signal` is a valid out pointer.
        let rc = unsafe { libc::sigwait(&set, &mut signal) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        match signal {
            libc::SIGTERM | libc::SIGINT => return Ok(()),
            _ => reap_children(),
        }
    }
}

/// Collects every child that has exited; SIGCHLD coalesces, so one signal
/// may stand for several children.
fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only writes to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}
