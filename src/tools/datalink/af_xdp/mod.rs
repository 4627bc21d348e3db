//! The af_xdp datalink: an AF_XDP socket fed by a tiny XDP program of our
//! own, in pure Rust on the raw syscalls (no libbpf/libxdp, nothing read
//! from disk at run time, so the static tools work in a FROM-scratch
//! image). See docs/af_xdp.md for the design.
//!
//! - [`bpf`]: the XSKMAP, the redirect program and the BPF link that
//!   attaches it (detached by the kernel when the tool exits, however).
//! - [`xsk`]: the socket, its UMEM and rings.
//! - [`chunks`]: which UMEM chunk is whose, nothing read from the shared
//!   memory trusted.
//! - [`ring`]: the ring index logic, testable over plain memory.
//! - [`explain`]: errno -> "what is missing and what to do".

mod bpf;
mod chunks;
mod explain;
pub mod host;
mod ring;
mod xsk;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd};
use std::time::{Duration, Instant};

pub use bpf::XdpMode;
/// The UMEM and its rings over plain memory, for the fuzz target
/// `ring_af_xdp`, which plays a kernel that writes anything there.
#[cfg(feature = "fuzzing")]
pub use chunks::plain::{PlainXsk, RingName, RingWord};

use super::hub::Shareable;
use super::wait::{self, KernelBusyPoll, Next, WaitPolicy};
use super::{Datalink, DatalinkError, DatalinkKind, Direction, OpenOptions, Received, Stats};
use explain::Failure;

/// The Linux capabilities a process needs (Docker's CapAdd names) to use
/// the af_xdp datalink, measured (docs/af_xdp.md#privileges): BPF to
/// create the XSKMAP and load the XDP program, NET_ADMIN for the XSKMAP
/// and the XDP link, NET_RAW for the AF_XDP socket, and IPC_LOCK to exempt
/// the UMEM from the locked-memory limit, which the kernel counts per user
/// across all containers. Under Docker, bpf() also needs a seccomp profile
/// that allows it (labctl's own, `runtime::seccomp`).
pub const CAPABILITIES: &[&str] = &["BPF", "IPC_LOCK", "NET_ADMIN", "NET_RAW"];

/// Where labctl attached the program from the host and pinned its map
/// for the node ([`pinned_map`]): NET_RAW for the AF_XDP socket, IPC_LOCK
/// for the UMEM; opening the pin and updating the map need no capability
/// (Linux 6.5 or later: the pin's file permissions decide).
pub const PINNED_CAPABILITIES: &[&str] = &["IPC_LOCK", "NET_RAW"];

/// Where CAP_BPF cannot be granted (Docker before 23.0, Linux before 5.8):
/// SYS_ADMIN covers the BPF and NET_ADMIN checks, and Docker's default
/// seccomp profile allows bpf() with it. It makes the process root on the
/// host: labctl grants it only to a `privileged: true` node.
pub const SYS_ADMIN_CAPABILITIES: &[&str] = &["IPC_LOCK", "NET_RAW", "SYS_ADMIN"];

/// How long `open` keeps retrying while the interface's XDP hook or queue
/// is still held by a previous owner that is going away (the kernel
/// releases an AF_XDP socket's queue from a work queue, after close).
const BUSY_RETRY: Duration = Duration::from_secs(2);

const ETHERNET_HEADER: usize = 14;

/// How long `send` waits for the kernel to give a TX chunk back.
const TX_STALL: Duration = Duration::from_secs(1);

/// The mode the datalink obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    pub xdp: XdpMode,
    pub zero_copy: bool,
}

impl Mode {
    /// "native XDP, copy mode" and the like.
    pub fn describe(&self) -> String {
        let xdp = match self.xdp {
            XdpMode::Native => "native XDP",
            XdpMode::Generic => "generic XDP",
        };
        let copy = if self.zero_copy {
            "zero-copy mode"
        } else {
            "copy mode"
        };
        format!("{xdp}, {copy}")
    }
}

