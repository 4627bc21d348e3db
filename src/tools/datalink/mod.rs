//! Datalinks: the packet I/O a tool uses on one interface.
//!
//! Every tool talks to the wire through [`Datalink`], so AF_PACKET, AF_XDP
//! and netmap are interchangeable at run time (`--datalink`, or the
//! per-interface environment variable that labctl sets in each node).

use std::fmt;
use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub mod af_packet;
pub mod af_xdp;
#[cfg(test)]
pub mod fake;
pub mod hub;
pub mod netmap;
pub mod wait;

pub use wait::WaitPolicy;

/// Which packet I/O a tool uses on an interface.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum DatalinkKind {
    /// The kernel's AF_PACKET sockets (through pnet).
    AfPacket,
    /// AF_XDP sockets fed by an XDP redirect program.
    AfXdp,
    /// netmap rings (needs the netmap kernel module and /dev/netmap).
    Netmap,
}

impl DatalinkKind {
    pub const ALL: [DatalinkKind; 3] = [Self::AfPacket, Self::AfXdp, Self::Netmap];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AfPacket => "af_packet",
            Self::AfXdp => "af_xdp",
            Self::Netmap => "netmap",
        }
    }

    /// The environment variable through which labctl tells the tools in a
    /// node which datalink an interface uses: `LABCTL_DATALINK_<iface>`.
    /// Interface names are used verbatim (validation rejects `=`).
    pub fn env_var(iface: &str) -> String {
        format!("LABCTL_DATALINK_{iface}")
    }

    /// The datalink labctl configured for `iface`, if any.
    pub fn from_env(iface: &str) -> Option<Result<Self, UnknownDatalink>> {
        std::env::var(Self::env_var(iface)).ok().map(|v| v.parse())
    }
}

impl fmt::Display for DatalinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown datalink {0:?} (expected af_packet, af_xdp or netmap)")]
pub struct UnknownDatalink(pub String);

impl FromStr for DatalinkKind {
    type Err = UnknownDatalink;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownDatalink(s.to_owned()))
    }
}

/// Which way a received frame went, where the datalink can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Arrived on the interface.
    In,
    /// Left through the interface (seen by a capture, or by a tap).
    Out,
}

/// One frame handed out by [`Datalink::recv`]; it borrows the datalink's
/// buffer (or ring slot) until the next call.
#[derive(Debug)]
pub struct Received<'a> {
    pub frame: &'a [u8],
    pub direction: Direction,
}

/// Counters a datalink can report; `None` where it cannot know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Frames the datalink dropped before the tool could read them.
    pub dropped: Option<u64>,
}

/// How a tool wants the interface opened.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// See every frame, both directions, including those not addressed to
    /// the interface (lab-capture). Ping and pong leave it off.
    pub capture: bool,
    /// How `recv` waits: spin first, then sleep; or `--busy-poll`.
    pub wait: WaitPolicy,
    /// Frames by the hundred thousand a second (lab-gen, lab-sink, lab-fwd): bigger
    /// rings where the datalink has them, and on af_packet the qdisc
    /// bypassed when the interface has none to bypass (so a `tc` rate
    /// limit or loss filter on it still applies).
    pub bulk: bool,
}

/// Why a datalink could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DatalinkError {
    #[error("no interface named {0:?} in this network namespace")]
    NoSuchInterface(String),
    /// The machine or the process lacks something this datalink needs;
    /// `missing` names it and says what to do (for example
    /// "/dev/netmap: load the netmap kernel module").
    #[error("{kind} is not available: {missing}")]
    Unavailable { kind: DatalinkKind, missing: String },
    /// No frame will ever come: what the datalink watched went away (a
    /// netmap monitor whose port left netmap mode). A capture ends with
    /// its summary.
    #[error("{iface}: {why}")]
    Ended { iface: String, why: String },
    #[error("{op} on {iface}: {source}")]
    Io {
        op: &'static str,
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// True when the interface has no qdisc of its own (nothing but
/// `noqueue`, a veth's default): a path that skips the qdisc (AF_XDP's
/// transmit, XDP frames) skips no impairment.
pub fn nothing_to_bypass(ifindex: u32) -> bool {
    af_packet::qdisc::nothing_to_bypass(ifindex)
}

impl DatalinkError {
    /// True when the interface (or its link) is down: a send that fails
    /// this way loses the frame, as on a cut cable, and the tools carry on.
    pub fn is_link_down(&self) -> bool {
        match self {
            DatalinkError::Io { source, .. } => io_is_link_down(source),
            _ => false,
        }
    }
}

impl DatalinkError {
    /// True when the interface's queue (its qdisc: a `tbf` rate limit, a
    /// full `pfifo`) dropped the frame: ENOBUFS. Lost, as on a congested
    /// link, not a failure.
    pub fn is_queue_drop(&self) -> bool {
        matches!(self, DatalinkError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOBUFS))
    }
}

