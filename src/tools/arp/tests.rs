//! Answering ARP on known frames and on arbitrary bytes, and resolving a
//! next hop against an in-memory link.

use proptest::prelude::*;

use super::*;
use crate::tools::datalink::fake::{FakeLink, Peer};

const ME: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 1),
    mac: MacAddr(2, 0, 0, 0, 0, 1),
};
const ASKER_MAC: MacAddr = MacAddr(2, 0, 0, 0, 0, 0xfe);
const ASKER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const PEER: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 2),
    mac: MacAddr(2, 0, 0, 0, 0, 2),
};

fn me() -> Interface {
    Interface {
        name: "eth1".into(),
        index: 2,
        mac: ME.mac,
        ipv4: Some(ME.ip),
    }
}

#[test]
fn a_request_for_us_gets_a_reply_to_the_asker() {
    let request = frames::arp_request(ASKER_MAC, ASKER_IP, ME.ip);
    let reply = answer(&request, &ME).expect("no reply");
    let frame = frames::decode(&reply).unwrap();
    assert_eq!((frame.eth_src, frame.eth_dst), (ME.mac, ASKER_MAC));
    let arp = frame.arp().unwrap();
    assert_eq!(arp.operation, Arp::REPLY);
    assert_eq!((arp.sender_ip, arp.sender_mac), (ME.ip, ME.mac));
    assert_eq!((arp.target_ip, arp.target_mac), (ASKER_IP, ASKER_MAC));
    assert_eq!(reply, frames::arp_reply(ME.mac, ME.ip, ASKER_MAC, ASKER_IP));
}

#[test]
fn a_unicast_request_to_our_mac_is_answered_too() {
    // A router refreshing its neighbour entry asks by unicast.
    let mut request = frames::arp_request(ASKER_MAC, ASKER_IP, ME.ip);
    request[..6].copy_from_slice(&ME.mac.octets());
    assert!(answer(&request, &ME).is_some());
}

#[test]
fn other_addresses_replies_and_other_macs_are_not_answered() {
    let other = frames::arp_request(ASKER_MAC, ASKER_IP, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(answer(&other, &ME), None);
    let reply = frames::arp_reply(ASKER_MAC, ASKER_IP, ME.mac, ME.ip);
    assert_eq!(answer(&reply, &ME), None);
    let mut elsewhere = frames::arp_request(ASKER_MAC, ASKER_IP, ME.ip);
    elsewhere[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    assert_eq!(answer(&elsewhere, &ME), None);
}

#[test]
fn only_arp_is_looked_at() {
    let request = frames::arp_request(ASKER_MAC, ASKER_IP, ME.ip);
    assert!(is_arp(&request));
    assert!(!is_arp(&request[..13]));
    let mut ipv4 = request.clone();
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    assert!(!is_arp(&ipv4));
    assert_eq!(answer(&ipv4, &ME), None);
}

proptest! {
    #[test]
    fn any_bytes_are_answered_or_not_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
        arp_type in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if arp_type && bytes.len() >= 14 {
            bytes[12..14].copy_from_slice(&[0x08, 0x06]);
        }
        if let Some(reply) = answer(&bytes, &ME) {
            let frame = frames::decode(&reply).unwrap();
            prop_assert_eq!(frame.arp().unwrap().sender_ip, ME.ip);
        }
    }
}

#[test]
fn arp_requests_for_us_are_answered_while_resolving() {
    // The peer asks for us before it answers for itself.
    let peer: Peer = Box::new(|frame| {
        let Some(reply) = answer(frame, &PEER) else {
            return Vec::new();
        };
        vec![frames::arp_request(PEER.mac, PEER.ip, ME.ip), reply]
    });
    let mut link = FakeLink::new(peer);
    let stop = AtomicBool::new(false);
    let (mac, answered) = resolve(
        &mut link,
        &me(),
        ME.ip,
        PEER.ip,
        Duration::from_millis(50),
        &stop,
    )
    .unwrap();
    assert_eq!((mac, answered), (PEER.mac, 1));
    let reply = frames::decode(&link.sent[1]).unwrap();
    assert_eq!(reply.arp().unwrap().operation, Arp::REPLY);
    assert_eq!(reply.eth_dst, PEER.mac);
}

#[test]
fn a_signal_during_arp_stops_at_once_instead_of_sending_the_other_tries() {
    let mut link = FakeLink::silent();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let signal = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let me = me();
    let err = resolve_mac(
        &mut link,
        &me,
        ME.ip,
        PEER.ip,
        Duration::from_secs(10),
        &stop,
    )
    .unwrap_err();
    signal.join().unwrap();
    // One request, cut short: neither the 10 s wait nor two more requests.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(link.sent.len(), 1);
    assert!(
        matches!(err, ToolError::Interrupted { target, .. } if target == PEER.ip),
        "{err}"
    );
    assert_eq!(err.exit_code(), crate::tools::error::EXIT_NOTHING_THROUGH);
}
