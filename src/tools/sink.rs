//! lab-sink: counts what lab-gen sent to its address, per flow, and
//! measures the one-way latency of every frame.
//!
//! A flow is one sender's source port in one lab-gen run (its session).
//! Memory is bounded: [`MAX_FLOWS`] flows of a fixed-size sequence window
//! each ([`seq`]), and one latency histogram (hdrhistogram, 3 significant
//! digits) rather than a list of samples. Frames of further flows are
//! counted in the totals but not per flow.
//!
//! Latency is the sink's CLOCK_MONOTONIC when it takes the frame from its
//! datalink (where frames come in batches, one per kernel sync, as on
//! netmap: when the sync that brought it returned, read once for them
//! all) minus the send time lab-gen wrote into it just before handing
//! its batch to the kernel: the kernel, the wire, the device under test
//! and the sink's own receive queue. Nodes share the host's clock, so the
//! two readings compare.
//!
//! Per frame the accounting costs no allocation and, for up to 64 flows
//! of consecutive source ports (lab-gen's, taking turns frame by frame),
//! no hashing: a flow is looked for first in a slot of its source port
//! (the last flow seen there), then through a map from the flow to its
//! place in a list. A frame in order is counted by setting one bit; a
//! run of frames of one latency (a batch) is recorded in the histogram
//! once ([`latency`]). `examples/sink_cost.rs` counts what a frame costs
//! (`ci/bench sink`).
//!
//! With `--json` it also reports each interval of its clock (100 ms by
//! default) as it ends: one [`IntervalSample`] out of counters and a
//! histogram reset every interval, so samples cost no memory over a run.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::util::MacAddr;
use serde::Serialize;

use crate::tools::datalink::{Datalink, Direction};
use crate::tools::error::ToolError;
use crate::tools::gen::ArpAnswerer;
use crate::tools::output::{as_text, Output};
use crate::tools::traffic::{self, Parsed};

pub mod latency;
pub mod seq;
pub mod xdp;

use latency::Latencies;
use seq::{Arrival, SeqTracker};

/// The most flows counted one by one.
pub const MAX_FLOWS: usize = 4096;
/// Slots of flows looked up without hashing: lab-gen's first 64 flows
/// (consecutive source ports) have one each.
const RECENT: usize = 64;
/// An empty slot of `Sink::recent` (no flow is at u16::MAX).
const NO_FLOW: u16 = u16::MAX;
/// How long one receive waits before the stop flag and the deadline are
/// looked at again (signals end the wait at once).
const POLL: Duration = Duration::from_millis(100);
/// The most frames taken off the datalink at once after a `recv`.
const BATCH: usize = 256;
/// Batches taken before the stop flag, the deadline and `--count` are
/// looked at again (they are between batches too, but a flood that never
/// empties the ring must not keep the sink from its summary).
const DRAIN_BATCHES: usize = 64;

