//! Building the frames the tools send, with pnet, every checksum computed.

use std::net::Ipv4Addr;

use pnet::packet::arp::{ArpHardwareTypes, ArpOperation, ArpOperations, MutableArpPacket};
use pnet::packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet::packet::icmp::{self, IcmpCode, IcmpType, IcmpTypes, MutableIcmpPacket};
use pnet::packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet::packet::ipv4::{self, Ipv4Flags, MutableIpv4Packet};
use pnet::packet::tcp::{self, MutableTcpPacket};
use pnet::packet::udp::{self, MutableUdpPacket};
use pnet::packet::MutablePacket;
use pnet::util::MacAddr;

use super::{ARP_LEN, ETHERNET_HEADER_LEN, ICMP_ECHO_HEADER_LEN, IPV4_HEADER_LEN, TTL};

/// A frame that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("an IPv4 packet of {0} bytes exceeds the 65535-byte maximum")]
    TooLarge(usize),
}

/// The Ethernet ends of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub src: MacAddr,
    pub dst: MacAddr,
}

/// The IPv4 header fields a sender chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Params {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The identification field.
    pub ident: u16,
    pub dont_fragment: bool,
}

/// Which ICMP echo message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoKind {
    Request,
    Reply,
}

impl EchoKind {
    fn icmp_type(self) -> IcmpType {
        match self {
            EchoKind::Request => IcmpTypes::EchoRequest,
            EchoKind::Reply => IcmpTypes::EchoReply,
        }
    }
}

/// An ARP request from `sender` asking who has `target`, broadcast.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let link = Link {
        src: sender_mac,
        dst: MacAddr::broadcast(),
    };
    arp(
        link,
        ArpOperations::Request,
        sender_ip,
        MacAddr::zero(),
        target_ip,
    )
}

/// The ARP reply saying `sender_ip` is at `sender_mac`, sent to the asker.
pub fn arp_reply(
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let link = Link {
        src: sender_mac,
        dst: target_mac,
    };
    arp(link, ArpOperations::Reply, sender_ip, target_mac, target_ip)
}

fn arp(
    link: Link,
    operation: ArpOperation,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER_LEN + ARP_LEN];
    let payload = write_ethernet(&mut frame, link, EtherTypes::Arp);
    if let Some(mut arp) = MutableArpPacket::new(payload) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(operation);
        arp.set_sender_hw_addr(link.src);
        arp.set_sender_proto_addr(sender_ip);
        arp.set_target_hw_addr(target_mac);
        arp.set_target_proto_addr(target_ip);
    }
    frame
}

/// An ICMP echo request or reply carrying `id`, `seq` and `payload`.
pub fn icmp_echo(
    link: Link,
    ip: Ipv4Params,
    kind: EchoKind,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let icmp_len = ICMP_ECHO_HEADER_LEN + payload.len();
    ipv4_frame(link, ip, IpNextHeaderProtocols::Icmp, icmp_len, |bytes| {
        bytes[4..6].copy_from_slice(&id.to_be_bytes());
        bytes[6..8].copy_from_slice(&seq.to_be_bytes());
        bytes[8..].copy_from_slice(payload);
        if let Some(mut message) = MutableIcmpPacket::new(bytes) {
            message.set_icmp_type(kind.icmp_type());
            message.set_icmp_code(IcmpCode(0));
            let checksum = icmp::checksum(&message.to_immutable());
            message.set_checksum(checksum);
        }
    })
}

/// A UDP datagram (used by tests and load generators to put UDP on the wire).
pub fn udp_datagram(
    link: Link,
    ip: Ipv4Params,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let udp_len = 8 + payload.len();
    let length_field =
        u16::try_from(udp_len).map_err(|_| BuildError::TooLarge(IPV4_HEADER_LEN + udp_len))?;
    ipv4_frame(link, ip, IpNextHeaderProtocols::Udp, udp_len, |bytes| {
        if let Some(mut datagram) = MutableUdpPacket::new(bytes) {
            datagram.set_source(src_port);
            datagram.set_destination(dst_port);
            datagram.set_length(length_field);
            datagram.set_payload(payload);
            let checksum = udp::ipv4_checksum(&datagram.to_immutable(), &ip.src, &ip.dst);
            datagram.set_checksum(checksum);
        }
    })
}

/// The fields of a TCP segment a sender chooses (no options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpParams {
    pub src_port: u16,
    pub dst_port: u16,
    pub sequence: u32,
    pub acknowledgement: u32,
    /// The flag bits, e.g. `pnet::packet::tcp::TcpFlags::SYN`.
    pub flags: u8,
    pub window: u16,
}

/// A TCP segment without options.
pub fn tcp_segment(
    link: Link,
    ip: Ipv4Params,
    segment: TcpParams,
    payload: &[u8],
) -> Result<Vec<u8>, BuildError> {
    const TCP_HEADER_LEN: usize = 20;
    ipv4_frame(
        link,
        ip,
        IpNextHeaderProtocols::Tcp,
        TCP_HEADER_LEN + payload.len(),
        |bytes| {
            if let Some(mut tcp) = MutableTcpPacket::new(bytes) {
                tcp.set_source(segment.src_port);
                tcp.set_destination(segment.dst_port);
                tcp.set_sequence(segment.sequence);
                tcp.set_acknowledgement(segment.acknowledgement);
                tcp.set_data_offset((TCP_HEADER_LEN / 4) as u8);
                tcp.set_flags(segment.flags);
                tcp.set_window(segment.window);
                tcp.set_payload(payload);
                let checksum = tcp::ipv4_checksum(&tcp.to_immutable(), &ip.src, &ip.dst);
                tcp.set_checksum(checksum);
            }
        },
    )
}

/// Ethernet + IPv4 header (checksummed) around a `transport_len`-byte
/// transport message that `fill` writes (and checksums).
fn ipv4_frame(
    link: Link,
    ip: Ipv4Params,
    protocol: IpNextHeaderProtocol,
    transport_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<Vec<u8>, BuildError> {
    let ip_len = IPV4_HEADER_LEN + transport_len;
    let total_length = u16::try_from(ip_len).map_err(|_| BuildError::TooLarge(ip_len))?;
    let mut frame = vec![0u8; ETHERNET_HEADER_LEN + ip_len];
    let packet = write_ethernet(&mut frame, link, EtherTypes::Ipv4);
    if let Some(mut header) = MutableIpv4Packet::new(packet) {
        header.set_version(4);
        header.set_header_length((IPV4_HEADER_LEN / 4) as u8);
        header.set_total_length(total_length);
        header.set_identification(ip.ident);
        header.set_flags(if ip.dont_fragment {
            Ipv4Flags::DontFragment
        } else {
            0
        });
        header.set_ttl(TTL);
        header.set_next_level_protocol(protocol);
        header.set_source(ip.src);
        header.set_destination(ip.dst);
        let checksum = ipv4::checksum(&header.to_immutable());
        header.set_checksum(checksum);
        fill(header.payload_mut());
    }
    Ok(frame)
}

/// Writes the Ethernet header and returns the rest of the frame.
fn write_ethernet(frame: &mut [u8], link: Link, ethertype: EtherType) -> &mut [u8] {
    if let Some(mut ethernet) = MutableEthernetPacket::new(&mut frame[..]) {
        ethernet.set_source(link.src);
        ethernet.set_destination(link.dst);
        ethernet.set_ethertype(ethertype);
    }
    &mut frame[ETHERNET_HEADER_LEN..]
}
