//! lab-ping: ICMP echo over a datalink, with its own ARP.
//!
//! The kernel is not in the path: the next hop's MAC (the destination's,
//! or its gateway's: see [`crate::tools::route`]) comes from our own ARP
//! request ([`arp::resolve`]), every frame is built here, ARP requests for our address are
//! answered all along (a router in the path resolves us before it forwards
//! a reply), and the RTT is measured from handing a request to the
//! datalink to the reply's receipt: the kernel's receive time where the
//! datalink has one (AF_PACKET's `SO_TIMESTAMPNS`, on the real-time clock,
//! against a real-time send time, as iputils does), else when lab-ping
//! reads it (monotonic clock).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pnet::util::MacAddr;
use serde::Serialize;

use crate::tools::arp::{self, Identity};
use crate::tools::datalink::wait::deadline_after;
use crate::tools::datalink::{Datalink, DatalinkError, Direction};
use crate::tools::error::ToolError;
use crate::tools::frames::{self, EchoKind, Ipv4Params, Link};
use crate::tools::iface::Interface;
use crate::tools::output::{as_text, recv_flushing, Output};

/// In flood mode, the next request goes out when the reply arrives or after
/// this long, whichever comes first (as `ping -f`).
pub const FLOOD_MAX_WAIT: Duration = Duration::from_millis(10);

/// When requests go out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// One request every interval.
    Interval(Duration),
    /// This many requests per second, on a fixed schedule.
    Rate(f64),
    /// The next request as soon as the previous one is answered.
    Flood,
}

#[derive(Clone, Debug)]
pub struct PingOptions {
    pub destination: Ipv4Addr,
    /// The gateway the destination is behind (the next hop: it is what we
    /// ARP for); `None` when the destination is on the interface's link.
    pub gateway: Option<Ipv4Addr>,
    pub source: Ipv4Addr,
    pub count: u64,
    pub pacing: Pacing,
    /// How long to wait for a reply (the last one in particular); a reply
    /// slower than this still counts and is flagged late.
    pub timeout: Duration,
    /// ICMP payload bytes.
    pub size: usize,
    pub id: u16,
    /// No per-reply events, only the summary (implied by flood).
    pub quiet: bool,
    /// The next hop's MAC (the destination's, or its gateway's), given: no
    /// ARP. A load generator towards a node that answers no ARP (one that
    /// only captures, on af_xdp where its kernel sees nothing) needs it.
    pub peer_mac: Option<MacAddr>,
}

/// One request on the wire, waiting for its reply.
struct Sent {
    index: u64,
    at: Instant,
    /// The same moment on the real-time clock, which the kernel's receive
    /// timestamps use.
    wall: SystemTime,
    answered: bool,
}

/// The first event: what is being pinged, from where.
#[derive(Debug, Serialize)]
pub struct Start<'a> {
    pub iface: &'a str,
    pub datalink: String,
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    /// The gateway the requests go through (absent when direct).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// The next hop's MAC: the destination's, or the gateway's.
    #[serde(serialize_with = "as_text")]
    pub destination_mac: MacAddr,
    pub id: u16,
    pub size: usize,
}