/// An AF_XDP socket on queue 0 of one interface, with the XDP program
/// that feeds it. Every frame arriving on the interface goes to this
/// socket and not to the kernel's stack while it is open.
///
/// Field order is drop order: the link goes first, so the program is
/// detached before the socket it redirects to is closed.
///
/// Where labctl attached the program from the host and pinned its map
/// for the node ([`pinned_map`]), the datalink only puts its socket in
/// that map, and takes it out again when dropped.
pub struct AfXdp {
    attached: Option<Attached>,
    map: bpf::XskMap,
    socket: xsk::XskSocket,
    iface: String,
    mode: Mode,
    /// The chunk of the frame last returned by `recv`, given back to the
    /// kernel on the next call.
    lent: Option<u64>,
    tx_dropped: u64,
    wait: WaitPolicy,
    /// With `--busy-poll`: what the kernel granted of its own.
    kernel_busy_poll: Option<KernelBusyPoll>,
    /// System calls made to have the kernel send (for the tests: none is
    /// made where the kernel did not ask for it).
    tx_kicks: u64,
    ifindex: u32,
    /// The last kick said ENETDOWN: frames on the TX ring wait there until
    /// the link is back, so nothing more is queued until it is.
    link_down: bool,
    /// On an interface with a qdisc of its own (a lab's rate limit or loss
    /// filter), frames are sent through this AF_PACKET socket instead of
    /// the TX ring: AF_XDP's transmit hands frames straight to the driver,
    /// skipping the qdisc and tc's egress hook, so the impairment would
    /// not apply. Receiving stays on the XDP socket.
    qdisc_tx: Option<super::af_packet::AfPacket>,
}

/// The program this datalink loaded and attached itself.
struct Attached {
    _link: bpf::XdpLink,
    _program: bpf::RedirectProgram,
}

/// Where labctl pins, in a Docker node whose XDP program it attached from
/// the host, the XSKMAP of each af_xdp interface: `/lab/xdp/<iface>` (a
/// bpffs directory of that node only). [`PIN_DIR_ENV`] names another
/// directory.
pub const PIN_DIR: &str = "/lab/xdp";

/// The environment variable that overrides [`PIN_DIR`]; labctl sets it
/// in the nodes it pins maps for.
pub const PIN_DIR_ENV: &str = "LABCTL_XDP_DIR";

/// The name of the empty directory beside a pin that says labctl attached
/// the program in generic mode (native otherwise): bpffs holds only pins
/// and directories.
fn generic_marker(iface: &str) -> String {
    format!("{iface}.generic")
}

/// The pinned XSKMAP labctl left for `iface`, and the mode its program
/// runs in; `None`: the datalink loads and attaches the program itself.
pub fn pinned_map(iface: &str) -> Option<(std::path::PathBuf, XdpMode)> {
    let dir = std::env::var_os(PIN_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| std::path::PathBuf::from(PIN_DIR), Into::into);
    let pin = dir.join(iface);
    if !pin.exists() {
        return None;
    }
    let mode = if dir.join(generic_marker(iface)).is_dir() {
        XdpMode::Generic
    } else {
        XdpMode::Native
    };
    Some((pin, mode))
}

impl AfXdp {
    /// Opens `iface`. Fails with [`DatalinkError::Unavailable`] naming
    /// what is missing (kernel support, a capability, memlock) when
    /// AF_XDP cannot be used here.
    pub fn open(iface: &str, options: &OpenOptions) -> Result<AfXdp, DatalinkError> {
        let ifindex = ifindex(iface)?;
        explain::check_single_queue(iface)?;
        raise_memlock_soft_limit();
        let deadline = Instant::now() + BUSY_RETRY;
        loop {
            let sizes = if options.bulk {
                xsk::Sizes::BULK
            } else if options.capture {
                xsk::Sizes::CAPTURE
            } else {
                xsk::Sizes::TOOL
            };
            match Self::try_open(iface, ifindex, sizes, options.wait) {
                Err(failure) if failure.is_busy() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(failure) => return Err(failure.explain(iface)),
                Ok(mut open) => {
                    if !options.capture && !super::af_packet::qdisc::nothing_to_bypass(ifindex) {
                        let kernel = OpenOptions {
                            capture: false,
                            wait: options.wait,
                            bulk: false,
                        };
                        open.qdisc_tx = Some(super::af_packet::AfPacket::open(iface, &kernel)?);
                    }
                    return Ok(open);
                }
            }
        }
    }

