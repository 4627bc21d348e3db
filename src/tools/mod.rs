//! The packet tools that run inside the lab's nodes ([`TOOLS`]: lab-ping,
//! lab-pong, lab-capture, lab-fwd, lab-gen, lab-sink, and lab-init, every
//! node's PID 1) and the datalinks they run on. The binaries in `src/bin/`
//! are thin wrappers around these modules.
//!
//! - [`datalink`]: packet I/O on one interface (AF_PACKET, AF_XDP, netmap).
//! - [`frames`]: building and decoding frames with pnet.
//! - [`iface`]: the interface's index, MAC and IPv4 address.
//! - [`route`]: the next hop for a destination (the node's routing table,
//!   or `--gateway`); [`arp`]: answering ARP for the tool's own address,
//!   and resolving the next hop's MAC (lab-ping, lab-gen).
//! - [`ping`], [`pong`], [`capture`], [`fwd`], [`gen`], [`sink`]: what
//!   each tool does; [`traffic`]: the frames lab-gen sends and lab-sink counts.
//! - [`output`]: human lines or `--json` events; [`cli`] and [`error`]:
//!   the shared command-line pieces and the exit codes.

pub mod arp;
pub mod capture;
pub mod cli;
pub mod datalink;
pub mod error;
pub mod frames;
pub mod fwd;
pub mod gen;
pub mod iface;
pub mod output;
pub mod ping;
pub mod pong;
pub mod route;
pub mod sink;
pub mod traffic;

/// Every binary the tools image carries, one per `src/bin/<name>.rs`:
/// the one list the image build, its Dockerfile and the tests follow (a
/// unit test checks it against `src/bin/` and the Dockerfile).
pub const TOOLS: [&str; 7] = [
    "lab-init",
    "lab-ping",
    "lab-pong",
    "lab-capture",
    "lab-fwd",
    "lab-gen",
    "lab-sink",
];

#[cfg(test)]
mod tests;
