//! Named network namespaces the way iproute2 makes them, and the per-node
//! directory that marks one as labctl's.
//!
//! A node `n` of lab `l` is the namespace bind-mounted on
//! `/run/netns/labctl-l-n` (so `ip netns exec` works on it too) and the
//! directory `/run/labctl/netns/labctl-l-n/` holding `node.json` (the same
//! labels a container carries, plus what a step needs: environment and
//! capabilities) and `out/` (the node's `/lab/out`). The directory is
//! written before the namespace exists and removed after it is gone, so
//! whatever a crash leaves is found again from the directory alone.
//!
//! Everything here is blocking (mounts, /proc scans): callers run it on a
//! blocking thread. Namespace changes happen on threads of their own that
//! end with the work, never on a tokio worker.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where named network namespaces are mounted (iproute2's place).
pub const NETNS_DIR: &str = "/run/netns";
/// labctl's per-node directories.
pub const STATE_DIR: &str = "/run/labctl/netns";
/// The marker file in a node's directory.
const RECORD: &str = "node.json";
/// The node's `/lab/out`, inside its directory.
const OUT: &str = "out";
/// The node's own BPF filesystem, inside its directory.
const BPFFS: &str = "bpf";
/// `statfs` type of a namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// What a netns node's directory records: enough to list it, run steps in
/// it and remove it, from another labctl process or after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The labels a container of this node would carry.
    pub labels: HashMap<String, String>,
    /// `KEY=VALUE` for every process started in the node.
    pub env: Vec<String>,
    /// Capabilities (Docker's names) steps hold: the datalinks' and the
    /// node's own `capabilities` (`needs::node_capabilities`).
    pub caps: Vec<String>,
    /// The node's `binds`, mounted in each step's own mount namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<RecordBind>,
    /// The node holds BPF: a BPF filesystem of its own is mounted in its
    /// directory and seen by its processes at `/sys/fs/bpf`, where BPF
    /// tools pin their maps and programs (libxdp, bpftool, iproute2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bpffs: bool,
}

/// One bind of a netns node: `host` mounted on `target` (an existing host
/// path) for the node's processes only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBind {
    pub host: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// The namespace file of node namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The directory of node namespace `name`.
pub fn state_path(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(name)
}

/// The node's `/lab/out` on the host.
pub fn out_path(name: &str) -> PathBuf {
    state_path(name).join(OUT)
}

/// Where the node's own BPF filesystem is mounted on the host
/// ([`NodeRecord::bpffs`]).
pub fn bpffs_path(name: &str) -> PathBuf {
    state_path(name).join(BPFFS)
}

