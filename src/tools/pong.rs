//! lab-pong: answers ARP requests for its address and ICMP echo requests
//! to it, keeping identifier, sequence and payload, and ignores everything
//! else. [`answer`] is a pure function of the frame, so every frame the
//! wire can send is tested without a network.

use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::util::MacAddr;
use serde::Serialize;

use crate::tools::arp;
use crate::tools::datalink::{Datalink, DatalinkError, Direction};
use crate::tools::error::ToolError;
use crate::tools::frames::{self, EchoKind, Frame, Ipv4Params, Layer, Link, Malformed};
use crate::tools::output::{as_text, recv_flushing, Output};

/// How long one receive waits before the stop flag is looked at again
/// (signals also end the wait at once).
const POLL: Duration = Duration::from_millis(200);
/// At most this long is spent answering what is still queued after a stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

pub use crate::tools::arp::Identity;

/// What pong does with one frame.
#[derive(Debug)]
pub enum Handling<'a> {
    /// A request for us, and the frame that answers it.
    Answer {
        request: Frame<'a>,
        reply: Vec<u8>,
        kind: AnswerKind,
    },
    /// Not for us, or not something pong answers.
    Ignore,
    /// Unreadable, or a request for us with a wrong checksum.
    Malformed(Malformed),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    Arp,
    Echo,
}

/// Decides what to do with `bytes`. `ident` is the IPv4 identification for
/// an echo reply.
pub fn answer<'a>(bytes: &'a [u8], me: &Identity, ident: u16) -> Handling<'a> {
    let frame = match frames::decode(bytes) {
        Ok(frame) => frame,
        Err(malformed) => return Handling::Malformed(malformed),
    };
    if let Some(arp) = frame.arp() {
        return match arp::reply_to(&frame, arp, me) {
            Some(reply) => Handling::Answer {
                request: frame,
                reply,
                kind: AnswerKind::Arp,
            },
            None => Handling::Ignore,
        };
    }
    match echo_reply(&frame, me, ident) {
        Ok(Some(reply)) => Handling::Answer {
            request: frame,
            reply,
            kind: AnswerKind::Echo,
        },
        Ok(None) => Handling::Ignore,
        Err(malformed) => Handling::Malformed(malformed),
    }
}

/// The reply to an echo request for us; `Ok(None)` for any other frame.
fn echo_reply(frame: &Frame<'_>, me: &Identity, ident: u16) -> Result<Option<Vec<u8>>, Malformed> {
    let Some((ip, icmp, echo)) = frame.ipv4_echo() else {
        return Ok(None);
    };
    let for_us = frame.eth_dst == me.mac && ip.dst == me.ip;
    if !for_us || icmp.icmp_type != 8 || icmp.code != 0 || ip.more_fragments {
        return Ok(None);
    }
    if !ip.header_checksum_ok {
        return Err(bad_checksum(Layer::Ipv4));
    }
    if !icmp.checksum_ok {
        return Err(bad_checksum(Layer::Icmp));
    }
    let link = Link {
        src: me.mac,
        dst: frame.eth_src,
    };
    let params = Ipv4Params {
        src: me.ip,
        dst: ip.src,
        ident,
        dont_fragment: false,
    };
    // The request fitted in an IPv4 packet, so the reply (same size) does.
    let reply = frames::icmp_echo(
        link,
        params,
        EchoKind::Reply,
        echo.id,
        echo.seq,
        echo.payload,
    )
    .map_err(|error| Malformed {
        layer: Layer::Icmp,
        detail: error.to_string(),
    })?;
    Ok(Some(reply))
}

fn bad_checksum(layer: Layer) -> Malformed {
    Malformed {
        layer,
        detail: "wrong checksum".into(),
    }
}