    fn try_open(
        iface: &str,
        ifindex: u32,
        sizes: xsk::Sizes,
        wait: WaitPolicy,
    ) -> Result<AfXdp, Failure> {
        if let Some((pin, xdp)) = pinned_map(iface) {
            return Self::try_open_pinned(iface, ifindex, sizes, wait, &pin, xdp);
        }
        let map = bpf::XskMap::create().map_err(Failure::CreateMap)?;
        let program = bpf::RedirectProgram::load(&map).map_err(Failure::LoadProgram)?;
        let socket = xsk::XskSocket::open(ifindex, sizes).map_err(Failure::Socket)?;
        map.insert(0, socket.as_fd()).map_err(Failure::UpdateMap)?;
        // The socket is in the map before the program is attached, so no
        // frame goes to the kernel once the program runs.
        let (link, xdp) = match bpf::XdpLink::attach(&program, ifindex, XdpMode::Native) {
            Ok(link) => (link, XdpMode::Native),
            Err(native) if explain::native_unsupported(&native) => {
                let link = bpf::XdpLink::attach(&program, ifindex, XdpMode::Generic)
                    .map_err(Failure::Attach)?;
                (link, XdpMode::Generic)
            }
            Err(native) => return Err(Failure::Attach(native)),
        };
        Ok(Self::assemble(
            Some(Attached {
                _link: link,
                _program: program,
            }),
            map,
            socket,
            iface,
            xdp,
            wait,
            ifindex,
        ))
    }

    /// The program is labctl's, already attached: open the socket and
    /// put it in the pinned map, nothing else (no CAP_BPF, no
    /// CAP_NET_ADMIN needed).
    fn try_open_pinned(
        iface: &str,
        ifindex: u32,
        sizes: xsk::Sizes,
        wait: WaitPolicy,
        pin: &std::path::Path,
        xdp: XdpMode,
    ) -> Result<AfXdp, Failure> {
        let map = bpf::XskMap::open_pinned(pin).map_err(|e| Failure::OpenPin(pin.to_owned(), e))?;
        let socket = xsk::XskSocket::open(ifindex, sizes).map_err(Failure::Socket)?;
        // Not over another live socket's entry: one owner per queue, as
        // the XDP hook gives when each tool attaches its own program.
        map.insert_new(0, socket.as_fd())
            .map_err(Failure::UpdateMap)?;
        Ok(Self::assemble(None, map, socket, iface, xdp, wait, ifindex))
    }

    fn assemble(
        attached: Option<Attached>,
        map: bpf::XskMap,
        socket: xsk::XskSocket,
        iface: &str,
        xdp: XdpMode,
        wait: WaitPolicy,
        ifindex: u32,
    ) -> AfXdp {
        let mode = Mode {
            xdp,
            zero_copy: socket.zero_copy(),
        };
        let kernel_busy_poll = wait
            .busy_poll
            .then(|| wait::enable_kernel_busy_poll(socket_fd(&socket)));
        AfXdp {
            attached,
            map,
            socket,
            iface: iface.to_owned(),
            mode,
            lent: None,
            tx_dropped: 0,
            wait,
            kernel_busy_poll,
            tx_kicks: 0,
            ifindex,
            link_down: false,
            qdisc_tx: None,
        }
    }