#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub iface: String,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    /// Stop after this many lab-gen frames.
    pub count: Option<u64>,
    /// Stop this long after the ready line.
    pub duration: Option<Duration>,
    /// One line per flow before the summary.
    pub per_flow: bool,
    /// One `interval` event per this much of the sink's clock (`--json`).
    pub interval: Option<Duration>,
    /// The node's kernel sees the frames too (af_packet): take them off
    /// its hands ([`KernelPorts`]).
    pub kernel_sees_frames: bool,
    /// Why the XDP path was tried and not used (for the summary).
    pub fallback: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    src: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    session: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSummary {
    pub source: Ipv4Addr,
    pub source_port: u16,
    pub port: u16,
    pub session: u32,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

/// The names of the two ways of counting, in the summary.
pub const PATH_XDP: &str = "xdp";
pub const PATH_DATALINK: &str = "datalink";

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SinkSummary {
    /// lab-gen frames received, duplicates included.
    pub received: u64,
    pub lost: u64,
    /// `lost` over the frames expected (received once or lost).
    pub loss_percent: f64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Frames per second, from the first frame received to the last.
    pub rate: f64,
    pub latency_min_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// The 99.9th percentile, for labctl's throughput step (JSON only).
    pub latency_p99_9_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// The latency histogram, for plots (JSON only): `[bound in ms,
    /// frames below it]` for bounds doubling from 1 µs past the largest
    /// latency (one on a bound counts in the next); the frames add up to
    /// those whose latency was measured.
    pub latency_histogram: Vec<(f64, u64)>,
    /// IPv4 UDP frames whose checksums or lengths were wrong (skipped).
    pub corrupted: u64,
    /// Other frames (not lab-gen's, not for us), skipped.
    pub ignored: u64,
    pub arp_replies: u64,
    /// Frames of flows beyond the per-flow limit (in the totals only).
    pub untracked: u64,
    /// What the datalink dropped before the sink read it, where it says.
    pub dropped: Option<u64>,
    pub flows: Vec<FlowSummary>,
    /// Where the frames were counted: `xdp` (a program on the interface,
    /// [`xdp`]) or `datalink` (in lab-sink, off its datalink). Last, with
    /// `fallback`: the summary's fields keep their order, which lab files
    /// match (`"received":…,"lost":…,"loss_percent":…`).
    pub path: &'static str,
    /// Why the XDP path was tried and not used.
    pub fallback: Option<String>,
}

/// What one interval of the sink's clock saw. The intervals of a run add
/// up to its summary: received, duplicates, reordered and lost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntervalSample {
    /// Where the interval starts, after the ready line.
    pub start_ms: f64,
    /// Its length: the interval, or less for the last one.
    pub duration_ms: f64,
    /// lab-gen frames received in it, duplicates included.
    pub received: u64,
    /// `received` over `duration_ms`, in frames per second, rounded.
    pub rate: f64,
    /// How much the lost count moved in it: the gaps that frames received
    /// in it opened (a gap is counted when a higher number arrives), less
    /// the gaps that late frames received in it filled. Negative when
    /// more late frames came than gaps opened.
    pub lost: i64,
    /// The lost count at its end: the summary's `lost` so far.
    pub lost_total: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// The one-way latency of the frames received in it (null without).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

/// The interval being counted.
struct Intervals {
    every_ns: u64,
    /// When the sink was ready (CLOCK_MONOTONIC).
    ready_ns: u64,
    /// When the current interval began.
    start_ns: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
    /// The sink's lost count when it began.
    lost_at_start: u64,
    /// Reset at every interval's end.
    latency: Latencies,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SinkEvent<'a> {
    Ready {
        iface: &'a str,
        ip: Ipv4Addr,
        #[serde(serialize_with = "as_text")]
        mac: MacAddr,
        datalink: String,
    },
    /// With `--json`, as each interval ends, and the last (partial) one
    /// before the summary.
    Interval(&'a IntervalSample),
    /// With `--per-flow`, before the summary (JSON carries them in it).
    Flow(&'a FlowSummary),
    Summary(&'a SinkSummary),
}

/// A multiply-rotate hash of the flow's few words: a flow key is not
/// chosen by an attacker who could gain from collisions (the map is
/// bounded at [`MAX_FLOWS`] whatever happens), and SipHash cost more than
/// the rest of a frame's accounting.
#[derive(Default)]
struct FlowHasher(u64);

impl Hasher for FlowHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// The counts of a sink, fed one frame at a time: [`Sink::on_frame`] is a
/// function of the bytes and the time, so any frame can be tested.
pub struct Sink {
    ip: Ipv4Addr,
    /// The flows tracked, in the order first seen.
    flows: Vec<(FlowKey, SeqTracker)>,
    /// Where each flow is in `flows`.
    index: HashMap<FlowKey, usize, BuildHasherDefault<FlowHasher>>,
    /// Recent flows by source port ([`RECENT`] slots, each a place in
    /// `flows` or [`NO_FLOW`]): lab-gen's flows are consecutive ports
    /// taking turns frame by frame, which a single last flow always missed.
    recent: [u16; RECENT],
    /// Frames counted (duplicates and untracked flows included).
    received: u64,
    /// The destination port of a flow first seen since the last look.
    new_port: Option<u16>,
    /// Frames of flows beyond MAX_FLOWS: received, not tracked.
    untracked: u64,
    /// The sum of the flows' lost counts, kept as each frame moves it.
    lost: u64,
    latency: Latencies,
    /// With `--json`: the current interval.
    intervals: Option<Intervals>,
    first: Option<u64>,
    last: Option<u64>,
    corrupted: u64,
    ignored: u64,
}

/// What [`Sink::on_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Counted,
    Arp,
    Skipped,
}

impl Sink {
    pub fn new(ip: Ipv4Addr) -> Sink {
        Sink {
            ip,
            flows: Vec::new(),
            index: HashMap::default(),
            recent: [NO_FLOW; RECENT],
            received: 0,
            new_port: None,
            untracked: 0,
            lost: 0,
            latency: Latencies::default(),
            intervals: None,
            first: None,
            last: None,
            corrupted: 0,
            ignored: 0,
        }
    }

    /// Counts `frame`, received at `now_ns` (CLOCK_MONOTONIC).
    pub fn on_frame(&mut self, frame: &[u8], now_ns: u64) -> Seen {
        let (src, dst, src_port, dst_port, stamp) = match traffic::parse(frame) {
            Parsed::Traffic {
                src,
                dst,
                src_port,
                dst_port,
                stamp,
            } => (src, dst, src_port, dst_port, stamp),
            Parsed::Arp => return Seen::Arp,
            Parsed::Corrupted => {
                self.corrupted += 1;
                return Seen::Skipped;
            }
            Parsed::Other => {
                self.ignored += 1;
                return Seen::Skipped;
            }
        };
        if dst != self.ip {
            self.ignored += 1;
            return Seen::Skipped;
        }
        let key = FlowKey {
            src,
            src_port,
            dst_port,
            session: stamp.session,
        };
        self.received += 1;
        let arrival = match self.flow_of(key) {
            Some(at) => {
                let flow = &mut self.flows[at].1;
                if flow.record_next(stamp.seq) {
                    Some(Arrival::InOrder)
                } else {
                    let lost_before = flow.lost();
                    let arrival = flow.record(stamp.seq);
                    // `self.lost` includes `lost_before`: no underflow.
                    self.lost = self.lost + flow.lost() - lost_before;
                    Some(arrival)
                }
            }
            None => {
                self.untracked += 1;
                None
            }
        };
        // Clamped to the histogram's bounds as it is recorded.
        let latency = now_ns.saturating_sub(stamp.sent_ns);
        // One record a frame: with intervals, into the interval's, which
        // joins the run's as the interval closes.
        match &mut self.intervals {
            Some(interval) => {
                interval.received += 1;
                match arrival {
                    Some(Arrival::Duplicate) => interval.duplicates += 1,
                    Some(Arrival::Reordered) => interval.reordered += 1,
                    Some(Arrival::InOrder) | None => {}
                }
                interval.latency.record(latency);
            }
            None => self.latency.record(latency),
        }
        self.first.get_or_insert(now_ns);
        self.last = Some(now_ns);
        Seen::Counted
    }

    /// Where `key`'s tracker is, a new one if there is room; `None` for a
    /// flow beyond [`MAX_FLOWS`].
    fn flow_of(&mut self, key: FlowKey) -> Option<usize> {
        let slot = usize::from(key.src_port) % RECENT;
        let at = usize::from(self.recent[slot]);
        if self.flows.get(at).is_some_and(|(known, _)| *known == key) {
            return Some(at);
        }
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None if self.flows.len() < MAX_FLOWS => {
                self.new_port = Some(key.dst_port);
                self.flows.push((key, SeqTracker::default()));
                self.index.insert(key, self.flows.len() - 1);
                self.flows.len() - 1
            }
            None => return None,
        };
        // `at` < MAX_FLOWS, which fits.
        self.recent[slot] = at as u16;
        Some(at)
    }

    /// Counts in intervals of `every` from `ready_ns` (CLOCK_MONOTONIC):
    /// [`Sink::sample_due`] and [`Sink::last_sample`] then give them.
    pub fn with_intervals(mut self, every: Duration, ready_ns: u64) -> Sink {
        self.intervals = Some(Intervals {
            every_ns: u64::try_from(every.as_nanos()).unwrap_or(u64::MAX).max(1),
            ready_ns,
            start_ns: ready_ns,
            received: 0,
            duplicates: 0,
            reordered: 0,
            lost_at_start: self.lost,
            latency: Latencies::default(),
        });
        self
    }

    /// The interval that ended by `now_ns`, if one did. Call it until
    /// `None` before counting a frame received at `now_ns`, so the frame
    /// lands in its own interval; an interval without frames is a sample
    /// too (a rate of 0).
    pub fn sample_due(&mut self, now_ns: u64) -> Option<IntervalSample> {
        let interval = self.intervals.as_ref()?;
        let end = interval.start_ns.saturating_add(interval.every_ns);
        (now_ns >= end).then(|| self.close_interval(end))
    }

    /// How long from `now_ns` until the current interval ends.
    pub fn next_sample_in(&self, now_ns: u64) -> Option<Duration> {
        let interval = self.intervals.as_ref()?;
        let end = interval.start_ns.saturating_add(interval.every_ns);
        Some(Duration::from_nanos(end.saturating_sub(now_ns)))
    }

    /// The current interval, cut at `now_ns` (the end of the run), unless
    /// it is empty and has not begun.
    pub fn last_sample(&mut self, now_ns: u64) -> Option<IntervalSample> {
        let interval = self.intervals.as_ref()?;
        let end = now_ns.max(interval.start_ns);
        (end > interval.start_ns || interval.received > 0).then(|| self.close_interval(end))
    }

    /// Closes the current interval at `end_ns` and begins the next there.
    fn close_interval(&mut self, end_ns: u64) -> IntervalSample {
        let lost_now = self.lost;
        let interval = self
            .intervals
            .as_mut()
            .expect("close_interval with intervals on");
        let duration_ns = end_ns - interval.start_ns;
        let rate = if duration_ns == 0 {
            0.0
        } else {
            (interval.received as f64 * 1e9 / duration_ns as f64).round()
        };
        let seen = !interval.latency.is_empty();
        let latency = interval.latency.histogram();
        let sample = IntervalSample {
            start_ms: ms(interval.start_ns - interval.ready_ns),
            duration_ms: ms(duration_ns),
            received: interval.received,
            rate,
            lost: lost_now as i64 - interval.lost_at_start as i64,
            lost_total: lost_now,
            duplicates: interval.duplicates,
            reordered: interval.reordered,
            latency_p50_ms: seen.then(|| ms(latency.value_at_quantile(0.5))),
            latency_p99_ms: seen.then(|| ms(latency.value_at_quantile(0.99))),
            latency_max_ms: seen.then(|| ms(latency.max())),
        };
        interval.start_ns = end_ns;
        interval.received = 0;
        interval.duplicates = 0;
        interval.reordered = 0;
        interval.lost_at_start = lost_now;
        self.latency.add(&mut interval.latency);
        interval.latency.reset();
        sample
    }

    /// The destination port of a new flow, once.
    pub fn take_new_port(&mut self) -> Option<u16> {
        self.new_port.take()
    }

    /// Frames counted so far (duplicates included).
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn summary(&self, ready_for: Duration) -> SinkSummary {
        let mut flows: Vec<(FlowKey, &SeqTracker)> =
            self.flows.iter().map(|(key, flow)| (*key, flow)).collect();
        flows.sort_by_key(|(key, _)| (key.src, key.src_port, key.dst_port, key.session));
        let flows: Vec<FlowSummary> = flows
            .into_iter()
            .map(|(key, flow)| FlowSummary {
                source: key.src,
                source_port: key.src_port,
                port: key.dst_port,
                session: key.session,
                received: flow.received,
                lost: flow.lost(),
                duplicates: flow.duplicates,
                reordered: flow.reordered,
            })
            .collect();
        let received = self.received();
        let lost: u64 = flows.iter().map(|f| f.lost).sum();
        let unique: u64 = self.flows.iter().map(|(_, f)| f.unique).sum::<u64>() + self.untracked;
        let expected = unique + lost;
        let loss_percent = if expected == 0 {
            0.0
        } else {
            (lost as f64 * 100.0 / expected as f64 * 100.0).round() / 100.0
        };
        // The rate of the traffic: from the first frame to the last, over
        // the gaps between them (frames - 1); one frame has no rate of its
        // own, so it is over the time since ready.
        let rate = match (self.first, self.last) {
            (Some(first), Some(last)) if last > first && received > 1 => {
                (received - 1) as f64 * 1e9 / (last - first) as f64
            }
            _ if !ready_for.is_zero() => received as f64 / ready_for.as_secs_f64(),
            _ => 0.0,
        };
        let ms = |ns: u64| Some(ms(ns));
        let open = self.intervals.as_ref().map(|i| &i.latency);
        let latency = match open.filter(|open| !open.is_empty()) {
            Some(open) => {
                let mut all = self.latency.view().into_owned();
                // Both histograms have the same bounds: adding cannot fail.
                let _ = all.add(open.view().as_ref());
                Cow::Owned(all)
            }
            None => self.latency.view(),
        };
        let seen = !latency.is_empty();
        SinkSummary {
            received,
            lost,
            loss_percent,
            duplicates: flows.iter().map(|f| f.duplicates).sum(),
            reordered: flows.iter().map(|f| f.reordered).sum(),
            rate: rate.round(),
            latency_min_ms: seen.then(|| latency.min()).and_then(ms),
            latency_p50_ms: seen.then(|| latency.value_at_quantile(0.5)).and_then(ms),
            latency_p99_ms: seen.then(|| latency.value_at_quantile(0.99)).and_then(ms),
            latency_p99_9_ms: seen.then(|| latency.value_at_quantile(0.999)).and_then(ms),
            latency_max_ms: seen.then(|| latency.max()).and_then(ms),
            latency_histogram: if seen {
                latency
                    .iter_log(1_000, 2.0)
                    .map(|bucket| {
                        let upper = ms(bucket.value_iterated_to()).unwrap_or(0.0);
                        (upper, bucket.count_since_last_iteration())
                    })
                    .collect()
            } else {
                Vec::new()
            },
            corrupted: self.corrupted,
            ignored: self.ignored,
            arp_replies: 0,
            untracked: self.untracked,
            dropped: None,
            flows,
            path: PATH_DATALINK,
            fallback: None,
        }
    }
}

/// Nanoseconds in milliseconds, to the microsecond.
fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// Prints the intervals that ended by `now_ns`, at once: a plot follows
/// the run as it goes.
fn emit_samples<W: Write>(
    sink: &mut Sink,
    now_ns: u64,
    out: &mut Output<W>,
) -> Result<(), ToolError> {
    let mut any = false;
    while let Some(sample) = sink.sample_due(now_ns) {
        out.emit(&SinkEvent::Interval(&sample))?;
        any = true;
    }
    if any {
        out.flush()?;
    }
    Ok(())
}

/// Receives until stopped (a signal, `--count`, `--duration`), then
/// prints the summary.
pub fn run<W: Write>(
    datalink: &mut dyn Datalink,
    options: &SinkOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<SinkSummary, ToolError> {
    run_clocked(datalink, options, out, stop, &traffic::monotonic_ns)
}

/// [`run`], reading CLOCK_MONOTONIC through `clock` (the tests count the
/// readings).
fn run_clocked<W: Write>(
    datalink: &mut dyn Datalink,
    options: &SinkOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
    clock: &dyn Fn() -> u64,
) -> Result<SinkSummary, ToolError> {
    out.emit(&SinkEvent::Ready {
        iface: &options.iface,
        ip: options.ip,
        mac: options.mac,
        datalink: datalink.describe(),
    })?;
    out.flush()?;
    let ready = Instant::now();
    let end = options.duration.and_then(|d| ready.checked_add(d));
    let answerer = ArpAnswerer::new(options.mac, options.ip);
    let mut sink = Sink::new(options.ip);
    if let Some(every) = options.interval {
        sink = sink.with_intervals(every, clock());
    }
    let mut kernel_ports = KernelPorts::new(options.ip, options.kernel_sees_frames);
    let mut arp_replies = 0;
    let mut replies: Vec<Vec<u8>> = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if options.count.is_some_and(|count| sink.received() >= count) {
            break;
        }
        let wait = match end {
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                left.min(POLL)
            }
            None => POLL,
        };
        let now = clock();
        emit_samples(&mut sink, now, out)?;
        let wait = sink.next_sample_in(now).map_or(wait, |next| wait.min(next));
        // `batch_ns`: when the frames of the last sync were taken, for
        // those of them the drain below finds still queued.
        let (reply, mut batch_ns) = match datalink.recv(wait).map_err(ToolError::Wire)? {
            None => continue,
            Some(received) if received.direction != Direction::In => continue,
            Some(received) => {
                let now = clock();
                emit_samples(&mut sink, now, out)?;
                let reply = match sink.on_frame(received.frame, now) {
                    Seen::Arp => answerer.answer(received.frame),
                    Seen::Counted | Seen::Skipped => None,
                };
                (reply, now)
            }
        };
        if let Some(port) = sink.take_new_port() {
            kernel_ports.absorb(port);
        }
        replies.extend(reply);
        answer_arp(datalink, &mut replies, &mut arp_replies)?;
        // What else is queued, a batch at a time: no wait, and on af_xdp
        // and netmap straight off the ring. A frame's receive time is the
        // clock read after the kernel sync that brought it: once per RX
        // sync on netmap (a clock read per frame is dear where the clock is
        // emulated, as under TCG), once per look at the RX ring that finds
        // new frames on af_xdp, per frame on af_packet.
        // The intervals that ended by `sampled_ns` are out; only a frame
        // with a later time may end one (a sync's frames share its time:
        // not a look a frame).
        let mut sampled_ns = batch_ns;
        for _ in 0..DRAIN_BATCHES {
            let budget = options
                .count
                .map_or(BATCH, |count| {
                    count.saturating_sub(sink.received()) as usize
                })
                .min(BATCH);
            if budget == 0
                || stop.load(Ordering::Relaxed)
                || end.is_some_and(|end| Instant::now() >= end)
            {
                break;
            }
            let mut printing = Ok(());
            let synced_ns = std::cell::Cell::new(batch_ns);
            let taken = datalink
                .recv_queued_by_sync(budget, &mut || synced_ns.set(clock()), &mut |received| {
                    if received.direction != Direction::In {
                        return;
                    }
                    let now = synced_ns.get();
                    if now != sampled_ns && printing.is_ok() {
                        printing = emit_samples(&mut sink, now, out);
                        sampled_ns = now;
                    }
                    if sink.on_frame(received.frame, now) == Seen::Arp {
                        replies.extend(answerer.answer(received.frame));
                    }
                })
                .map_err(ToolError::Wire)?;
            batch_ns = synced_ns.get();
            printing?;
            if let Some(port) = sink.take_new_port() {
                kernel_ports.absorb(port);
            }
            answer_arp(datalink, &mut replies, &mut arp_replies)?;
            if taken < budget {
                break;
            }
        }
    }
    let now = clock();
    emit_samples(&mut sink, now, out)?;
    if let Some(sample) = sink.last_sample(now) {
        out.emit(&SinkEvent::Interval(&sample))?;
    }
    let mut summary = sink.summary(ready.elapsed());
    summary.arp_replies = arp_replies;
    summary.dropped = datalink.stats().dropped;
    summary.fallback = options.fallback.clone();
    if options.per_flow {
        for flow in &summary.flows {
            out.emit(&SinkEvent::Flow(flow))?;
        }
    }
    out.emit(&SinkEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

/// Sends the ARP replies gathered, and counts them.
fn answer_arp(
    datalink: &mut dyn Datalink,
    replies: &mut Vec<Vec<u8>>,
    sent: &mut u64,
) -> Result<(), ToolError> {
    for reply in replies.drain(..) {
        match datalink.send(&reply) {
            Ok(()) => *sent += 1,
            // The link went down meanwhile: the asker asks again.
            Err(error) if error.is_link_down() || error.is_queue_drop() => {}
            Err(error) => return Err(ToolError::Wire(error)),
        }
    }
    Ok(())
}

/// UDP sockets on the ports lab-gen sends to, so that the node's own
/// kernel, which on af_packet gets every frame too, drops them at the
/// socket instead of preparing an ICMP port unreachable for each: that
/// (a route lookup, the ICMP rate limit) was 17% of a flood's CPU, paid
/// on the sender's CPU on a veth (docs/performance.md). The sockets are
/// never read; their queue is the smallest the kernel allows, so the
/// frames cost no memory. A port that cannot be bound (taken by a real
/// service, a port below 1024 without CAP_NET_BIND_SERVICE) is left as
/// it was: slower, never wrong.
struct KernelPorts {
    ip: Ipv4Addr,
    enabled: bool,
    /// Ports tried, bound or not.
    tried: Vec<u16>,
    sockets: Vec<socket2::Socket>,
}

/// The most ports taken (one socket each).
const MAX_KERNEL_PORTS: usize = 64;

impl KernelPorts {
    fn new(ip: Ipv4Addr, enabled: bool) -> KernelPorts {
        KernelPorts {
            ip,
            enabled,
            tried: Vec::new(),
            sockets: Vec::new(),
        }
    }

    fn absorb(&mut self, port: u16) {
        if !self.enabled || self.tried.len() >= MAX_KERNEL_PORTS || self.tried.contains(&port) {
            return;
        }
        self.tried.push(port);
        let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .and_then(|socket| {
                socket.set_recv_buffer_size(0)?;
                socket.bind(&std::net::SocketAddr::from((self.ip, port)).into())?;
                Ok(socket)
            });
        if let Ok(socket) = bound {
            self.sockets.push(socket);
        }
    }
}

fn or_dash(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3}"))
}

impl fmt::Display for SinkEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkEvent::Ready {
                iface,
                ip,
                mac,
                datalink,
            } => write!(f, "receiving on {iface} ({ip}, {mac}, {datalink})"),
            // Printed with --json only; this is its form for a reader.
            SinkEvent::Interval(sample) => write!(
                f,
                "interval at {:.3} s ({:.3} ms): received {} ({} frames/s), lost {:+} ({} so far), duplicates {}, reordered {}, latency p50/p99/max = {}/{}/{} ms",
                sample.start_ms / 1e3,
                sample.duration_ms,
                sample.received,
                sample.rate,
                sample.lost,
                sample.lost_total,
                sample.duplicates,
                sample.reordered,
                or_dash(sample.latency_p50_ms),
                or_dash(sample.latency_p99_ms),
                or_dash(sample.latency_max_ms)
            ),
            SinkEvent::Flow(flow) => write!(
                f,
                "flow {}:{} > {} (session {:08x}): received {}, lost {}, duplicates {}, reordered {}",
                flow.source,
                flow.source_port,
                flow.port,
                flow.session,
                flow.received,
                flow.lost,
                flow.duplicates,
                flow.reordered
            ),
            SinkEvent::Summary(s) => {
                writeln!(
                    f,
                    "received {} frames, lost {} ({:.2}%), duplicates {}, reordered {}, {} frames/s",
                    s.received, s.lost, s.loss_percent, s.duplicates, s.reordered, s.rate
                )?;
                write!(
                    f,
                    "latency min/p50/p99/max = {}/{}/{}/{} ms",
                    or_dash(s.latency_min_ms),
                    or_dash(s.latency_p50_ms),
                    or_dash(s.latency_p99_ms),
                    or_dash(s.latency_max_ms)
                )
            }
        }
    }
}

