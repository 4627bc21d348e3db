//! Sharing one interface between tools, for the user-space datalinks.
//!
//! AF_PACKET lets any number of sockets watch an interface; AF_XDP gives
//! each frame to exactly one socket, and what an AF_XDP socket sends in
//! copy mode skips the kernel's packet taps. So when lab-pong and
//! lab-capture run on the same interface, only one of them can own the
//! real socket. The hub makes the others see what they would see on
//! AF_PACKET:
//!
//! - The first tool to open the interface owns the real datalink and
//!   listens on an abstract unix socket named `labctl/<datalink>/<iface>`.
//!   Abstract names belong to the network namespace, so tools in different
//!   containers (or test namespaces) never meet.
//! - Later tools connect to it as clients (SOCK_SEQPACKET: one message per
//!   frame). The owner forwards to every client each frame it receives
//!   (direction In), and to capturing clients each frame any party sends
//!   (direction Out, the owner's own included, never back to its sender).
//!   It transmits the frames clients send it.
//! - The owner serves the hub while it waits in `recv`, which is where
//!   every tool spends its time; it never blocks on a client. A client too
//!   slow to read loses frames, counted and reported in its stats.
//! - When the owner goes away, the first client to notice takes over:
//!   it opens the real datalink and becomes the new hub.
//!
//! Nothing here knows about AF_XDP: any [`Shareable`] datalink works,
//! which is how the unit tests below run it over a fake one.

use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::wait::{Next, WaitPolicy};
use super::{Datalink, DatalinkError, DatalinkKind, Direction, OpenOptions, Received, Stats};

/// A datalink the hub can share: it must say when a frame is waiting.
pub trait Shareable: Datalink {
    /// A descriptor that polls readable when `recv` has a frame.
    fn poll_fd(&self) -> BorrowedFd<'_>;
}

/// Opens the real datalink; called by whoever becomes the owner.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Shareable>, DatalinkError>>;

// The messages, one per SOCK_SEQPACKET record. Client to hub:
//   HELLO     [HELLO, capture (0|1)]
//   TRANSMIT  [TRANSMIT, frame...]
// Hub to client:
//   WELCOME   [WELCOME, the owner's description (UTF-8)...]
//   FRAME     [FRAME, direction (0 in|1 out), drops so far (u64 LE), frame...]
const HELLO: u8 = 1;
const TRANSMIT: u8 = 2;
const WELCOME: u8 = 0x81;
const FRAME: u8 = 0x82;
const FRAME_HEADER: usize = 10;
const MAX_MESSAGE: usize = FRAME_HEADER + 65536;

/// How long a new client waits for the owner's welcome (the owner answers
/// from its next `recv`), and how long a client's send may block.
const WELCOME_WAIT: Duration = Duration::from_secs(5);
const CLIENT_SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to keep trying to either own or join a hub that is changing
/// hands.
const ESTABLISH_WAIT: Duration = Duration::from_secs(5);
/// Messages read from one client per pass, so one busy client cannot
/// starve the others or the wire.
const CLIENT_BURST: usize = 32;
/// While an owner spins on the wire, it looks at the hub's sockets (one
/// `poll` call) every this many looks when no tool shares the interface,
/// so that a spinning wait costs no system call per look yet a tool that
/// joins is welcomed within a few µs.
const LISTENER_EVERY: u32 = 64;

/// The hub's socket name for `iface` on datalink `kind`.
pub fn socket_name(kind: DatalinkKind, iface: &str) -> String {
    format!("labctl/{kind}/{iface}")
}

/// Opens `iface` through its hub: as the owner when no tool holds it yet,
/// else as a client of the tool that does.
pub fn open(
    kind: DatalinkKind,
    iface: &str,
    options: &OpenOptions,
    opener: Opener,
) -> Result<Shared, DatalinkError> {
    open_named(socket_name(kind, iface), kind, iface, options, opener)
}