/// ENETDOWN (the interface is down) or ENXIO (its device went away while
/// down), however the error was wrapped.
pub fn io_is_link_down(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENETDOWN | libc::ENXIO))
        || error.kind() == std::io::ErrorKind::NetworkDown
}

/// Packet I/O on one interface.
pub trait Datalink {
    /// What was obtained, for the "listening on" / "capturing on" lines:
    /// the datalink and, where it matters, its mode (e.g. "af_xdp, native
    /// XDP, copy mode").
    fn describe(&self) -> String;

    /// Sends one whole Ethernet frame. Returns once the frame is handed to
    /// the kernel or the ring is synced: nothing is left queued.
    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError>;

    /// Sends `frames` in as few kernel calls as the datalink can (one
    /// `sendmmsg`, one TX kick, one `NIOCTXSYNC`); like `send`, nothing is
    /// left queued when it returns. `Ok(n)`: the first `n` frames were
    /// handed over, fewer than all when the datalink ran out of room or
    /// failed after some (the caller retries the rest, and sees the error
    /// then). `Err` only when none was sent. A frame the interface's queue
    /// dropped (ENOBUFS: a lab's loss filter, a full rate limit) was taken
    /// and must not be sent again, so a datalink that can tell which frame
    /// was dropped reports it as the `Err` of a call that had it first
    /// (the caller counts it lost and goes on with the next). This default
    /// sends one frame a call, so every error is its frame's.
    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        match frames.first() {
            Some(frame) => self.send(frame).map(|()| 1),
            None => Ok(0),
        }
    }

    /// How many frames one [`Datalink::send_in_place`] takes at most, on
    /// a datalink that lets the sender write frames straight into its
    /// transmit buffers (netmap: every TX slot of the port); `None` where
    /// it does not, and `send_in_place` is not to be called.
    fn in_place_capacity(&self) -> Option<usize> {
        None
    }

    /// Sends up to `max` frames of `len` bytes, each written by
    /// `fill(nth, buffer)` straight into a transmit buffer (no copy in
    /// between; the buffer holds stale bytes, all `len` must be written),
    /// as many as there is room for, with one kernel call; like
    /// `send_batch`, nothing is left queued, `Ok(n)` says how many went
    /// (`fill` was called for exactly those, `nth` from 0 in order), and
    /// it waits for room when there is none. Only where
    /// [`Datalink::in_place_capacity`] is `Some`; this default sends none.
    fn send_in_place(
        &mut self,
        max: usize,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]),
    ) -> Result<usize, DatalinkError> {
        let _ = (max, len, fill);
        Err(DatalinkError::Io {
            op: "send in place",
            iface: self.describe(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        })
    }

    /// Waits up to `timeout` for the next frame; `Ok(None)` when none came.
    /// A zero timeout only takes what is already queued (tools drain the
    /// queue that way before their summary). A signal that interrupts the
    /// wait also gives `Ok(None)`, early, so the tool can see its stop flag.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError>;

    /// Takes up to `max` frames that are already queued, without waiting,
    /// handing each to `each` in order; returns how many. A tool that
    /// counts floods (lab-sink) takes a whole batch this way after one
    /// `recv`, where a datalink can do it cheaper than frame by frame
    /// (af_xdp: straight off the RX ring, each chunk given back at once).
    /// [`Datalink::recv_queued_by_sync`] without its `synced`: a datalink
    /// overrides that one.
    fn recv_queued(
        &mut self,
        max: usize,
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, DatalinkError> {
        self.recv_queued_by_sync(max, &mut || {}, each)
    }

    /// [`Datalink::recv_queued`], saying where each kernel sync's frames
    /// begin: `synced` is called right after a sync that brought frames,
    /// before the next frame handed over. Every frame of a sync had
    /// arrived by then, so a caller that wants each frame's receive time
    /// (lab-sink's latency) reads its clock once there, not once per
    /// frame; a frame still queued from an earlier sync may get the later
    /// reading, never an earlier one. Frames already queued when this is
    /// called came with an earlier sync (the last `recv`'s, or the last
    /// call's): no `synced` before them. This default, for a datalink that
    /// hands frames over one at a time (af_packet), is `recv` with a zero
    /// timeout in a loop, `synced` before every frame; netmap calls it per
    /// RX sync (one when the rings run dry, and one every quarter ring),
    /// af_xdp per load of its RX ring's producer index that finds new
    /// frames.
    fn recv_queued_by_sync(
        &mut self,
        max: usize,
        synced: &mut dyn FnMut(),
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, DatalinkError> {
        let mut taken = 0;
        while taken < max {
            match self.recv(Duration::ZERO)? {
                Some(received) => {
                    synced();
                    each(received);
                }
                None => break,
            }
            taken += 1;
        }
        Ok(taken)
    }

    /// When the kernel received the frame the last `recv` returned, on
    /// `CLOCK_REALTIME` (`SO_TIMESTAMPNS`), where the datalink has it: an
    /// RTT from it leaves out the tool's own wake-up and read, as iputils'
    /// does. `None` where the datalink has no such time (AF_XDP, netmap:
    /// the frame is seen first by the tool itself).
    fn received_at(&self) -> Option<SystemTime> {
        None
    }

    /// Counters, where the datalink reports them.
    fn stats(&self) -> Stats {
        Stats::default()
    }

    /// Descriptors that poll readable (`POLLIN`) when `recv` may have
    /// something to do. A tool that waits on several datalinks at once
    /// (lab-fwd) polls them all, then calls `recv` with a zero timeout on
    /// each. Empty where the datalink has none: such a tool then looks at
    /// it every millisecond or so.
    fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }
}

/// What [`Datalink::recv_queued_by_sync`]'s default does (without
/// `synced`), for a datalink whose own version hands some cases back to
/// it: `recv` with a zero timeout, in a loop.
pub fn recv_one_by_one(
    datalink: &mut dyn Datalink,
    max: usize,
    each: &mut dyn FnMut(Received<'_>),
) -> Result<usize, DatalinkError> {
    let mut taken = 0;
    while taken < max {
        match datalink.recv(Duration::ZERO)? {
            Some(received) => each(received),
            None => break,
        }
        taken += 1;
    }
    Ok(taken)
}

/// Opens `iface` with the datalink `kind`.
pub fn open(
    kind: DatalinkKind,
    iface: &str,
    options: &OpenOptions,
) -> Result<Box<dyn Datalink>, DatalinkError> {
    match kind {
        DatalinkKind::AfPacket => Ok(Box::new(af_packet::AfPacket::open(iface, options)?)),
        // AF_XDP gives each frame to one socket only: tools on the same
        // interface share it through a hub (see hub.rs).
        DatalinkKind::AfXdp => {
            let (name, opts) = (iface.to_owned(), options.clone());
            let opener: hub::Opener = Box::new(move || {
                Ok(Box::new(af_xdp::AfXdp::open(&name, &opts)?) as Box<dyn hub::Shareable>)
            });
            Ok(Box::new(hub::open(kind, iface, options, opener)?))
        }
        DatalinkKind::Netmap => Ok(Box::new(netmap::Netmap::open(iface, options)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in DatalinkKind::ALL {
            assert_eq!(kind.as_str().parse::<DatalinkKind>().unwrap(), kind);
        }
        assert_eq!(
            "afpacket".parse::<DatalinkKind>().unwrap_err(),
            UnknownDatalink("afpacket".into())
        );
    }

    /// Sends until `fail_at`, then fails with ENETDOWN.
    struct FailingAt {
        sent: Vec<Vec<u8>>,
        fail_at: usize,
    }

    impl Datalink for FailingAt {
        fn describe(&self) -> String {
            "failing".into()
        }
        fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
            if self.sent.len() == self.fail_at {
                return Err(DatalinkError::Io {
                    op: "send",
                    iface: "eth1".into(),
                    source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
                });
            }
            self.sent.push(frame.to_vec());
            Ok(())
        }
        fn recv(&mut self, _: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
            Ok(None)
        }
    }

    #[test]
    fn the_default_batch_sends_one_frame_a_call_so_every_error_is_its_frames() {
        let frames: [&[u8]; 3] = [b"a", b"b", b"c"];
        let mut link = FailingAt {
            sent: vec![],
            fail_at: 2,
        };
        assert_eq!(link.send_batch(&frames).unwrap(), 1);
        assert_eq!(link.send_batch(&frames[1..]).unwrap(), 1);
        assert_eq!(link.sent, [b"a", b"b"]);
        // The third frame's error is reported for it, not swallowed in a
        // short count.
        let error = link.send_batch(&frames[2..]).unwrap_err();
        assert!(error.is_link_down(), "{error}");
        assert_eq!(link.send_batch(&[]).unwrap(), 0);
    }

    #[test]
    fn link_down_is_recognised_however_it_is_wrapped() {
        for error in [
            std::io::Error::from_raw_os_error(libc::ENETDOWN),
            std::io::Error::from_raw_os_error(libc::ENXIO),
            std::io::Error::new(std::io::ErrorKind::NetworkDown, "bring it up"),
        ] {
            assert!(io_is_link_down(&error), "{error}");
        }
        assert!(!io_is_link_down(&std::io::Error::from_raw_os_error(
            libc::EMSGSIZE
        )));
        assert!(!DatalinkError::NoSuchInterface("x".into()).is_link_down());
    }

    #[test]
    fn env_var_names_the_interface() {
        assert_eq!(DatalinkKind::env_var("eth1"), "LABCTL_DATALINK_eth1");
    }
}