/// How often the XDP path looks at its counts for `--count` and the stop
/// flag, and waits for an ARP request meanwhile.
const XDP_POLL: Duration = Duration::from_millis(1);

fn counts_error(e: std::io::Error) -> ToolError {
    ToolError::XdpCount(format!("reading the counts: {e}"))
}

/// The counts of an XDP counter's totals and histogram at one reading.
struct Reading {
    at_ns: u64,
    totals: xdp::Totals,
    histogram: Vec<u64>,
}

impl Reading {
    fn take(counter: &xdp::XdpCounter) -> Result<Reading, ToolError> {
        let totals = counter.totals().map_err(counts_error)?;
        let histogram = counter.histogram().map_err(counts_error)?;
        Ok(Reading {
            at_ns: traffic::monotonic_ns(),
            totals,
            histogram,
        })
    }
}

/// One interval sample out of two readings.
fn xdp_sample(before: &Reading, now: &Reading, ready_ns: u64) -> IntervalSample {
    let duration_ns = now.at_ns.saturating_sub(before.at_ns);
    let received = now.totals.received - before.totals.received;
    let mut latency = latency::histogram();
    xdp::record_buckets(
        &mut latency,
        &now.histogram,
        Some(&before.histogram),
        now.totals.latency_min,
        now.totals.latency_max,
    );
    let seen = !latency.is_empty();
    let lost_now = now.totals.lost();
    IntervalSample {
        start_ms: ms(before.at_ns.saturating_sub(ready_ns)),
        duration_ms: ms(duration_ns),
        received,
        rate: if duration_ns == 0 {
            0.0
        } else {
            (received as f64 * 1e9 / duration_ns as f64).round()
        },
        lost: lost_now as i64 - before.totals.lost() as i64,
        lost_total: lost_now,
        duplicates: now.totals.duplicates - before.totals.duplicates,
        reordered: now.totals.reordered - before.totals.reordered,
        latency_p50_ms: seen.then(|| ms(latency.value_at_quantile(0.5))),
        latency_p99_ms: seen.then(|| ms(latency.value_at_quantile(0.99))),
        latency_max_ms: seen.then(|| ms(latency.max())),
    }
}

