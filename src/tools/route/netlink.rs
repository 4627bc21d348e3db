//! The IPv4 main table over a plain, blocking netlink socket: the tools are
//! synchronous and static, one dump needs no runtime.

use std::io;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{Route, RouteError, RouteKind};
use crate::tools::error::netlink_errno;

/// Every IPv4 route of the main table of this network namespace, in the
/// kernel's order.
pub fn read_table() -> Result<Vec<Route>, RouteError> {
    dump().map_err(RouteError::Netlink)
}

fn dump() -> io::Result<Vec<Route>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut request_message = RouteMessage::default();
    request_message.header.address_family = AddressFamily::Inet;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetRoute(request_message)),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut routes = Vec::new();
    loop {
        // Peeks at the datagram's size first: a dump part is never cut.
        let (datagram, _) = socket.recv_from_full()?;
        if parse_reply(&datagram, &mut routes)? {
            return Ok(routes);
        }
    }
}

/// Reads one datagram of the kernel's reply to a route dump into
/// `routes`; true once the dump is done. Whatever the bytes (the fuzz
/// target `netlink` feeds it any), it returns: a message it cannot read
/// is an error, a length that points past the datagram ends it.
pub fn parse_reply(datagram: &[u8], routes: &mut Vec<Route>) -> io::Result<bool> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
        let length = message.header.length as usize;
        match message.payload {
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(error) => return Err(netlink_errno(&error)),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                routes.extend(convert(&route));
            }
            _ => {}
        }
        // Messages are padded to 4 bytes.
        let advance = length.div_ceil(4) * 4;
        if length == 0 || advance > rest.len() {
            break;
        }
        rest = &rest[advance..];
    }
    Ok(false)
}

/// One route message as the next hops it offers; other tables, families
/// and routes with no IPv4 next hop give none.
fn convert(message: &RouteMessage) -> Vec<Route> {
    let header = &message.header;
    let mut table = u32::from(header.table);
    let mut destination = Ipv4Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut oif = None;
    let mut metric = 0;
    let mut prefsrc = None;
    let mut multipath = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(RouteAddress::Inet(address)) => destination = *address,
            RouteAttribute::Gateway(RouteAddress::Inet(address)) => gateway = Some(*address),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Priority(priority) => metric = *priority,
            RouteAttribute::PrefSource(RouteAddress::Inet(address)) => prefsrc = Some(*address),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            // An IPv6 gateway for an IPv4 route: nothing the tools can ARP for.
            RouteAttribute::Via(_) => return Vec::new(),
            _ => {}
        }
    }
    if header.address_family != AddressFamily::Inet
        || table != u32::from(RouteHeader::RT_TABLE_MAIN)
    {
        return Vec::new();
    }
    let kind = match header.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::BlackHole => RouteKind::Reject("blackhole"),
        RouteType::Unreachable => RouteKind::Reject("unreachable"),
        RouteType::Prohibit => RouteKind::Reject("prohibit"),
        _ => return Vec::new(),
    };
    let Ok(destination) = Ipv4Net::new(destination, header.destination_prefix_length) else {
        return Vec::new();
    };
    let route = Route {
        destination,
        kind,
        gateway,
        oif,
        metric,
        prefsrc,
    };
    match multipath {
        None => vec![route],
        Some(hops) => hops
            .iter()
            .map(|hop| Route {
                oif: Some(hop.interface_index),
                gateway: hop.attributes.iter().find_map(|attribute| match attribute {
                    RouteAttribute::Gateway(RouteAddress::Inet(address)) => Some(*address),
                    _ => None,
                }),
                ..route.clone()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::route::{RouteNextHop, RouteScope};

    use super::*;

    fn message(table: u8, kind: RouteType, attributes: Vec<RouteAttribute>) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = table;
        message.header.kind = kind;
        message.header.scope = RouteScope::Universe;
        message.header.destination_prefix_length = 24;
        message.attributes = attributes;
        message
    }

    fn destination() -> RouteAttribute {
        RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(198, 18, 9, 0)))
    }

    fn gateway(last: u8) -> RouteAttribute {
        RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(198, 18, 1, last)))
    }

    /// An NLMSG_ERROR whose code is i32::MIN: an error, no panic (the
    /// fuzz target `netlink` found the negation's overflow here too).
    #[test]
    fn an_error_code_of_i32_min_is_an_error_not_a_panic() {
        use crate::tools::error::netlink_error_reply;
        let error = parse_reply(&netlink_error_reply(i32::MIN), &mut Vec::new()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(i32::MAX));
        // And an ordinary one keeps its errno.
        let error = parse_reply(&netlink_error_reply(-libc::EPERM), &mut Vec::new()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn a_main_table_route_keeps_its_fields() {
        let routes = convert(&message(
            RouteHeader::RT_TABLE_MAIN,
            RouteType::Unicast,
            vec![
                destination(),
                gateway(1),
                RouteAttribute::Oif(7),
                RouteAttribute::Priority(20),
            ],
        ));
        assert_eq!(
            routes,
            vec![Route {
                destination: "198.18.9.0/24".parse().unwrap(),
                kind: RouteKind::Unicast,
                gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
                oif: Some(7),
                metric: 20,
                prefsrc: None,
            }]
        );
    }

    #[test]
    fn other_tables_and_kinds_are_left_out() {
        let local = message(255, RouteType::Local, vec![destination()]);
        assert!(convert(&local).is_empty());
        // A table id above 255 comes as an attribute.
        let mut big = message(
            RouteHeader::RT_TABLE_MAIN,
            RouteType::Unicast,
            vec![destination()],
        );
        big.attributes.push(RouteAttribute::Table(1000));
        assert!(convert(&big).is_empty());
        let multicast = message(RouteHeader::RT_TABLE_MAIN, RouteType::Multicast, vec![]);
        assert!(convert(&multicast).is_empty());
        let reject = message(
            RouteHeader::RT_TABLE_MAIN,
            RouteType::Unreachable,
            vec![destination()],
        );
        assert_eq!(convert(&reject)[0].kind, RouteKind::Reject("unreachable"));
    }

    #[test]
    fn a_multipath_route_is_one_route_per_hop() {
        let hop = |oif, last| {
            let mut hop = RouteNextHop::default();
            hop.interface_index = oif;
            hop.attributes = vec![gateway(last)];
            hop
        };
        let routes = convert(&message(
            RouteHeader::RT_TABLE_MAIN,
            RouteType::Unicast,
            vec![
                destination(),
                RouteAttribute::MultiPath(vec![hop(7, 1), hop(8, 2)]),
            ],
        ));
        let hops: Vec<_> = routes.iter().map(|r| (r.oif, r.gateway)).collect();
        assert_eq!(
            hops,
            vec![
                (Some(7), Some(Ipv4Addr::new(198, 18, 1, 1))),
                (Some(8), Some(Ipv4Addr::new(198, 18, 1, 2)))
            ]
        );
    }
}