#[derive(Clone, Debug)]
pub struct PongOptions {
    pub iface: String,
    pub me: Identity,
    /// Stop after this many echo replies.
    pub count: Option<u64>,
    /// No per-frame events, only the start line and the summary: a
    /// responder under a flood spends its time answering, not printing.
    pub quiet: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PongSummary {
    pub echo_replies: u64,
    pub arp_replies: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// Answers that could not be sent because the link was down.
    pub not_sent: u64,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PongEvent<'a> {
    Listening {
        iface: &'a str,
        ip: Ipv4Addr,
        #[serde(serialize_with = "as_text")]
        mac: MacAddr,
        datalink: String,
    },
    /// A request pong answers.
    Request {
        iface: &'a str,
        frame: &'a Frame<'a>,
    },
    /// The answer it sent.
    Reply {
        iface: &'a str,
        frame: &'a Frame<'a>,
    },
    /// An answer the link did not take (it went down): lost, and pong
    /// goes on.
    NotSent {
        iface: &'a str,
        error: String,
    },
    Summary(&'a PongSummary),
}

/// Answers until stopped (or `count` echo replies), then drains what is
/// still queued and prints the summary.
pub fn run<W: Write>(
    datalink: &mut dyn Datalink,
    options: &PongOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<PongSummary, ToolError> {
    out.emit(&PongEvent::Listening {
        iface: &options.iface,
        ip: options.me.ip,
        mac: options.me.mac,
        datalink: datalink.describe(),
    })?;
    out.flush()?;
    let mut pong = Pong {
        options,
        summary: PongSummary::default(),
        ident: 0,
    };
    let mut drain_until = None;
    while !pong.done() {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + DRAIN_LIMIT);
        }
        let wait = if drain_until.is_some() {
            Duration::ZERO
        } else {
            POLL
        };
        let handled = pong.receive(datalink, wait, out)?;
        let drained = drain_until.is_some_and(|until| !handled || Instant::now() >= until);
        if drained {
            break;
        }
    }
    out.emit(&PongEvent::Summary(&pong.summary))?;
    out.flush()?;
    Ok(pong.summary)
}

struct Pong<'a> {
    options: &'a PongOptions,
    summary: PongSummary,
    ident: u16,
}

impl Pong<'_> {
    fn done(&self) -> bool {
        self.options
            .count
            .is_some_and(|count| self.summary.echo_replies >= count)
    }

    /// Takes one frame, if one comes within `wait`, and answers it.
    /// `false` when none came.
    fn receive<W: Write>(
        &mut self,
        datalink: &mut dyn Datalink,
        wait: Duration,
        out: &mut Output<W>,
    ) -> Result<bool, ToolError> {
        let Some(received) = recv_flushing!(datalink, wait, out)? else {
            return Ok(false);
        };
        if received.direction != Direction::In {
            return Ok(true);
        }
        let iface = self.options.iface.as_str();
        let (reply, kind) = match answer(received.frame, &self.options.me, self.ident) {
            Handling::Answer {
                request,
                reply,
                kind,
            } => {
                if !self.options.quiet {
                    out.emit(&PongEvent::Request {
                        iface,
                        frame: &request,
                    })?;
                }
                (reply, kind)
            }
            Handling::Ignore => {
                self.summary.ignored += 1;
                return Ok(true);
            }
            Handling::Malformed(_) => {
                self.summary.malformed += 1;
                return Ok(true);
            }
        };
        match datalink.send(&reply) {
            Ok(()) => {}
            // The link went down under us: the answer is lost, as on a cut
            // cable; pong carries on and answers again once it is back.
            // A lab's loss filter or a full queue dropped it (ENOBUFS):
            // lost the same way.
            Err(error) if error.is_link_down() || error.is_queue_drop() => {
                self.summary.not_sent += 1;
                let error = match &error {
                    DatalinkError::Io { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                out.emit(&PongEvent::NotSent { iface, error })?;
                return Ok(true);
            }
            Err(error) => return Err(ToolError::Wire(error)),
        }
        match kind {
            AnswerKind::Arp => self.summary.arp_replies += 1,
            AnswerKind::Echo => {
                self.summary.echo_replies += 1;
                self.ident = self.ident.wrapping_add(1);
            }
        }
        if self.options.quiet {
            return Ok(true);
        }
        if let Ok(frame) = frames::decode(&reply) {
            out.emit(&PongEvent::Reply {
                iface,
                frame: &frame,
            })?;
        }
        Ok(true)
    }
}

impl fmt::Display for PongEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PongEvent::Listening {
                iface,
                ip,
                mac,
                datalink,
            } => write!(f, "listening on {iface} ({ip}, {mac}, {datalink})"),
            PongEvent::Request { iface, frame } | PongEvent::Reply { iface, frame } => {
                write!(f, "[{iface}]: {frame}")
            }
            PongEvent::NotSent { iface, error } => {
                write!(f, "[{iface}]: reply not sent: {error}")
            }
            PongEvent::Summary(summary) => write!(
                f,
                "{} echo replies sent, {} ARP replies sent, {} frames ignored, {} malformed",
                summary.echo_replies, summary.arp_replies, summary.ignored, summary.malformed
            ),
        }
    }
}

#[cfg(test)]
mod tests;
