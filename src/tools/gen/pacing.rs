//! When lab-gen's frames are due: a token bucket on the monotonic clock.
//!
//! Frame `n` is due at `start + n / rate`. At each look, every frame due
//! by now and not yet granted may go, in batches of at most `batch` (sized
//! to the rate: about 100 µs of frames, so a low rate sends frames one by
//! one, evenly spaced, and a high rate sends them in bursts the datalinks
//! can batch). A generator that fell behind (preempted, a slow send)
//! catches up at most `depth` frames at once, 20 milliseconds' worth;
//! older debt is forgiven, so a stall does not turn into a burst that a
//! rate-limited link drops. The rate achieved over seconds is the rate
//! asked for, to the frame, as long as the generator keeps up.

use std::time::{Duration, Instant};

/// How long the largest burst of a paced generator lasts.
const BATCH_SPAN: Duration = Duration::from_micros(100);
/// How much debt a generator that fell behind may catch up.
const DEPTH_SPAN: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
pub struct Pacer {
    /// Frames per second; `None`: as fast as the datalink takes them.
    rate: Option<f64>,
    start: Instant,
    /// Frames granted (or forgiven) so far.
    granted: u64,
    /// Frames forgiven because the generator fell too far behind.
    forgiven: u64,
    batch: usize,
    depth: u64,
}

/// What the pacer says at a look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// This many frames may go now (1 or more).
    Send(usize),
    /// None yet: the next one is due then.
    Wait(Instant),
}

impl Pacer {
    /// `max_batch`: the most frames one send may take (the unpaced batch).
    pub fn new(rate: Option<f64>, start: Instant, max_batch: usize) -> Pacer {
        Pacer::with_span(rate, start, max_batch, BATCH_SPAN)
    }

    /// As [`Pacer::new`], with bursts of `span` rather than 100 µs (the
    /// live-frames path, whose every send is a run the kernel sets up).
    pub fn with_span(rate: Option<f64>, start: Instant, max_batch: usize, span: Duration) -> Pacer {
        let max_batch = max_batch.max(1);
        let (batch, depth) = match rate {
            Some(rate) => {
                let batch = (rate * span.as_secs_f64()).ceil() as usize;
                let batch = batch.clamp(1, max_batch);
                let depth = ((rate * DEPTH_SPAN.as_secs_f64()).ceil() as u64).max(batch as u64);
                (batch, depth)
            }
            None => (max_batch, u64::MAX),
        };
        Pacer {
            rate,
            start,
            granted: 0,
            forgiven: 0,
            batch,
            depth,
        }
    }

    /// The largest batch this pacer grants.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Frames forgiven so far (the generator could not keep up).
    pub fn forgiven(&self) -> u64 {
        self.forgiven
    }

    /// Frames due by `now` since the start (all of them when unpaced).
    fn due(&self, now: Instant) -> u64 {
        match self.rate {
            None => u64::MAX,
            Some(rate) => {
                let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
                // +1: frame 0 is due at the start.
                (elapsed * rate).floor() as u64 + 1
            }
        }
    }

    /// When frame `n` is due.
    fn due_at(&self, n: u64) -> Instant {
        match self.rate {
            None => self.start,
            Some(rate) => {
                let at = Duration::try_from_secs_f64(n as f64 / rate).unwrap_or(Duration::MAX);
                self.start.checked_add(at).unwrap_or(self.start)
            }
        }
    }

    /// How many frames may go at `now`, at most `limit` (what is left of
    /// `--count`); they count as granted.
    pub fn grant(&mut self, now: Instant, limit: u64) -> Grant {
        let due = self.due(now);
        let mut owed = due.saturating_sub(self.granted);
        if owed > self.depth {
            self.forgiven += owed - self.depth;
            self.granted += owed - self.depth;
            owed = self.depth;
        }
        let take = owed.min(self.batch as u64).min(limit);
        if take == 0 {
            return Grant::Wait(self.due_at(self.granted));
        }
        self.granted += take;
        Grant::Send(take as usize)
    }
}

