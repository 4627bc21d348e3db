//! The netns runtime without root: labctl enters a user namespace of its
//! own and builds the lab there, as root of that namespace only.
//!
//! [`enter`] is called once, while the process is still single-threaded
//! (the kernel refuses `unshare(CLONE_NEWUSER)` to a process with more
//! than one thread: `labctl`'s `main` before its async runtime, or a test
//! binary's `main`, docs/library.md):
//!
//! 1. `unshare` a user, mount, network and pid namespace; map root of the
//!    new user namespace to the caller's uid and gid (the one mapping an
//!    unprivileged process may write for itself).
//! 2. `fork`: the child is pid 1 of the new pid namespace and carries on
//!    as labctl (returning from [`enter`]); the parent only waits for it,
//!    passes SIGTERM on, and exits with its code. The child dies with the
//!    parent (`PR_SET_PDEATHSIG`), and every process of the lab dies with
//!    the child: the kernel kills a pid namespace whose init ends.
//! 3. In the child, a root of its own: a tmpfs holding a bind of every
//!    top-level directory of the host's root, an empty `/run` (where the
//!    netns runtime mounts its namespaces and keeps its node directories,
//!    which an ordinary user cannot write on the host), `/lab/out` and
//!    `/lab/bin` (the mount points of a node's steps), then a fresh
//!    `/proc` for the new pid namespace (teardown finds a node's processes
//!    through it, and signals them by those pids).
//!
//! Everything the lab makes (namespaces, their mounts, veths, processes)
//! is held by that process tree and its mount namespace alone, so it goes
//! when the process goes, however it ends: nothing of the lab is made on
//! the host (only the run's own files, as the user), nothing is left to
//! clean after a crash.
//!
//! What cannot work there is refused before anything is made
//! ([`needs_root`]): af_xdp (its XDP program and maps need CAP_BPF, and
//! CAP_NET_ADMIN on the device, in the host's user namespace), the `loss`
//! impairment (labctl's tc BPF classifier, for the same reason), netmap
//! where `/dev/netmap` is not readable and writable by the user.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::lab::impairment::AppliedBy;
use crate::lab::{DatalinkKind, Lab};
use crate::runtime::needs::node_datalinks;

/// Set in the child of [`enter`] (and inherited by its programs), so
/// labctl's own children know they run rootless.
pub const ENV: &str = "LABCTL_ROOTLESS";

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Why a process could not enter its user namespace.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error(
        "entering a user namespace needs a single-threaded process, and this one has {threads} \
         threads; call labctl::rootless::enter() first thing in main (docs/library.md)"
    )]
    Threads { threads: usize },
    #[error(
        "creating a user namespace failed: {cause}; this host does not let ordinary users \
         create them (see user.max_user_namespaces, kernel.unprivileged_userns_clone or \
         AppArmor's restrict_unprivileged_userns), run as root instead"
    )]
    Unshare { cause: io::Error },
    #[error("setting up the user namespace: {doing}: {cause}")]
    Setup { doing: String, cause: io::Error },
}

/// Where the process is after [`enter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// It was privileged already (root on the host): nothing changed.
    Privileged,
    /// It now runs as root of a user namespace of its own.
    Rootless,
}

/// Whether this process entered its user namespace ([`enter`]).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Whether this process can build labs as it is: root, or CAP_NET_ADMIN
/// and CAP_SYS_ADMIN (in its user namespace: after [`enter`], too).
pub fn is_privileged() -> bool {
    crate::runtime::check_host_privileges("run").is_ok()
}

/// Enters a user namespace of its own unless the process is privileged
/// already; see the module documentation. Returns in the child only: the
/// parent waits for the child and exits with its exit code.
///
/// Must be called while the process has one thread.
pub fn enter() -> Result<Mode, RootlessError> {
    if is_active() || is_privileged() {
        return Ok(if is_active() {
            Mode::Rootless
        } else {
            Mode::Privileged
        });
    }
    let threads = thread_count();
    if threads != 1 {
        return Err(RootlessError::Threads { threads });
    }
    // SAFETY: plain system calls; no memory shared with other threads
    // (there are none).
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWPID;
    // SAFETY: unshare changes only this (single-threaded) process.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(RootlessError::Unshare {
            cause: io::Error::last_os_error(),
        });
    }
    write("/proc/self/setgroups", "deny")?;
    write("/proc/self/uid_map", &format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    let cwd = std::env::current_dir().ok();
    // SAFETY: the process is single-threaded, so the child is a full copy
    // that may carry on as labctl.
    match unsafe { libc::fork() } {
        -1 => Err(setup("fork")(io::Error::last_os_error())),
        0 => {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            new_root(cwd.as_deref())?;
            ACTIVE.store(true, Ordering::Relaxed);
            std::env::set_var(ENV, "1");
            Ok(Mode::Rootless)
        }
        child => wait_and_exit(child),
    }
}