fn io_context(doing: impl Into<String>) -> impl FnOnce(io::Error) -> io::Error {
    let doing = doing.into();
    move |e| io::Error::new(e.kind(), format!("{doing}: {e}"))
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so a
/// namespace mounted there is seen (and unmounted) in every mount
/// namespace that was copied from the host's.
fn prepare_netns_dir() -> io::Result<()> {
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir).map_err(io_context(format!("creating {NETNS_DIR}")))?;
    let c = cstring(dir)?;
    let none = c"none";
    // SAFETY: valid NUL-terminated strings; null data is allowed.
    let shared = || unsafe {
        libc::mount(
            none.as_ptr(),
            c.as_ptr(),
            none.as_ptr(),
            libc::MS_SHARED | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if shared() == 0 {
        return Ok(());
    }
    if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
        return Err(io_context(format!("making {NETNS_DIR} a shared mount"))(
            io::Error::last_os_error(),
        ));
    }
    // Not a mount point yet: bind it on itself first.
    // SAFETY: as above.
    check(unsafe {
        libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            none.as_ptr(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })
    .and_then(|()| check(shared()))
    .map_err(io_context(format!("making {NETNS_DIR} a shared mount")))
}

/// Creates node namespace `name`: its directory and record first, then a
/// fresh network namespace mounted on [`netns_path`], with `lo` up and
/// `sysctls` (`key`, `value`; all `net.*`) written inside. On failure,
/// whatever was made is removed again.
pub fn create(name: &str, record: &NodeRecord, sysctls: &[(String, String)]) -> io::Result<()> {
    prepare_netns_dir()?;
    let state = state_path(name);
    std::fs::create_dir_all(state.join(OUT))
        .map_err(io_context(format!("creating {}", state.display())))?;
    let json = serde_json::to_vec(record).map_err(io::Error::other)?;
    std::fs::write(state.join(RECORD), json).map_err(io_context(format!(
        "writing {}",
        state.join(RECORD).display()
    )))?;
    if record.bpffs {
        if let Err(e) = mount_bpffs(&bpffs_path(name)) {
            let _ = remove(name);
            return Err(e);
        }
    }
    let target = netns_path(name);
    let sysctls = sysctls.to_vec();
    let made = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || new_namespace(&target, &sysctls))
        .map_err(io_context("starting a thread"))?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if made.is_err() {
        let _ = remove(name);
    }
    made.map_err(io_context(format!("creating network namespace {name}")))
}

/// A fresh BPF filesystem on `dir` (made here), for one node: its pins
/// are its own, and go when teardown unmounts it.
fn mount_bpffs(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir).map_err(io_context(format!("creating {}", dir.display())))?;
    crate::runtime::xdp::mount_bpffs(dir).map_err(io_context(format!(
        "mounting a BPF filesystem on {}",
        dir.display()
    )))
}

/// On a thread of its own (it ends right after): a new network namespace,
/// mounted on `target`, configured.
fn new_namespace(target: &Path, sysctls: &[(String, String)]) -> io::Result<()> {
    // SAFETY: unshare only changes this thread's namespaces.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) }).map_err(io_context("unshare"))?;
    File::options()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(io_context(format!("creating {}", target.display())))?;
    let source = c"/proc/thread-self/ns/net";
    let target_c = cstring(target)?;
    // SAFETY: valid NUL-terminated strings; null fstype and data are
    // allowed for a bind mount.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
    .map_err(io_context(format!("mounting {}", target.display())))?;
    loopback_up()?;
    for (key, value) in sysctls {
        let path = sysctl_path(key)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, key.clone()))?;
        std::fs::write(&path, value).map_err(io_context(format!("setting {key}={value}")))?;
    }
    Ok(())
}

/// `/proc/sys/...` of a `net.*` sysctl, which is the calling thread's
/// namespace's. Other sysctls are not the node's to set.
pub fn sysctl_path(key: &str) -> Option<PathBuf> {
    key.starts_with("net.")
        .then(|| Path::new("/proc/sys").join(key.replace('.', "/")))
}

/// `lo` up, as Docker has it in every container.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_context("opening a socket for lo")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a socket this function owns; ifreq is plain data.
    let result = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let result = check(rc);
        libc::close(fd);
        result
    };
    result.map_err(io_context("bringing lo up"))
}

/// One node namespace as found on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// `None` when the record is missing or unreadable (a crash while it
    /// was written): the node is still removed by name.
    pub record: Option<NodeRecord>,
    /// Its namespace is mounted.
    pub live: bool,
}

