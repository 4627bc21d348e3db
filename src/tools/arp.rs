//! Answering ARP for a tool's own address.
//!
//! The kernel of a node is silenced (or not in the path at all, on af_xdp
//! and netmap), so a tool that has an address must answer ARP for it
//! itself while it runs: a router, or any kernel-stack device, resolves the
//! tool before it can send it anything. Every receive loop calls [`answer`]
//! on each incoming frame and sends what it returns:
//!
//! ```ignore
//! if let Some(reply) = arp::answer(received.frame, &me) {
//!     datalink.send(&reply)?;
//! }
//! ```
//!
//! (The frame borrows the datalink: keep the reply, let the frame go, then
//! send.) [`answer`] looks at two bytes before it decodes anything, so it
//! costs nothing on a loop that receives at rate.

use std::net::Ipv4Addr;

use pnet::util::MacAddr;

use crate::tools::frames::{self, Arp, Frame, ETHERNET_HEADER_LEN};

/// The address a tool answers for, and its interface's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// True when `bytes` carries ARP (by its EtherType; an 802.1Q tag is not
/// looked through, as the tools send untagged frames).
pub fn is_arp(bytes: &[u8]) -> bool {
    bytes.get(12..ETHERNET_HEADER_LEN) == Some(&[0x08, 0x06])
}

/// The ARP reply to `bytes` when it is an ARP request for `me.ip`, sent to
/// the broadcast address or to `me.mac`; `None` for any other frame,
/// malformed ones included.
pub fn answer(bytes: &[u8], me: &Identity) -> Option<Vec<u8>> {
    if !is_arp(bytes) {
        return None;
    }
    let frame = frames::decode(bytes).ok()?;
    reply_to(&frame, frame.arp()?, me)
}

/// [`answer`] for a frame already decoded.
pub(crate) fn reply_to(frame: &Frame<'_>, arp: &Arp, me: &Identity) -> Option<Vec<u8>> {
    let to_us = frame.eth_dst == me.mac || frame.eth_dst == MacAddr::broadcast();
    let asks_for_us = arp.operation == Arp::REQUEST && arp.target_ip == me.ip;
    (to_us && asks_for_us).then(|| frames::arp_reply(me.mac, me.ip, arp.sender_mac, arp.sender_ip))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ME: Identity = Identity {
        ip: Ipv4Addr::new(198, 18, 0, 1),
        mac: MacAddr(2, 0, 0, 0, 0, 1),
    };
    const ASKER_MAC: MacAddr = MacAddr(2, 0, 0, 0, 0, 0xfe);
    const ASKER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

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
}