/// The parent's part: wait for the child, pass SIGTERM and SIGHUP on (a
/// terminal's Ctrl-C reaches the child itself, as it is in the same
/// process group), exit as it did.
fn wait_and_exit(child: libc::pid_t) -> ! {
    static CHILD: AtomicI32 = AtomicI32::new(0);
    extern "C" fn forward(signal: libc::c_int) {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(CHILD.load(Ordering::Relaxed), signal) };
    }
    CHILD.store(child, Ordering::Relaxed);
    // SAFETY: installing handlers that only call kill; SIGINT ignored so
    // the parent outlives the child's graceful teardown.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, forward as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, forward as *const () as libc::sighandler_t);
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(child, &mut status, 0) };
        if rc == child {
            break;
        }
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(3);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    std::process::exit(code)
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn setup(doing: impl Into<String>) -> impl FnOnce(io::Error) -> RootlessError {
    let doing = doing.into();
    move |cause| RootlessError::Setup { doing, cause }
}

fn write(path: &str, text: &str) -> Result<(), RootlessError> {
    std::fs::write(path, text).map_err(setup(format!("writing {text:?} to {path}")))
}

fn c(path: &Path) -> Result<CString, RootlessError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| setup(format!("{}", path.display()))(io::ErrorKind::InvalidInput.into()))
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
) -> Result<(), RootlessError> {
    let source = source.map(c).transpose()?;
    let target_c = c(target)?;
    // SAFETY: every pointer is a NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(setup(format!("mounting {}", target.display()))(
            io::Error::last_os_error(),
        ))
    }
}

/// Where the new root is assembled: `/run`, which the new root replaces
/// by an empty one anyway.
const STAGING: &str = "/run";
const OLD_ROOT: &str = ".old-root";