    /// True when labctl attached the program and this datalink only put
    /// its socket in labctl's map.
    pub fn uses_pinned_map(&self) -> bool {
        self.attached.is_none()
    }

    /// How many times `send` asked the kernel to transmit.
    pub fn tx_kicks(&self) -> u64 {
        self.tx_kicks
    }

    /// The mode obtained.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Frames the driver dropped on send (NET_XMIT_DROP, e.g. the veth
    /// peer's queue was full), as a full qdisc would on AF_PACKET.
    pub fn send_drops(&self) -> u64 {
        self.tx_dropped
    }

    fn io_error(&self, op: &'static str, source: io::Error) -> DatalinkError {
        DatalinkError::Io {
            op,
            iface: self.iface.clone(),
            source,
        }
    }

    /// Waits until the socket is readable, at most `timeout`. Returns
    /// false on timeout (or a signal, so the tool can look at it).
    fn wait_readable(&self, timeout: Duration) -> Result<bool, DatalinkError> {
        match poll_readable(self.socket.as_fd(), timeout) {
            Ok(ready) => Ok(ready),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(self.io_error("poll", e)),
        }
    }

    /// Makes the kernel transmit the queued frame, retrying while it asks
    /// for it, until nothing is left on the TX ring.
    fn flush_tx(&mut self) -> Result<(), DatalinkError> {
        let deadline = Instant::now() + TX_STALL;
        let mut before = self.socket.tx_in_flight();
        loop {
            // Where the kernel takes frames off the ring by itself (a
            // zero-copy driver that is awake), a kick would be wasted.
            let kicked = if self.socket.tx_needs_kick() {
                self.tx_kicks += 1;
                self.socket.kick_tx()
            } else {
                Ok(())
            };
            // EAGAIN in copy mode: the kernel sent its budget (32 frames
            // a call) and more are waiting, so kick again at once. Only a
            // kernel that took nothing is waited for (yielding the CPU
            // every 32 frames gave it away to other work on a busy machine).
            let mut again = false;
            match kicked {
                Ok(()) => {}
                // The driver dropped the frame (NET_XMIT_DROP), as a full
                // queue drops one on AF_PACKET; count it and go on.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.tx_dropped += 1,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => again = true,
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    self.link_down = true;
                    return Err(self.io_error(
                        "send",
                        io::Error::new(e.kind(), format!("{e}: bring the interface up")),
                    ));
                }
                Err(e) => return Err(self.io_error("send", e)),
            }
            let in_flight = self.socket.tx_in_flight();
            if in_flight == 0 {
                return Ok(());
            }
            if again && in_flight < before {
                before = in_flight;
                continue;
            }
            before = in_flight;
            if Instant::now() >= deadline {
                return Err(self.io_error(
                    "send",
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the kernel did not take the frame from the TX ring",
                    ),
                ));
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for AfXdp {
    /// In labctl's shared map, the entry goes before the socket: frames go
    /// back to the kernel at once (closing the socket would drop the entry
    /// too, a moment later).
    fn drop(&mut self) {
        if self.attached.is_none() {
            let _ = self.map.remove(0);
        }
    }
}

impl AfXdp {
    /// Refuses to queue while the link is known to be down (see
    /// `link_down`): the frames would be sent late, once it is back.
    fn check_link(&mut self) -> Result<(), DatalinkError> {
        if self.link_down {
            if !link_is_up(self.ifindex) {
                return Err(self.io_error(
                    "send",
                    io::Error::new(
                        io::ErrorKind::NetworkDown,
                        "Network is down: bring the interface up",
                    ),
                ));
            }
            self.link_down = false;
        }
        Ok(())
    }

    fn check_len(&self, frame: &[u8]) -> Result<(), DatalinkError> {
        // What AF_PACKET refuses too (shorter than an Ethernet header),
        // and what does not fit a UMEM chunk.
        if frame.len() < ETHERNET_HEADER || frame.len() > xsk::MAX_FRAME {
            return Err(self.io_error(
                "send",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "af_xdp sends frames of {ETHERNET_HEADER} to {} bytes, not {}",
                        xsk::MAX_FRAME,
                        frame.len()
                    ),
                ),
            ));
        }
        Ok(())
    }
}

