//! lab-gen: UDP frames at a fixed rate (or as fast as the datalink takes
//! them), each stamped with its flow's sequence number and its send time
//! ([`traffic`]), handed to the datalink in batches
//! ([`Datalink::send_batch`]).
//!
//! Frame `i` of the run belongs to flow `i % flows` (source port
//! `base + flow`) and is that flow's frame number `i / flows`: every flow
//! numbers its own frames from 0, so a sink counts loss and order per flow.
//! A frame the link would not take because it was down still uses its
//! number: the sink sees the gap, and lab-gen counts it lost.
//!
//! Between batches, and while it waits for the next frame to be due,
//! lab-gen reads what arrived and answers ARP requests for its address, so
//! a router or a sink in front of it can resolve it.

use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::util::MacAddr;
use serde::Serialize;

use crate::tools::arp;
use crate::tools::datalink::{Datalink, DatalinkError, DatalinkKind, Direction};
use crate::tools::error::ToolError;
use crate::tools::frames::Link;
use crate::tools::iface::Interface;
use crate::tools::output::{as_text, Output};
use crate::tools::traffic::{self, FlowEnds, InPlaceTemplate, SentSum, Stamp, Template};

pub mod live;
pub mod pacing;

use live::{LiveFrames, Schedule, SendError, StampPlan, Unavailable};
use pacing::{Grant, Pacer};

/// The most frames handed to the datalink at once.
pub const MAX_BATCH: usize = 256;
/// The first source port; flow `f` uses `BASE_PORT + f`.
pub const BASE_PORT: u16 = 49152;
/// The most flows (source ports from 49152 up to 65535).
pub const MAX_FLOWS: u16 = u16::MAX - BASE_PORT + 1;
/// The default destination port (discard).
pub const DEFAULT_PORT: u16 = 9;
/// How long lab-gen waits, while its link is down, before trying again.
const DOWN_RETRY: Duration = Duration::from_millis(10);
/// Frames read (and ARP answered) between two batches at most.
const RX_BURST: usize = 16;

/// When the run ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Count(u64),
    Duration(Duration),
}

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub destination: Ipv4Addr,
    pub destination_mac: MacAddr,
    pub source: Ipv4Addr,
    pub rate: Option<f64>,
    pub limit: Limit,
    /// Frame bytes, headers included (no FCS).
    pub size: usize,
    pub flows: u16,
    pub port: u16,
    /// Tells this run's frames from another's, for the sink.
    pub session: u32,
}

#[derive(Debug, Serialize)]
pub struct Start<'a> {
    pub iface: &'a str,
    pub datalink: String,
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    #[serde(serialize_with = "as_text")]
    pub destination_mac: MacAddr,
    pub size: usize,
    /// Frames per second asked for; `null`: as fast as it can.
    pub rate: Option<f64>,
    pub flows: u16,
    pub port: u16,
    pub session: u32,
    /// How the frames go out: `live_frames` or `datalink`.
    pub path: &'static str,
    /// Why live frames were not used, when they were tried and are not.
    pub fallback: Option<String>,
}

/// The names of the two paths, in the start event and the summary.
pub const PATH_LIVE: &str = "live_frames";
pub const PATH_DATALINK: &str = "datalink";