/// The summary of an XDP counter's final reading and flows.
pub fn xdp_summary(
    totals: &xdp::Totals,
    histogram: &[u64],
    flows: &[xdp::FlowCounts],
    ready_for: Duration,
) -> SinkSummary {
    let mut flows: Vec<FlowSummary> = flows
        .iter()
        .map(|f| FlowSummary {
            source: f.source,
            source_port: f.source_port,
            port: f.port,
            session: f.session,
            received: f.received,
            lost: f.expected.saturating_sub(f.unique),
            duplicates: f.duplicates,
            reordered: f.reordered,
        })
        .collect();
    flows.sort_by_key(|f| (f.source, f.source_port, f.port, f.session));
    let lost: u64 = flows.iter().map(|f| f.lost).sum();
    let expected = totals.unique + lost;
    let loss_percent = if expected == 0 {
        0.0
    } else {
        (lost as f64 * 100.0 / expected as f64 * 100.0).round() / 100.0
    };
    let received = totals.received;
    let rate = if received > 1 && totals.last_ns > totals.first_ns {
        (received - 1) as f64 * 1e9 / (totals.last_ns - totals.first_ns) as f64
    } else if !ready_for.is_zero() {
        received as f64 / ready_for.as_secs_f64()
    } else {
        0.0
    };
    let mut latency = latency::histogram();
    xdp::record_buckets(
        &mut latency,
        histogram,
        None,
        totals.latency_min,
        totals.latency_max,
    );
    let seen = !latency.is_empty();
    SinkSummary {
        path: PATH_XDP,
        fallback: None,
        received,
        lost,
        loss_percent,
        duplicates: totals.duplicates,
        reordered: totals.reordered,
        rate: rate.round(),
        latency_min_ms: seen.then(|| ms(totals.latency_min)),
        latency_p50_ms: seen.then(|| ms(latency.value_at_quantile(0.5))),
        latency_p99_ms: seen.then(|| ms(latency.value_at_quantile(0.99))),
        latency_p99_9_ms: seen.then(|| ms(latency.value_at_quantile(0.999))),
        latency_max_ms: seen.then(|| ms(totals.latency_max)),
        latency_histogram: if seen {
            latency
                .iter_log(1_000, 2.0)
                .map(|bucket| {
                    (
                        ms(bucket.value_iterated_to()),
                        bucket.count_since_last_iteration(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
        corrupted: 0,
        ignored: 0,
        arp_replies: 0,
        untracked: totals.untracked,
        dropped: None,
        flows,
    }
}

/// Counts in the XDP program `counter` until stopped (a signal,
/// `--count`, `--duration`), answering ARP on `datalink` meanwhile, then
/// detaches it and prints the summary.
pub fn run_xdp<W: Write>(
    counter: &mut xdp::XdpCounter,
    datalink: &mut dyn Datalink,
    options: &SinkOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<SinkSummary, ToolError> {
    out.emit(&SinkEvent::Ready {
        iface: &options.iface,
        ip: options.ip,
        mac: options.mac,
        datalink: format!(
            "XDP counting ({}); ARP on {}",
            counter.mode,
            datalink.describe()
        ),
    })?;
    out.flush()?;
    let ready = Instant::now();
    let ready_ns = traffic::monotonic_ns();
    let end = options.duration.and_then(|d| ready.checked_add(d));
    let answerer = ArpAnswerer::new(options.mac, options.ip);
    let every_ns = options
        .interval
        .map(|every| u64::try_from(every.as_nanos()).unwrap_or(u64::MAX).max(1));
    let mut before = Reading {
        at_ns: ready_ns,
        totals: xdp::Totals::default(),
        histogram: vec![0; xdp::BUCKETS],
    };
    let (mut arp_replies, mut corrupted, mut ignored) = (0, 0, 0);
    let mut replies: Vec<Vec<u8>> = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now_ns = traffic::monotonic_ns();
        if let Some(every) = every_ns {
            if now_ns >= before.at_ns.saturating_add(every) {
                let now = Reading::take(counter)?;
                out.emit(&SinkEvent::Interval(&xdp_sample(&before, &now, ready_ns)))?;
                out.flush()?;
                before = now;
            }
        }
        if let Some(count) = options.count {
            let totals = counter.totals().map_err(counts_error)?;
            if totals.received >= count {
                break;
            }
        }
        let mut wait = XDP_POLL;
        if let Some(end) = end {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            wait = wait.min(left);
        }
        // What the program passed on: ARP, and frames it did not count.
        if let Some(received) = datalink.recv(wait).map_err(ToolError::Wire)? {
            if received.direction == Direction::In {
                match traffic::parse(received.frame) {
                    Parsed::Arp => replies.extend(answerer.answer(received.frame)),
                    Parsed::Corrupted => corrupted += 1,
                    _ => ignored += 1,
                }
            }
        }
        answer_arp(datalink, &mut replies, &mut arp_replies)?;
    }
    counter.detach();
    let last = Reading::take(counter)?;
    if every_ns.is_some() && (last.at_ns > before.at_ns || last.totals != before.totals) {
        out.emit(&SinkEvent::Interval(&xdp_sample(&before, &last, ready_ns)))?;
    }
    let flows = counter.flows().map_err(counts_error)?;
    let mut summary = xdp_summary(&last.totals, &last.histogram, &flows, ready.elapsed());
    summary.arp_replies = arp_replies;
    summary.corrupted = corrupted;
    summary.ignored = ignored;
    if options.per_flow {
        for flow in &summary.flows {
            out.emit(&SinkEvent::Flow(flow))?;
        }
    }
    out.emit(&SinkEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
