//! lab-fwd: a user-space L2 forwarder, the reference device under test.
//! Every frame that arrives on one interface leaves by the other,
//! unchanged, each interface on its own datalink.
//!
//! It moves frames in batches: it takes up to `batch` frames already queued
//! on one side, then hands them to the other side in one
//! [`Datalink::send_batch`], then the same the other
//! way, and only when neither side had anything does it wait, on both at
//! once (it polls the descriptors [`Datalink::poll_fds`] gives). A frame
//! the far side cannot take (its link is down, its ring is full, the frame
//! exceeds its MTU) is dropped and counted; nothing on the wire stops it.
//! Frames are never parsed, so no frame can make it fail.

use std::fmt;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::tools::datalink::{Datalink, Direction, WaitPolicy};
use crate::tools::error::ToolError;
use crate::tools::output::Output;

mod promisc;

pub use promisc::Promiscuous;

/// Frames taken from one side before the other side gets its turn.
pub const DEFAULT_BATCH: usize = 64;
/// The longest wait before the stop flag is looked at again (a signal ends
/// the wait at once anyway).
const POLL: Duration = Duration::from_millis(200);
/// How often a side whose datalink gives no descriptor to poll is looked at.
const LOOK: Duration = Duration::from_millis(1);
/// How long a side whose receive failed (its link went down) rests before
/// it is tried again.
const REST: Duration = Duration::from_millis(50);
/// At most this long is spent forwarding what is still queued after a stop.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// What one direction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Frames handed to the far side.
    pub forwarded: u64,
    /// Frames the far side did not take.
    pub dropped: u64,
    /// Frames the near side's receive dropped before the forwarder read
    /// them (its ring or buffer was full: a forwarder off the CPU), as the
    /// kernel counts them; 0 where the datalink does not say.
    pub ring_dropped: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FwdSummary {
    pub a: String,
    pub b: String,
    pub a_to_b: Counts,
    pub b_to_a: Counts,
    /// Both directions' drops, at either end of the forwarder.
    pub dropped: u64,
    /// Receives that failed (a link down), per side; the side rests and is
    /// tried again.
    pub receive_errors: u64,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FwdEvent<'a> {
    Forwarding {
        a: &'a str,
        b: &'a str,
        datalink_a: String,
        datalink_b: String,
    },
    Summary(&'a FwdSummary),
}

impl fmt::Display for FwdEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FwdEvent::Forwarding {
                a,
                b,
                datalink_a,
                datalink_b,
            } => write!(f, "forwarding {a} <-> {b} ({datalink_a} | {datalink_b})"),
            FwdEvent::Summary(summary) => write!(
                f,
                "forwarded {} {}->{}, {} {}->{}, dropped {}",
                summary.a_to_b.forwarded,
                summary.a,
                summary.b,
                summary.b_to_a.forwarded,
                summary.b,
                summary.a,
                summary.dropped
            ),
        }
    }
}

/// One interface: its name and its datalink.
pub struct Side<'a> {
    pub iface: &'a str,
    pub link: &'a mut dyn Datalink,
}

/// Frames copied out of one side's datalink (each frame borrows the
/// datalink until its next receive), to be handed to the other in one go.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// How one pass over one direction went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// This many frames were taken (forwarded or dropped).
    Moved(usize),
    /// The receiving side failed (its link is down, for one).
    Failed,
}

