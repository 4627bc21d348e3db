//! The af_packet datalink: the kernel's AF_PACKET sockets, opened through
//! pnet's datalink channel.
//!
//! We create the socket ourselves and hand it to pnet (`Config::socket_fd`)
//! for three things pnet cannot do:
//! - create it with protocol 0, so it queues nothing until pnet's `bind`
//!   attaches it to the interface (an `ETH_P_ALL` socket would first see
//!   frames of every interface);
//! - `PACKET_IGNORE_OUTGOING` for ping and pong, which must never take their
//!   own requests for answers;
//! - `PACKET_STATISTICS` for the capture's drop count.
//!
//! pnet binds the socket to the interface (and sets promiscuous mode for a
//! capture). Frames are then sent and received with our own calls on the
//! same socket (docs/performance.md has the measurements):
//! - `send`: pnet's sender polls for `POLLOUT` before every frame, a second
//!   system call per frame; we poll only when the socket is full;
//! - `recvfrom` for ping and pong, which want each frame as soon as it
//!   comes: pnet's receiver discards the `sockaddr_ll`, whose `sll_pkttype`
//!   tells an outgoing frame from an incoming one;
//! - a `TPACKET_V3` ring for the capture ([`ring`]), which must keep up
//!   with a flood of frames;
//! - `sendmmsg` for a batch (lab-gen), up to [`MAX_BATCH`] frames a call,
//!   and for a bulk sender `PACKET_QDISC_BYPASS` when the interface has no
//!   qdisc it would skip ([`qdisc`]); a `TPACKET_V2` receive ring for a
//!   bulk receiver (lab-sink, [`slots`]), `recvmmsg` ([`batch`]) where the
//!   ring cannot be had.
//!
//! Ping and pong read with `recvmsg` and `SO_TIMESTAMPNS`: the kernel's
//! receive time of each frame, from which lab-ping takes a reply's time
//! as iputils does ([`Datalink::received_at`]). A wait first spins on
//! non-blocking reads ([`super::wait`]), then sleeps in `ppoll`.
//!
//! A link that goes down makes the kernel unhook the socket and report
//! ENETDOWN once (as a pending socket error, a `POLLERR`); receiving then
//! just waits, and the kernel hooks the socket again when the link comes
//! back up. Sends on a down link fail with ENETDOWN, which the tools count
//! as lost frames ([`DatalinkError::is_link_down`]).

use std::cell::Cell;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use pnet::datalink::{self, Channel, DataLinkSender, NetworkInterface};

use super::wait::{self, KernelBusyPoll, Next, WaitPolicy};
use super::{Datalink, DatalinkError, DatalinkKind, Direction, OpenOptions, Received, Stats};

mod batch;
pub mod qdisc;
mod ring;
mod slots;

use ring::{RingFrame, RxRing};
use slots::{SlotFrame, SlotRing};

/// Big enough for a GSO frame (up to 64 KiB plus headers), which AF_PACKET
/// hands out whole on veth.
const RECV_BUFFER_BYTES: usize = 256 * 1024;
/// A send that cannot get onto the socket in this time is an error, not a
/// hang.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// The most frames one `sendmmsg` takes (the kernel's UIO_MAXIOV).
pub const MAX_BATCH: usize = 1024;

pub struct AfPacket {
    iface: String,
    fd: RawFd,
    receiver: Receiver,
    /// Owns the socket (pnet closes it when this is dropped, after the
    /// ring, which is declared before it, is unmapped).
    _owner: Box<dyn DataLinkSender>,
    capture: bool,
    /// The qdisc is bypassed (see [`qdisc`]).
    qdisc_bypass: bool,
    /// The interface has a qdisc of its own (a lab's rate limit or loss
    /// filter): batches go one frame a call, so a drop is known for the
    /// frame it hit (`sendmmsg` reports an error only when no frame went).
    shaped: bool,
    /// `PACKET_STATISTICS` resets the kernel's counters on every read.
    dropped: Cell<u64>,
    wait: WaitPolicy,
    /// With `--busy-poll`: what the kernel granted of its own.
    kernel_busy_poll: Option<KernelBusyPoll>,
    /// The kernel's receive time of the frame last lent out.
    received_at: Option<SystemTime>,
}