/// True when the interface is up (IFF_UP), asked of the kernel by index
/// (SIOCGIFFLAGS on a throwaway socket). Not through /sys/class/net: a
/// process that entered a namespace without remounting /sys (the netns
/// runtime's steps) sees the host's interfaces there, and would take its
/// own interface for gone, never up again.
fn link_is_up(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: name has IF_NAMESIZE bytes, as if_indextoname requires.
    let found = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    if found.is_null() {
        return false;
    }
    // SAFETY: a plain socket call; the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: socket() returned a new descriptor nothing else owns.
    let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid; the name fits (IF_NAMESIZE).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_name.copy_from_slice(&name);
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of the
    // ifreq it is given, which lives across the call.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SIOCGIFFLAGS,
            &mut request,
        )
    };
    // SAFETY: on success the kernel filled the flags member of the union.
    rc == 0 && unsafe { request.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short != 0
}

impl Datalink for AfXdp {
    fn describe(&self) -> String {
        let mut text = format!("{}, {}", DatalinkKind::AfXdp, self.mode.describe());
        if let Some(granted) = &self.kernel_busy_poll {
            text.push_str(", ");
            text.push_str(&granted.describe());
        }
        if self.qdisc_tx.is_some() {
            text.push_str(", sending through the qdisc");
        }
        text
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        self.check_len(frame)?;
        if let Some(kernel) = self.qdisc_tx.as_mut() {
            return kernel.send(frame);
        }
        self.check_link()?;
        let deadline = Instant::now() + TX_STALL;
        while !self.socket.queue_for_send(frame) {
            // Every TX chunk is still with the kernel: have it finish.
            self.flush_tx()?;
            if Instant::now() >= deadline {
                return Err(self.io_error(
                    "send",
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no TX buffer came back from the kernel",
                    ),
                ));
            }
        }
        self.flush_tx()
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        if frames.is_empty() {
            return Ok(0);
        }
        for frame in frames {
            self.check_len(frame)?;
        }
        if let Some(kernel) = self.qdisc_tx.as_mut() {
            return kernel.send_batch(frames);
        }
        self.check_link()?;
        let deadline = Instant::now() + TX_STALL;
        loop {
            let queued = self.socket.queue_batch(frames);
            if queued > 0 {
                // One kick sends them all (the kernel takes a few dozen per
                // call in copy mode: flush_tx kicks until none is left).
                self.flush_tx()?;
                return Ok(queued);
            }
            self.flush_tx()?;
            if Instant::now() >= deadline {
                return Err(self.io_error(
                    "send",
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no TX buffer came back from the kernel",
                    ),
                ));
            }
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        if let Some(addr) = self.lent.take() {
            self.socket.recycle(addr);
        }
        let wait = self.wait.start(timeout);
        let kernel_polls = self.kernel_busy_poll.as_ref().is_some_and(|k| k.is_on());
        let (addr, len) = loop {
            if let Some(received) = self.socket.next_received() {
                break received;
            }
            // A receive call busy-polls the device (SO_BUSY_POLL) or wakes
            // a driver that asked for it; otherwise the ring is enough.
            if kernel_polls || self.socket.rx_needs_kick() {
                match self.socket.kick_rx() {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EAGAIN | libc::EBUSY | libc::EINTR)
                        ) => {}
                    Err(e) => return Err(self.io_error("receive", e)),
                }
                if let Some(received) = self.socket.next_received() {
                    break received;
                }
            }
            match wait.next() {
                Next::Spin => {}
                Next::Sleep(left) => {
                    if !self.wait_readable(left)? {
                        return Ok(None);
                    }
                }
                Next::Done => return Ok(None),
            }
        };
        self.lent = Some(addr);
        match self.socket.frame(addr, len) {
            Some(frame) => Ok(Some(Received {
                frame,
                direction: Direction::In,
            })),
            // next_received only returns frames inside the UMEM.
            None => Ok(None),
        }
    }

    /// The kernel fills the RX ring as frames come; a load of its producer
    /// index that finds new ones is this datalink's sync: each of them had
    /// arrived by then, so `synced` comes once a load, not once a frame.
    fn recv_queued_by_sync(
        &mut self,
        max: usize,
        synced: &mut dyn FnMut(),
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, DatalinkError> {
        if let Some(addr) = self.lent.take() {
            self.socket.recycle(addr);
        }
        let mut taken = 0;
        let mut loads = self.socket.rx_loads();
        while taken < max {
            let Some((addr, len)) = self.socket.next_received() else {
                break;
            };
            if self.socket.rx_loads() != loads {
                loads = self.socket.rx_loads();
                synced();
            }
            if let Some(frame) = self.socket.frame(addr, len) {
                each(Received {
                    frame,
                    direction: Direction::In,
                });
            }
            self.socket.recycle(addr);
            taken += 1;
        }
        Ok(taken)
    }

    fn stats(&self) -> Stats {
        Stats {
            dropped: self.socket.rx_drops(),
        }
    }

    fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        vec![self.socket.as_fd()]
    }
}

