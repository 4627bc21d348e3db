//! lab-init: PID 1 of every lab node.
//!
//! As PID 1 it must reap the children that `docker exec` leaves behind
//! (orphans are re-parented to it) and end cleanly on SIGTERM or SIGINT:
//! the kernel ignores signals PID 1 has no handler for, so without this a
//! node would only stop on SIGKILL. It also makes `/lab/out`, where the
//! tools write their artifacts, in images that lack it.
//!
//! In a node with its own image it also runs the image's command
//! (`lab-init -- ARGV...`, the entrypoint and command as `docker run`
//! combines them): it passes SIGTERM and SIGINT on to it, says how it
//! ended in a last line on stderr (the node's console, which labctl
//! reads), and stays PID 1 after it ends, so the steps can still run in
//! the node.
//!
//! std and libc only: it runs in the FROM-scratch tools image and is
//! mounted into any other image.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

#[path = "../runtime/console.rs"]
#[allow(dead_code)]
mod console;

use console::Ending;

fn main() -> ExitCode {
    if let Err(e) = std::fs::create_dir_all("/lab/out") {
        eprintln!("lab-init: cannot create /lab/out: {e}");
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let argv = console::command_of(&args);
    match run(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The node's command while it runs.
struct Running {
    pid: libc::pid_t,
    shown: String,
    stopping: bool,
}

/// Blocks SIGCHLD, SIGTERM and SIGINT, starts `argv` if there is one, and
/// takes the signals one at a time with `sigwait`, so no handler runs
/// concurrently with anything else. Returns once stopped: at once when
/// the command is gone, else when it has ended.
fn run(argv: &[OsString]) -> std::io::Result<()> {
    let set = block_signals()?;
    let mut running = argv.first().and_then(|program| {
        let text: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
        let shown = console::shown(&text);
        let mut command = Command::new(program);
        command.args(&argv[1..]);
        // The child inherits lab-init's mask (std does not reset it): a
        // command with SIGTERM blocked would never hear it.
        // SAFETY: the closure only calls pthread_sigmask, which is
        // async-signal-safe, on a set it owns.
        unsafe {
            command.pre_exec(|| {
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                match libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) {
                    0 => Ok(()),
                    rc => Err(std::io::Error::from_raw_os_error(rc)),
                }
            });
        }
        match command.spawn() {
            Ok(child) => Some(Running {
                pid: child.id() as libc::pid_t,
                shown,
                stopping: false,
            }),
            Err(e) => {
                eprintln!("lab-init: cannot start {shown}: {e}");
                // As a shell says it: 127 not found, 126 not executable.
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                eprintln!("{}", console::ended_line(&shown, Ending::Exited(code)));
                None
            }
        }
    });
    // Children may have exited before the mask was in place.
    reap_children(&mut running);
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is initialised and `signal` is a valid out pointer.
        let rc = unsafe { libc::sigwait(&set, &mut signal) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        match signal {
            libc::SIGTERM | libc::SIGINT => match &mut running {
                Some(command) => {
                    eprintln!("{}", console::forwarding_line(&command.shown, signal));
                    command.stopping = true;
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(command.pid, signal) };
                }
                None => return Ok(()),
            },
            _ => {
                let was_stopping = running.as_ref().is_some_and(|c| c.stopping);
                reap_children(&mut running);
                if was_stopping && running.is_none() {
                    return Ok(());
                }
            }
        }
    }
}

fn block_signals() -> std::io::Result<libc::sigset_t> {
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
    Ok(set)
}

/// Collects every child that has exited; SIGCHLD coalesces, so one signal
/// may stand for several children. The command's end is said on stderr.
fn reap_children(running: &mut Option<Running>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only writes to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if running.as_ref().is_some_and(|c| c.pid == pid) {
            if let (Some(command), Some(ending)) = (running.take(), Ending::of_wait_status(status))
            {
                eprintln!("{}", console::ended_line(&command.shown, ending));
            }
        }
    }
}