/// Where received frames come from.
enum Receiver {
    /// `recvfrom` into this buffer.
    Socket { buffer: Vec<u8> },
    /// The capture's ring.
    Ring(RxRing),
    /// A bulk receiver's ring (lab-sink, lab-gen).
    Slots(SlotRing),
    /// `recvmmsg` into slots: a bulk receiver where the ring could not be
    /// had.
    Batch(batch::Batch),
}

/// A frame taken from the receiver, not yet lent out.
#[derive(Clone, Copy)]
enum Taken {
    Buffer {
        len: usize,
        direction: Direction,
    },
    Ring(RingFrame),
    Slot(SlotFrame),
    Batch {
        slot: usize,
        len: usize,
        direction: Direction,
    },
}

impl Taken {
    fn direction(self) -> Direction {
        match self {
            Taken::Buffer { direction, .. } | Taken::Batch { direction, .. } => direction,
            Taken::Ring(frame) => frame.direction,
            Taken::Slot(frame) => frame.direction,
        }
    }
}

impl AfPacket {
    pub fn open(iface: &str, options: &OpenOptions) -> Result<Self, DatalinkError> {
        let interface = find_interface(iface)?;
        let socket = new_socket(iface)?;
        if !options.capture {
            set_ignore_outgoing(&socket, iface)?;
            // Without it a reply's time is when we read it; with it, when
            // the kernel received it (a capture's ring has its own).
            set_socket_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
                .map_err(|source| io_error("setting SO_TIMESTAMPNS", iface, source))?;
        }
        let kernel_busy_poll = options
            .wait
            .busy_poll
            .then(|| wait::enable_kernel_busy_poll(socket.as_raw_fd()));
        let shaped = !qdisc::nothing_to_bypass(interface.index);
        let qdisc_bypass = options.bulk
            && !shaped
            && set_socket_option(&socket, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS).is_ok();
        let fd = socket.as_raw_fd();
        let config = datalink::Config {
            socket_fd: Some(socket.into_raw_fd()),
            promiscuous: options.capture,
            ..Default::default()
        };
        let sender = match datalink::channel(&interface, config) {
            Ok(Channel::Ethernet(sender, _receiver)) => sender,
            Ok(_) => {
                return Err(unavailable("pnet returned a channel that is not Ethernet"));
            }
            Err(source) => return Err(io_error("binding AF_PACKET socket", iface, source)),
        };
        let receiver = if options.capture {
            let ring = RxRing::attach(fd)
                .map_err(|source| io_error("mapping a TPACKET_V3 receive ring", iface, source))?;
            Receiver::Ring(ring)
        } else if options.bulk {
            let slot_bytes = slots::slot_bytes(slots::mtu(fd, iface).unwrap_or(1500));
            match SlotRing::attach(fd, slot_bytes) {
                Ok(ring) => Receiver::Slots(ring),
                // An old kernel, or no memory for the ring: read the queue.
                Err(_) => Receiver::Batch(batch::Batch::new()),
            }
        } else {
            Receiver::Socket {
                buffer: vec![0; RECV_BUFFER_BYTES],
            }
        };
        Ok(AfPacket {
            iface: iface.to_owned(),
            fd,
            receiver,
            _owner: sender,
            capture: options.capture,
            qdisc_bypass,
            shaped,
            dropped: Cell::new(0),
            wait: options.wait,
            kernel_busy_poll,
            received_at: None,
        })
    }

    /// True when sends skip the qdisc (`PACKET_QDISC_BYPASS`).
    pub fn bypasses_qdisc(&self) -> bool {
        self.qdisc_bypass
    }

