//! The latency histogram of a sink, fed a frame at a time.
//!
//! Frames come in batches that share a send time (lab-gen reads its clock
//! once a batch) and a receive time (the sink reads its clock once a
//! sync), so a run of frames has one latency. A run is held as a value
//! and a count and recorded once, as the next different value comes or
//! the histogram is read: a frame costs a comparison, where a record
//! (bucket, sub-bucket, bounds, min and max) cost more than the rest of
//! the frame's accounting but the parse.

use std::borrow::Cow;

use hdrhistogram::Histogram;

/// The latencies the histogram holds: 1 ns to an hour (longer ones are
/// counted as an hour).
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

#[derive(Clone, Debug)]
pub struct Latencies {
    recorded: Histogram<u64>,
    /// The run not yet recorded: `held` frames of `value` ns.
    value: u64,
    held: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            recorded: histogram(),
            value: 0,
            held: 0,
        }
    }
}

impl Latencies {
    /// One frame's latency, clamped to 1 ns ..= [`MAX_LATENCY_NS`].
    #[inline]
    pub fn record(&mut self, latency_ns: u64) {
        if latency_ns == self.value {
            self.held += 1;
        } else {
            self.flush();
            self.value = latency_ns;
            self.held = 1;
        }
    }

    fn flush(&mut self) {
        if self.held > 0 {
            let value = self.value.clamp(1, MAX_LATENCY_NS);
            self.recorded.saturating_record_n(value, self.held);
            self.held = 0;
        }
    }

    /// Every latency recorded, the held run included.
    pub fn histogram(&mut self) -> &Histogram<u64> {
        self.flush();
        &self.recorded
    }

    /// The same, without recording the held run (a copy if one is held).
    pub fn view(&self) -> Cow<'_, Histogram<u64>> {
        if self.held == 0 {
            return Cow::Borrowed(&self.recorded);
        }
        let mut all = self.recorded.clone();
        all.saturating_record_n(self.value.clamp(1, MAX_LATENCY_NS), self.held);
        Cow::Owned(all)
    }

    /// Adds `other`'s latencies (its held run included) to these.
    pub fn add(&mut self, other: &mut Latencies) {
        self.flush();
        // Both histograms have the same bounds: adding cannot fail.
        let _ = self.recorded.add(other.histogram());
    }

    pub fn reset(&mut self) {
        self.recorded.reset();
        self.held = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0 && self.recorded.is_empty()
    }
}

/// Bounds this wide and 3 digits always make a histogram.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("a 3-digit histogram"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Held runs or not, the histogram is the one every latency was
        /// recorded into one by one, read at any point.
        #[test]
        fn runs_held_make_the_histogram_of_every_record(
            runs in prop::collection::vec((0..5u64, 1..40u64), 0..60),
            read_at in any::<prop::sample::Index>(),
        ) {
            let mut held = Latencies::default();
            let mut plain = histogram();
            let read_at = read_at.index(runs.len() + 1);
            for (at, &(value, frames)) in runs.iter().enumerate() {
                if at == read_at {
                    prop_assert_eq!(held.view().into_owned(), plain.clone());
                    prop_assert_eq!(held.histogram(), &plain);
                }
                // 0 and an hour and more are clamped, as the sink's are.
                let value = [0, 1, 1_000, 20_000, MAX_LATENCY_NS + 5][value as usize];
                for _ in 0..frames {
                    held.record(value);
                    plain.saturating_record(value.clamp(1, MAX_LATENCY_NS));
                }
            }
            prop_assert_eq!(held.is_empty(), plain.is_empty());
            prop_assert_eq!(held.view().into_owned(), plain.clone());
            let mut sum = Latencies::default();
            sum.add(&mut held);
            prop_assert_eq!(sum.histogram(), &plain);
        }
    }

    #[test]
    fn a_reset_forgets_the_held_run_too() {
        let mut held = Latencies::default();
        held.record(5);
        held.record(5);
        held.reset();
        assert!(held.is_empty());
        held.record(7);
        assert_eq!(held.histogram().len(), 1);
    }
}
