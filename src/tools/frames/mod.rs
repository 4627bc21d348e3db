//! Frames on the wire, built and decoded with pnet: Ethernet, ARP, IPv4,
//! IPv6, ICMP, UDP and TCP. The tools never trust the kernel to build or
//! check a frame for them: on netmap and AF_XDP there is no kernel stack in
//! the path.

mod build;
mod decode;

pub use build::{
    arp_reply, arp_request, icmp_echo, tcp_segment, udp_datagram, BuildError, EchoKind, Ipv4Params,
    Link, TcpParams,
};
pub use decode::{
    decode, Arp, Echo, Frame, Icmp, Ipv4, Ipv6, Layer, Malformed, Network, Ports, Transport,
};

/// The TTL of every IPv4 packet the tools send.
pub const TTL: u8 = 64;
pub const ETHERNET_HEADER_LEN: usize = 14;
pub const IPV4_HEADER_LEN: usize = 20;
pub const ICMP_ECHO_HEADER_LEN: usize = 8;
/// An Ethernet/IPv4 ARP message.
pub const ARP_LEN: usize = 28;
/// The largest ICMP echo payload an IPv4 packet can carry.
pub const MAX_ECHO_PAYLOAD: usize = u16::MAX as usize - IPV4_HEADER_LEN - ICMP_ECHO_HEADER_LEN;

#[cfg(test)]
mod tests;
