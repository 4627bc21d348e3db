//! Decoding any frame in layers, as pnet's packetdump example does:
//! Ethernet, then ARP / IPv4 / IPv6, then the transport, one small function
//! each. Whatever does not add up is a [`Malformed`] naming the layer,
//! never a panic: lengths are checked before pnet reads a field.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use pnet::packet::arp::ArpPacket;
use pnet::packet::ethernet::{EtherTypes, EthernetPacket};
use pnet::packet::icmp::{self, IcmpPacket, IcmpTypes};
use pnet::packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet::packet::ipv4::{self, Ipv4Flags, Ipv4Packet};
use pnet::packet::ipv6::Ipv6Packet;
use pnet::packet::tcp::TcpPacket;
use pnet::packet::udp::UdpPacket;
use pnet::packet::Packet;
use pnet::util::MacAddr;
use serde::Serialize;

use crate::tools::output::as_text;

use super::{ARP_LEN, ETHERNET_HEADER_LEN, ICMP_ECHO_HEADER_LEN, IPV4_HEADER_LEN};

const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
const TCP_HEADER_LEN: usize = 20;
const ICMP_HEADER_LEN: usize = 4;

/// One decoded frame; it borrows the bytes it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame<'a> {
    #[serde(serialize_with = "as_text")]
    pub eth_src: MacAddr,
    #[serde(serialize_with = "as_text")]
    pub eth_dst: MacAddr,
    #[serde(flatten)]
    pub network: Network<'a>,
}

/// What the Ethernet frame carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "network", rename_all = "snake_case")]
pub enum Network<'a> {
    Arp(Arp),
    Ipv4(Ipv4<'a>),
    Ipv6(Ipv6<'a>),
    /// An EtherType this decoder does not know.
    Unknown {
        ethertype: u16,
        length: usize,
    },
}

/// An Ethernet/IPv4 ARP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    #[serde(serialize_with = "as_text")]
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    #[serde(serialize_with = "as_text")]
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ipv4<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ident: u16,
    pub more_fragments: bool,
    pub fragment_offset: u16,
    pub header_checksum_ok: bool,
    pub transport: Transport<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ipv6<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub transport: Transport<'a>,
}

/// What the IP packet carries. Lengths are those of the transport message
/// (header included), as in packetdump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "proto", rename_all = "snake_case")]
pub enum Transport<'a> {
    Icmp(Icmp<'a>),
    Icmpv6 {
        #[serde(rename = "type")]
        icmp_type: u8,
        code: u8,
    },
    Udp(Ports),
    Tcp(Ports),
    /// A later IPv4 fragment: no transport header in it.
    Fragment {
        protocol: u8,
        offset: u16,
        length: usize,
    },
    Other {
        protocol: u8,
        length: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Icmp<'a> {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
    pub checksum_ok: bool,
    /// Present for echo requests and replies.
    #[serde(flatten)]
    pub echo: Option<Echo<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Echo<'a> {
    pub id: u16,
    pub seq: u16,
    #[serde(skip)]
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub src_port: u16,
    pub dst_port: u16,
    pub length: usize,
}

/// The protocol layer at which a frame stopped making sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Ethernet,
    Arp,
    Ipv4,
    Ipv6,
    Icmp,
    Udp,
    Tcp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Icmp => "ICMP",
            Layer::Udp => "UDP",
            Layer::Tcp => "TCP",
        })
    }
}

/// A frame that could not be decoded; its Display is the packetdump-style
/// line ("Malformed UDP Packet: ...").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("Malformed {layer} Packet: {detail}")]
pub struct Malformed {
    pub layer: Layer,
    pub detail: String,
}

fn malformed(layer: Layer, detail: impl Into<String>) -> Malformed {
    Malformed {
        layer,
        detail: detail.into(),
    }
}

fn too_short(layer: Layer, got: usize, needed: usize) -> Malformed {
    malformed(
        layer,
        format!("{got} bytes, shorter than its {needed}-byte header"),
    )
}