/// Step 3 of the module documentation.
fn new_root(cwd: Option<&Path>) -> Result<(), RootlessError> {
    let root = Path::new("/");
    mount(None, root, None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let staging = Path::new(STAGING);
    mount(
        Some(Path::new("tmpfs")),
        staging,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(c"mode=0755"),
    )?;
    let entries = std::fs::read_dir(root).map_err(setup("reading /"))?;
    for entry in entries {
        let entry = entry.map_err(setup("reading /"))?;
        let name = entry.file_name();
        if name == "run" {
            continue;
        }
        let from = root.join(&name);
        let to = staging.join(&name);
        let meta =
            std::fs::symlink_metadata(&from).map_err(setup(format!("{}", from.display())))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&from).map_err(setup(format!("{}", from.display())))?;
            std::os::unix::fs::symlink(link, &to).map_err(setup(format!("{}", to.display())))?;
        } else if meta.is_dir() {
            std::fs::create_dir(&to).map_err(setup(format!("creating {}", to.display())))?;
            mount(Some(&from), &to, None, libc::MS_BIND | libc::MS_REC, None)?;
        } else {
            std::fs::write(&to, b"").map_err(setup(format!("creating {}", to.display())))?;
            mount(Some(&from), &to, None, libc::MS_BIND, None)?;
        }
    }
    for dir in ["run", "lab/out", "lab/bin", OLD_ROOT] {
        let path = staging.join(dir);
        std::fs::create_dir_all(&path).map_err(setup(format!("creating {}", path.display())))?;
    }
    // `/run` is a tmpfs of its own: it stays writable when the root is
    // made read-only below.
    mount(
        Some(Path::new("tmpfs")),
        &staging.join("run"),
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(c"mode=0755"),
    )?;
    let new = c(staging)?;
    let old = c(&staging.join(OLD_ROOT))?;
    // SAFETY: pivot_root with two valid paths; the new root is a mount
    // point (the tmpfs) and the old one below it.
    if unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) } != 0 {
        return Err(setup("pivot_root")(io::Error::last_os_error()));
    }
    std::env::set_current_dir(root).map_err(setup("chdir /"))?;
    let old_root = root.join(OLD_ROOT);
    let old_c = c(&old_root)?;
    // SAFETY: a valid path.
    if unsafe { libc::umount2(old_c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(setup("detaching the old root")(io::Error::last_os_error()));
    }
    let _ = std::fs::remove_dir(&old_root);
    mount(
        Some(Path::new("proc")),
        Path::new("/proc"),
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    // The new root itself read-only: a file written where no host
    // directory is bound (a run directory under `/`) would vanish with the
    // process; writing there fails instead, and says so.
    mount(
        None,
        root,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )?;
    if let Some(cwd) = cwd {
        // A working directory under /run is not there any more: stay at /.
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(())
}

/// What of `lab` needs root on the host, in one line, or `None` when it
/// can run rootless. Checked before anything is created.
pub fn needs_root(lab: &Lab) -> Option<String> {
    let mut reasons = Vec::new();
    let on = |kind: DatalinkKind| -> Vec<String> {
        lab.nodes()
            .iter()
            .filter(|n| node_datalinks(lab, n).contains(&kind))
            .map(|n| n.name.clone())
            .collect()
    };
    let xdp = on(DatalinkKind::AfXdp);
    if !xdp.is_empty() {
        reasons.push(format!(
            "nodes {} use af_xdp (its XDP program and maps need CAP_BPF and CAP_NET_ADMIN on \
             the host)",
            xdp.join(", ")
        ));
    }
    let netmap = on(DatalinkKind::Netmap);
    if !netmap.is_empty() && !user_can_open(Path::new("/dev/netmap")) {
        reasons.push(format!(
            "nodes {} use netmap, and /dev/netmap is not readable and writable by uid {}",
            netmap.join(", "),
            // SAFETY: getuid cannot fail.
            unsafe { libc::getuid() }
        ));
    }
    let lossy: Vec<String> = lab
        .links()
        .iter()
        .filter(|l| {
            l.endpoints.iter().any(|e| {
                e.impair.is_some_and(|i| {
                    crate::lab::impairment::KEYS
                        .iter()
                        .any(|k| k.applied_by == AppliedBy::LossFilter && (k.get)(&i).is_some())
                })
            })
        })
        .map(|l| format!("{} - {}", l.endpoints[0].label(), l.endpoints[1].label()))
        .collect();
    if !lossy.is_empty() {
        reasons.push(format!(
            "links {} have a loss impairment (a tc BPF classifier, which needs CAP_BPF on the \
             host)",
            lossy.join(", ")
        ));
    }
    (!reasons.is_empty()).then(|| {
        format!(
            "lab {} needs root: {}; run it with sudo",
            lab.name(),
            reasons.join("; ")
        )
    })
}

fn user_can_open(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid path; access checks the real uid.
    unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(src: &str) -> Lab {
        crate::lab::parse(src, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn af_packet_labs_run_rootless_and_af_xdp_or_loss_need_root() {
        let pair = |extra: &str| {
            format!(
                "name: x\nnodes:\n  a: {{}}\n  b: {{}}\nlinks:\n  - endpoints: [\"a:eth1\", \
                 \"b:eth1\"]\n{extra}"
            )
        };
        assert_eq!(needs_root(&lab(&pair(""))), None);
        let xdp = needs_root(&lab(&pair("").replace("b: {}", "b: { datalink: af_xdp }")))
            .expect("af_xdp needs root");
        assert!(
            xdp.starts_with("lab x needs root: nodes b use af_xdp"),
            "{xdp}"
        );
        assert!(!xdp.contains('\n'));
        let loss = needs_root(&lab(&pair("    impair: { loss: 1% }\n"))).expect("loss");
        assert!(
            loss.contains("links a:eth1 - b:eth1 have a loss impairment"),
            "{loss}"
        );
        assert_eq!(
            needs_root(&lab(&pair("    impair: { rate: 10mbit }\n"))),
            None
        );
    }
}
