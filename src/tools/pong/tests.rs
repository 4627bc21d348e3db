//! lab-pong's handler on known frames and on arbitrary bytes, and its run
//! loop on an in-memory link.

use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

use super::*;
use crate::tools::datalink::fake::FakeLink;
use crate::tools::output::Format;

const ME: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 2),
    mac: MacAddr(2, 0, 0, 0, 0, 2),
};
const PEER_MAC: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn echo_request(dst_ip: Ipv4Addr, dst_mac: MacAddr, seq: u16, payload: &[u8]) -> Vec<u8> {
    let link = Link {
        src: PEER_MAC,
        dst: dst_mac,
    };
    let ip = Ipv4Params {
        src: PEER_IP,
        dst: dst_ip,
        ident: 1,
        dont_fragment: true,
    };
    frames::icmp_echo(link, ip, EchoKind::Request, 70, seq, payload).unwrap()
}

fn reply_of(handling: Handling<'_>) -> Vec<u8> {
    match handling {
        Handling::Answer { reply, .. } => reply,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn answers_arp_for_its_address_only() {
    let request = frames::arp_request(PEER_MAC, PEER_IP, ME.ip);
    let reply = reply_of(answer(&request, &ME, 0));
    assert_eq!(reply, frames::arp_reply(ME.mac, ME.ip, PEER_MAC, PEER_IP));

    let elsewhere = frames::arp_request(PEER_MAC, PEER_IP, Ipv4Addr::new(198, 18, 0, 9));
    assert!(matches!(answer(&elsewhere, &ME, 0), Handling::Ignore));
    // A reply is not a question.
    let unsolicited = frames::arp_reply(PEER_MAC, PEER_IP, ME.mac, ME.ip);
    assert!(matches!(answer(&unsolicited, &ME, 0), Handling::Ignore));
}

#[test]
fn echo_reply_keeps_id_sequence_and_payload_with_fresh_checksums() {
    let payload: Vec<u8> = (0..56).collect();
    let request = echo_request(ME.ip, ME.mac, 9, &payload);
    let reply = reply_of(answer(&request, &ME, 5));
    let frame = frames::decode(&reply).unwrap();
    let (ip, icmp, echo) = frame.ipv4_echo().unwrap();
    assert_eq!(
        (icmp.icmp_type, echo.id, echo.seq, echo.payload),
        (0, 70, 9, &payload[..])
    );
    assert_eq!((ip.src, ip.dst, ip.ttl, ip.ident), (ME.ip, PEER_IP, 64, 5));
    assert!(ip.header_checksum_ok && icmp.checksum_ok);
    assert_eq!((frame.eth_src, frame.eth_dst), (ME.mac, PEER_MAC));
    assert_eq!(reply.len(), request.len());
}

#[test]
fn padded_requests_get_unpadded_replies() {
    let mut request = echo_request(ME.ip, ME.mac, 0, b"ab");
    request.resize(60, 0);
    let reply = reply_of(answer(&request, &ME, 0));
    assert_eq!(reply.len(), 14 + 20 + 8 + 2);
}

#[test]
fn ignores_what_is_not_an_echo_request_for_it() {
    let other_ip = echo_request(Ipv4Addr::new(198, 18, 0, 3), ME.mac, 0, b"x");
    let other_mac = echo_request(ME.ip, MacAddr(2, 0, 0, 0, 0, 9), 0, b"x");
    let link = Link {
        src: PEER_MAC,
        dst: ME.mac,
    };
    let ip = Ipv4Params {
        src: PEER_IP,
        dst: ME.ip,
        ident: 1,
        dont_fragment: true,
    };
    let reply = frames::icmp_echo(link, ip, EchoKind::Reply, 70, 0, b"x").unwrap();
    let udp = frames::udp_datagram(link, ip, 1, 7, b"x").unwrap();
    for frame in [other_ip, other_mac, reply, udp] {
        assert!(matches!(answer(&frame, &ME, 0), Handling::Ignore));
    }
}

#[test]
fn bad_checksums_and_truncation_are_malformed() {
    let mut bad_icmp = echo_request(ME.ip, ME.mac, 0, b"payload");
    let last = bad_icmp.len() - 1;
    bad_icmp[last] ^= 1;
    let mut bad_ip = echo_request(ME.ip, ME.mac, 0, b"payload");
    bad_ip[14 + 8] = 1; // the TTL, under the header checksum
    let truncated = echo_request(ME.ip, ME.mac, 0, b"payload")[..40].to_vec();
    for (frame, layer) in [
        (bad_icmp, Layer::Icmp),
        (bad_ip, Layer::Ipv4),
        (truncated, Layer::Ipv4),
    ] {
        match answer(&frame, &ME, 0) {
            Handling::Malformed(malformed) => assert_eq!(malformed.layer, layer),
            other => panic!("expected malformed, got {other:?}"),
        }
    }
}

#[test]
fn run_prints_each_request_and_answer_then_the_summary() {
    let mut link = FakeLink::silent();
    link.queue(frames::arp_request(PEER_MAC, PEER_IP, ME.ip), Direction::In);
    link.queue(echo_request(ME.ip, ME.mac, 0, b"hi"), Direction::In);
    link.queue(vec![0xff; 3], Direction::In);
    // Its own reply, seen going out, is not a request.
    link.queue(echo_request(ME.ip, ME.mac, 1, b"hi"), Direction::Out);
    link.queue(echo_request(ME.ip, ME.mac, 2, b"hi"), Direction::In);
    let options = PongOptions {
        iface: "eth1".into(),
        me: ME,
        count: Some(2),
        quiet: false,
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(&mut link, &options, &mut out, &AtomicBool::new(false)).unwrap();
    let text = String::from_utf8(out.into_inner()).unwrap();
    assert_eq!(
        text,
        "listening on eth1 (198.18.0.2, 02:00:00:00:00:02, fake)\n\
         [eth1]: ARP request who-has 198.18.0.2 tell 198.18.0.1\n\
         [eth1]: ARP reply 198.18.0.2 is-at 02:00:00:00:00:02\n\
         [eth1]: ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq=0, id=70)\n\
         [eth1]: ICMP echo reply 198.18.0.2 -> 198.18.0.1 (seq=0, id=70)\n\
         [eth1]: ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq=2, id=70)\n\
         [eth1]: ICMP echo reply 198.18.0.2 -> 198.18.0.1 (seq=2, id=70)\n\
         2 echo replies sent, 1 ARP replies sent, 0 frames ignored, 1 malformed\n"
    );
    assert_eq!(summary.echo_replies, 2);
    assert_eq!(link.sent.len(), 3);
}

#[test]
fn a_stop_drains_the_queue_before_the_summary() {
    let mut link = FakeLink::silent();
    for seq in 0..3 {
        link.queue(echo_request(ME.ip, ME.mac, seq, b"hi"), Direction::In);
    }
    let options = PongOptions {
        iface: "eth1".into(),
        me: ME,
        count: None,
        quiet: false,
    };
    let mut out = Output::new(Format::Json, Vec::new());
    let summary = run(&mut link, &options, &mut out, &AtomicBool::new(true)).unwrap();
    assert_eq!(summary.echo_replies, 3);
    let text = String::from_utf8(out.into_inner()).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(last["echo_replies"], 3);
    let first_request: serde_json::Value =
        serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(first_request["event"], "request");
    assert_eq!(first_request["frame"]["network"], "ipv4");
    assert_eq!(first_request["frame"]["transport"]["proto"], "icmp");
    assert_eq!(first_request["frame"]["transport"]["seq"], 0);
}

#[test]
fn quiet_prints_only_the_start_and_the_summary_but_answers_everything() {
    let mut link = FakeLink::silent();
    link.queue(frames::arp_request(PEER_MAC, PEER_IP, ME.ip), Direction::In);
    for seq in 0..2 {
        link.queue(echo_request(ME.ip, ME.mac, seq, b"hi"), Direction::In);
    }
    let options = PongOptions {
        iface: "eth1".into(),
        me: ME,
        count: Some(2),
        quiet: true,
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(&mut link, &options, &mut out, &AtomicBool::new(false)).unwrap();
    let text = String::from_utf8(out.into_inner()).unwrap();
    assert_eq!(
        text,
        "listening on eth1 (198.18.0.2, 02:00:00:00:00:02, fake)\n\
         2 echo replies sent, 1 ARP replies sent, 0 frames ignored, 0 malformed\n"
    );
    assert_eq!(summary.echo_replies, 2);
    assert_eq!(link.sent.len(), 3);
}

proptest! {
    #[test]
    fn any_bytes_are_answered_ignored_or_malformed(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = answer(&bytes, &ME, 0);
    }

    /// Garbage behind a valid Ethernet + IPv4 + ICMP echo header start, so
    /// the handler gets far into the frame.
    #[test]
    fn mangled_echo_requests_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 0usize..64,
        flip in 0usize..64,
    ) {
        let mut frame = echo_request(ME.ip, ME.mac, 1, &tail);
        if let Some(byte) = frame.get_mut(14 + flip) {
            *byte ^= 0x5a;
        }
        frame.truncate(frame.len().saturating_sub(cut));
        if let Handling::Answer { reply, .. } = answer(&frame, &ME, 0) {
            prop_assert!(frames::decode(&reply).is_ok());
        }
    }
}