/// Takes up to `max` frames queued on `from` and hands them to `to`,
/// counting into `counts`. Never waits for frames to come.
pub fn forward_once(
    from: &mut dyn Datalink,
    to: &mut dyn Datalink,
    batch: &mut Batch,
    max: usize,
    counts: &mut Counts,
) -> Pass {
    batch.clear();
    let mut failed = false;
    while batch.len() < max {
        match from.recv(Duration::ZERO) {
            Ok(Some(received)) if received.direction == Direction::In => batch.push(received.frame),
            // Our own frames, where a datalink shows them: never back out.
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    let frames: Vec<&[u8]> = batch.frames().collect();
    send_all(to, &frames, counts);
    if failed && batch.len() == 0 {
        Pass::Failed
    } else {
        Pass::Moved(batch.len())
    }
}

/// Hands `frames` to `to` in as few calls as its datalink can
/// ([`Datalink::send_batch`]). A frame it refuses is dropped and the rest
/// is tried again; when its link is down, the rest is dropped with it.
fn send_all(to: &mut dyn Datalink, frames: &[&[u8]], counts: &mut Counts) {
    let mut rest = frames;
    while !rest.is_empty() {
        match to.send_batch(rest) {
            Ok(sent) if sent > 0 => {
                counts.forwarded += sent as u64;
                rest = &rest[sent.min(rest.len())..];
            }
            Err(error) if error.is_link_down() => {
                counts.dropped += rest.len() as u64;
                return;
            }
            // Refused (too big for the far side, a full ring): that one.
            Ok(_) | Err(_) => {
                counts.dropped += 1;
                rest = &rest[1..];
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct FwdOptions {
    /// Frames taken from one side per turn (1 or more).
    pub batch: usize,
    /// How an idle forwarder waits: it keeps looking at both sides for
    /// `spin` before it sleeps in `poll`, and never sleeps with
    /// `--busy-poll`.
    pub wait: WaitPolicy,
}

impl Default for FwdOptions {
    fn default() -> Self {
        FwdOptions {
            batch: DEFAULT_BATCH,
            wait: WaitPolicy::default(),
        }
    }
}

/// Forwards until stopped, then forwards what is still queued (briefly)
/// and prints the summary.
pub fn run<W: Write>(
    a: Side<'_>,
    b: Side<'_>,
    options: &FwdOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<FwdSummary, ToolError> {
    out.emit(&FwdEvent::Forwarding {
        a: a.iface,
        b: b.iface,
        datalink_a: a.link.describe(),
        datalink_b: b.link.describe(),
    })?;
    out.flush()?;
    let mut summary = FwdSummary {
        a: a.iface.to_owned(),
        b: b.iface.to_owned(),
        ..FwdSummary::default()
    };
    let (link_a, link_b) = (a.link, b.link);
    let max = options.batch.max(1);
    let mut batch = Batch::default();
    // When each side may be tried again after a failed receive.
    let mut rest_until: [Option<Instant>; 2] = [None, None];
    let mut drain_until = None;
    let mut idle_since: Option<Instant> = None;
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + DRAIN_LIMIT);
        }
        let now = Instant::now();
        let mut moved = 0;
        if awake(rest_until[0], now) {
            match forward_once(link_a, link_b, &mut batch, max, &mut summary.a_to_b) {
                Pass::Moved(n) => moved += n,
                Pass::Failed => {
                    summary.receive_errors += 1;
                    rest_until[0] = Some(now + REST);
                }
            }
        }
        if awake(rest_until[1], now) {
            match forward_once(link_b, link_a, &mut batch, max, &mut summary.b_to_a) {
                Pass::Moved(n) => moved += n,
                Pass::Failed => {
                    summary.receive_errors += 1;
                    rest_until[1] = Some(now + REST);
                }
            }
        }
        if let Some(until) = drain_until {
            if moved == 0 || Instant::now() >= until {
                break;
            }
            continue;
        }
        if moved > 0 {
            idle_since = None;
            continue;
        }
        let idle = *idle_since.get_or_insert(now);
        let spinning =
            options.wait.busy_poll || now.saturating_duration_since(idle) < options.wait.spin;
        if spinning {
            std::hint::spin_loop();
        } else {
            wait(&*link_a, &*link_b, &rest_until);
        }
    }
    // A frame its receive ring dropped is lost at the forwarder as much as
    // one its far side refused.
    summary.a_to_b.ring_dropped = link_a.stats().dropped.unwrap_or(0);
    summary.b_to_a.ring_dropped = link_b.stats().dropped.unwrap_or(0);
    summary.dropped = [summary.a_to_b, summary.b_to_a]
        .iter()
        .map(|counts| counts.dropped + counts.ring_dropped)
        .sum();
    out.emit(&FwdEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

/// True when a side is not resting after a failed receive.
fn awake(rest_until: Option<Instant>, now: Instant) -> bool {
    rest_until.is_none_or(|until| now >= until)
}

/// Waits until either side may have a frame: a poll over both sides'
/// descriptors (the awake sides'), for at most [`POLL`], less when a side
/// rests or has no descriptor. A signal ends it at once.
fn wait(a: &dyn Datalink, b: &dyn Datalink, rest_until: &[Option<Instant>; 2]) {
    let mut timeout = POLL;
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    let now = Instant::now();
    for (side, link) in [a, b].into_iter().enumerate() {
        if !awake(rest_until[side], now) {
            let left = rest_until[side]
                .map(|until| until.saturating_duration_since(Instant::now()))
                .unwrap_or(LOOK);
            timeout = timeout.min(left);
            continue;
        }
        let side_fds = link.poll_fds();
        if side_fds.is_empty() {
            timeout = timeout.min(LOOK);
        }
        fds.extend(side_fds);
    }
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: `polled` is a valid array of pollfd for the length given,
    // and the descriptors stay open while `fds` borrows the datalinks. An
    // error (EINTR from a signal) only ends the wait early.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
    // A descriptor in error or hung up polls ready at once, again and
    // again: when that is all that woke us, rest a little instead of
    // spinning.
    let only_errors = ready > 0 && polled.iter().all(|p| p.revents & libc::POLLIN == 0);
    if only_errors {
        std::thread::sleep(LOOK);
    }
}

#[cfg(test)]
mod tests;
