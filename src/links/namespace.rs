//! Working inside a node's network namespace without moving any tokio
//! worker into it.
//!
//! `setns` switches only the calling thread, and under a multi-threaded
//! runtime that thread runs whatever task comes next, so namespace work
//! happens on a fresh std thread that does `setns`, does the work and ends.
//! A netlink socket keeps the namespace it was created in: the thread only
//! creates the socket (registered with the caller's tokio runtime), and the
//! requests then run as ordinary async code.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use rtnetlink::Handle;

use super::LinkError;

/// A node's network namespace, held open by a file descriptor, so it stays
/// the same namespace even if the pid is reused.
pub struct Netns {
    path: PathBuf,
    file: File,
}

/// The namespace file of host process `pid` (a container's init).
pub fn pid_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

impl Netns {
    /// The network namespace of host process `pid` (a container's init).
    pub fn of_pid(pid: u32) -> Result<Self, LinkError> {
        Self::open(&pid_path(pid))
    }

    /// The network namespace at `path`: `/proc/PID/ns/net`, or a named
    /// namespace's bind mount (`/run/netns/NAME`).
    pub fn open(path: &Path) -> Result<Self, LinkError> {
        let file = File::open(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (wiring links needs root)"
            } else {
                ""
            };
            LinkError::io(format!(
                "opening the network namespace {}{hint}",
                path.display()
            ))(e)
        })?;
        Ok(Netns {
            path: path.to_owned(),
            file,
        })
    }

    /// The file it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor for netlink's IFLA_NET_NS_FD.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `work` on a dedicated thread inside the namespace and returns
    /// its result; the thread ends with it.
    pub async fn run<T, F>(&self, doing: &str, work: F) -> Result<T, LinkError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, LinkError> + Send + 'static,
    {
        let netns = self
            .file
            .as_fd()
            .try_clone_to_owned()
            .map_err(LinkError::io(format!(
                "{doing}: duplicating the namespace fd"
            )))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let doing_in_thread = doing.to_owned();
        std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || {
                // SAFETY: `netns` is an open namespace descriptor; setns only
                // changes this thread, which nothing else runs on.
                let entered = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                let result = if entered == 0 {
                    work()
                } else {
                    Err(LinkError::io(format!(
                        "{doing_in_thread}: entering the namespace"
                    ))(std::io::Error::last_os_error()))
                };
                let _ = tx.send(result);
            })
            .map_err(LinkError::io(format!("{doing}: starting a thread")))?;
        rx.await.map_err(|_| {
            LinkError::io(format!("{doing}: the namespace thread died"))(std::io::Error::other(
                "thread panicked",
            ))
        })?
    }

    /// A netlink connection that acts inside this namespace.
    pub async fn netlink(&self) -> Result<Handle, LinkError> {
        let runtime = tokio::runtime::Handle::current();
        let doing = format!("opening netlink in the namespace {}", self.path.display());
        let doing_inside = doing.clone();
        self.run(&doing, move || {
            let _entered = runtime.enter();
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(LinkError::io(doing_inside))?;
            runtime.spawn(connection);
            Ok(handle)
        })
        .await
    }
}
