//! Frame building and decoding against bytes the Linux kernel put on a veth
//! (captured with `tcpdump -xx` during `ping -c1 -s 8 -p 0102030405060708`),
//! checksums checked by an independent RFC 1071 sum, and arbitrary bytes.

use std::net::Ipv4Addr;

use pnet::packet::tcp::TcpFlags;
use pnet::util::MacAddr;
use proptest::prelude::*;

use super::*;

const MAC_A: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
const MAC_B: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);
const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn kernel_arp_request() -> Vec<u8> {
    hex(
        "ffff ffff ffff 0200 0000 0001 0806 0001 0800 0604 0001 0200 0000 0001
         c612 0001 0000 0000 0000 c612 0002",
    )
}

fn kernel_arp_reply() -> Vec<u8> {
    hex(
        "0200 0000 0001 0200 0000 0002 0806 0001 0800 0604 0002 0200 0000 0002
         c612 0002 0200 0000 0001 c612 0001",
    )
}

fn kernel_echo_request() -> Vec<u8> {
    hex(
        "0200 0000 0002 0200 0000 0001 0800 4500 0024 2786 4000 4001 872b c612
         0001 c612 0002 0800 af31 38b9 0001 0102 0304 0506 0708",
    )
}

fn kernel_echo_reply() -> Vec<u8> {
    hex(
        "0200 0000 0001 0200 0000 0002 0800 4500 0024 8744 0000 4001 676d c612
         0002 c612 0001 0000 b731 38b9 0001 0102 0304 0506 0708",
    )
}

const PATTERN: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// RFC 1071: the ones' complement sum of the 16-bit words.
fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// A correct checksum makes the sum over the checksummed bytes 0xffff.
fn assert_checksummed(chunks: &[&[u8]]) {
    assert_eq!(
        ones_complement_sum(chunks),
        0xffff,
        "checksum does not verify"
    );
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&src.octets());
    header.extend_from_slice(&dst.octets());
    header.extend_from_slice(&[0, protocol]);
    header.extend_from_slice(&(len as u16).to_be_bytes());
    header
}

#[test]
fn arp_frames_match_the_kernels_bytes() {
    assert_eq!(arp_request(MAC_A, IP_A, IP_B), kernel_arp_request());
    assert_eq!(arp_reply(MAC_B, IP_B, MAC_A, IP_A), kernel_arp_reply());
}

#[test]
fn echo_frames_match_the_kernels_bytes() {
    let link = Link {
        src: MAC_A,
        dst: MAC_B,
    };
    let ip = Ipv4Params {
        src: IP_A,
        dst: IP_B,
        ident: 0x2786,
        dont_fragment: true,
    };
    let request = icmp_echo(link, ip, EchoKind::Request, 0x38b9, 1, &PATTERN).unwrap();
    assert_eq!(request, kernel_echo_request());

    let link = Link {
        src: MAC_B,
        dst: MAC_A,
    };
    let ip = Ipv4Params {
        src: IP_B,
        dst: IP_A,
        ident: 0x8744,
        dont_fragment: false,
    };
    let reply = icmp_echo(link, ip, EchoKind::Reply, 0x38b9, 1, &PATTERN).unwrap();
    assert_eq!(reply, kernel_echo_reply());
}

#[test]
fn decodes_the_kernels_arp_and_echo_frames() {
    let request = kernel_arp_request();
    let frame = decode(&request).unwrap();
    assert_eq!(
        frame.to_string(),
        "ARP request who-has 198.18.0.2 tell 198.18.0.1"
    );
    let arp = frame.arp().unwrap();
    assert_eq!((arp.sender_mac, arp.sender_ip), (MAC_A, IP_A));

    let reply = kernel_arp_reply();
    assert_eq!(
        decode(&reply).unwrap().to_string(),
        "ARP reply 198.18.0.2 is-at 02:00:00:00:00:02"
    );

    let echo_request = kernel_echo_request();
    let frame = decode(&echo_request).unwrap();
    assert_eq!(
        frame.to_string(),
        "ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq=1, id=14521)"
    );
    let (ip, icmp, echo) = frame.ipv4_echo().unwrap();
    assert!(ip.header_checksum_ok && icmp.checksum_ok);
    assert_eq!((ip.ttl, echo.payload), (64, &PATTERN[..]));

    let echo_reply = kernel_echo_reply();
    assert_eq!(
        decode(&echo_reply).unwrap().to_string(),
        "ICMP echo reply 198.18.0.2 -> 198.18.0.1 (seq=1, id=14521)"
    );
}

