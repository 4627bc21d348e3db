//! A netmap port: `/dev/netmap` opened, an interface registered on it, the
//! shared region mapped. Dropping it unmaps the region and closes the file,
//! which takes the interface out of netmap mode.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::thread;
use std::time::{Duration, Instant};

use super::super::{DatalinkError, DatalinkKind};
use super::abi::{
    nmreq_header, nmreq_register, NETMAP_API, NETMAP_REQ_IFNAMSIZ, NETMAP_REQ_REGISTER, NIOCCTRL,
    NIOCRXSYNC, NIOCTXSYNC, NR_MONITOR_RX, NR_MONITOR_TX, NR_REG_ALL_NIC,
};
use super::io::KernelSync;
use super::ring::{Interface, Region};

/// What to register on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// The interface's NIC rings (`netmap:IFACE`): the program sends and
    /// receives; the interface enters netmap mode.
    Nic,
    /// A copy monitor of both directions (`netmap:IFACE/rt`): the program
    /// sees a copy of every frame crossing the rings of a port that
    /// another program holds in netmap mode, and takes nothing from it.
    Monitor,
}

impl PortKind {
    fn flags(self) -> u64 {
        match self {
            // Not NR_ZCOPY_MON: a zero-copy monitor swaps buffers with the
            // monitored rings and would hold up lab-pong when it lags.
            PortKind::Monitor => NR_MONITOR_TX | NR_MONITOR_RX,
            PortKind::Nic => 0,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            PortKind::Monitor => "/rt",
            PortKind::Nic => "",
        }
    }
}

/// How long a monitor waits for its interface to enter netmap mode: in a
/// lab, lab-capture and the program it watches start at about the same
/// time.
const MONITOR_WAIT: Duration = Duration::from_secs(5);

/// The shared region as mapped; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned, unmapped once.
        // Nothing uses the region afterwards: Port owns the mapping and
        // the Netmap datalink drops its rings with the port.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[derive(Debug)]
pub struct Port {
    // Unmap before closing: the file's close unregisters the port.
    mapping: Mapping,
    file: File,
    registration: nmreq_register,
    kind: PortKind,
    name: String,
}

impl Port {
    /// Registers `iface` on a fresh `/dev/netmap` file (`device`) and maps
    /// the shared region.
    pub fn open(device: File, iface: &str, kind: PortKind) -> Result<Port, DatalinkError> {
        let name = format!("netmap:{iface}{}", kind.suffix());
        let io_error = |op: &'static str| {
            let name = name.clone();
            move |source: io::Error| DatalinkError::Io {
                op,
                iface: name,
                source,
            }
        };
        let registration = match kind {
            PortKind::Nic => register(&device, iface, kind).map_err(io_error("register"))?,
            PortKind::Monitor => register_monitor(&device, iface).map_err(io_error(
                "open a monitor (it watches a port that another program, such as \
                 lab-pong --datalink netmap, holds in netmap mode)",
            ))?,
        };
        let mapping =
            map(&device, registration.nr_memsize).map_err(io_error("map the netmap memory"))?;
        Ok(Port {
            mapping,
            file: device,
            registration,
            kind,
            name,
        })
    }

    /// `netmap:IFACE`, or `netmap:IFACE/rt` for a monitor.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port's rings, found in the mapped region.
    pub fn interface(&self) -> Result<Interface, DatalinkError> {
        // SAFETY: the mapping is ours, read-write, page-aligned, and lives
        // as long as self; the Netmap datalink keeps the rings found here
        // next to this port and drops them together.
        let region = unsafe { Region::new(self.mapping.base, self.mapping.len) };
        region
            .interface(self.registration.nr_offset)
            .map_err(|e| DatalinkError::Io {
                op: "find the rings in the netmap memory",
                iface: self.name.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })
    }

    fn sync(&self, request: u32) -> io::Result<()> {
        // SAFETY: NIOCTXSYNC and NIOCRXSYNC take no argument.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request as libc::Ioctl) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// poll() on the port: netmap syncs the rings for `events` and reports
    /// whether any has slots. Interrupted waits resume until `timeout`.
    fn poll(&self, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut fd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events,
                revents: 0,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            // Round up, so that a sub-millisecond wait still waits.
            let millis = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd, for the duration of the call.
            let rc = unsafe { libc::poll(&mut fd, 1, millis) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted && !left.is_zero() {
                    continue;
                }
                return Err(err);
            }
            if fd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                return Err(io::Error::other(match self.kind {
                    PortKind::Monitor => {
                        "the monitored interface left netmap mode (the program holding it closed it)"
                    }
                    PortKind::Nic => {
                        "the kernel reported an error on the netmap port (did the interface go away?)"
                    }
                }));
            }
            return Ok(fd.revents & events != 0);
        }
    }
}

impl KernelSync for Port {
    fn txsync(&mut self) -> io::Result<()> {
        self.sync(NIOCTXSYNC)
    }

    fn rxsync(&mut self) -> io::Result<()> {
        self.sync(NIOCRXSYNC)
    }

    fn poll_rx(&mut self, timeout: Duration) -> io::Result<bool> {
        self.poll(libc::POLLIN, timeout)
    }

    fn poll_tx(&mut self, timeout: Duration) -> io::Result<bool> {
        self.poll(libc::POLLOUT, timeout)
    }
}

