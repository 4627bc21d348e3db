//! Whether an interface has a qdisc that `PACKET_QDISC_BYPASS` would skip.
//!
//! Bypassing the qdisc saves a generator a few hundred nanoseconds a frame,
//! but it also skips what a lab put there on purpose: a `tbf` rate limit, a
//! `clsact` loss filter. So lab-gen bypasses only an interface whose every
//! qdisc is `noqueue` (a veth's default): one RTM_GETQDISC dump over a
//! plain netlink socket, read synchronously (the tools have no runtime).

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::tc::{TcAttribute, TcMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::tools::error::netlink_errno;

/// The qdisc kinds of interface `ifindex`, as `tc qdisc show dev` lists them.
pub fn kinds(ifindex: u32) -> io::Result<Vec<String>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default())),
    );
    request.finalize();
    let mut buffer = vec![0; request.buffer_len()];
    request.serialize(&mut buffer);
    socket.send(&buffer, 0)?;

    let mut found = Vec::new();
    loop {
        let (bytes, _) = socket.recv_from_full()?;
        if parse_reply(&bytes, ifindex, &mut found)? {
            return Ok(found);
        }
    }
}

/// Reads one datagram of the kernel's reply to a qdisc dump, adding the
/// kinds of `ifindex`'s qdiscs to `found`; true once the dump is done.
/// Any bytes end in an answer (the fuzz target `netlink` feeds it any).
pub fn parse_reply(bytes: &[u8], ifindex: u32, found: &mut Vec<String>) -> io::Result<bool> {
    let mut offset = 0;
    while offset < bytes.len() {
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
        let length = message.header.length as usize;
        match message.payload {
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(error) => return Err(netlink_errno(&error)),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(tc))
                if u32::try_from(tc.header.index) == Ok(ifindex) =>
            {
                found.extend(
                    tc.attributes
                        .into_iter()
                        .find_map(|attribute| match attribute {
                            TcAttribute::Kind(kind) => Some(kind),
                            _ => None,
                        }),
                );
            }
            _ => {}
        }
        if length == 0 {
            break;
        }
        offset += length.next_multiple_of(4);
    }
    Ok(false)
}

/// True when bypassing the qdisc of `ifindex` skips nothing: every qdisc
/// it has is `noqueue`. False when it has another one, or when the dump
/// fails (then the qdisc stays in the path: slower, never wrong).
pub fn nothing_to_bypass(ifindex: u32) -> bool {
    kinds(ifindex).is_ok_and(|kinds| kinds.iter().all(|kind| kind == "noqueue"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_only_noqueue() {
        // lo's qdisc is noqueue unless someone changed it on this host.
        let kinds = kinds(1).expect("dump qdiscs");
        // An empty dump (a parse that found nothing) proves nothing.
        assert!(!kinds.is_empty(), "no qdisc of lo in the dump");
        assert!(kinds.iter().all(|kind| kind == "noqueue"), "{kinds:?}");
    }
}

#[cfg(test)]
mod fuzzed {
    use super::*;

    /// An NLMSG_ERROR whose code is i32::MIN: one line of error, no panic
    /// (the fuzz target `netlink` found `to_io`'s overflow).
    #[test]
    fn an_error_code_of_i32_min_is_an_error_not_a_panic() {
        let message = crate::tools::error::netlink_error_reply(i32::MIN);
        let mut found = Vec::new();
        let error = parse_reply(&message, 1, &mut found).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(i32::MAX));
    }
}