    /// Waits until the socket is readable (`POLLIN`) or writable
    /// (`POLLOUT`). `false` on timeout and when a signal interrupted the
    /// wait, so the tool can look at its stop flag. A socket error (the
    /// link went down: ENETDOWN) is taken off the socket and returned.
    fn wait_for(&self, events: libc::c_short, timeout: Duration) -> Result<bool, DatalinkError> {
        let mut pollfd = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        let timespec = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: pollfd and timespec are valid for the call; a null sigmask
        // keeps the current one.
        let ready = unsafe { libc::ppoll(&mut pollfd, 1, &timespec, std::ptr::null()) };
        match ready {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(io_error("waiting on the socket", &self.iface, err))
                }
            }
            0 => Ok(false),
            _ if pollfd.revents & events != 0 => Ok(true),
            _ if pollfd.revents & libc::POLLERR != 0 => match take_socket_error(self.fd) {
                // A send the qdisc dropped (sendmmsg reports it late).
                Some(err) if err.raw_os_error() == Some(libc::ENOBUFS) => Ok(false),
                Some(err) => Err(io_error("waiting on the socket", &self.iface, err)),
                None => Ok(false),
            },
            _ => Err(io_error(
                "waiting on the socket",
                &self.iface,
                io::Error::other(format!("poll reported events {:#x}", pollfd.revents)),
            )),
        }
    }

    /// [`Self::wait_for`] frames. A link that went down (its error is now
    /// cleared) is a wait that saw nothing: nothing comes until it is back
    /// up, and then the kernel hooks the socket in again by itself.
    fn wait_readable(&self, timeout: Duration) -> Result<bool, DatalinkError> {
        match self.wait_for(libc::POLLIN, timeout) {
            Err(error) if error.is_link_down() => Ok(false),
            other => other,
        }
    }

    /// Takes the next queued frame; `None` when nothing is queued.
    fn take(&mut self) -> Result<Option<Taken>, DatalinkError> {
        match &mut self.receiver {
            Receiver::Ring(ring) => Ok(ring.next().map(Taken::Ring)),
            Receiver::Slots(ring) => {
                let frame = ring.next();
                self.received_at = frame.and_then(SlotRing::received_at);
                Ok(frame.map(Taken::Slot))
            }
            Receiver::Batch(batch) => match batch.next(self.fd) {
                Ok(taken) => Ok(taken.map(|(slot, len, direction)| Taken::Batch {
                    slot,
                    len,
                    direction,
                })),
                Err(err)
                    if super::io_is_link_down(&err)
                        || err.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    Ok(None)
                }
                Err(err) => Err(io_error("receiving frames", &self.iface, err)),
            },
            Receiver::Socket { buffer } => {
                let Some(read) = read_frame(self.fd, buffer, &self.iface)? else {
                    return Ok(None);
                };
                self.received_at = read.at;
                Ok(Some(Taken::Buffer {
                    len: read.len,
                    direction: read.direction,
                }))
            }
        }
    }

    /// Lends out the bytes of a frame `take` returned.
    fn lend(&self, taken: Taken) -> Received<'_> {
        let frame = match (&self.receiver, taken) {
            (Receiver::Ring(ring), Taken::Ring(frame)) => ring.bytes(frame),
            (Receiver::Slots(ring), Taken::Slot(frame)) => ring.bytes(frame),
            (Receiver::Socket { buffer }, Taken::Buffer { len, .. }) => &buffer[..len],
            (Receiver::Batch(batch), Taken::Batch { slot, len, .. }) => batch.bytes(slot, len),
            // `take` returns what the receiver holds.
            _ => &[],
        };
        Received {
            frame,
            direction: taken.direction(),
        }
    }

    /// True when the capture's last frames are still in the block the
    /// kernel is filling.
    fn kernel_holds_frames(&self) -> bool {
        match &self.receiver {
            Receiver::Ring(ring) => ring.kernel_holds_frames(),
            Receiver::Socket { .. } | Receiver::Slots(_) | Receiver::Batch(_) => false,
        }
    }
}

/// A frame `read_frame` read: its length, which way it went, and when the
/// kernel received it.
struct Read {
    len: usize,
    direction: Direction,
    at: Option<SystemTime>,
}

