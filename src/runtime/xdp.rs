//! XDP programs labctl attaches from the host for af_xdp Docker nodes
//! that may not load BPF programs themselves ([`AfXdpGrant::Pinned`]):
//! one bpffs at [`BPF_ROOT`] (mounted if missing), a directory per node
//! named after its deploy (`<veth alias>:<node>`, so a teardown finds it
//! by lab, instance and run as it finds stray veths) holding
//! - `xdp/<iface>`: the pinned XSKMAP, the only part bind-mounted into
//!   the node (at [`crate::tools::datalink::af_xdp::PIN_DIR`], read-write
//!   so the node can open it for writing);
//! - `links/<iface>`: the pinned BPF link that keeps the program attached
//!   after labctl exits, seen by the host only.
//!
//! The program goes with the veth; the pins and the directory go at
//! teardown ([`remove_dirs`]), after a crash too (`labctl destroy`).
//!
//! [`AfXdpGrant::Pinned`]: super::privilege::AfXdpGrant::Pinned

use std::io;
use std::path::{Path, PathBuf};

use crate::links::Netns;
use crate::tools::datalink::af_xdp;

use super::error::RuntimeError;
use super::names::Scope;

/// The bpffs labctl pins into.
pub const BPF_ROOT: &str = "/run/labctl/bpf";

/// statfs(2)'s f_type of a bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The directory of one node (`alias` is its deploy's veth alias).
pub fn node_dir(root: &Path, alias: &str, node: &str) -> PathBuf {
    root.join(format!("{alias}:{node}"))
}

/// What is bind-mounted into the node.
pub fn map_dir(node_dir: &Path) -> PathBuf {
    node_dir.join("xdp")
}

fn link_dir(node_dir: &Path) -> PathBuf {
    node_dir.join("links")
}

/// Mounts a bpffs at `root` unless one is there, and creates a node's
/// (empty) directory in it: before the container is created, which
/// bind-mounts it.
pub fn prepare(root: &Path, node_dir: &Path) -> Result<(), RuntimeError> {
    ensure_bpffs(root)?;
    remove_dir(node_dir)?;
    for dir in [map_dir(node_dir), link_dir(node_dir)] {
        std::fs::create_dir_all(&dir)
            .map_err(RuntimeError::io(format!("creating {}", dir.display())))?;
    }
    Ok(())
}

fn ensure_bpffs(root: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(root)
        .map_err(RuntimeError::io(format!("creating {}", root.display())))?;
    if is_bpffs(root) {
        return Ok(());
    }
    // Two labctl processes mounting at once would stack two bpffs, the
    // second hiding what the first created: check and mount under a lock.
    let lock_path = root.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).map_err(RuntimeError::io(format!(
        "creating {}",
        lock_path.display()
    )))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(RuntimeError::Io {
            doing: format!("locking {}", lock_path.display()),
            cause: io::Error::last_os_error(),
        });
    }
    if is_bpffs(root) {
        return Ok(());
    }
    mount_bpffs(root).map_err(RuntimeError::io(format!(
        "mounting a bpffs at {}",
        root.display()
    )))
}

/// A fresh BPF filesystem on the directory `target`, root's only
/// (mode 0700), no devices, setuid or programs run from it.
pub(crate) fn mount_bpffs(target: &Path) -> io::Result<()> {
    let target = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid NUL-terminated strings; no data beyond the options.
    let mounted = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if mounted != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = c_path(path) else { return false };
    // SAFETY: statfs is plain data; c is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

fn c_path(path: &Path) -> Result<std::ffi::CString, RuntimeError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| RuntimeError::Io {
        doing: format!("using {}", path.display()),
        cause: io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"),
    })
}

/// Attaches labctl's XDP program to each of `ifaces` inside the namespace
/// `netns` and pins the maps and links in `node_dir`.
pub async fn attach(netns: &Path, node_dir: &Path, ifaces: &[String]) -> Result<(), RuntimeError> {
    let ns = Netns::open(netns)?;
    let (maps, links) = (map_dir(node_dir), link_dir(node_dir));
    let ifaces = ifaces.to_vec();
    let doing = format!("attaching XDP programs in {}", netns.display());
    let attached = ns
        .run(&doing, move || {
            Ok(ifaces
                .iter()
                .map(|iface| af_xdp::host::attach_and_pin(iface, &maps, &links).map(drop))
                .collect::<Result<Vec<()>, _>>())
        })
        .await?;
    attached.map(drop).map_err(|e| RuntimeError::Io {
        doing,
        cause: io::Error::other(e.to_string()),
    })
}

fn remove_dir(dir: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RuntimeError::Io {
            doing: format!("removing {}", dir.display()),
            cause: e,
        }),
        _ => Ok(()),
    }
}

/// Removes the node directories under `root` of every deploy in `scope`
/// (pins included: the programs' last references go with them) and
/// returns their names.
pub fn remove_dirs(root: &Path, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RuntimeError::Io {
                doing: format!("listing {}", root.display()),
                cause: e,
            })
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((alias, _node)) = name.rsplit_once(':') else {
            continue;
        };
        if scope.has_alias(alias) {
            remove_dir(&entry.path())?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::names::{Instance, RunId};

    #[test]
    fn a_bpffs_is_mounted_once_where_none_is() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            crate::runtime::skip::skip("mounting a bpffs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bpf");
        assert!(!is_bpffs(dir.path()));
        let node = node_dir(&root, "labctl:l:l:0123", "a");
        prepare(&root, &node).unwrap();
        assert!(is_bpffs(&root));
        assert!(map_dir(&node).is_dir() && link_dir(&node).is_dir());
        // Again: the same bpffs, not a second one on top.
        prepare(&root, &node_dir(&root, "labctl:l:l:0123", "b")).unwrap();
        assert!(node.exists(), "a second mount would hide a's directory");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = root.to_string_lossy().into_owned();
        assert_eq!(mounts.lines().filter(|l| l.contains(&here)).count(), 1);
        let target = c_path(&root).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) },
            0
        );
    }

    #[test]
    fn teardown_removes_the_directories_of_its_scope_only() {
        let root = tempfile::tempdir().unwrap();
        let run = RunId::random();
        let other_run = RunId::random();
        let alias = |lab: &str, instance: &str, run: &RunId| {
            crate::runtime::names::veth_alias(lab, &Instance::of_lab(instance), run)
        };
        let mine = alias("lab", "lab", &run);
        let dirs = [
            node_dir(root.path(), &mine, "a"),
            node_dir(root.path(), &mine, "b"),
            node_dir(root.path(), &alias("lab", "lab-2", &other_run), "a"),
            node_dir(root.path(), &alias("other", "other", &other_run), "a"),
        ];
        for dir in &dirs {
            std::fs::create_dir_all(map_dir(dir)).unwrap();
            std::fs::write(map_dir(dir).join("eth1"), b"pin").unwrap();
        }
        std::fs::create_dir(root.path().join("not-ours")).unwrap();
        let removed = remove_dirs(root.path(), &Scope::Instance("lab".into())).unwrap();
        assert_eq!(removed, [format!("{mine}:a"), format!("{mine}:b")]);
        assert!(!dirs[0].exists() && !dirs[1].exists());
        assert!(dirs[2].exists() && dirs[3].exists());
        // By lab name: every instance of it, not the other lab.
        let removed = remove_dirs(root.path(), &Scope::Named("lab".into())).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(dirs[3].exists() && root.path().join("not-ours").exists());
        // Nothing there: nothing to do.
        let gone = root.path().join("gone");
        assert!(remove_dirs(&gone, &Scope::Named("lab".into()))
            .unwrap()
            .is_empty());
    }
}