/// [`open`] with an explicit socket name (tests use unique ones).
pub fn open_named(
    name: String,
    kind: DatalinkKind,
    iface: &str,
    options: &OpenOptions,
    opener: Opener,
) -> Result<Shared, DatalinkError> {
    let mut shared = Shared {
        role: None,
        name,
        kind,
        iface: iface.to_owned(),
        capture: options.capture,
        wait: options.wait,
        opener,
        earlier_drops: 0,
    };
    shared.role = Some(shared.establish()?);
    Ok(shared)
}

/// An interface opened through its hub.
pub struct Shared {
    /// Always Some after `open`; None only while changing hands.
    role: Option<Role>,
    name: String,
    kind: DatalinkKind,
    iface: String,
    capture: bool,
    wait: WaitPolicy,
    opener: Opener,
    /// Drops reported by hubs this tool was a client of before a takeover.
    earlier_drops: u64,
}

enum Role {
    Owner(Owner),
    Client(Client),
}

enum Outcome {
    Frame(Direction),
    Timeout,
    /// A signal interrupted the wait: return early so the tool sees it.
    Interrupted,
    /// Nothing for the tool (a welcome, an unknown message): keep waiting.
    Nothing,
    HubGone,
}

impl Shared {
    /// True when this tool owns the real datalink.
    pub fn is_owner(&self) -> bool {
        matches!(self.role, Some(Role::Owner(_)))
    }

    fn io(&self, op: &'static str, source: io::Error) -> DatalinkError {
        DatalinkError::Io {
            op,
            iface: self.iface.clone(),
            source,
        }
    }

    /// Becomes the owner if nobody is, else joins the owner.
    fn establish(&self) -> Result<Role, DatalinkError> {
        let address = SockAddr::unix(format!("\0{}", self.name))
            .map_err(|e| self.io("name the hub socket", e))?;
        let deadline = Instant::now() + ESTABLISH_WAIT;
        loop {
            match bind_listener(&address) {
                Ok(listener) => {
                    let real = (self.opener)()?;
                    return Ok(Role::Owner(Owner::new(real, listener, &self.iface)));
                }
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(e) => return Err(self.io("listen on the hub socket", e)),
            }
            match Client::connect(&address, self.capture) {
                Ok(client) => return Ok(Role::Client(client)),
                // The owner is between bind and listen, or just leaving.
                Err(e)
                    if e.raw_os_error() == Some(libc::ECONNREFUSED)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(self.io("join the tool that holds the interface", e)),
            }
        }
    }

    fn take_over(&mut self) -> Result<(), DatalinkError> {
        if let Some(Role::Client(client)) = self.role.take() {
            self.earlier_drops += client.dropped;
        }
        self.role = Some(self.establish()?);
        Ok(())
    }

    fn role_mut(&mut self) -> Result<&mut Role, DatalinkError> {
        let iface = self.iface.clone();
        self.role.as_mut().ok_or_else(|| DatalinkError::Io {
            op: "use the shared interface",
            iface,
            source: io::Error::other("a previous takeover failed"),
        })
    }
}

