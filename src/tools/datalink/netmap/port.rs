//! A netmap port: `/dev/netmap` opened, an interface registered on it, the
//! shared region mapped. Dropping it unmaps the region and closes the file,
//! which takes the interface out of netmap mode.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::ptr::{self, NonNull};
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

    pub fn suffix(self) -> &'static str {
        match self {
            PortKind::Monitor => "/rt",
            PortKind::Nic => "",
        }
    }
}

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
    /// Registers `iface` (`netmap:IFACE`) in netmap mode on a fresh
    /// `/dev/netmap` file (`device`) and maps the shared region.
    pub fn open(device: File, iface: &str) -> Result<Port, DatalinkError> {
        let name = format!("netmap:{iface}");
        let registration = register(&device, iface, PortKind::Nic).map_err(|err| {
            let source = explain_invalid(err, iface);
            DatalinkError::Io {
                op: "register",
                iface: name.clone(),
                source,
            }
        })?;
        Port::mapped(device, registration, PortKind::Nic, name)
    }

    /// Opens a copy monitor of both directions of `iface`
    /// (`netmap:IFACE/rt`). The kernel refuses one (EINVAL) until another
    /// program holds `iface` in netmap mode: then the device comes back, to
    /// try again later.
    pub fn monitor(device: File, iface: &str) -> Result<Result<Port, File>, DatalinkError> {
        let name = format!("netmap:{iface}{}", PortKind::Monitor.suffix());
        match register(&device, iface, PortKind::Monitor) {
            Ok(registration) => Port::mapped(device, registration, PortKind::Monitor, name).map(Ok),
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok(Err(device)),
            Err(source) => Err(DatalinkError::Io {
                op: "open a monitor",
                iface: name,
                source,
            }),
        }
    }

    fn mapped(
        device: File,
        registration: nmreq_register,
        kind: PortKind,
        name: String,
    ) -> Result<Port, DatalinkError> {
        let mapping =
            map(&device, registration.nr_memsize).map_err(|source| DatalinkError::Io {
                op: "map the netmap memory",
                iface: name.clone(),
                source,
            })?;
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

    /// The port's descriptor, for a poll over several datalinks.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.file.as_fd()
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
    /// whether any has slots (see [`wait`] for signals).
    fn poll(&self, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
        let revents = wait(self.file.as_raw_fd(), events, timeout)?;
        if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            return Err(match self.kind {
                PortKind::Monitor => io::Error::new(io::ErrorKind::BrokenPipe, MONITORED_PORT_GONE),
                PortKind::Nic => io::Error::other(
                    "the kernel reported an error on the netmap port (did the interface go away?)",
                ),
            });
        }
        Ok(revents & events != 0)
    }
}

/// What a monitor's poll reports once the port it watches leaves netmap
/// mode (the program holding it closed it or died).
pub const MONITORED_PORT_GONE: &str =
    "the monitored interface left netmap mode (the program holding it closed it)";

/// poll() on one descriptor for `events`, up to `timeout`; the `revents`,
/// 0 on a timeout. A signal ends a wait for POLLIN at once (0, as a
/// timeout): `Datalink::recv` promises that, so a tool sees its stop flag
/// without waiting out its timeout. A wait for POLLOUT resumes until the
/// timeout: a send must not fail because a signal came.
fn wait(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pollfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up, so that a sub-millisecond wait still waits.
        let millis = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, for the duration of the call.
        let rc = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
            if events & libc::POLLIN != 0 || left.is_zero() {
                return Ok(0);
            }
            continue;
        }
        return Ok(pollfd.revents);
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

/// netmap answers EINVAL, and says why only in the kernel log, when the
/// interface's MTU exceeds its buffers (`buf_size`): that case gets the
/// sentence labctl's preflight prints.
fn explain_invalid(err: io::Error, iface: &str) -> io::Error {
    if err.raw_os_error() != Some(libc::EINVAL) {
        return err;
    }
    let (Ok(mtu), Ok(sizes)) = (
        interface_mtu(iface),
        super::BufferSizes::read(Path::new(super::SYSFS)),
    ) else {
        return err;
    };
    match sizes.check_nic(mtu) {
        Err(too_small) => io::Error::new(io::ErrorKind::InvalidInput, too_small),
        Ok(()) => err,
    }
}

