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
//! Frames are sent through pnet's sender. They are received with our own
//! `recvfrom` on the same socket because pnet's receiver discards the
//! `sockaddr_ll`, whose `sll_pkttype` tells an outgoing frame from an
//! incoming one.

use std::cell::Cell;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use pnet::datalink::{self, Channel, DataLinkSender, NetworkInterface};

use super::{Datalink, DatalinkError, DatalinkKind, Direction, OpenOptions, Received, Stats};

/// Big enough for a GSO frame (up to 64 KiB plus headers), which AF_PACKET
/// hands out whole on veth.
const RECV_BUFFER_BYTES: usize = 256 * 1024;
/// A send that cannot get onto the socket in this time is an error, not a
/// hang.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

pub struct AfPacket {
    iface: String,
    sender: Box<dyn DataLinkSender>,
    /// The socket pnet owns (and closes when `sender` is dropped).
    fd: RawFd,
    buffer: Vec<u8>,
    capture: bool,
    /// `PACKET_STATISTICS` resets the kernel's counters on every read.
    dropped: Cell<u64>,
}

impl AfPacket {
    pub fn open(iface: &str, options: &OpenOptions) -> Result<Self, DatalinkError> {
        let interface = find_interface(iface)?;
        let socket = new_socket(iface)?;
        if !options.capture {
            set_ignore_outgoing(&socket, iface)?;
        }
        let fd = socket.as_raw_fd();
        let config = datalink::Config {
            socket_fd: Some(socket.into_raw_fd()),
            promiscuous: options.capture,
            write_timeout: Some(SEND_TIMEOUT),
            ..Default::default()
        };
        let sender = match datalink::channel(&interface, config) {
            Ok(Channel::Ethernet(sender, _receiver)) => sender,
            Ok(_) => {
                return Err(unavailable("pnet returned a channel that is not Ethernet"));
            }
            Err(source) => return Err(io_error("binding AF_PACKET socket", iface, source)),
        };
        Ok(AfPacket {
            iface: iface.to_owned(),
            sender,
            fd,
            buffer: vec![0; RECV_BUFFER_BYTES],
            capture: options.capture,
            dropped: Cell::new(0),
        })
    }

    /// Waits until the socket is readable. `false` on timeout and when a
    /// signal interrupted the wait, so the tool can look at its stop flag.
    fn wait_readable(&self, timeout: Duration) -> Result<bool, DatalinkError> {
        let mut pollfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
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
                    Err(io_error("waiting for a frame", &self.iface, err))
                }
            }
            0 => Ok(false),
            _ if pollfd.revents & libc::POLLIN != 0 => Ok(true),
            _ => Err(io_error(
                "waiting for a frame",
                &self.iface,
                io::Error::other(format!("poll reported events {:#x}", pollfd.revents)),
            )),
        }
    }

    /// Reads one queued frame; `None` when nothing is queued.
    fn read_frame(&mut self) -> Result<Option<(usize, Direction)>, DatalinkError> {
        // SAFETY: an all-zero sockaddr_ll is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut from_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: the buffer and the address outlive the call and their
        // lengths are the ones passed.
        let len = unsafe {
            libc::recvfrom(
                self.fd,
                self.buffer.as_mut_ptr().cast(),
                self.buffer.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if len < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(io_error("receiving a frame", &self.iface, err)),
            };
        }
        let direction = if from.sll_pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        };
        Ok(Some((len as usize, direction)))
    }
}

impl Datalink for AfPacket {
    fn describe(&self) -> String {
        DatalinkKind::AfPacket.to_string()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        match self.sender.send_to(frame, None) {
            Some(Ok(())) => Ok(()),
            Some(Err(source)) => Err(io_error("sending a frame", &self.iface, source)),
            None => Err(unavailable("pnet's sender refused the frame")),
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Read before waiting: a draining tool asks with a zero timeout.
            if let Some((len, direction)) = self.read_frame()? {
                // Belt and braces where PACKET_IGNORE_OUTGOING is not enough
                // (it only covers frames sent through this device).
                if direction == Direction::Out && !self.capture {
                    continue;
                }
                return Ok(Some(Received {
                    frame: &self.buffer[..len],
                    direction,
                }));
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            if left.is_zero() || !self.wait_readable(left)? {
                return Ok(None);
            }
        }
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
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io_error(
            "setting PACKET_IGNORE_OUTGOING (needs Linux 4.20 or later)",
            iface,
            io::Error::last_os_error(),
        ));
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