impl Datalink for Shared {
    fn describe(&self) -> String {
        match &self.role {
            Some(Role::Owner(owner)) => owner.real.describe(),
            Some(Role::Client(client)) => {
                let owner = client
                    .owner_description
                    .clone()
                    .unwrap_or_else(|| self.kind.to_string());
                format!("{owner}, shared with pid {}", client.owner_pid)
            }
            None => self.kind.to_string(),
        }
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        loop {
            let gone = match self.role_mut()? {
                Role::Owner(owner) => return owner.send(frame),
                Role::Client(client) => match client.send(frame) {
                    Ok(()) => return Ok(()),
                    Err(e) if hub_gone(&e) => true,
                    Err(e) => return Err(self.io("send through the hub", e)),
                },
            };
            if gone {
                self.take_over()?;
            }
        }
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        match self.role_mut()? {
            Role::Owner(owner) => owner.send_batch(frames),
            // A client's frames go one message each through the hub.
            Role::Client(_) => {
                for (sent, frame) in frames.iter().enumerate() {
                    if let Err(error) = self.send(frame) {
                        return if sent == 0 { Err(error) } else { Ok(sent) };
                    }
                }
                Ok(frames.len())
            }
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let deadline = Instant::now().checked_add(timeout);
        let (capture, wait) = (self.capture, self.wait);
        let direction = loop {
            let remaining =
                deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            let outcome = match self.role_mut()? {
                Role::Owner(owner) => owner.recv(remaining, capture, wait)?,
                Role::Client(client) => match client.recv(remaining, wait) {
                    Ok(outcome) => outcome,
                    Err(e) => return Err(self.io("receive through the hub", e)),
                },
            };
            match outcome {
                Outcome::Frame(direction) => break direction,
                Outcome::Timeout | Outcome::Interrupted => return Ok(None),
                // Only a client's read_message gives these, and its recv
                // loops over them.
                Outcome::Nothing => {}
                Outcome::HubGone => self.take_over()?,
            }
        };
        let frame = match self.role.as_ref() {
            Some(Role::Owner(owner)) => owner.frame.as_slice(),
            Some(Role::Client(client)) => client.frame(),
            None => return Ok(None),
        };
        Ok(Some(Received { frame, direction }))
    }

    /// An owner no tool shares the interface with takes the frames
    /// straight from the real datalink, at its syncs (nothing to forward);
    /// otherwise frame by frame, as `recv` forwards them.
    fn recv_queued_by_sync(
        &mut self,
        max: usize,
        synced: &mut dyn FnMut(),
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, DatalinkError> {
        if let Some(Role::Owner(owner)) = self.role.as_mut() {
            if owner.clients.is_empty() {
                return owner.real.recv_queued_by_sync(max, synced, each);
            }
        }
        super::recv_one_by_one(self, max, &mut |received| {
            synced();
            each(received);
        })
    }

    /// The owner's: the real datalink's, the hub's listener and its
    /// clients' (`recv` serves them all); a client's: its hub connection.
    fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        match &self.role {
            Some(Role::Owner(owner)) => {
                let mut fds = vec![owner.real.poll_fd(), owner.listener.as_fd()];
                fds.extend(owner.clients.iter().map(|c| c.socket.as_fd()));
                fds
            }
            Some(Role::Client(client)) => vec![client.socket.as_fd()],
            None => Vec::new(),
        }
    }

    fn stats(&self) -> Stats {
        let dropped = match &self.role {
            Some(Role::Owner(owner)) => owner.real.stats().dropped,
            Some(Role::Client(client)) => Some(client.dropped),
            None => None,
        };
        Stats {
            dropped: match (dropped, self.earlier_drops) {
                (None, 0) => None,
                (dropped, earlier) => Some(dropped.unwrap_or(0) + earlier),
            },
        }
    }
}

fn hub_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
    )
}

