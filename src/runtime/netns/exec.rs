//! A host process inside a netns node, set up the way `docker exec` sets
//! one up in a container, as far as a bare namespace allows.
//!
//! Between fork and exec, in the child only (async-signal-safe calls on
//! memory prepared before the fork, never a tokio worker switching
//! namespaces):
//!
//! 1. `setsid`: a session of its own, so a Ctrl-C at labctl's terminal
//!    reaches labctl, which stops the steps itself, as with Docker.
//! 2. `setns` into the node's network namespace.
//! 3. `unshare` a mount and a UTS namespace: the node's directory is
//!    bind-mounted on `/lab/out` and the tools on `/lab/bin` (read-only),
//!    seen by this process and its children only, and the hostname is
//!    the node's name; the node's `binds` are mounted over their targets,
//!    host paths that must exist (checked before the node is made), and a
//!    node that holds BPF sees its own BPF filesystem at `/sys/fs/bpf`. Mounts
//!    propagate from the host into it (slave), so they die with the process
//!    and hold nothing of the host.
//! 4. Capabilities: the bounding, permitted, effective, inheritable and
//!    ambient sets are exactly what the node's datalinks need and its
//!    `capabilities` name, so after exec root holds those (as a container
//!    started with `CapDrop: ALL` and that `CapAdd`), a program that is
//!    not root keeps them too (ambient), and `no_new_privs` keeps it from
//!    gaining more.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::OnceLock;

use super::ns::{self, NodeRecord};
use crate::lab::Capability;

/// Where a node sees its output directory and the tools.
pub const OUT_MOUNT: &str = "/lab/out";
pub const BIN_MOUNT: &str = "/lab/bin";
/// Host programs after the tools, as in an image that sets no `PATH`.
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The bit mask of capabilities named `names`; an unknown name is an error.
pub fn capability_mask(names: &[String]) -> io::Result<u64> {
    names.iter().try_fold(0u64, |mask, name| {
        let cap = Capability::from_name(name)
            .ok_or_else(|| io::Error::other(format!("unknown capability {name}")))?;
        Ok(mask | 1 << cap.number())
    })
}

/// The highest capability this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The empty host directories the node mounts on. They stay: removing one
/// would lazily unmount it in another lab's running steps.
fn mount_points() -> io::Result<()> {
    static MADE: OnceLock<Result<(), String>> = OnceLock::new();
    MADE.get_or_init(|| {
        for dir in [OUT_MOUNT, BIN_MOUNT] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {dir} on the host: {e}"))?;
        }
        Ok(())
    })
    .clone()
    .map_err(io::Error::other)
}

/// How a step's process ended, as Docker reports it: its code, or 128 plus
/// the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => 255,
    }
}

/// A command that runs `argv` in node namespace `name`, not yet started.
/// Its stdio is the caller's to set.
pub fn command(
    name: &str,
    node: &str,
    record: &NodeRecord,
    tools: &Path,
    argv: &[String],
) -> io::Result<tokio::process::Command> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "an empty command"))?;
    mount_points()?;
    let setup = ChildSetup {
        netns: ns::open(name)?.into(),
        out: path_c(&ns::out_path(name))?,
        tools: path_c(tools)?,
        tools_locked: locked_flags(tools),
        hostname: node.as_bytes().to_vec(),
        binds: record
            .binds
            .iter()
            .map(|b| {
                let locked = b.read_only.then(|| locked_flags(&b.host));
                Ok((path_c(&b.host)?, path_c(&b.target)?, locked))
            })
            .collect::<io::Result<_>>()?,
        bpffs: if record.bpffs {
            Some(path_c(&ns::bpffs_path(name))?)
        } else {
            None
        },
        keep: capability_mask(&record.caps)?,
        last_cap: last_cap(),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", format!("{BIN_MOUNT}:{HOST_PATH}"))
        .env("HOSTNAME", node)
        .env("HOME", "/root")
        .current_dir("/")
        .kill_on_drop(false);
    for pair in &record.env {
        if let Some((k, v)) = pair.split_once('=') {
            cmd.env(k, v);
        }
    }
    // SAFETY: the closure only makes async-signal-safe system calls on
    // memory allocated before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
    Ok(cmd)
}