#[test]
fn a_flipped_bit_fails_the_checksums() {
    let mut bytes = kernel_echo_request();
    bytes[ETHERNET_HEADER_LEN + 8] ^= 1; // the TTL
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // the last payload byte
    let frame = decode(&bytes).unwrap();
    let (ip, icmp, _) = frame.ipv4_echo().unwrap();
    assert!(!ip.header_checksum_ok);
    assert!(!icmp.checksum_ok);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut padded = kernel_echo_request();
    padded.resize(60, 0);
    let frame = decode(&padded).unwrap();
    let (_, icmp, echo) = frame.ipv4_echo().unwrap();
    assert_eq!(echo.payload, &PATTERN[..]);
    assert!(icmp.checksum_ok);
}

#[test]
fn udp_and_tcp_checksums_verify_independently() {
    let link = Link {
        src: MAC_A,
        dst: MAC_B,
    };
    let ip = Ipv4Params {
        src: IP_A,
        dst: IP_B,
        ident: 7,
        dont_fragment: true,
    };
    let udp = udp_datagram(link, ip, 5353, 9, b"hello").unwrap();
    let ip_header = &udp[14..34];
    assert_checksummed(&[ip_header]);
    assert_eq!(u16::from_be_bytes([ip_header[2], ip_header[3]]), 20 + 8 + 5);
    let datagram = &udp[34..];
    assert_checksummed(&[&pseudo_header(IP_A, IP_B, 17, datagram.len()), datagram]);
    assert_eq!(
        decode(&udp).unwrap().to_string(),
        "UDP Packet: 198.18.0.1:5353 > 198.18.0.2:9; length: 13"
    );

    let segment = TcpParams {
        src_port: 52472,
        dst_port: 6600,
        sequence: 1,
        acknowledgement: 0,
        flags: TcpFlags::SYN,
        window: 64240,
    };
    let tcp = tcp_segment(link, ip, segment, b"odd-length").unwrap();
    assert_checksummed(&[&tcp[14..34]]);
    let segment_bytes = &tcp[34..];
    assert_checksummed(&[
        &pseudo_header(IP_A, IP_B, 6, segment_bytes.len()),
        segment_bytes,
    ]);
    assert_eq!(
        decode(&tcp).unwrap().to_string(),
        "TCP Packet: 198.18.0.1:52472 > 198.18.0.2:6600; length: 30"
    );
}

#[test]
fn ipv6_unknown_and_other_lines() {
    // An IPv6 UDP datagram fe80::1 -> ff02::fb, 5353 -> 5353, 4 payload bytes.
    let mut ipv6 = hex("3333 0000 00fb 0200 0000 0001 86dd 6000 0000 000c 1101");
    ipv6.extend(hex("fe80 0000 0000 0000 0000 0000 0000 0001"));
    ipv6.extend(hex("ff02 0000 0000 0000 0000 0000 0000 00fb"));
    ipv6.extend(hex("14e9 14e9 000c 0000 dead beef"));
    assert_eq!(
        decode(&ipv6).unwrap().to_string(),
        "UDP Packet: fe80::1:5353 > ff02::fb:5353; length: 12"
    );

    let unknown = hex("ffff ffff ffff 0200 0000 0001 88b5 0102 0304");
    assert_eq!(
        decode(&unknown).unwrap().to_string(),
        "Unknown packet: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff; ethertype: 0x88b5 length: 18"
    );

    // IPv4 carrying GRE (47): shown, not decoded further.
    let mut gre = kernel_echo_request();
    gre[ETHERNET_HEADER_LEN + 9] = 47;
    assert_eq!(
        decode(&gre).unwrap().to_string(),
        "Unknown IPv4 packet: 198.18.0.1 > 198.18.0.2; protocol: 47 length: 16"
    );
}