impl Pacer {
    /// Grants every frame due by `now` at once, however many (at most
    /// `limit`): the frames of an outage, counted lost rather than
    /// forgiven. Unpaced, nothing is due but the next batch.
    pub fn grant_all(&mut self, now: Instant, limit: u64) -> u64 {
        if self.rate.is_none() {
            return 0;
        }
        let take = self.due(now).saturating_sub(self.granted).min(limit);
        self.granted += take;
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a pacer over `seconds` of simulated time, waking `step` after
    /// the last look at the earliest (or at the due time when it is
    /// later), and returns the frames
    /// granted and the largest batch.
    fn simulate(rate: f64, seconds: f64, step: Duration) -> (u64, usize) {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut pacer = Pacer::new(Some(rate), start, 256);
        let (mut total, mut largest) = (0u64, 0usize);
        let mut now = start;
        while now < end {
            match pacer.grant(now, u64::MAX) {
                // As the generator does: send, and look again at once.
                Grant::Send(n) => {
                    total += n as u64;
                    largest = largest.max(n);
                }
                Grant::Wait(at) => {
                    assert!(at >= now, "told to wait for the past");
                    now = at.max(now + step).min(end);
                    if now == end {
                        break;
                    }
                }
            }
        }
        while let Grant::Send(n) = pacer.grant(end, u64::MAX) {
            total += n as u64;
        }
        (total, largest)
    }

    #[test]
    fn the_rate_is_met_to_the_frame_over_seconds() {
        for (rate, step_us) in [
            (1000.0, 50),
            (20_000.0, 10),
            (20_000.0, 300),
            (1_000_000.0, 20),
        ] {
            let (total, _) = simulate(rate, 3.0, Duration::from_micros(step_us));
            // Frame 0 at the start, the last one at exactly 3 s.
            let expected = (rate * 3.0) as u64 + 1;
            assert!(
                total.abs_diff(expected) <= 1,
                "rate {rate}, looking every {step_us} µs: {total} frames, not {expected}"
            );
        }
    }

    #[test]
    fn low_rates_send_one_by_one_high_rates_in_batches() {
        let (_, largest) = simulate(1000.0, 1.0, Duration::from_micros(10));
        assert_eq!(largest, 1);
        let (_, largest) = simulate(1_000_000.0, 0.1, Duration::from_micros(50));
        assert!((50..=100).contains(&largest), "{largest}");
        let pacer = Pacer::new(Some(1e9), Instant::now(), 64);
        assert_eq!(pacer.batch(), 64);
    }

    #[test]
    fn a_stall_is_caught_up_only_a_few_milliseconds_deep() {
        let start = Instant::now();
        let mut pacer = Pacer::new(Some(10_000.0), start, 256);
        // One second without a look: 10,000 frames owed, 200 (20 ms) kept.
        let later = start + Duration::from_secs(1);
        let mut burst = 0;
        while let Grant::Send(n) = pacer.grant(later, u64::MAX) {
            burst += n;
        }
        assert_eq!(burst, 200);
        assert_eq!(pacer.forgiven(), 10_001 - 200);
    }

    #[test]
    fn the_count_limits_the_grant_and_the_first_frame_is_due_at_once() {
        let start = Instant::now();
        let mut pacer = Pacer::new(Some(10.0), start, 64);
        assert_eq!(pacer.grant(start, 5), Grant::Send(1));
        assert_eq!(
            pacer.grant(start, 5),
            Grant::Wait(start + Duration::from_millis(100))
        );
        let mut outage = Pacer::new(Some(1000.0), start, 64);
        assert_eq!(
            outage.grant_all(start + Duration::from_secs(2), u64::MAX),
            2001
        );
        assert_eq!(outage.forgiven(), 0);
        let mut unpaced = Pacer::new(None, start, 64);
        assert_eq!(unpaced.grant(start, 1000), Grant::Send(64));
        assert_eq!(unpaced.grant(start, 3), Grant::Send(3));
        assert_eq!(unpaced.grant(start, 0), Grant::Wait(start));
    }
}
