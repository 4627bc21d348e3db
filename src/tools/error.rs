//! What can stop a tool, and the exit code each failure gives.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done (lab-ping: at least one reply came back; lab-gen: at least one frame went out; lab-sink: at least one came in) |
//! | 1 | nothing got through: no reply came back (lab-ping), nothing was sent (lab-gen) or received (lab-sink), no ARP reply from the next hop, no route to it, a signal while resolving it |
//! | 2 | bad usage: an unknown flag, a malformed address or duration, an unknown datalink name |
//! | 3 | the interface or the datalink: no such interface, no address on it, datalink unavailable, a send or receive that failed |
//! | 4 | the output: standard output or the pcap file cannot be written |

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::tools::datalink::{DatalinkError, DatalinkKind};
use crate::tools::iface::IfaceError;
use crate::tools::route::RouteError;

/// Nothing got through, whichever way the tool counts it (see the table).
pub const EXIT_NOTHING_THROUGH: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERFACE: u8 = 3;
pub const EXIT_OUTPUT: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Bad command line or environment (the message says which).
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Interface(#[from] IfaceError),
    #[error("interface {iface} has no IPv4 address: add one (ip addr add) or pass {flag}")]
    NoIpv4 { iface: String, flag: &'static str },
    #[error("opening {iface} with {kind}: {source}")]
    Open {
        kind: DatalinkKind,
        iface: String,
        #[source]
        source: DatalinkError,
    },
    /// A send or receive failed after the datalink was open.
    #[error("{0}")]
    Wire(#[source] DatalinkError),
    #[error("a {len}-byte frame does not fit through {iface} (its MTU is smaller): lower --size")]
    FrameTooBig { iface: String, len: usize },
    #[error(
        "no ARP reply from {target} on {iface} after {tries} requests ({waited:?} each): \
         check the address, and that a lab-pong (or a host) answers there"
    )]
    NoArpReply {
        target: Ipv4Addr,
        iface: String,
        tries: u32,
        waited: Duration,
    },
    /// SIGINT or SIGTERM came while the tool was still resolving its next
    /// hop: it stops at once, with nothing sent.
    #[error("interrupted while resolving {target} on {iface} (ARP): nothing was sent")]
    Interrupted { target: Ipv4Addr, iface: String },
    /// No next hop for the destination, or the table could not be read.
    #[error("{0}")]
    Route(#[from] RouteError),
    #[error("writing to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("{action} pcap file {path}: {source}")]
    Pcap {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("installing the SIGINT/SIGTERM handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// lab-gen's XDP live frames, asked for (`--path live`), cannot run
    /// here, or a live run failed: why.
    #[error("XDP live frames: {0}")]
    LiveFrames(String),
    /// lab-sink's XDP counting, asked for (`--path xdp`), cannot run here,
    /// or its counts could not be read: why.
    #[error("counting in XDP: {0}")]
    XdpCount(String),
}

impl ToolError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Usage(_) => EXIT_USAGE,
            // As an interrupted ping or generator that got no reply or
            // sent nothing.
            ToolError::NoArpReply { .. } | ToolError::Interrupted { .. } => EXIT_NOTHING_THROUGH,
            ToolError::Route(RouteError::Netlink(_)) => EXIT_INTERFACE,
            ToolError::Route(_) => EXIT_NOTHING_THROUGH,
            ToolError::Stdout(_) | ToolError::Pcap { .. } => EXIT_OUTPUT,
            ToolError::Interface(_)
            | ToolError::NoIpv4 { .. }
            | ToolError::Open { .. }
            | ToolError::Wire(_)
            | ToolError::FrameTooBig { .. }
            | ToolError::Signals(_)
            | ToolError::LiveFrames(_)
            | ToolError::XdpCount(_) => EXIT_INTERFACE,
        }
    }
}

impl From<std::io::Error> for ToolError {
    /// The tools' only other I/O is printing their events.
    fn from(error: std::io::Error) -> Self {
        ToolError::Stdout(error)
    }
}

/// The kernel's NLMSG_ERROR as an io::Error, for the tools' plain netlink
/// dumps (the route table, an interface's qdiscs). Not
/// `ErrorMessage::to_io`, nor a bare negation: both overflow (a panic in a
/// build with overflow checks) on i32::MIN, a code any bytes can carry
/// (found twice by the fuzz target `netlink`).
pub(crate) fn netlink_errno(error: &netlink_packet_core::ErrorMessage) -> io::Error {
    let code = error.code.map_or(0, |code| code.get());
    io::Error::from_raw_os_error(code.checked_neg().unwrap_or(i32::MAX))
}

/// A whole NLMSG_ERROR datagram carrying `code`, for the dumps' tests.
#[cfg(test)]
pub(crate) fn netlink_error_reply(code: i32) -> Vec<u8> {
    let mut reply = Vec::new();
    reply.extend_from_slice(&36u32.to_le_bytes()); // length
    reply.extend_from_slice(&2u16.to_le_bytes()); // NLMSG_ERROR
    reply.extend_from_slice(&0u16.to_le_bytes()); // flags
    reply.extend_from_slice(&[0; 8]); // sequence, port
    reply.extend_from_slice(&code.to_le_bytes()); // the code
    reply.extend_from_slice(&[0; 16]); // the request's header
    reply
}