/// Reads one queued frame into `buffer`; `None` when nothing is queued.
fn read_frame(fd: RawFd, buffer: &mut [u8], iface: &str) -> Result<Option<Read>, DatalinkError> {
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
    // Room for one SCM_TIMESTAMPNS (a timespec), aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: an all-zero msghdr is a valid value; its pointers are set
    // below.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    message.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = mem::size_of_val(&control);
    // SAFETY: the buffer, address and control area outlive the call, with
    // the lengths given.
    let len = unsafe { libc::recvmsg(fd, &mut message, libc::MSG_DONTWAIT) };
    if len < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            // The link went down: nothing to read until it is back up.
            // ENOBUFS is a send the qdisc dropped, reported late.
            _ if super::io_is_link_down(&err) || err.raw_os_error() == Some(libc::ENOBUFS) => {
                Ok(None)
            }
            _ => Err(io_error("receiving a frame", iface, err)),
        };
    }
    let direction = if from.sll_pkttype == libc::PACKET_OUTGOING {
        Direction::Out
    } else {
        Direction::In
    };
    Ok(Some(Read {
        len: len as usize,
        direction,
        at: kernel_timestamp(&message),
    }))
}

/// The `SCM_TIMESTAMPNS` of a received message, if the kernel gave one.
fn kernel_timestamp(message: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the CMSG macros walk the control area recvmsg filled, within
    // msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(message) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers from CMSG_FIRSTHDR/NXTHDR lie inside
        // the control area.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS carries one timespec; read
            // unaligned, as nothing promises its alignment.
            let time = unsafe {
                libc::CMSG_DATA(cmsg)
                    .cast::<libc::timespec>()
                    .read_unaligned()
            };
            let since_epoch = Duration::new(u64::try_from(time.tv_sec).ok()?, time.tv_nsec as u32);
            // A zero time: the frame was not timestamped.
            return (!since_epoch.is_zero()).then(|| SystemTime::UNIX_EPOCH + since_epoch);
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(message, cmsg) };
    }
    None
}

impl Datalink for AfPacket {
    fn describe(&self) -> String {
        match &self.kernel_busy_poll {
            None => DatalinkKind::AfPacket.to_string(),
            Some(granted) => format!("{}, {}", DatalinkKind::AfPacket, granted.describe()),
        }
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        let fd = self.fd;
        self.retrying_send(|| {
            // SAFETY: the frame outlives the call and its length is the one
            // passed; the socket is bound, so no address is needed.
            unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) }
        })
        .map(drop)
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        let frames = &frames[..frames.len().min(MAX_BATCH)];
        if frames.is_empty() {
            return Ok(0);
        }
        if self.shaped {
            // A qdisc that drops (ENOBUFS) consumes the frame: sendmmsg
            // would report it sent-short and the caller would send it
            // again, hiding the loss. One frame, one verdict.
            return self.send(frames[0]).map(|()| 1);
        }
        let mut iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|frame| libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: an all-zero msghdr is a valid value (no address,
                // no control data).
                let mut header: libc::mmsghdr = unsafe { mem::zeroed() };
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        let fd = self.fd;
        let sent = self.retrying_send(|| {
            // SAFETY: every header points at one iovec, every iovec at a
            // frame; all of them outlive the call. The kernel only reads
            // the frames (iov_base is *mut in the C type, never written).
            let sent = unsafe {
                libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, 0)
            };
            sent as isize
        })?;
        Ok(sent)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let wait = self.wait.start(timeout);
        let mut waited_for_kernel = false;
        loop {
            // Read before waiting: a draining tool asks with a zero timeout.
            if let Some(taken) = self.take()? {
                // Belt and braces where PACKET_IGNORE_OUTGOING is not enough
                // (it only covers frames sent through this device).
                if taken.direction() == Direction::Out && !self.capture {
                    continue;
                }
                return Ok(Some(self.lend(taken)));
            }
            match wait.next() {
                Next::Spin => {}
                Next::Sleep(left) => {
                    if !self.wait_readable(left)? {
                        return Ok(None);
                    }
                }
                // Frames the kernel still holds are queued too: a draining
                // capture waits (once) for their block to be handed over.
                Next::Done if !waited_for_kernel && self.kernel_holds_frames() => {
                    waited_for_kernel = true;
                    if !self.wait_readable(ring::RETIRE_TIMEOUT * 2)? {
                        return Ok(None);
                    }
                }
                Next::Done => return Ok(None),
            }
        }
    }

    fn received_at(&self) -> Option<SystemTime> {
        self.received_at
    }

    fn stats(&self) -> Stats {
        // SAFETY: an all-zero tpacket_stats is a valid value.
        let mut counters: libc::tpacket_stats = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the out-pointer and its length describe `counters`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut counters as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Stats::default();
        }
        self.dropped
            .set(self.dropped.get() + u64::from(counters.tp_drops));
        Stats {
            dropped: Some(self.dropped.get()),
        }
    }

    fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        // SAFETY: the socket stays open as long as self (`_owner` owns it).
        vec![unsafe { BorrowedFd::borrow_raw(self.fd) }]
    }
}

