//! The netlink replies labctl and its tools parse: a route dump (every
//! tool's next hop: `route::parse_reply`, then the longest-prefix
//! match), a qdisc dump (lab-gen's qdisc bypass: `qdisc::parse_reply`),
//! and link and address dumps from a node's namespace (`labctl inspect`:
//! `links::live_interfaces`). The first byte picks the dump (its low two
//! bits; for qdiscs, the rest is the interface index); the rest is
//! one datagram of the kernel's reply. Any bytes give an answer.
#![no_main]

use std::net::Ipv4Addr;

use labctl::links::live_interfaces;
use labctl::tools::datalink::af_packet::qdisc;
use labctl::tools::route;
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

fuzz_target!(|data: &[u8]| {
    let Some((&which, datagram)) = data.split_first() else {
        return;
    };
    match which & 3 {
        0 => routes(datagram),
        1 => {
            let mut found = Vec::new();
            let _ = qdisc::parse_reply(datagram, u32::from(which >> 2), &mut found);
        }
        _ => links(datagram),
    }
});

fn routes(datagram: &[u8]) {
    let mut routes = Vec::new();
    let _ = route::parse_reply(datagram, &mut routes);
    for r in &routes {
        let _ = r.to_string();
    }
    for destination in [
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 19, 255, 255),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
    ] {
        for oif in 0..4 {
            if let Ok(found) = route::lookup(&routes, oif, destination) {
                assert!(found.destination.contains(&destination), "{found:?}");
            }
        }
    }
}

/// The datagram's messages as netlink-proto (under rtnetlink) splits
/// them: one after the other, each as long as its header says, padded to
/// 4 bytes; the first that does not parse ends the reply.
fn links(datagram: &[u8]) {
    let (mut links, mut addresses) = (Vec::new(), Vec::new());
    let mut rest = datagram;
    while !rest.is_empty() {
        let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
            break;
        };
        let length = message.header.length as usize;
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => links.push(link),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)) => {
                addresses.push(address)
            }
            _ => {}
        }
        let advance = length.div_ceil(4) * 4;
        if length == 0 || advance > rest.len() {
            break;
        }
        rest = &rest[advance..];
    }
    let found = live_interfaces(links, addresses);
    assert!(found.iter().all(|i| i.name != "lo"));
    assert!(found.windows(2).all(|w| w[0].name <= w[1].name));
    let json = serde_json::to_string(&found).expect("interfaces serialize");
    let _: serde_json::Value = serde_json::from_str(&json).expect("and parse back");
}