/// Every node directory under [`STATE_DIR`].
pub fn list() -> io::Result<Vec<Found>> {
    let entries = match std::fs::read_dir(STATE_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(format!("reading {STATE_DIR}"))(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_context(format!("reading {STATE_DIR}")))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let record = std::fs::read(entry.path().join(RECORD))
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok());
        found.push(Found {
            live: is_namespace(&netns_path(&name)),
            name,
            record,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Whether `path` is a mounted namespace file.
pub fn is_namespace(path: &Path) -> bool {
    let Ok(c) = cstring(path) else {
        return false;
    };
    // SAFETY: statfs is plain data; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == NSFS_MAGIC
    }
}

/// (device, inode) of a namespace: what `/proc/PID/ns/net` of every
/// process in it also stats to.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Host pids of every process in the network namespace at `netns`.
pub fn pids_in(netns: &Path) -> Vec<i32> {
    identity(netns)
        .map(|id| pids_in_any(&[id]))
        .unwrap_or_default()
}

/// Host pids of every process in one of the namespaces `ids`: one pass
/// over /proc, whatever the number of namespaces.
fn pids_in_any(ids: &[(u64, u64)]) -> Vec<i32> {
    if ids.is_empty() {
        return Vec::new();
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            identity(Path::new(&format!("/proc/{pid}/ns/net"))).is_some_and(|id| ids.contains(&id))
        })
        .collect()
}

/// Rounds of kill-and-rescan before giving up on a process that keeps
/// forking.
const KILL_ROUNDS: usize = 50;

/// Kills every process in node namespace `name`, unmounts and deletes the
/// namespace (its veths go with it) and the node's directory. Gone already
/// is fine.
pub fn remove(name: &str) -> io::Result<()> {
    let mut results = remove_many(&[name.to_owned()]);
    results.pop().map(|(_, r)| r).unwrap_or(Ok(()))
}

/// [`remove`] for several nodes, with one /proc scan per round for all of
/// them (a teardown of 200 nodes would otherwise scan /proc 200 times).
pub fn remove_many(names: &[String]) -> Vec<(String, io::Result<()>)> {
    let ids: Vec<(u64, u64)> = names
        .iter()
        .filter_map(|n| identity(&netns_path(n)))
        .collect();
    let mut survivors = Vec::new();
    for round in 0..=KILL_ROUNDS {
        let pids = pids_in_any(&ids);
        if pids.is_empty() {
            break;
        }
        if round == KILL_ROUNDS {
            survivors = pids;
            break;
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions. The pid was in a
            // node's namespace a moment ago; pids are not reused that fast.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if !survivors.is_empty() {
        return names
            .iter()
            .map(|name| {
                let e = io::Error::other(format!(
                    "processes {survivors:?} in the lab's network namespaces survive SIGKILL"
                ));
                (name.clone(), Err(e))
            })
            .collect();
    }
    // Each unmount waits for an RCU grace period: many at a time.
    let chunk = names.len().div_ceil(UNMOUNTERS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|name| (name.clone(), unmount_and_delete(name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec![(String::new(), Err(io::Error::other("panicked")))])
            })
            .collect()
    })
}

/// Threads that unmount namespaces at the same time.
const UNMOUNTERS: usize = 16;

fn unmount_and_delete(name: &str) -> io::Result<()> {
    let netns = netns_path(name);
    if let Ok(c) = cstring(&netns) {
        // SAFETY: a valid NUL-terminated path. EINVAL (not a mount point)
        // and ENOENT are fine: a crash between creating and mounting.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    match std::fs::remove_file(&netns) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_context(format!("removing {}", netns.display()))(e)),
    }
    if let Ok(c) = cstring(&bpffs_path(name)) {
        // SAFETY: as above; a node without a BPF filesystem has no such
        // mount point (ENOENT). Detached, its pins are freed with it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let state = state_path(name);
    match std::fs::remove_dir_all(&state) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_context(format!("removing {}", state.display()))(e)),
    }
}

/// Opens node namespace `name` for `setns`.
pub fn open(name: &str) -> io::Result<File> {
    let path = netns_path(name);
    let file = File::open(&path).map_err(io_context(format!("opening {}", path.display())))?;
    if !is_namespace(&path) {
        return Err(io::Error::other(format!(
            "{} is not a mounted network namespace",
            path.display()
        )));
    }
    debug_assert!(file.as_raw_fd() >= 0);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_sysctls_map_to_proc_sys() {
        assert_eq!(
            sysctl_path("net.ipv4.conf.all.arp_ignore").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
        assert!(sysctl_path("kernel.shmmax").is_none());
    }

    #[test]
    fn paths_follow_the_name() {
        assert_eq!(netns_path("labctl-a-b"), Path::new("/run/netns/labctl-a-b"));
        assert_eq!(
            out_path("labctl-a-b"),
            Path::new("/run/labctl/netns/labctl-a-b/out")
        );
    }
}