impl AfPacket {
    /// Runs `call` (a send; its result is the count sent, or -1 and errno)
    /// until it sends something, waiting for room while the socket is full
    /// (pnet made it non-blocking), at most [`SEND_TIMEOUT`].
    fn retrying_send(&self, mut call: impl FnMut() -> isize) -> Result<usize, DatalinkError> {
        let deadline = Instant::now().checked_add(SEND_TIMEOUT);
        loop {
            let sent = call();
            if sent >= 0 {
                return Ok(sent as usize);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                // A signal before anything was sent: the frame still has to go.
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    match left {
                        Some(left) if left.is_zero() => {
                            let timed_out = io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("the socket took nothing for {SEND_TIMEOUT:?}"),
                            );
                            return Err(io_error("sending a frame", &self.iface, timed_out));
                        }
                        _ => self.wait_for(libc::POLLOUT, left.unwrap_or(SEND_TIMEOUT))?,
                    };
                }
                _ => return Err(io_error("sending a frame", &self.iface, err)),
            }
        }
    }
}

/// Takes the pending error off a socket (`SO_ERROR`), if it has one.
fn take_socket_error(fd: RawFd) -> Option<io::Error> {
    let mut code: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the out-pointer and its length describe `code`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut code as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0 && code != 0).then(|| io::Error::from_raw_os_error(code))
}

fn find_interface(iface: &str) -> Result<NetworkInterface, DatalinkError> {
    datalink::interfaces()
        .into_iter()
        .find(|candidate| candidate.name == iface)
        .ok_or_else(|| DatalinkError::NoSuchInterface(iface.to_owned()))
}

/// A raw AF_PACKET socket that receives nothing until it is bound.
fn new_socket(iface: &str) -> Result<OwnedFd, DatalinkError> {
    // SAFETY: plain socket(2) call; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::PermissionDenied {
            return Err(unavailable(
                "opening an AF_PACKET socket needs CAP_NET_RAW: run as root or add NET_RAW to the container",
            ));
        }
        return Err(io_error("creating an AF_PACKET socket", iface, err));
    }
    // SAFETY: fd is a freshly created socket that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_ignore_outgoing(socket: &OwnedFd, iface: &str) -> Result<(), DatalinkError> {
    set_socket_option(socket, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING).map_err(|source| {
        io_error(
            "setting PACKET_IGNORE_OUTGOING (needs Linux 4.20 or later)",
            iface,
            source,
        )
    })
}

/// Turns a boolean socket option on.
fn set_socket_option(
    socket: &OwnedFd,
    level: libc::c_int,
    option: libc::c_int,
) -> Result<(), io::Error> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn unavailable(missing: &str) -> DatalinkError {
    DatalinkError::Unavailable {
        kind: DatalinkKind::AfPacket,
        missing: missing.to_owned(),
    }
}

fn io_error(op: &'static str, iface: &str, source: io::Error) -> DatalinkError {
    DatalinkError::Io {
        op,
        iface: iface.to_owned(),
        source,
    }
}