/// Decodes one Ethernet frame.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, Malformed> {
    let ethernet = EthernetPacket::new(bytes)
        .ok_or_else(|| too_short(Layer::Ethernet, bytes.len(), ETHERNET_HEADER_LEN))?;
    let payload = &bytes[ETHERNET_HEADER_LEN..];
    let ethertype = ethernet.get_ethertype();
    let network = match ethertype {
        EtherTypes::Arp => Network::Arp(decode_arp(payload)?),
        EtherTypes::Ipv4 => Network::Ipv4(decode_ipv4(payload)?),
        EtherTypes::Ipv6 => Network::Ipv6(decode_ipv6(payload)?),
        other => Network::Unknown {
            ethertype: other.0,
            length: bytes.len(),
        },
    };
    Ok(Frame {
        eth_src: ethernet.get_source(),
        eth_dst: ethernet.get_destination(),
        network,
    })
}

fn decode_arp(bytes: &[u8]) -> Result<Arp, Malformed> {
    let arp = ArpPacket::new(bytes).ok_or_else(|| too_short(Layer::Arp, bytes.len(), ARP_LEN))?;
    let shape = (
        arp.get_hardware_type().0,
        arp.get_protocol_type(),
        arp.get_hw_addr_len(),
        arp.get_proto_addr_len(),
    );
    if shape != (1, EtherTypes::Ipv4, 6, 4) {
        return Err(malformed(
            Layer::Arp,
            format!(
                "not Ethernet/IPv4 ARP (hardware {}, protocol {:#06x}, lengths {}/{})",
                shape.0, shape.1 .0, shape.2, shape.3
            ),
        ));
    }
    Ok(Arp {
        operation: arp.get_operation().0,
        sender_mac: arp.get_sender_hw_addr(),
        sender_ip: arp.get_sender_proto_addr(),
        target_mac: arp.get_target_hw_addr(),
        target_ip: arp.get_target_proto_addr(),
    })
}

fn decode_ipv4(bytes: &[u8]) -> Result<Ipv4<'_>, Malformed> {
    let packet = Ipv4Packet::new(bytes)
        .ok_or_else(|| too_short(Layer::Ipv4, bytes.len(), IPV4_HEADER_LEN))?;
    if packet.get_version() != 4 {
        let detail = format!("version {} in an IPv4 EtherType", packet.get_version());
        return Err(malformed(Layer::Ipv4, detail));
    }
    let header_len = usize::from(packet.get_header_length()) * 4;
    let total_len = usize::from(packet.get_total_length());
    if header_len < IPV4_HEADER_LEN {
        let detail = format!("header length {header_len}, below the minimum of 20");
        return Err(malformed(Layer::Ipv4, detail));
    }
    if total_len < header_len {
        let detail = format!("total length {total_len}, less than its {header_len}-byte header");
        return Err(malformed(Layer::Ipv4, detail));
    }
    if total_len > bytes.len() {
        let detail = format!(
            "total length {total_len}, but only {} bytes arrived",
            bytes.len()
        );
        return Err(malformed(Layer::Ipv4, detail));
    }
    // Ethernet padding after total_len is not part of the packet.
    let payload = &bytes[header_len..total_len];
    let protocol = packet.get_next_level_protocol();
    let fragment_offset = packet.get_fragment_offset();
    let transport = if fragment_offset != 0 {
        Transport::Fragment {
            protocol: protocol.0,
            offset: fragment_offset,
            length: payload.len(),
        }
    } else {
        decode_transport(protocol, payload)?
    };
    Ok(Ipv4 {
        src: packet.get_source(),
        dst: packet.get_destination(),
        ttl: packet.get_ttl(),
        ident: packet.get_identification(),
        more_fragments: packet.get_flags() & Ipv4Flags::MoreFragments != 0,
        fragment_offset,
        header_checksum_ok: ipv4::checksum(&packet) == packet.get_checksum(),
        transport,
    })
}