#[test]
fn truncated_frames_are_malformed_at_their_layer() {
    let echo = kernel_echo_request();
    let arp = kernel_arp_request();
    let cases: [(&[u8], Layer, &str); 4] = [
        (
            &echo[..10],
            Layer::Ethernet,
            "Malformed Ethernet Packet: 10 bytes, shorter than its 14-byte header",
        ),
        (
            &echo[..34],
            Layer::Ipv4,
            "Malformed IPv4 Packet: total length 36, but only 20 bytes arrived",
        ),
        (
            &arp[..30],
            Layer::Arp,
            "Malformed ARP Packet: 16 bytes, shorter than its 28-byte header",
        ),
        (
            &echo[..20],
            Layer::Ipv4,
            "Malformed IPv4 Packet: 6 bytes, shorter than its 20-byte header",
        ),
    ];
    for (bytes, layer, line) in cases {
        let error = decode(bytes).unwrap_err();
        assert_eq!(error.layer, layer);
        assert_eq!(error.to_string(), line);
    }

    // An IPv4 packet whose total length leaves the echo header cut short.
    let mut short_icmp = echo.clone();
    short_icmp[ETHERNET_HEADER_LEN + 3] = 20 + 6;
    assert_eq!(decode(&short_icmp).unwrap_err().layer, Layer::Icmp);
}

#[test]
fn an_oversized_echo_is_refused() {
    let link = Link {
        src: MAC_A,
        dst: MAC_B,
    };
    let ip = Ipv4Params {
        src: IP_A,
        dst: IP_B,
        ident: 0,
        dont_fragment: true,
    };
    let payload = vec![0; MAX_ECHO_PAYLOAD + 1];
    assert_eq!(
        icmp_echo(link, ip, EchoKind::Request, 1, 1, &payload).unwrap_err(),
        BuildError::TooLarge(65536)
    );
    assert!(icmp_echo(link, ip, EchoKind::Request, 1, 1, &payload[1..]).is_ok());
}

proptest! {
    #[test]
    fn decode_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(frame) = decode(&bytes) {
            let _ = frame.to_string();
            let _ = serde_json::to_string(&frame).unwrap();
        }
    }

    /// Arbitrary bytes behind a valid Ethernet header of each EtherType, so
    /// the deeper layers see garbage too.
    #[test]
    fn decode_survives_garbage_behind_each_ethertype(
        ethertype in prop::sample::select(vec![0x0800u16, 0x0806, 0x86dd, 0x8100]),
        body in proptest::collection::vec(any::<u8>(), 0..128),
        ip_protocol in prop::sample::select(vec![1u8, 6, 17, 58, 47]),
    ) {
        let mut bytes = hex("0200 0000 0002 0200 0000 0001");
        bytes.extend_from_slice(&ethertype.to_be_bytes());
        bytes.extend_from_slice(&body);
        // Give an IPv4 header a plausible version and protocol half the time.
        if ethertype == 0x0800 && body.len() > 9 && body[0] & 1 == 0 {
            bytes[14] = 0x45;
            bytes[14 + 9] = ip_protocol;
        }
        if let Ok(frame) = decode(&bytes) {
            let _ = frame.to_string();
        }
    }

    #[test]
    fn echo_round_trips(id: u16, seq: u16, ident: u16,
                        payload in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let link = Link { src: MAC_A, dst: MAC_B };
        let ip = Ipv4Params { src: IP_A, dst: IP_B, ident, dont_fragment: true };
        let bytes = icmp_echo(link, ip, EchoKind::Request, id, seq, &payload).unwrap();
        let frame = decode(&bytes).unwrap();
        let (header, icmp, echo) = frame.ipv4_echo().unwrap();
        prop_assert!(header.header_checksum_ok && icmp.checksum_ok);
        prop_assert_eq!((echo.id, echo.seq, echo.payload), (id, seq, &payload[..]));
        prop_assert_eq!((header.ttl, header.ident), (TTL, ident));
        assert_checksummed(&[&bytes[14..34]]);
        assert_checksummed(&[&bytes[34..]]);
    }
}
