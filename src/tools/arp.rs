//! ARP for a tool: answering for its own address, and resolving its next
//! hop's MAC ([`resolve_mac`], lab-ping and lab-gen).
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::util::MacAddr;

use crate::tools::datalink::wait::deadline_after;
use crate::tools::datalink::{Datalink, Direction};
use crate::tools::error::ToolError;
use crate::tools::frames::{self, Arp, Frame, ETHERNET_HEADER_LEN};
use crate::tools::iface::Interface;

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

/// How many ARP requests before giving up; each waits `--timeout`.
pub const ARP_TRIES: u32 = 3;

/// Resolves `target`'s MAC with our own ARP requests, answering those for
/// `source` meanwhile (a router may ask for us first).
pub fn resolve_mac(
    datalink: &mut dyn Datalink,
    me: &Interface,
    source: Ipv4Addr,
    target: Ipv4Addr,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<MacAddr, ToolError> {
    resolve(datalink, me, source, target, timeout, stop).map(|(mac, _)| mac)
}

/// [`resolve_mac`], and how many ARP requests for us it answered (lab-ping
/// counts them).
pub fn resolve(
    datalink: &mut dyn Datalink,
    me: &Interface,
    source: Ipv4Addr,
    target: Ipv4Addr,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(MacAddr, u64), ToolError> {
    let request = frames::arp_request(me.mac, source, target);
    let identity = Identity {
        ip: source,
        mac: me.mac,
    };
    let mut answered = 0;
    let interrupted = || ToolError::Interrupted {
        target,
        iface: me.name.clone(),
    };
    for _ in 0..ARP_TRIES {
        if stop.load(Ordering::Relaxed) {
            return Err(interrupted());
        }
        // A request the link cannot carry (it is down, or its peer is: the
        // veth has no carrier and the queue refuses) is a try that went
        // unanswered, as on a cut cable; the tries run out as usual.
        match datalink.send(&request) {
            Ok(()) => {}
            Err(error) if error.is_link_down() || error.is_queue_drop() => {}
            Err(error) => return Err(ToolError::Wire(error)),
        }
        let deadline = deadline_after(timeout);
        while let Some(left) = time_left(deadline) {
            // A signal ends the whole resolution, not just this try's wait.
            if stop.load(Ordering::Relaxed) {
                return Err(interrupted());
            }
            let Some(received) = datalink.recv(left).map_err(ToolError::Wire)? else {
                continue;
            };
            if received.direction != Direction::In || !is_arp(received.frame) {
                continue;
            }
            if let Some(reply) = answer(received.frame, &identity) {
                match datalink.send(&reply) {
                    Ok(()) => answered += 1,
                    // Dropped on the way out: the asker asks again.
                    Err(error) if error.is_link_down() || error.is_queue_drop() => {}
                    Err(error) => return Err(ToolError::Wire(error)),
                }
                continue;
            }
            let Ok(frame) = frames::decode(received.frame) else {
                continue;
            };
            if let Some(arp) = frame.arp() {
                if is_reply_from(arp, target, source) && frame.eth_dst == me.mac {
                    return Ok((arp.sender_mac, answered));
                }
            }
        }
    }
    Err(ToolError::NoArpReply {
        target,
        iface: me.name.clone(),
        tries: ARP_TRIES,
        waited: timeout,
    })
}

fn is_reply_from(arp: &Arp, target: Ipv4Addr, asker: Ipv4Addr) -> bool {
    arp.operation == Arp::REPLY && arp.sender_ip == target && arp.target_ip == asker
}

fn time_left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

#[cfg(test)]
mod tests;