fn decode_ipv6(bytes: &[u8]) -> Result<Ipv6<'_>, Malformed> {
    let packet = Ipv6Packet::new(bytes)
        .ok_or_else(|| too_short(Layer::Ipv6, bytes.len(), IPV6_HEADER_LEN))?;
    if packet.get_version() != 6 {
        let detail = format!("version {} in an IPv6 EtherType", packet.get_version());
        return Err(malformed(Layer::Ipv6, detail));
    }
    let payload_len = usize::from(packet.get_payload_length());
    let available = bytes.len() - IPV6_HEADER_LEN;
    if payload_len > available {
        let detail = format!("payload length {payload_len}, but only {available} bytes arrived");
        return Err(malformed(Layer::Ipv6, detail));
    }
    let payload = &bytes[IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len];
    Ok(Ipv6 {
        src: packet.get_source(),
        dst: packet.get_destination(),
        hop_limit: packet.get_hop_limit(),
        transport: decode_transport(packet.get_next_header(), payload)?,
    })
}

fn decode_transport(
    protocol: IpNextHeaderProtocol,
    bytes: &[u8],
) -> Result<Transport<'_>, Malformed> {
    match protocol {
        IpNextHeaderProtocols::Icmp => decode_icmp(bytes).map(Transport::Icmp),
        IpNextHeaderProtocols::Icmpv6 => {
            let header = bytes
                .get(..2)
                .ok_or_else(|| too_short(Layer::Icmp, bytes.len(), ICMP_HEADER_LEN))?;
            Ok(Transport::Icmpv6 {
                icmp_type: header[0],
                code: header[1],
            })
        }
        IpNextHeaderProtocols::Udp => decode_udp(bytes).map(Transport::Udp),
        IpNextHeaderProtocols::Tcp => decode_tcp(bytes).map(Transport::Tcp),
        other => Ok(Transport::Other {
            protocol: other.0,
            length: bytes.len(),
        }),
    }
}

fn decode_icmp(bytes: &[u8]) -> Result<Icmp<'_>, Malformed> {
    let message = IcmpPacket::new(bytes)
        .ok_or_else(|| too_short(Layer::Icmp, bytes.len(), ICMP_HEADER_LEN))?;
    let icmp_type = message.get_icmp_type();
    let is_echo = icmp_type == IcmpTypes::EchoRequest || icmp_type == IcmpTypes::EchoReply;
    let echo = if is_echo {
        if bytes.len() < ICMP_ECHO_HEADER_LEN {
            return Err(too_short(Layer::Icmp, bytes.len(), ICMP_ECHO_HEADER_LEN));
        }
        Some(Echo {
            id: u16::from_be_bytes([bytes[4], bytes[5]]),
            seq: u16::from_be_bytes([bytes[6], bytes[7]]),
            payload: &bytes[ICMP_ECHO_HEADER_LEN..],
        })
    } else {
        None
    };
    Ok(Icmp {
        icmp_type: icmp_type.0,
        code: message.get_icmp_code().0,
        checksum_ok: icmp::checksum(&message) == message.get_checksum(),
        echo,
    })
}

fn decode_udp(bytes: &[u8]) -> Result<Ports, Malformed> {
    let datagram =
        UdpPacket::new(bytes).ok_or_else(|| too_short(Layer::Udp, bytes.len(), UDP_HEADER_LEN))?;
    let length = usize::from(datagram.get_length());
    if !(UDP_HEADER_LEN..=bytes.len()).contains(&length) {
        let detail = format!("length field {length}, but {} bytes arrived", bytes.len());
        return Err(malformed(Layer::Udp, detail));
    }
    Ok(Ports {
        src_port: datagram.get_source(),
        dst_port: datagram.get_destination(),
        length,
    })
}

fn decode_tcp(bytes: &[u8]) -> Result<Ports, Malformed> {
    let segment =
        TcpPacket::new(bytes).ok_or_else(|| too_short(Layer::Tcp, bytes.len(), TCP_HEADER_LEN))?;
    let header_len = usize::from(segment.get_data_offset()) * 4;
    if !(TCP_HEADER_LEN..=bytes.len()).contains(&header_len) {
        let detail = format!(
            "data offset {header_len} bytes in a {}-byte segment",
            bytes.len()
        );
        return Err(malformed(Layer::Tcp, detail));
    }
    Ok(Ports {
        src_port: segment.get_source(),
        dst_port: segment.get_destination(),
        length: segment.packet().len(),
    })
}