/// `nr_name`: the interface name, NUL-terminated. The `netmap:` prefix and
/// suffixes such as `/rt` are user-space syntax (libnetmap's); the kernel
/// gets the bare name and the mode and flags in `nmreq_register`.
fn port_name(iface: &str) -> io::Result<[u8; NETMAP_REQ_IFNAMSIZ]> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {iface:?} {why}"),
        )
    };
    if iface.is_empty() || iface.len() >= NETMAP_REQ_IFNAMSIZ || iface.contains('\0') {
        return Err(invalid("is empty, too long or contains NUL"));
    }
    // The kernel reads these as a VALE switch port or a netmap pipe.
    if iface.starts_with("vale") || iface.contains(['{', '}']) {
        return Err(invalid("would be read by netmap as a VALE port or a pipe"));
    }
    let mut name = [0u8; NETMAP_REQ_IFNAMSIZ];
    name[..iface.len()].copy_from_slice(iface.as_bytes());
    Ok(name)
}

fn register(device: &File, iface: &str, kind: PortKind) -> io::Result<nmreq_register> {
    let mut body = nmreq_register {
        nr_mode: NR_REG_ALL_NIC,
        nr_flags: kind.flags(),
        ..nmreq_register::default()
    };
    let mut header = nmreq_header {
        nr_version: NETMAP_API,
        nr_reqtype: NETMAP_REQ_REGISTER,
        nr_reserved: 0,
        nr_name: port_name(iface)?,
        nr_options: 0,
        nr_body: ptr::addr_of_mut!(body) as usize as u64,
    };
    // SAFETY: NIOCCTRL reads and writes the header, and the body through
    // nr_body; both live on this stack frame until the call returns.
    let rc = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            NIOCCTRL as libc::Ioctl,
            ptr::addr_of_mut!(header),
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        // On a version mismatch the kernel answers with its own version.
        if header.nr_version != NETMAP_API {
            return Err(io::Error::other(format!(
                "the netmap kernel module speaks API {}, labctl speaks {NETMAP_API} ({err})",
                header.nr_version
            )));
        }
        if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
            return Err(io::Error::other(format!(
                "{err}: the driver has no native netmap support and the module's admode (1) \
                 forbids emulation; set /sys/module/netmap/parameters/admode to 0"
            )));
        }
        return Err(err);
    }
    Ok(body)
}

/// A monitor needs its interface in netmap mode already (the kernel
/// answers EINVAL otherwise), so it retries for a while.
fn register_monitor(device: &File, iface: &str) -> io::Result<nmreq_register> {
    let deadline = Instant::now() + MONITOR_WAIT;
    loop {
        match register(device, iface, PortKind::Monitor) {
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                return Err(io::Error::other(format!(
                    "{iface} did not enter netmap mode within {MONITOR_WAIT:?} ({err})"
                )));
            }
            other => return other,
        }
    }
}

fn map(device: &File, memsize: u64) -> io::Result<Mapping> {
    let len = usize::try_from(memsize)
        .ok()
        .filter(|&len| len > 0)
        .ok_or_else(|| io::Error::other(format!("the kernel reported a {memsize}-byte region")))?;
    // SAFETY: a fresh shared mapping of the device; no existing memory is
    // affected. The kernel decides its content.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            device.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base =
        NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap returned address 0"))?;
    Ok(Mapping { base, len })
}

/// Opens the netmap control device, or says in one line what is missing:
/// the message names the device and the netmap kernel module.
pub fn open_device(path: &Path) -> Result<File, DatalinkError> {
    use std::os::unix::fs::FileTypeExt;

    let unavailable = |missing: String| DatalinkError::Unavailable {
        kind: DatalinkKind::Netmap,
        missing,
    };
    let device = path.display();
    let load =
        "the netmap kernel module is not loaded on this host (load it with `modprobe netmap` \
                or `insmod netmap.ko`)";
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(unavailable(format!("{device} does not exist: {load}")));
        }
        Err(err) => return Err(unavailable(format!("{device}: {err}"))),
    };
    // A bind mount of a missing host path makes Docker create a directory.
    if !metadata.file_type().is_char_device() {
        return Err(unavailable(format!(
            "{device} is not a character device: {load}"
        )));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ENXIO | libc::ENODEV) => unavailable(format!("{device} has no driver: {load}")),
            Some(libc::EACCES | libc::EPERM) => unavailable(format!(
                "{device} cannot be opened ({err}): netmap needs root (CAP_NET_ADMIN) and the device \
                 passed into the container"
            )),
            _ => unavailable(format!("{device} cannot be opened: {err}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_are_the_bare_interface() {
        let name = port_name("eth1").unwrap();
        assert_eq!(&name[..5], b"eth1\0");
        assert!(port_name("").is_err());
        assert!(port_name(&"x".repeat(64)).is_err());
        assert!(port_name("vale0:1").is_err());
        assert!(port_name("eth1{0").is_err());
        assert!(
            port_name("veth-a").is_ok(),
            "'-' is libnetmap syntax, not kernel syntax"
        );
    }

    #[test]
    fn monitors_ask_for_both_directions_in_copy_mode() {
        assert_eq!(PortKind::Monitor.flags(), 0x300);
        assert_eq!(PortKind::Nic.flags(), 0);
    }

    #[test]
    fn a_missing_device_names_the_device_and_the_module() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netmap");
        let err = open_device(&path).unwrap_err().to_string();
        assert!(err.starts_with("netmap is not available: "), "{err}");
        assert!(
            err.contains(&format!("{} does not exist", path.display())),
            "{err}"
        );
        assert!(err.contains("netmap kernel module is not loaded"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn a_directory_or_file_in_place_of_the_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_device(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a character device"), "{err}");
        assert!(err.contains("netmap kernel module"), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(open_device(&file).is_err());
    }

    #[test]
    fn a_character_device_is_opened() {
        // /dev/null stands in for /dev/netmap: the check is about the path.
        assert!(open_device(Path::new("/dev/null")).is_ok());
    }
}