/// The flags of the mount holding `path` that a read-only remount of a
/// bind of it must repeat: in a user namespace (a rootless run,
/// [`super::rootless`]) the kernel refuses a remount that would drop
/// `nosuid`, `nodev`, `noexec` or an atime flag of a mount it inherited.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = path_c(path) else { return 0 };
    // SAFETY: statvfs is plain data; the path is NUL-terminated.
    let flags = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_flag
    };
    [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| flags & st != 0)
    .fold(0, |acc, (_, ms)| acc | ms)
}

fn path_c(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// What the child does before exec; everything is prepared in the parent.
struct ChildSetup {
    netns: OwnedFd,
    out: CString,
    tools: CString,
    /// The mount flags of the tools' filesystem that a read-only remount
    /// must keep ([`locked_flags`]).
    tools_locked: libc::c_ulong,
    hostname: Vec<u8>,
    /// The node's binds: source, target (an existing host path), and for a
    /// read-only one the flags its remount keeps.
    binds: Vec<(CString, CString, Option<libc::c_ulong>)>,
    /// The node's own BPF filesystem, seen at `/sys/fs/bpf`.
    bpffs: Option<CString>,
    keep: u64,
    last_cap: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn rc(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl ChildSetup {
    /// Runs in the forked child; see the module documentation.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: every call is async-signal-safe, every pointer points at
        // memory owned by `self` (prepared before the fork) or a static.
        unsafe {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            rc(libc::setns(self.netns.as_raw_fd(), libc::CLONE_NEWNET))?;
            rc(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
            rc(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ))?;
            self.bind(&self.out, c"/lab/out", None)?;
            self.bind(&self.tools, c"/lab/bin", Some(self.tools_locked))?;
            for (source, target, read_only) in &self.binds {
                self.bind(source, target, *read_only)?;
            }
            if let Some(bpffs) = &self.bpffs {
                self.bind(bpffs, c"/sys/fs/bpf", None)?;
            }
            rc(libc::sethostname(
                self.hostname.as_ptr().cast(),
                self.hostname.len(),
            ))?;
            rc(libc::chdir(c"/lab/out".as_ptr()))?;
            for cap in 0..=self.last_cap {
                if cap >= 64 || self.keep & (1 << cap) == 0 {
                    // EINVAL: a capability this kernel does not have.
                    let r = libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
                    if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            rc(libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            ))?;
            let mut header = CapHeader {
                version: CAP_V3,
                pid: 0,
            };
            let low = self.keep as u32;
            let high = (self.keep >> 32) as u32;
            let data = [
                CapData {
                    effective: low,
                    permitted: low,
                    inheritable: low,
                },
                CapData {
                    effective: high,
                    permitted: high,
                    inheritable: high,
                },
            ];
            rc(libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) as libc::c_int)?;
            // Ambient needs each one permitted and inheritable: set above.
            for cap in 0..=self.last_cap.min(63) {
                if self.keep & (1 << cap) != 0 {
                    rc(libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    ))?;
                }
            }
            rc(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        Ok(())
    }

    /// # Safety
    /// In the child only; `source` and `target` are valid C strings.
    unsafe fn bind(
        &self,
        source: &CString,
        target: &std::ffi::CStr,
        read_only: Option<libc::c_ulong>,
    ) -> io::Result<()> {
        rc(libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ))?;
        if let Some(locked) = read_only {
            rc(libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                std::ptr::null(),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_map_to_their_numbers() {
        let caps = [
            "NET_RAW".to_owned(),
            "SYS_ADMIN".to_owned(),
            "IPC_LOCK".to_owned(),
            "BPF".to_owned(),
        ];
        assert_eq!(
            capability_mask(&caps).unwrap(),
            1 << 13 | 1 << 21 | 1 << 14 | 1 << 39
        );
        assert!(capability_mask(&["NET_RAWR".to_owned()]).is_err());
    }

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
    }
}