impl Frame<'_> {
    /// The ARP message, if this is one.
    pub fn arp(&self) -> Option<&Arp> {
        match &self.network {
            Network::Arp(arp) => Some(arp),
            _ => None,
        }
    }

    /// The IPv4 header and ICMP echo, if this is an IPv4 ICMP echo request
    /// or reply.
    pub fn ipv4_echo(&self) -> Option<(&Ipv4<'_>, &Icmp<'_>, &Echo<'_>)> {
        match &self.network {
            Network::Ipv4(ip) => match &ip.transport {
                Transport::Icmp(icmp) => icmp.echo.as_ref().map(|echo| (ip, icmp, echo)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The packetdump-style line, without the `[iface]: ` prefix.
impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.network {
            Network::Arp(arp) => write_arp(f, arp),
            Network::Ipv4(ip) => write_ip(f, "IPv4", &ip.src, &ip.dst, &ip.transport),
            Network::Ipv6(ip) => write_ip(f, "IPv6", &ip.src, &ip.dst, &ip.transport),
            Network::Unknown { ethertype, length } => write!(
                f,
                "Unknown packet: {} > {}; ethertype: {ethertype:#06x} length: {length}",
                self.eth_src, self.eth_dst
            ),
        }
    }
}

fn write_arp(f: &mut fmt::Formatter<'_>, arp: &Arp) -> fmt::Result {
    match arp.operation {
        Arp::REQUEST => write!(
            f,
            "ARP request who-has {} tell {}",
            arp.target_ip, arp.sender_ip
        ),
        Arp::REPLY => write!(f, "ARP reply {} is-at {}", arp.sender_ip, arp.sender_mac),
        operation => write!(
            f,
            "ARP packet: {}({}) > {}({}); operation: {operation}",
            arp.sender_mac, arp.sender_ip, arp.target_mac, arp.target_ip
        ),
    }
}

fn write_ip(
    f: &mut fmt::Formatter<'_>,
    version: &str,
    src: &dyn fmt::Display,
    dst: &dyn fmt::Display,
    transport: &Transport<'_>,
) -> fmt::Result {
    match transport {
        Transport::Icmp(icmp) => match (&icmp.echo, icmp.icmp_type) {
            (Some(echo), 8) => write!(
                f,
                "ICMP echo request {src} -> {dst} (seq={}, id={})",
                echo.seq, echo.id
            ),
            (Some(echo), _) => write!(
                f,
                "ICMP echo reply {src} -> {dst} (seq={}, id={})",
                echo.seq, echo.id
            ),
            (None, icmp_type) => write!(
                f,
                "ICMP packet {src} -> {dst} (type={icmp_type}, code={})",
                icmp.code
            ),
        },
        Transport::Icmpv6 { icmp_type, code } => write!(
            f,
            "ICMPv6 packet {src} -> {dst} (type={icmp_type}, code={code})"
        ),
        Transport::Udp(ports) => write!(
            f,
            "UDP Packet: {src}:{} > {dst}:{}; length: {}",
            ports.src_port, ports.dst_port, ports.length
        ),
        Transport::Tcp(ports) => write!(
            f,
            "TCP Packet: {src}:{} > {dst}:{}; length: {}",
            ports.src_port, ports.dst_port, ports.length
        ),
        Transport::Fragment {
            protocol,
            offset,
            length,
        } => write!(
            f,
            "{version} fragment: {src} > {dst}; protocol: {protocol} offset: {offset} length: {length}"
        ),
        Transport::Other { protocol, length } => write!(
            f,
            "Unknown {version} packet: {src} > {dst}; protocol: {protocol} length: {length}"
        ),
    }
}