/// `--path`: how lab-gen sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChoice {
    /// Live frames where the kernel and the interface allow, else the
    /// datalink, with one line saying why.
    Auto,
    /// Live frames, or exit 3 saying why not.
    Live,
    /// The datalink's own send (the path before live frames).
    Datalink,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GenSummary {
    /// `live_frames` or `datalink`.
    pub path: &'static str,
    /// Frames handed to the datalink.
    pub sent: u64,
    /// Frames the link would not take (it was down, or its queue was
    /// full): they count as lost.
    pub lost: u64,
    /// Of those, the frames the interface's queue dropped (ENOBUFS: a tc
    /// rate limit on it).
    pub queue_drops: u64,
    pub seconds: f64,
    /// `sent / seconds`.
    pub rate: f64,
    /// Frames a paced run could not send in time (the generator fell
    /// behind by more than a few milliseconds), never sent nor numbered.
    pub behind: u64,
    pub arp_replies: u64,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GenEvent<'a> {
    Start(Start<'a>),
    /// A send failed because the link is down; frames count as lost until
    /// it is back.
    LinkDown {
        iface: &'a str,
        error: String,
    },
    /// Sends go through again; `lost` frames were lost meanwhile.
    LinkUp {
        iface: &'a str,
        lost: u64,
    },
    Summary(&'a GenSummary),
}

/// The run's frames: one template per flow, the batch being built.
pub struct Generator {
    templates: Vec<Template>,
    /// The same, magic and session in place, for datalinks whose
    /// transmit buffers lab-gen writes itself (netmap).
    in_place: Vec<InPlaceTemplate>,
    session: u32,
    /// Frames numbered so far (sent, lost or in the batch).
    next: u64,
    batch: Vec<Vec<u8>>,
}

impl Generator {
    pub fn new(me: &Interface, options: &GenOptions) -> Result<Generator, ToolError> {
        let templates = (0..options.flows)
            .map(|flow| {
                let ends = FlowEnds {
                    link: Link {
                        src: me.mac,
                        dst: options.destination_mac,
                    },
                    src: options.source,
                    dst: options.destination,
                    src_port: BASE_PORT + flow,
                    dst_port: options.port,
                };
                Template::new(ends, options.size)
                    .map_err(|error| ToolError::Usage(format!("--size {}: {error}", options.size)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let in_place = templates
            .iter()
            .map(|template| template.in_place(options.session))
            .collect();
        Ok(Generator {
            templates,
            in_place,
            session: options.session,
            next: 0,
            batch: vec![Vec::new(); MAX_BATCH],
        })
    }

    /// The stamp and flow of frame `index` of the run.
    pub fn stamp_of(&self, index: u64, sent_ns: u64) -> (usize, Stamp) {
        let flows = self.templates.len() as u64;
        let flow = (index % flows) as usize;
        let stamp = Stamp {
            session: self.session,
            // The sink widens the 32-bit number back (it wraps).
            seq: (index / flows) as u32,
            sent_ns,
        };
        (flow, stamp)
    }

    /// Builds the next `count` frames (at most [`MAX_BATCH`]), stamped now.
    pub fn build(&mut self, count: usize) -> Vec<&[u8]> {
        let count = count.min(MAX_BATCH);
        let now = traffic::monotonic_ns();
        for slot in 0..count {
            let (flow, stamp) = self.stamp_of(self.next + slot as u64, now);
            self.templates[flow].stamp_into(stamp, &mut self.batch[slot]);
        }
        self.next += count as u64;
        self.batch[..count].iter().map(Vec::as_slice).collect()
    }

    /// Writes the next frames straight into the datalink's transmit
    /// buffers ([`Datalink::send_in_place`]), up to `count`, as many as it
    /// takes in one call, stamped now; returns how many went (each of them
    /// numbered; the generator moves on by that many only).
    pub fn send_in_place(
        &mut self,
        datalink: &mut dyn Datalink,
        count: usize,
    ) -> Result<usize, DatalinkError> {
        let flows = self.in_place.len() as u64;
        // Frame i is flow i % flows, number i / flows: counted up, not
        // divided, per frame.
        let mut flow = (self.next % flows) as usize;
        let mut seq = (self.next / flows) as u32;
        let sent = SentSum::new(traffic::monotonic_ns());
        let templates = &self.in_place;
        let len = templates[0].len();
        let went = datalink.send_in_place(count, len, &mut |_, buffer| {
            templates[flow].write(seq, &sent, buffer);
            flow += 1;
            if flow == templates.len() {
                flow = 0;
                // The sink widens the 32-bit number back (it wraps).
                seq = seq.wrapping_add(1);
            }
        })?;
        self.next += went as u64;
        Ok(went)
    }

    /// Numbers `count` frames without building them (the link is down:
    /// they are lost, and the sink sees their numbers missing).
    pub fn skip(&mut self, count: u64) {
        self.next += count;
    }
}

/// Runs the generator to its end (count, duration, or a signal), on the
/// datalink.
pub fn run<W: Write>(
    datalink: &mut dyn Datalink,
    me: &Interface,
    options: &GenOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<GenSummary, ToolError> {
    run_on_path(datalink, None, None, me, options, out, stop)
}

/// Live frames for this run, loaded and probed, or why not: the probe
/// sends the run's frame 0 and looks whether the interface handed it to
/// its peer (a veth whose peer takes no XDP frames drops it unseen).
pub fn try_live(
    kind: DatalinkKind,
    me: &Interface,
    options: &GenOptions,
) -> Result<LiveFrames, Unavailable> {
    // netmap holds the interface's rings: frames the kernel makes would go
    // around the datalink the lab chose, which is what is being measured.
    if kind == DatalinkKind::Netmap {
        return Err(Unavailable(format!(
            "{} is on netmap, whose rings XDP frames would bypass",
            me.name
        )));
    }
    let ifindex = me.index;
    if !crate::tools::datalink::nothing_to_bypass(ifindex) {
        return Err(Unavailable(format!(
            "{} has a qdisc of its own (a rate limit, a loss filter), which XDP frames would skip",
            me.name
        )));
    }
    let generator = Generator::new(me, options).map_err(|e| Unavailable(e.to_string()))?;
    let template = &generator.templates[0];
    let plan = StampPlan {
        flows: options.flows,
        base_port: BASE_PORT,
        base_sum: template.sum_without_port_seq_time(options.session),
    };
    let mut live = LiveFrames::open(&me.name, ifindex, template, options.session, plan)?;
    let before = live.xmit_counts();
    let probe = Schedule {
        limit: 1,
        ..Schedule::unpaced(0)
    };
    live.set_schedule(probe)
        .map_err(|e| Unavailable(format!("setting the program's state: {e}")))?;
    match live.run(1) {
        Ok(()) => {}
        Err(SendError::LinkDown) => {
            return Err(Unavailable(format!("{} is down", me.name)));
        }
        Err(SendError::Failed(error)) => return Err(Unavailable(live::run_failure(&error))),
    }
    if let (Some(before), Some(after)) = (before, live.xmit_counts()) {
        if after.xmit == before.xmit {
            return Err(Unavailable(format!(
                "{}'s veth peer takes no XDP frames: it needs an XDP program (an af_xdp tool, an XDP drop), GRO or threaded NAPI",
                me.name
            )));
        }
    }
    Ok(live)
}

/// Runs the generator on `live` frames (whose first frame, the probe,
/// has gone) or, without, on the datalink; the datalink answers ARP
/// either way. `fallback`: why live frames were tried and not used.
pub fn run_on_path<W: Write>(
    datalink: &mut dyn Datalink,
    mut live: Option<&mut LiveFrames>,
    fallback: Option<&str>,
    me: &Interface,
    options: &GenOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<GenSummary, ToolError> {
    let path = if live.is_some() {
        PATH_LIVE
    } else {
        PATH_DATALINK
    };
    let described = match live {
        Some(_) => format!("XDP live frames; ARP on {}", datalink.describe()),
        None => datalink.describe(),
    };
    out.emit(&GenEvent::Start(Start {
        iface: &me.name,
        datalink: described,
        source: options.source,
        destination: options.destination,
        destination_mac: options.destination_mac,
        size: options.size,
        rate: options.rate,
        flows: options.flows,
        port: options.port,
        session: options.session,
        path,
        fallback: fallback.map(str::to_owned),
    }))?;
    out.flush()?;
    let mut generator = Generator::new(me, options)?;
    // Where lab-gen may write into the datalink's transmit buffers, a
    // batch is all of them (one sync for the lot).
    let in_place = if live.is_none() {
        datalink.in_place_capacity()
    } else {
        None
    };
    let start = Instant::now();
    let mut pacer = Pacer::new(options.rate, start, in_place.unwrap_or(MAX_BATCH));
    let mut xmit_before = None;
    let mut probed = 0;
    let mut summary = GenSummary {
        path,
        ..GenSummary::default()
    };
    if let Some(live) = live.as_deref_mut() {
        // The probe was frame 0: it is due at the start, and it went.
        xmit_before = live.xmit_counts();
        probed = live.next();
        let mut granted = 0;
        while granted < probed {
            match pacer.grant(start, probed - granted) {
                Grant::Send(n) => granted += n as u64,
                Grant::Wait(_) => break,
            }
        }
        generator.skip(probed);
        summary.sent += probed;
    }
    let end = match options.limit {
        Limit::Duration(duration) => start.checked_add(duration),
        Limit::Count(_) => None,
    };
    let count = match options.limit {
        Limit::Count(count) => count,
        Limit::Duration(_) => u64::MAX,
    };
    let answerer = ArpAnswerer::new(me.mac, options.source);
    // Frames lost in the current outage; `Some` while the link is down.
    let mut down: Option<u64> = None;
    let mut last_sent = start;
    let bulk = live.is_some()
        && options
            .rate
            .is_none_or(|rate| rate > live::PER_FRAME_MAX_RATE);
    match live.as_deref_mut() {
        Some(live) if bulk => {
            last_sent = run_live_bulk(datalink, live, me, options, out, stop, &mut summary, start)?;
            generator.skip(live.next().saturating_sub(generator.next));
        }
        // One frame a call, whenever the pacer says (the probe's limit off).
        Some(live) => live
            .set_schedule(Schedule::unpaced(generator.next))
            .map_err(|error| ToolError::LiveFrames(live::run_failure(&error)))?,
        None => {}
    }
    while !bulk && !stop.load(Ordering::Relaxed) && generator.next < count {
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) {
            break;
        }
        let left = count - generator.next;
        match pacer.grant(now, left) {
            Grant::Send(n) => {
                let result = match live.as_deref_mut() {
                    Some(live) => match send_live(live, &mut generator, n, &me.name)? {
                        Some(result) => result,
                        // A signal ended the run part of the way.
                        None => {
                            summary.sent = generator.next - summary.lost;
                            last_sent = Instant::now();
                            break;
                        }
                    },
                    None if in_place.is_some() => send_all_in_place(datalink, &mut generator, n),
                    None => {
                        let frames = generator.build(n);
                        send_all(datalink, &frames)
                    }
                };
                match result {
                    Ok(dropped) => {
                        summary.sent += n as u64 - dropped;
                        summary.lost += dropped;
                        summary.queue_drops += dropped;
                        last_sent = Instant::now();
                        if let Some(lost) = down.take() {
                            out.emit(&GenEvent::LinkUp {
                                iface: &me.name,
                                lost,
                            })?;
                            out.flush()?;
                        }
                    }
                    Err(SendFailure {
                        done,
                        dropped,
                        error,
                    }) if error.is_link_down() => {
                        let lost = (n - done) as u64;
                        summary.sent += done as u64 - dropped;
                        summary.lost += lost + dropped;
                        summary.queue_drops += dropped;
                        match down.as_mut() {
                            Some(total) => *total += lost,
                            None => {
                                down = Some(lost);
                                out.emit(&GenEvent::LinkDown {
                                    iface: &me.name,
                                    error: link_down_text(&error),
                                })?;
                                out.flush()?;
                            }
                        }
                        // Wait before trying again; the frames due while
                        // waiting are lost too (numbered, never built).
                        let until = Instant::now() + DOWN_RETRY;
                        answerer.serve_until(datalink, until, stop, &mut summary)?;
                        let missed = pacer.grant_all(Instant::now(), count - generator.next);
                        generator.skip(missed);
                        summary.lost += missed;
                        if let Some(total) = down.as_mut() {
                            *total += missed;
                        }
                    }
                    Err(SendFailure { error, .. }) => {
                        return Err(send_error(error, &me.name, options.size))
                    }
                }
                answerer.serve(datalink, RX_BURST, &mut summary)?;
            }
            Grant::Wait(due) => {
                let until = end.map_or(due, |end| due.min(end));
                answerer.serve_until(datalink, until, stop, &mut summary)?;
            }
        }
    }
    summary.behind += pacer.forgiven();
    if let (Some(live), Some(before)) = (live.as_deref(), xmit_before) {
        // What the interface handed to its peer, on a veth: frames stamped
        // and not handed over (the peer's ring full, the link going down
        // within a call) are lost, not sent.
        if let Some(after) = live.xmit_counts() {
            let delivered = after.xmit.saturating_sub(before.xmit);
            let stamped = summary.sent.saturating_sub(probed);
            let undelivered = stamped.saturating_sub(delivered);
            summary.sent -= undelivered;
            summary.lost += undelivered;
            summary.queue_drops += after.errors.saturating_sub(before.errors).min(undelivered);
        }
    }
    let elapsed = match (options.limit, options.rate) {
        (Limit::Duration(duration), _) if !stop.load(Ordering::Relaxed) => duration,
        // A paced run lasts until its next frame would be due, however
        // early in its slot the last one went.
        (_, Some(rate)) => {
            let slots = (generator.next + summary.behind) as f64 / rate;
            let slots = Duration::try_from_secs_f64(slots).unwrap_or(Duration::MAX);
            slots.max(last_sent.saturating_duration_since(start))
        }
        (_, None) => last_sent.saturating_duration_since(start),
    };
    summary.seconds = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.rate = if elapsed.is_zero() {
        0.0
    } else {
        (summary.sent as f64 / elapsed.as_secs_f64()).round()
    };
    if let Some(lost) = down {
        // Still down at the end: say what was lost since.
        out.emit(&GenEvent::LinkUp {
            iface: &me.name,
            lost,
        })
        .ok();
    }
    out.emit(&GenEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

/// Has the kernel send frames `generator.next ..+ n` live, one call per
/// frame (a paced run at a low rate); `None` when a signal ended it (the
/// generator then knows how far it got).
fn send_live(
    live: &mut LiveFrames,
    generator: &mut Generator,
    n: usize,
    iface: &str,
) -> Result<Option<Result<u64, SendFailure>>, ToolError> {
    let live_error = |error: std::io::Error| ToolError::LiveFrames(live::run_failure(&error));
    if live.next() != generator.next {
        live.set_schedule(Schedule::unpaced(generator.next))
            .map_err(live_error)?;
    }
    for done in 0..n {
        match live.run(1) {
            Ok(()) => {}
            Err(SendError::LinkDown) => {
                // The rest are numbered all the same: the sink sees the gap.
                generator.skip(n as u64);
                return Ok(Some(Err(SendFailure {
                    done,
                    dropped: 0,
                    error: link_down_error(iface),
                })));
            }
            Err(SendError::Failed(error)) if error.kind() == std::io::ErrorKind::Interrupted => {
                generator.skip(live.next().saturating_sub(generator.next));
                return Ok(None);
            }
            Err(SendError::Failed(error)) => return Err(live_error(error)),
        }
    }
    generator.skip(n as u64);
    Ok(Some(Ok(0)))
}

fn link_down_error(iface: &str) -> DatalinkError {
    DatalinkError::Io {
        op: "send",
        iface: iface.to_owned(),
        source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
    }
}

/// How far behind its schedule a paced live run may fall before the
/// kernel forgives the debt (the pacer's depth).
const LIVE_DEPTH: Duration = Duration::from_millis(20);

/// Live frames unpaced, or paced above [`live::PER_FRAME_MAX_RATE`]: the
/// kernel runs the program [`live::BULK_RUNS`] times a call, and the
/// program keeps the schedule (it drops the copies not due yet), the
/// count and the end; lab-gen answers ARP and looks at the link between
/// calls. Returns when the last frame went.
#[allow(clippy::too_many_arguments)]
fn run_live_bulk<W: Write>(
    datalink: &mut dyn Datalink,
    live: &mut LiveFrames,
    me: &Interface,
    options: &GenOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
    summary: &mut GenSummary,
    start: Instant,
) -> Result<Instant, ToolError> {
    let live_error = |error: std::io::Error| ToolError::LiveFrames(live::run_failure(&error));
    let start_ns = traffic::monotonic_ns();
    let first = live.next();
    let mut schedule = match options.rate {
        Some(rate) => {
            // Frame `first` is due `first` intervals after the start.
            let due = start_ns + (first as f64 * 1e9 / rate) as u64;
            Schedule::paced(first, rate, due, LIVE_DEPTH.as_nanos() as u64)
        }
        None => Schedule::unpaced(first),
    };
    let count = match options.limit {
        Limit::Count(count) => count,
        Limit::Duration(_) => u64::MAX,
    };
    let end = match options.limit {
        Limit::Duration(duration) => start.checked_add(duration),
        Limit::Count(_) => None,
    };
    schedule.limit = count;
    if let Limit::Duration(duration) = options.limit {
        schedule.end_ns = start_ns.saturating_add(duration.as_nanos() as u64);
    }
    live.set_schedule(schedule).map_err(live_error)?;
    let answerer = ArpAnswerer::new(me.mac, options.source);
    let mut down: Option<u64> = None;
    let mut last_sent = start;
    while !stop.load(Ordering::Relaxed) && live.next() < count {
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) {
            break;
        }
        match live.run(live::BULK_RUNS) {
            Ok(()) => {
                last_sent = Instant::now();
                if let Some(lost) = down.take() {
                    out.emit(&GenEvent::LinkUp {
                        iface: &me.name,
                        lost,
                    })?;
                    out.flush()?;
                }
            }
            Err(SendError::LinkDown) => {
                if down.is_none() {
                    down = Some(0);
                    out.emit(&GenEvent::LinkDown {
                        iface: &me.name,
                        error: link_down_text(&link_down_error(&me.name)),
                    })?;
                    out.flush()?;
                }
                answerer.serve_until(datalink, Instant::now() + DOWN_RETRY, stop, summary)?;
                // The frames due meanwhile are lost: numbered, never sent.
                let mut schedule = live.schedule();
                let now_ns = traffic::monotonic_ns();
                if schedule.interval_ns > 0 && now_ns >= schedule.next_due_ns {
                    let missed = ((now_ns - schedule.next_due_ns) / schedule.interval_ns + 1)
                        .min(count.saturating_sub(schedule.next));
                    schedule.next += missed;
                    schedule.next_due_ns += missed * schedule.interval_ns;
                    live.set_schedule(schedule).map_err(live_error)?;
                    summary.lost += missed;
                    if let Some(total) = down.as_mut() {
                        *total += missed;
                    }
                }
                continue;
            }
            Err(SendError::Failed(error)) if error.kind() == std::io::ErrorKind::Interrupted => {
                last_sent = Instant::now();
                break;
            }
            Err(SendError::Failed(error)) => return Err(live_error(error)),
        }
        answerer.serve(datalink, RX_BURST, summary)?;
    }
    if let Some(lost) = down {
        out.emit(&GenEvent::LinkUp {
            iface: &me.name,
            lost,
        })
        .ok();
    }
    // The last frame's own time, not the end of the call that sent it
    // (which went on dropping copies past the count).
    let last_ns = live.schedule().last_ns;
    if last_ns > start_ns {
        last_sent = start + Duration::from_nanos(last_ns - start_ns);
    }
    let numbered = live.next();
    summary.sent = numbered - summary.lost;
    if let Some(rate) = options.rate {
        // What the schedule asked for by the end, against what went: the
        // kernel could not keep up.
        let elapsed = match options.limit {
            Limit::Duration(duration) if !stop.load(Ordering::Relaxed) => duration,
            _ => last_sent.saturating_duration_since(start),
        };
        let due = ((elapsed.as_secs_f64() * rate).floor() as u64 + 1).min(count);
        let slack = (rate * 0.002) as u64 + 1;
        let short = due.saturating_sub(numbered);
        if short > slack {
            summary.behind = short;
        }
    }
    Ok(last_sent)
}

/// Sends every frame of `frames`, in as few calls as the datalink needs;
/// returns how many of them the interface's queue dropped (ENOBUFS: a tc
/// rate limit's full queue, a loss filter, a full veth), each counted for
/// the one frame it hit, the rest still sent. On another failure: how many
/// went (or were dropped) before it, and the error.
fn send_all(datalink: &mut dyn Datalink, frames: &[&[u8]]) -> Result<u64, SendFailure> {
    let mut sent = 0;
    let mut dropped = 0;
    while sent < frames.len() {
        match datalink.send_batch(&frames[sent..]) {
            Ok(0) => {}
            Ok(n) => sent += n,
            // The first frame of the call was taken and dropped.
            Err(error) if error.is_queue_drop() => {
                sent += 1;
                dropped += 1;
            }
            Err(error) => {
                return Err(SendFailure {
                    done: sent,
                    dropped,
                    error,
                })
            }
        }
    }
    Ok(dropped)
}

/// Sends the generator's next `n` frames in place, in as few calls as
/// the datalink needs; on an error, how many went before it, the rest
/// numbered all the same (the sink sees the gap), as [`send_all`].
fn send_all_in_place(
    datalink: &mut dyn Datalink,
    generator: &mut Generator,
    n: usize,
) -> Result<u64, SendFailure> {
    let mut sent = 0;
    while sent < n {
        match generator.send_in_place(datalink, n - sent) {
            Ok(went) => sent += went,
            Err(error) => {
                generator.skip((n - sent) as u64);
                return Err(SendFailure {
                    done: sent,
                    dropped: 0,
                    error,
                });
            }
        }
    }
    Ok(0)
}

/// How far [`send_all`] got before an error other than a queue drop.
struct SendFailure {
    /// Frames sent or dropped before the error.
    done: usize,
    /// Of those, dropped.
    dropped: u64,
    error: DatalinkError,
}

fn link_down_text(error: &DatalinkError) -> String {
    match error {
        DatalinkError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
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

/// Answers ARP requests for the tool's address ([`arp::answer`]) on the
/// frames it reads between its sends.
pub struct ArpAnswerer {
    me: arp::Identity,
}

impl ArpAnswerer {
    pub fn new(mac: MacAddr, ip: Ipv4Addr) -> ArpAnswerer {
        ArpAnswerer {
            me: arp::Identity { ip, mac },
        }
    }

    /// The reply to `frame` when it is an ARP request for our address.
    pub fn answer(&self, frame: &[u8]) -> Option<Vec<u8>> {
        arp::answer(frame, &self.me)
    }

    /// Reads up to `burst` queued frames and answers the ARP requests.
    fn serve(
        &self,
        datalink: &mut dyn Datalink,
        burst: usize,
        summary: &mut GenSummary,
    ) -> Result<(), ToolError> {
        for _ in 0..burst {
            if !self.serve_one(datalink, Duration::ZERO, summary)? {
                break;
            }
        }
        Ok(())
    }

    /// Reads and answers until `until` (or a signal).
    fn serve_until(
        &self,
        datalink: &mut dyn Datalink,
        until: Instant,
        stop: &AtomicBool,
        summary: &mut GenSummary,
    ) -> Result<(), ToolError> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.serve_one(datalink, left, summary)?;
        }
    }

    /// Waits up to `wait` for one frame; true when one came.
    fn serve_one(
        &self,
        datalink: &mut dyn Datalink,
        wait: Duration,
        summary: &mut GenSummary,
    ) -> Result<bool, ToolError> {
        let reply = match datalink.recv(wait).map_err(ToolError::Wire)? {
            None => return Ok(false),
            Some(received) if received.direction != Direction::In => return Ok(true),
            Some(received) => self.answer(received.frame),
        };
        if let Some(reply) = reply {
            match datalink.send(&reply) {
                Ok(()) => summary.arp_replies += 1,
                // Down again, or dropped (a loss filter, a full queue):
                // the asker will ask again.
                Err(error) if error.is_link_down() || error.is_queue_drop() => {}
                Err(error) => return Err(ToolError::Wire(error)),
            }
        }
        Ok(true)
    }
}

/// What to say when a paced run fell short of its rate by more than 5%
/// (or forgave frames it could not send in time): the path cannot reach
/// that rate here.
pub fn shortfall(summary: &GenSummary, rate: Option<f64>) -> Option<String> {
    let rate = rate?;
    // Frames lost on the way (a down link, a full queue) were offered in
    // time all the same: not the path's shortfall.
    let offered = (summary.sent + summary.lost) as f64 / summary.seconds.max(1e-3);
    if summary.sent == 0 || (summary.behind == 0 && offered >= rate * 0.95) {
        return None;
    }
    Some(format!(
        "asked for {rate}/s, sent {}/s on {} ({} frames behind): this path cannot reach that rate here; lower --rate{}",
        summary.rate,
        if summary.path == PATH_LIVE {
            "XDP live frames"
        } else {
            "the datalink"
        },
        summary.behind,
        if summary.path == PATH_LIVE {
            ""
        } else {
            " or let lab-gen use XDP live frames (--path auto)"
        }
    ))
}

/// "20000/s", "1234.5/s", or "full speed".
fn rate_text(rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{rate}/s"),
        None => "full speed".to_owned(),
    }
}

impl fmt::Display for GenEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenEvent::Start(start) => write!(
                f,
                "generating to {} ({}) from {} {} ({}): {}-byte frames at {}",
                start.destination,
                start.destination_mac,
                start.source,
                start.iface,
                start.datalink,
                start.size,
                rate_text(start.rate)
            ),
            GenEvent::LinkDown { iface, error } => write!(
                f,
                "{iface}: {error}: frames count as lost until it is back up"
            ),
            GenEvent::LinkUp { iface, lost } => {
                write!(f, "{iface}: {lost} frames lost while the link was down")
            }
            GenEvent::Summary(summary) => write!(
                f,
                "sent {} frames in {:.3} s ({} frames/s)",
                summary.sent, summary.seconds, summary.rate
            ),
        }
    }
}

#[cfg(test)]
mod tests;
