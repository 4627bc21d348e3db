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
    let user = match args.iter().position(|a| a == console::USER_OPTION) {
        Some(i) => args.get(i + 1).map(|u| u.to_string_lossy().into_owned()),
        None => None,
    };
    match run(argv, user.as_deref()) {
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
fn run(argv: &[OsString], user: Option<&str>) -> std::io::Result<()> {
    let set = block_signals()?;
    let mut running = argv.first().and_then(|program| {
        let text: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
        let shown = console::shown(&text);
        match command(program, &argv[1..], user).and_then(|mut c| c.spawn()) {
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

/// The image's command, as the image's USER when it names one.
fn command(program: &OsString, args: &[OsString], user: Option<&str>) -> std::io::Result<Command> {
    let ids = match user {
        Some(spec) => Some(resolve_user(
            spec,
            &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
            &std::fs::read_to_string("/etc/group").unwrap_or_default(),
        )?),
        None => None,
    };
    let mut command = Command::new(program);
    command.args(args);
    if let Some(home) = ids.as_ref().and_then(|ids| ids.home.as_ref()) {
        command.env("HOME", home);
    }
    // SAFETY: the closure only makes async-signal-safe calls
    // (pthread_sigmask, setgroups, setgid, setuid) on data it owns.
    unsafe {
        command.pre_exec(move || {
            // The child inherits lab-init's mask (std does not reset it):
            // a command with SIGTERM blocked would never hear it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
            if let Some(ids) = &ids {
                // Groups first: after setuid there is no right to change them.
                if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) != 0
                    || libc::setgid(ids.gid) != 0
                    || libc::setuid(ids.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(command)
}

/// Who the command runs as: the image's USER resolved in the image's
/// /etc/passwd and /etc/group as Docker does it.
#[derive(Debug, PartialEq, Eq)]
struct Ids {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    home: Option<String>,
}

/// `spec` is `USER[:GROUP]`, each a name or a number; a number need not
/// be in the files (its group is then 0, as under Docker).
fn resolve_user(spec: &str, passwd: &str, group: &str) -> std::io::Result<Ids> {
    let not_found = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the image's USER {spec:?}: no {what} in the image"),
        )
    };
    let (user, group_spec) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    let (uid, name, primary, home) = match (&entry, user.parse::<libc::uid_t>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| not_found("valid passwd entry"))?,
            Some(f[0]),
            f[3].parse().unwrap_or(0),
            Some(f[5].to_owned()),
        ),
        (None, Ok(uid)) => (uid, None, 0, None),
        (None, Err(_)) => return Err(not_found(&format!("user {user:?}"))),
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let gid = match group_spec {
        None => primary,
        Some(g) => match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().map_err(|_| not_found("valid group entry"))?,
            None => g.parse().map_err(|_| not_found(&format!("group {g:?}")))?,
        },
    };
    let mut supplementary: Vec<libc::gid_t> = vec![gid];
    if let Some(name) = name {
        supplementary.extend(
            groups
                .iter()
                .filter(|f| f[3].split(',').any(|m| m == name))
                .filter_map(|f| f[2].parse::<libc::gid_t>().ok()),
        );
    }
    supplementary.sort_unstable();
    supplementary.dedup();
    Ok(Ids {
        uid,
        gid,
        groups: supplementary,
        home,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nfrr:x:100:101:FRR:/var/run/frr:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nfrr:x:101:\nfrrvty:x:102:frr,other\n";

    #[test]
    fn a_user_by_name_gets_its_group_its_other_groups_and_its_home() {
        let ids = resolve_user("frr", PASSWD, GROUP).unwrap();
        assert_eq!(
            ids,
            Ids {
                uid: 100,
                gid: 101,
                groups: vec![101, 102],
                home: Some("/var/run/frr".into()),
            }
        );
        let ids = resolve_user("frr:root", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid), (100, 0));
    }

    #[test]
    fn numbers_need_no_entry_and_unknown_names_are_refused() {
        let ids = resolve_user("1000:1000", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.home), (1000, 1000, None));
        assert_eq!(resolve_user("100", PASSWD, GROUP).unwrap().gid, 101);
        let e = resolve_user("nobody", PASSWD, GROUP).unwrap_err();
        assert!(e.to_string().contains("no user \"nobody\""), "{e}");
        assert!(resolve_user("frr:wheel", PASSWD, GROUP).is_err());
    }
}