fn bind_listener(address: &SockAddr) -> io::Result<Socket> {
    let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
    listener.bind(address)?;
    listener.listen(16)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The tool that holds the real datalink. Field order is drop order: the
/// real datalink closes before the clients see the hub go, so the one
/// that takes over finds the interface (nearly) free.
struct Owner {
    real: Box<dyn Shareable>,
    listener: Socket,
    clients: Vec<Peer>,
    /// The frame `recv` returns.
    frame: Vec<u8>,
    /// Where client messages are read.
    message: Vec<u8>,
    iface: String,
}

struct Peer {
    socket: Socket,
    capture: bool,
    dropped: u64,
    /// Hung up or failed; removed once the pass over the clients is done,
    /// so indices stay valid meanwhile.
    gone: bool,
}

impl Owner {
    fn new(real: Box<dyn Shareable>, listener: Socket, iface: &str) -> Owner {
        Owner {
            real,
            listener,
            clients: Vec::new(),
            frame: Vec::with_capacity(MAX_MESSAGE),
            message: vec![0; MAX_MESSAGE],
            iface: iface.to_owned(),
        }
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        self.real.send(frame)?;
        self.fan_out(Direction::Out, frame, None);
        self.clients.retain(|c| !c.gone);
        Ok(())
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        let sent = self.real.send_batch(frames)?;
        if !self.clients.is_empty() {
            for frame in &frames[..sent] {
                self.fan_out(Direction::Out, frame, None);
            }
            self.clients.retain(|c| !c.gone);
        }
        Ok(sent)
    }

    /// Waits for a frame for the owner, serving the hub meanwhile. Frames
    /// clients send come back as Out when the owner captures. It spins on
    /// the wire first (as `policy` says), then sleeps in `poll` on the
    /// wire and the hub's sockets together.
    fn recv(
        &mut self,
        timeout: Duration,
        capture: bool,
        policy: WaitPolicy,
    ) -> Result<Outcome, DatalinkError> {
        let wait = policy.start(timeout);
        let mut looks = 0u32;
        loop {
            // The ring is looked at without a system call (AF_XDP).
            if let Some(direction) = self.take_from_wire()? {
                return Ok(Outcome::Frame(direction));
            }
            let next = wait.next();
            let sleep = match next {
                Next::Spin => {
                    looks = looks.wrapping_add(1);
                    if self.clients.is_empty() && looks % LISTENER_EVERY != 0 {
                        continue;
                    }
                    Duration::ZERO
                }
                Next::Sleep(left) => left,
                Next::Done if wait.interrupted() => return Ok(Outcome::Interrupted),
                // One last look at the hub's sockets, as a zero wait does.
                Next::Done => Duration::ZERO,
            };
            if let Some(outcome) = self.serve(sleep, capture)? {
                return Ok(outcome);
            }
            if next == Next::Done {
                return Ok(Outcome::Timeout);
            }
        }
    }

    /// One `poll` on the wire and the hub's sockets, up to `timeout`, and
    /// what it found: a frame for the owner, or a signal.
    fn serve(
        &mut self,
        timeout: Duration,
        capture: bool,
    ) -> Result<Option<Outcome>, DatalinkError> {
        let mut fds = Vec::with_capacity(2 + self.clients.len());
        fds.push(self.real.poll_fd());
        fds.push(self.listener.as_fd());
        fds.extend(self.clients.iter().map(|c| c.socket.as_fd()));
        let ready = match poll(&fds, timeout) {
            Ok(ready) => ready,
            // A signal: let the tool look at it.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                return Ok(Some(Outcome::Interrupted))
            }
            Err(e) => {
                return Err(DatalinkError::Io {
                    op: "wait for frames and the tools sharing the interface",
                    iface: self.iface.clone(),
                    source: e,
                })
            }
        };
        drop(fds);
        // The real datalink counts only when it has input: an error
        // or hang-up there would make every poll return at once.
        if ready.first().is_some_and(|r| r & libc::POLLIN != 0) {
            if let Some(direction) = self.take_from_wire()? {
                return Ok(Some(Outcome::Frame(direction)));
            }
        }
        if ready.get(1).is_some_and(|&r| r != 0) {
            self.accept_clients();
        }
        let readable: Vec<usize> = (0..self.clients.len())
            .filter(|i| ready.get(i + 2).is_some_and(|&r| r != 0))
            .collect();
        Ok(self.serve_clients(&readable, capture).map(Outcome::Frame))
    }

    /// Takes the waiting frame off the real datalink into `self.frame` and
    /// forwards it to the clients.
    fn take_from_wire(&mut self) -> Result<Option<Direction>, DatalinkError> {
        let direction = match self.real.recv(Duration::ZERO)? {
            Some(received) => {
                self.frame.clear();
                self.frame.extend_from_slice(received.frame);
                received.direction
            }
            None => return Ok(None),
        };
        let frame = std::mem::take(&mut self.frame);
        self.fan_out(direction, &frame, None);
        self.frame = frame;
        self.clients.retain(|c| !c.gone);
        Ok(Some(direction))
    }

    fn accept_clients(&mut self) {
        while let Ok((socket, _)) = self.listener.accept() {
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            // A bigger queue per client means fewer drops for a slow one;
            // the kernel caps it at its wmem_max.
            let _ = socket.set_send_buffer_size(1 << 20);
            let mut welcome = vec![WELCOME];
            welcome.extend_from_slice(self.real.describe().as_bytes());
            if send_message(&socket, &[&welcome], true).is_ok() {
                self.clients.push(Peer {
                    socket,
                    capture: false,
                    dropped: 0,
                    gone: false,
                });
            }
        }
    }

    /// Reads what the readable clients sent: transmits their frames and
    /// forwards them. Returns Out when one of them is for a capturing owner
    /// (the rest waits for the next call).
    fn serve_clients(&mut self, readable: &[usize], capture: bool) -> Option<Direction> {
        let mut for_owner = None;
        'clients: for &index in readable {
            for _ in 0..CLIENT_BURST {
                let Some(client) = self.clients.get_mut(index).filter(|c| !c.gone) else {
                    continue 'clients;
                };
                let len = match (&client.socket).read(&mut self.message) {
                    Ok(0) => {
                        client.gone = true;
                        continue 'clients;
                    }
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue 'clients,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        client.gone = true;
                        continue 'clients;
                    }
                };
                match self.message[..len] {
                    [HELLO, flag] => client.capture = flag != 0,
                    [TRANSMIT, ..] => {
                        let message = std::mem::take(&mut self.message);
                        let frame = &message[1..len];
                        if self.real.send(frame).is_err() {
                            // The client's send already returned: count it
                            // as lost rather than failing the owner.
                            self.clients[index].dropped += 1;
                        } else {
                            self.fan_out(Direction::Out, frame, Some(index));
                            if capture {
                                self.frame.clear();
                                self.frame.extend_from_slice(frame);
                                for_owner = Some(Direction::Out);
                            }
                        }
                        self.message = message;
                        if for_owner.is_some() {
                            break 'clients;
                        }
                    }
                    // Unknown messages are skipped.
                    _ => {}
                }
            }
        }
        self.clients.retain(|c| !c.gone);
        for_owner
    }

    /// Sends a copy of a frame to every client that should see it, never
    /// waiting: a client whose queue is full loses the frame.
    fn fan_out(&mut self, direction: Direction, frame: &[u8], except: Option<usize>) {
        for (index, client) in self.clients.iter_mut().enumerate() {
            if client.gone
                || Some(index) == except
                || (direction == Direction::Out && !client.capture)
            {
                continue;
            }
            let mut header = [0u8; FRAME_HEADER];
            header[0] = FRAME;
            header[1] = u8::from(direction == Direction::Out);
            header[2..10].copy_from_slice(&client.dropped.to_le_bytes());
            match send_message(&client.socket, &[&header, frame], true) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => client.dropped += 1,
                Err(_) => client.gone = true,
            }
        }
    }
}