/// The interface's MTU (SIOCGIFMTU, which needs no privilege).
pub fn interface_mtu(iface: &str) -> io::Result<u32> {
    // SAFETY: a plain socket call; the descriptor is owned just below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket owned by nothing else.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if iface.is_empty() || iface.len() >= request.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    for (dst, src) in request.ifr_name.iter_mut().zip(iface.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_mtu of this ifreq.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut request) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the ifru_mtu member.
    let mtu = unsafe { request.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other(format!("MTU {mtu}")))
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
            Some(libc::ENXIO | libc::ENODEV) => {
                unavailable(format!("{device} has no driver: {load}"))
            }
            Some(libc::EACCES | libc::EPERM) => unavailable(format!(
                "{device} cannot be opened ({err}): netmap needs read-write access to it (root; \
                 no capability) and, in a container, the device passed in"
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

    extern "C" fn ignore_signal(_: libc::c_int) {}

    /// Runs `wait` on a thread that gets SIGUSR2 every 20 ms until it
    /// returns (so one signal surely lands inside poll); its result and how
    /// long it took.
    fn wait_under_signals(
        fd: RawFd,
        events: libc::c_short,
        timeout: Duration,
    ) -> (io::Result<libc::c_short>, Duration) {
        use std::os::unix::thread::JoinHandleExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::thread;
        // SAFETY: a handler that does nothing, for SIGUSR2, which nothing
        // else in the tests uses; without SA_RESTART (poll never restarts).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as *const () as libc::sighandler_t;
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
                0
            );
        }
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let start = Instant::now();
        let waiter = thread::spawn(move || {
            let result = wait(fd, events, timeout);
            finished.store(true, Ordering::SeqCst);
            result
        });
        while !done.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
            if !done.load(Ordering::SeqCst) {
                // SAFETY: the thread is alive until it sets `done` and
                // joined only below; SIGUSR2 is handled.
                unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGUSR2) };
            }
        }
        let result = waiter.join().unwrap();
        (result, start.elapsed())
    }

    fn pipe() -> (File, File) {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) },
            0
        );
        // SAFETY: both descriptors are fresh and owned by nothing else.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_signal_ends_a_receive_wait_at_once() {
        let (read_end, _write_end) = pipe();
        let (result, took) =
            wait_under_signals(read_end.as_raw_fd(), libc::POLLIN, Duration::from_secs(10));
        assert_eq!(result.unwrap(), 0, "nothing arrived: like a timeout");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    #[test]
    fn a_signal_does_not_end_a_send_wait() {
        use std::io::Write;
        let (_read_end, mut write_end) = pipe();
        // Fill the pipe, so that POLLOUT waits.
        while write_end.write(&[0; 4096]).is_ok() {}
        let timeout = Duration::from_millis(300);
        let (result, took) = wait_under_signals(write_end.as_raw_fd(), libc::POLLOUT, timeout);
        assert_eq!(result.unwrap(), 0, "still full at the timeout");
        assert!(took >= timeout, "a signal cut the wait short: {took:?}");
    }

    #[test]
    fn a_ready_descriptor_reports_its_events() {
        use std::io::Write;
        let (read_end, mut write_end) = pipe();
        write_end.write_all(b"x").unwrap();
        let revents = wait(read_end.as_raw_fd(), libc::POLLIN, Duration::from_secs(1)).unwrap();
        assert_ne!(revents & libc::POLLIN, 0);
    }

    #[test]
    fn the_mtu_of_loopback_is_read() {
        assert_eq!(interface_mtu("lo").unwrap(), 65536);
        assert!(interface_mtu("nosuchif0").is_err());
    }

    #[test]
    fn a_character_device_is_opened() {
        // /dev/null stands in for /dev/netmap: the check is about the path.
        assert!(open_device(Path::new("/dev/null")).is_ok());
    }
}