impl Shareable for AfXdp {
    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

fn socket_fd(socket: &xsk::XskSocket) -> std::os::fd::RawFd {
    std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd())
}

fn ifindex(iface: &str) -> Result<u32, DatalinkError> {
    let name = std::ffi::CString::new(iface)
        .map_err(|_| DatalinkError::NoSuchInterface(iface.to_owned()))?;
    // SAFETY: name is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(DatalinkError::NoSuchInterface(iface.to_owned())),
        index => Ok(index),
    }
}

/// Lifts the soft memlock limit to the hard one: on kernels before 5.11
/// BPF maps and programs are charged to it, and the UMEM always is unless
/// the process has CAP_IPC_LOCK. Raising a soft limit needs no privilege.
fn raise_memlock_soft_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0
        && limit.rlim_cur < limit.rlim_max
    {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above; failure leaves the limit as it was.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    }
}

/// poll(2) for POLLIN on one descriptor.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one live pollfd.
    let ret = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret > 0 && pollfd.revents & libc::POLLIN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_reads_as_the_user_sees_it() {
        let mode = Mode {
            xdp: XdpMode::Native,
            zero_copy: false,
        };
        assert_eq!(mode.describe(), "native XDP, copy mode");
        let mode = Mode {
            xdp: XdpMode::Generic,
            zero_copy: true,
        };
        assert_eq!(mode.describe(), "generic XDP, zero-copy mode");
    }

    #[test]
    fn unknown_interface_is_named() {
        match AfXdp::open("nosuchif0", &OpenOptions::default()) {
            Err(DatalinkError::NoSuchInterface(name)) => assert_eq!(name, "nosuchif0"),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("opened an interface that does not exist"),
        }
    }

    #[test]
    fn capabilities_are_docker_names() {
        for cap in CAPABILITIES
            .iter()
            .chain(SYS_ADMIN_CAPABILITIES)
            .chain(PINNED_CAPABILITIES)
        {
            assert!(
                !cap.starts_with("CAP_"),
                "Docker's CapAdd takes {cap} without CAP_"
            );
            assert!(cap.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert!(!CAPABILITIES.contains(&"SYS_ADMIN"));
        assert!(SYS_ADMIN_CAPABILITIES.contains(&"SYS_ADMIN"));
        // With labctl's pinned map: no BPF, no NET_ADMIN.
        assert_eq!(PINNED_CAPABILITIES, ["IPC_LOCK", "NET_RAW"]);
    }
}