/// A tool using the interface through the owner.
struct Client {
    socket: Socket,
    owner_pid: u32,
    owner_description: Option<String>,
    /// The last message read; a FRAME's frame follows its header.
    message: Vec<u8>,
    message_len: usize,
    /// Frames the hub could not give us, as it last reported.
    dropped: u64,
}

impl Client {
    fn connect(address: &SockAddr, capture: bool) -> io::Result<Client> {
        let socket = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        socket.connect(address)?;
        socket.set_write_timeout(Some(CLIENT_SEND_TIMEOUT))?;
        let owner_pid = peer_pid(&socket).unwrap_or(0);
        send_message(&socket, &[&[HELLO, u8::from(capture)]], false)?;
        let mut client = Client {
            socket,
            owner_pid,
            owner_description: None,
            message: vec![0; MAX_MESSAGE],
            message_len: 0,
            dropped: 0,
        };
        // The welcome comes first; without it the client still works, it
        // just cannot name the owner's mode.
        let deadline = Instant::now() + WELCOME_WAIT;
        while client.owner_description.is_none() && Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Outcome::HubGone = client.read_message(remaining)? {
                return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
            }
        }
        Ok(client)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        send_message(&self.socket, &[&[TRANSMIT], frame], false).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the tool holding the interface (pid {}) did not take the frame \
                         within {CLIENT_SEND_TIMEOUT:?}",
                        self.owner_pid
                    ),
                )
            } else {
                e
            }
        })
    }

    /// The next frame from the hub: non-blocking reads while `policy`
    /// spins, then a sleeping one.
    fn recv(&mut self, timeout: Duration, policy: WaitPolicy) -> io::Result<Outcome> {
        let wait = policy.start(timeout);
        let mut slice = Duration::ZERO;
        loop {
            match self.read_message(slice)? {
                Outcome::Nothing | Outcome::Timeout => {}
                outcome => return Ok(outcome),
            }
            slice = match wait.next() {
                Next::Spin => Duration::ZERO,
                Next::Sleep(left) => left,
                Next::Done if wait.interrupted() => return Ok(Outcome::Interrupted),
                Next::Done => return Ok(Outcome::Timeout),
            };
        }
    }

    /// Reads one message. A welcome is recorded and reads as Nothing (the
    /// caller loops); a frame is kept in `message`.
    fn read_message(&mut self, timeout: Duration) -> io::Result<Outcome> {
        match poll(&[self.socket.as_fd()], timeout) {
            Ok(ready) if ready.first().is_some_and(|&r| r != 0) => {}
            Ok(_) => return Ok(Outcome::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Outcome::Interrupted),
            Err(e) => return Err(e),
        }
        let len = match (&self.socket).read(&mut self.message) {
            Ok(0) => return Ok(Outcome::HubGone),
            Ok(len) => len,
            Err(e) if hub_gone(&e) => return Ok(Outcome::HubGone),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Outcome::Interrupted),
            Err(e) => return Err(e),
        };
        match self.message[..len] {
            [WELCOME, ref description @ ..] => {
                self.owner_description = Some(String::from_utf8_lossy(description).into_owned());
                Ok(Outcome::Nothing)
            }
            [FRAME, direction, d0, d1, d2, d3, d4, d5, d6, d7, ..] => {
                self.dropped = u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]);
                self.message_len = len;
                Ok(Outcome::Frame(if direction == 0 {
                    Direction::In
                } else {
                    Direction::Out
                }))
            }
            // Unknown or short messages are skipped.
            _ => Ok(Outcome::Nothing),
        }
    }

    fn frame(&self) -> &[u8] {
        self.message
            .get(FRAME_HEADER..self.message_len)
            .unwrap_or_default()
    }
}

/// Sends one message made of `parts`, without SIGPIPE, without waiting
/// when `nonblocking`.
fn send_message(socket: &Socket, parts: &[&[u8]], nonblocking: bool) -> io::Result<()> {
    let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut flags = libc::MSG_NOSIGNAL;
    if nonblocking {
        flags |= libc::MSG_DONTWAIT;
    }
    loop {
        match socket.send_vectored_with_flags(&slices, flags) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The pid of the process at the other end (SO_PEERCRED).
fn peer_pid(socket: &Socket) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is a live ucred of `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (ret == 0).then_some(cred.pid as u32)
}

/// poll(2) for input on `fds`; returns each one's revents (input, or a
/// hang-up or error that the next read reports).
fn poll(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<libc::c_short>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so a sub-millisecond wait does not spin.
    let millis = timeout
        .as_micros()
        .div_ceil(1000)
        .min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: pollfds is a live array of pollfds.len() entries.
    let ret = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pollfds.iter().map(|p| p.revents).collect())
}

#[cfg(test)]
mod tests;