/// One echo reply that matched a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reply {
    /// ICMP bytes (header and payload), as ping counts them.
    pub bytes: usize,
    pub from: Ipv4Addr,
    pub seq: u16,
    pub ttl: u8,
    pub time_ms: f64,
    /// A second reply to the same request.
    pub dup: bool,
    /// Slower than `--timeout`.
    pub late: bool,
    /// A later request had already been answered.
    pub out_of_order: bool,
    /// The payload differs from what was sent.
    pub wrong_data: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PingSummary {
    pub destination: Option<Ipv4Addr>,
    pub transmitted: u64,
    /// Requests answered at least once.
    pub received: u64,
    pub duplicates: u64,
    pub late: u64,
    pub out_of_order: u64,
    pub wrong_data: u64,
    /// Replies to us whose IPv4 or ICMP checksum was wrong (skipped).
    pub corrupted: u64,
    /// Frames that did not decode (skipped).
    pub malformed: u64,
    /// ARP requests for our address that we answered.
    pub arp_replies: u64,
    pub loss_percent: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PingEvent<'a> {
    Start(Start<'a>),
    Reply(&'a Reply),
    /// A request the link did not take (it is down): sent, and lost.
    NotSent {
        iface: &'a str,
        seq: u16,
        error: String,
    },
    Summary(&'a PingSummary),
}

/// The state of one ping run: what was sent, what came back.
pub struct Session<'a> {
    me: &'a Interface,
    options: &'a PingOptions,
    peer_mac: MacAddr,
    payload: Vec<u8>,
    sent: HashMap<u16, Sent>,
    highest_answered: Option<u64>,
    rtt: RttStats,
    summary: PingSummary,
}

/// Running RTT figures: a load generator's millions of replies need no list.
#[derive(Default)]
struct RttStats {
    min: Option<Duration>,
    max: Option<Duration>,
    total: Duration,
    count: u32,
}

impl RttStats {
    fn add(&mut self, rtt: Duration) {
        self.min = Some(self.min.map_or(rtt, |min| min.min(rtt)));
        self.max = Some(self.max.map_or(rtt, |max| max.max(rtt)));
        self.total = self.total.saturating_add(rtt);
        self.count = self.count.saturating_add(1);
    }
}

impl<'a> Session<'a> {
    pub fn new(me: &'a Interface, options: &'a PingOptions, peer_mac: MacAddr) -> Self {
        Session {
            me,
            options,
            peer_mac,
            payload: (0..options.size).map(|i| i as u8).collect(),
            sent: HashMap::new(),
            highest_answered: None,
            rtt: RttStats::default(),
            summary: PingSummary {
                destination: Some(options.destination),
                ..PingSummary::default()
            },
        }
    }

    /// The `index`-th request (its seq is the index modulo 2^16).
    pub fn request(&self, index: u64) -> Result<Vec<u8>, ToolError> {
        let seq = index as u16;
        let link = Link {
            src: self.me.mac,
            dst: self.peer_mac,
        };
        let ip = Ipv4Params {
            src: self.options.source,
            dst: self.options.destination,
            ident: seq,
            dont_fragment: true,
        };
        frames::icmp_echo(
            link,
            ip,
            EchoKind::Request,
            self.options.id,
            seq,
            &self.payload,
        )
        .map_err(|error| ToolError::Usage(format!("--size {}: {error}", self.options.size)))
    }

    /// Records that request `index` left at `at`.
    pub fn sent(&mut self, index: u64, at: Instant) {
        self.sent_at(index, at, SystemTime::now());
    }

    /// Records that request `index` left at `at`, `wall` on the real-time
    /// clock.
    pub fn sent_at(&mut self, index: u64, at: Instant, wall: SystemTime) {
        let sent = Sent {
            index,
            at,
            wall,
            answered: false,
        };
        self.sent.insert(index as u16, sent);
        self.summary.transmitted += 1;
    }

    /// Who we answer ARP for: the source address, on our MAC.
    fn identity(&self) -> Identity {
        Identity {
            ip: self.options.source,
            mac: self.me.mac,
        }
    }

    /// Requests not answered yet.
    pub fn unanswered(&self) -> u64 {
        self.summary.transmitted - self.summary.received
    }

    /// Looks at one received frame; a reply to one of our requests comes
    /// back as a [`Reply`], anything else is skipped (and counted if it is
    /// malformed or a corrupted reply).
    pub fn on_frame(&mut self, bytes: &[u8], now: Instant) -> Option<Reply> {
        self.on_frame_at(bytes, now, None)
    }

    /// [`Session::on_frame`] for a frame the kernel timestamped at
    /// `kernel_at` (real-time clock): the RTT ends there, not at `now`.
    pub fn on_frame_at(
        &mut self,
        bytes: &[u8],
        now: Instant,
        kernel_at: Option<SystemTime>,
    ) -> Option<Reply> {
        let frame = match frames::decode(bytes) {
            Ok(frame) => frame,
            Err(_) => {
                self.summary.malformed += 1;
                return None;
            }
        };
        let (ip, icmp, echo) = frame.ipv4_echo()?;
        let ours = frame.eth_dst == self.me.mac
            && icmp.icmp_type == 0
            && ip.src == self.options.destination
            && ip.dst == self.options.source
            && echo.id == self.options.id;
        if !ours {
            return None;
        }
        if !ip.header_checksum_ok || !icmp.checksum_ok {
            self.summary.corrupted += 1;
            return None;
        }
        let sent = self.sent.get_mut(&echo.seq)?;
        let rtt = round_trip(sent, now, kernel_at);
        let dup = sent.answered;
        let index = sent.index;
        sent.answered = true;
        let reply = Reply {
            bytes: frames::ICMP_ECHO_HEADER_LEN + echo.payload.len(),
            from: ip.src,
            seq: echo.seq,
            ttl: ip.ttl,
            time_ms: millis(rtt),
            dup,
            late: rtt > self.options.timeout,
            out_of_order: !dup && self.highest_answered.is_some_and(|h| h > index),
            wrong_data: echo.payload != self.payload.as_slice(),
        };
        self.count(&reply, index, rtt);
        Some(reply)
    }

    fn count(&mut self, reply: &Reply, index: u64, rtt: Duration) {
        let summary = &mut self.summary;
        summary.wrong_data += u64::from(reply.wrong_data);
        if reply.dup {
            summary.duplicates += 1;
            return;
        }
        summary.received += 1;
        summary.late += u64::from(reply.late);
        summary.out_of_order += u64::from(reply.out_of_order);
        self.highest_answered = self.highest_answered.max(Some(index));
        self.rtt.add(rtt);
    }

    /// True when `reply` answers the most recent request (flood pacing).
    fn answers_latest(&self, reply: &Reply) -> bool {
        self.summary.transmitted > 0
            && u64::from(reply.seq) == (self.summary.transmitted - 1) % 65536
    }

    pub fn summary(&self) -> PingSummary {
        let mut summary = self.summary.clone();
        if summary.transmitted > 0 {
            let lost = summary.transmitted - summary.received;
            let percent = lost as f64 * 100.0 / summary.transmitted as f64;
            summary.loss_percent = (percent * 10_000.0).round() / 10_000.0;
        }
        if self.rtt.count > 0 {
            summary.rtt_min_ms = self.rtt.min.map(millis);
            summary.rtt_max_ms = self.rtt.max.map(millis);
            let average = self.rtt.total.as_secs_f64() * 1000.0 / f64::from(self.rtt.count);
            summary.rtt_avg_ms = Some(round_to_micros(average));
        }
        summary
    }
}

/// From a request's send to its reply's receipt: the kernel's receive
/// time when it has one that fits (never after lab-ping read the frame; a
/// step of the real-time clock in between would make it not fit), else
/// the read time.
fn round_trip(sent: &Sent, read: Instant, kernel_at: Option<SystemTime>) -> Duration {
    let by_read = read.saturating_duration_since(sent.at);
    kernel_at
        .and_then(|at| at.duration_since(sent.wall).ok())
        .filter(|by_kernel| *by_kernel <= by_read + CLOCK_SLACK)
        .unwrap_or(by_read)
}

/// How far the real-time and monotonic clocks may disagree over one
/// round trip (they are read at different instants, and NTP slews one).
const CLOCK_SLACK: Duration = Duration::from_micros(100);

/// Runs the whole ping: ARP, requests, replies, summary.
pub fn run<W: Write>(
    datalink: &mut dyn Datalink,
    me: &Interface,
    options: &PingOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<PingSummary, ToolError> {
    let (peer_mac, arp_replies) = match options.peer_mac {
        Some(mac) => (mac, 0),
        None => arp::resolve(
            datalink,
            me,
            options.source,
            options.gateway.unwrap_or(options.destination),
            options.timeout,
            stop,
        )?,
    };
    out.emit(&PingEvent::Start(Start {
        iface: &me.name,
        datalink: datalink.describe(),
        source: options.source,
        destination: options.destination,
        gateway: options.gateway,
        destination_mac: peer_mac,
        id: options.id,
        size: options.size,
    }))?;
    out.flush()?;
    let mut session = Session::new(me, options, peer_mac);
    session.summary.arp_replies = arp_replies;
    exchange(datalink, &mut session, out, stop)?;
    let summary = session.summary();
    out.emit(&PingEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

/// Sends the requests on their schedule and takes the replies as they come,
/// then waits up to `timeout` after the last request for what is missing.
fn exchange<W: Write>(
    datalink: &mut dyn Datalink,
    session: &mut Session<'_>,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<(), ToolError> {
    let options = session.options;
    let quiet = options.quiet || options.pacing == Pacing::Flood;
    let mut index = 0u64;
    let mut next_send = Some(Instant::now());
    // The reply being looked at, copied off the datalink so that its
    // kernel timestamp can be asked for.
    let mut frame = Vec::new();
    let mut last_sent = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(due) = next_send.filter(|due| Instant::now() >= *due) {
            let request = session.request(index)?;
            let wall = SystemTime::now();
            last_sent = Instant::now();
            match datalink.send(&request) {
                Ok(()) => {}
                // The link is down: the request counts as sent and lost,
                // with a line, as iputils' "sendmsg: Network is down".
                Err(error) if error.is_link_down() || error.is_queue_drop() => {
                    let error = match &error {
                        DatalinkError::Io { source, .. } => source.to_string(),
                        other => other.to_string(),
                    };
                    out.emit(&PingEvent::NotSent {
                        iface: &session.me.name,
                        seq: index as u16,
                        error,
                    })?;
                }
                Err(error) => return Err(send_error(error, &session.me.name, request.len())),
            }
            session.sent_at(index, last_sent, wall);
            index += 1;
            next_send = (index < options.count)
                .then(|| next_due(options.pacing, due, last_sent))
                .flatten();
        }
        // Behind schedule (a high --rate) this waits zero: one look at the
        // socket per request keeps replies from piling up unread.
        let now = Instant::now();
        let wake = match next_send {
            Some(due) => due,
            None if session.unanswered() == 0 => break,
            None => {
                let end = last_sent
                    .checked_add(options.timeout)
                    .unwrap_or_else(|| deadline_after(options.timeout));
                if end <= now {
                    break;
                }
                end
            }
        };
        let Some(received) = recv_flushing!(datalink, wake.saturating_duration_since(now), out)?
        else {
            continue;
        };
        let arrived = Instant::now();
        if received.direction != Direction::In {
            continue;
        }
        if let Some(reply) = arp::answer(received.frame, &session.identity()) {
            match datalink.send(&reply) {
                Ok(()) => session.summary.arp_replies += 1,
                // Down again, or dropped: the asker asks again.
                Err(error) if error.is_link_down() || error.is_queue_drop() => {}
                Err(error) => return Err(ToolError::Wire(error)),
            }
            continue;
        }
        frame.clear();
        frame.extend_from_slice(received.frame);
        let Some(reply) = session.on_frame_at(&frame, arrived, datalink.received_at()) else {
            continue;
        };
        if options.pacing == Pacing::Flood && next_send.is_some() && session.answers_latest(&reply)
        {
            next_send = Some(arrived);
        }
        if !quiet {
            out.emit(&PingEvent::Reply(&reply))?;
        }
    }
    Ok(())
}

/// When the request after the one due at `due` (and sent at `sent`) goes.
fn next_due(pacing: Pacing, due: Instant, sent: Instant) -> Option<Instant> {
    match pacing {
        // From the schedule, not from the send: no drift.
        Pacing::Interval(interval) => due.checked_add(interval),
        Pacing::Rate(per_second) => Duration::try_from_secs_f64(1.0 / per_second)
            .ok()
            .and_then(|period| due.checked_add(period)),
        Pacing::Flood => sent.checked_add(FLOOD_MAX_WAIT),
    }
}

fn send_error(error: DatalinkError, iface: &str, len: usize) -> ToolError {
    match &error {
        DatalinkError::Io { source, .. } if source.raw_os_error() == Some(libc::EMSGSIZE) => {
            ToolError::FrameTooBig {
                iface: iface.to_owned(),
                len,
            }
        }
        _ => ToolError::Wire(error),
    }
}

/// Milliseconds to the microsecond, as printed: JSON carries the same value.
fn millis(duration: Duration) -> f64 {
    round_to_micros(duration.as_secs_f64() * 1000.0)
}

fn round_to_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

impl fmt::Display for PingEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingEvent::Start(start) => write!(
                f,
                "PING {}{} ({}) from {} {} ({}): {} data bytes",
                start.destination,
                start
                    .gateway
                    .map(|gateway| format!(" via {gateway}"))
                    .unwrap_or_default(),
                start.destination_mac,
                start.source,
                start.iface,
                start.datalink,
                start.size
            ),
            PingEvent::Reply(reply) => reply.fmt(f),
            PingEvent::NotSent { iface, seq, error } => {
                write!(f, "{iface}: icmp_seq={seq}: {error}")
            }
            PingEvent::Summary(summary) => summary.fmt(f),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes from {}: icmp_seq={} ttl={} time={:.3} ms",
            self.bytes, self.from, self.seq, self.ttl, self.time_ms
        )?;
        for (flag, text) in [
            (self.dup, " (DUP!)"),
            (self.late, " (late)"),
            (self.out_of_order, " (out of order)"),
            (self.wrong_data, " (wrong data)"),
        ] {
            if flag {
                f.write_str(text)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for PingSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(destination) = self.destination {
            writeln!(f, "--- {destination} ping statistics ---")?;
        }
        write!(
            f,
            "{} packets transmitted, {} received",
            self.transmitted, self.received
        )?;
        for (count, what) in [
            (self.duplicates, "duplicates"),
            (self.corrupted, "corrupted"),
        ] {
            if count > 0 {
                write!(f, ", +{count} {what}")?;
            }
        }
        for (count, what) in [(self.late, "late"), (self.out_of_order, "out of order")] {
            if count > 0 {
                write!(f, ", {count} {what}")?;
            }
        }
        write!(f, ", {}% packet loss", self.loss_percent)?;
        if let (Some(min), Some(avg), Some(max)) =
            (self.rtt_min_ms, self.rtt_avg_ms, self.rtt_max_ms)
        {
            write!(f, "\nrtt min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
