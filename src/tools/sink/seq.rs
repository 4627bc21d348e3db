//! Sequence accounting for one flow, in bounded memory.
//!
//! The sender numbers a flow's frames 0, 1, 2, ... (32 bits on the wire,
//! widened back here). The tracker keeps the highest number seen and a
//! bitmap of the [`WINDOW`] numbers up to it, a ring indexed by the number
//! itself (so a frame in order clears one bit, where shifting the window
//! moved all of its 64 words: most of a frame's accounting):
//!
//! - a number above the highest moves the window up; the numbers skipped
//!   are missing for now (lost unless they arrive later);
//! - a number inside the window already marked is a duplicate;
//! - a number inside the window not yet marked arrived late: reordered
//!   (it is no longer lost);
//! - a number below the window is reordered too, and counted as new: the
//!   tracker cannot tell whether it came before (a duplicate that late is
//!   taken for a late original).
//!
//! Lost is then `expected - unique`, where expected is every number from
//! the flow's start to the highest seen. The start is 0 when the first
//! number seen is within a window of 0 (the sink was there before the
//! flow began, and the first frames may have been lost), else the first
//! number seen (the sink joined a running flow). Frames lost after the
//! last one received cannot be seen by any sink: the sender's count says.

/// How far back duplicates and late frames are told apart.
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

#[derive(Clone, Debug)]
pub struct SeqTracker {
    /// The highest number seen, widened to 64 bits.
    highest: Option<u64>,
    start: u64,
    /// Bit `n % WINDOW` (of word `n % WINDOW / 64`) is number `n`, for
    /// the numbers from `highest - WINDOW + 1` to `highest`.
    seen: [u64; WORDS],
    pub received: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

/// What one frame was, to the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    Reordered,
    Duplicate,
}

impl Default for SeqTracker {
    fn default() -> Self {
        SeqTracker {
            highest: None,
            start: 0,
            seen: [0; WORDS],
            received: 0,
            unique: 0,
            duplicates: 0,
            reordered: 0,
        }
    }
}

impl SeqTracker {
    /// Widens a 32-bit number to the 64-bit one nearest the highest seen.
    fn widen(&self, seq: u32) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(seq);
        };
        let delta = seq.wrapping_sub(highest as u32) as i32;
        highest
            .checked_add_signed(i64::from(delta))
            .unwrap_or(u64::from(seq))
    }

    /// Counts `seq` if it is the one after the highest (most frames are):
    /// its bit held the number a window below, which the window leaves, so
    /// it is set, not cleared and set, and the lost count does not move.
    /// False, with nothing counted, for any other number.
    #[inline]
    pub fn record_next(&mut self, seq: u32) -> bool {
        let Some(next) = self.highest.and_then(|highest| highest.checked_add(1)) else {
            return false;
        };
        if seq != next as u32 {
            return false;
        }
        self.mark(next);
        self.highest = Some(next);
        self.received += 1;
        self.unique += 1;
        true
    }

    pub fn record(&mut self, seq: u32) -> Arrival {
        if self.record_next(seq) {
            return Arrival::InOrder;
        }
        let seq = self.widen(seq);
        self.received += 1;
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.start = if seq < WINDOW { 0 } else { seq };
            self.mark(seq);
            self.unique += 1;
            return Arrival::InOrder;
        };
        if seq > highest {
            self.forget(highest + 1, seq - highest);
            self.mark(seq);
            self.highest = Some(seq);
            self.unique += 1;
            return Arrival::InOrder;
        }
        let back = highest - seq;
        if back >= WINDOW {
            // Too old to tell: a late original.
            self.reordered += 1;
            self.unique += 1;
            if seq < self.start {
                self.start = seq;
            }
            return Arrival::Reordered;
        }
        if self.marked(seq) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.mark(seq);
        self.unique += 1;
        self.reordered += 1;
        if seq < self.start {
            self.start = seq;
        }
        Arrival::Reordered
    }

    fn mark(&mut self, n: u64) {
        let at = n % WINDOW;
        self.seen[(at / 64) as usize] |= 1 << (at % 64);
    }

    fn marked(&self, n: u64) -> bool {
        let at = n % WINDOW;
        self.seen[(at / 64) as usize] & (1 << (at % 64)) != 0
    }

    /// Clears the bits of `count` numbers from `from` on: the window moves
    /// up over them, and their bits held the numbers it leaves behind.
    fn forget(&mut self, from: u64, count: u64) {
        if count >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (mut at, mut left) = (from % WINDOW, count);
        while left > 0 {
            let bit = at % 64;
            let take = left.min(64 - bit);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1 << take) - 1) << bit
            };
            self.seen[(at / 64) as usize] &= !mask;
            at = (at + take) % WINDOW;
            left -= take;
        }
    }

    /// Numbers from the flow's start to the highest seen.
    pub fn expected(&self) -> u64 {
        self.highest.map_or(0, |highest| highest - self.start + 1)
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_frames_lose_nothing() {
        let mut flow = SeqTracker::default();
        for seq in 0..10_000 {
            assert_eq!(flow.record(seq), Arrival::InOrder);
        }
        assert_eq!(
            (flow.received, flow.lost(), flow.duplicates, flow.reordered),
            (10_000, 0, 0, 0)
        );
    }

    #[test]
    fn gaps_are_lost_until_they_arrive() {
        let mut flow = SeqTracker::default();
        for seq in [0, 1, 5, 6] {
            flow.record(seq);
        }
        assert_eq!(flow.lost(), 3);
        assert_eq!(flow.record(3), Arrival::Reordered);
        assert_eq!(flow.lost(), 2);
        assert_eq!(flow.record(3), Arrival::Duplicate);
        assert_eq!((flow.duplicates, flow.reordered, flow.received), (1, 1, 6));
    }

    #[test]
    fn the_first_frames_lost_count_when_the_sink_was_there_first() {
        let mut early = SeqTracker::default();
        early.record(3);
        assert_eq!(early.lost(), 3);
        let mut joined = SeqTracker::default();
        joined.record(1_000_000);
        joined.record(1_000_001);
        assert_eq!(joined.lost(), 0);
    }

    #[test]
    fn numbers_widen_across_the_32_bit_wrap() {
        let mut flow = SeqTracker::default();
        flow.highest = Some(u64::from(u32::MAX) - 1);
        flow.start = flow.highest.unwrap();
        flow.seen[0] = 1;
        flow.unique = 1;
        for seq in [u32::MAX, 0, 1] {
            assert_eq!(flow.record(seq), Arrival::InOrder);
        }
        assert_eq!(flow.highest, Some(u64::from(u32::MAX) + 2));
        assert_eq!(flow.lost(), 0);
    }

    /// The model: every number kept, nothing forgotten.
    fn model(arrivals: &[u32]) -> (u64, u64, u64, u64) {
        let mut seen = HashSet::new();
        let (mut dups, mut reordered, mut highest) = (0, 0, None::<u32>);
        for &seq in arrivals {
            if !seen.insert(seq) {
                dups += 1;
                continue;
            }
            if highest.is_some_and(|h| seq < h) {
                reordered += 1;
            }
            highest = highest.max(Some(seq));
        }
        let expected = highest.map_or(0, |h| u64::from(h) + 1);
        let lost = expected - seen.len() as u64;
        (arrivals.len() as u64, lost, dups, reordered)
    }

    /// A flow of `len` frames through a faulty path: each frame dropped,
    /// duplicated, or delayed by up to `max_delay` positions.
    fn faulty_path() -> impl Strategy<Value = Vec<u32>> {
        (
            1u32..3000,
            prop::collection::vec((0u8..100, 0usize..200), 3000),
        )
            .prop_map(|(len, faults)| {
                let mut out: Vec<(usize, u32)> = Vec::new();
                for seq in 0..len {
                    let (roll, delay) = faults[seq as usize];
                    let at = seq as usize;
                    match roll {
                        0..=9 => {}                                            // lost
                        10..=14 => out.extend([(at, seq), (at + delay, seq)]), // duplicated
                        15..=29 => out.push((at + delay, seq)),                // delayed
                        _ => out.push((at, seq)),
                    }
                }
                out.sort_by_key(|&(at, _)| at);
                out.into_iter().map(|(_, seq)| seq).collect()
            })
    }

    /// The tracker's own rules, kept the slow way: the numbers seen within
    /// a window of the highest, in a set.
    fn windowed_model(arrivals: &[u32]) -> (u64, u64, u64, u64) {
        let mut seen = std::collections::BTreeSet::new();
        let (mut unique, mut dups, mut reordered) = (0, 0, 0);
        let mut highest = None::<u64>;
        for &seq in arrivals {
            let seq = u64::from(seq);
            match highest {
                Some(h) if seq + WINDOW <= h => {
                    reordered += 1;
                    unique += 1;
                }
                _ if seen.contains(&seq) => dups += 1,
                Some(h) if seq < h => {
                    reordered += 1;
                    unique += 1;
                    seen.insert(seq);
                }
                _ => {
                    unique += 1;
                    seen.insert(seq);
                    highest = Some(seq);
                }
            }
            let h = highest.unwrap_or(0);
            seen.retain(|&n| n + WINDOW > h);
        }
        (arrivals.len() as u64, unique, dups, reordered)
    }

    /// A flow that mostly moves up by one, with gaps (small, and up to
    /// three windows), and late numbers up to a window and a bit back: the
    /// ring wraps, words are cleared whole and in part, and numbers fall
    /// out of the window and come back.
    fn jumpy() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec((0u8..10, 1u32..3 * WINDOW as u32), 1..3000).prop_map(|steps| {
            let mut at = 20_000u32;
            let mut out = Vec::new();
            for (kind, by) in steps {
                at = match kind {
                    0..=6 => at + 1,
                    7 => at + by,
                    8 => at + 2 + by % 130,
                    _ => at.saturating_sub(1 + by % (WINDOW as u32 + 200)),
                };
                out.push(at);
            }
            out
        })
    }

    proptest! {
        #[test]
        fn the_ring_keeps_the_window_of_a_set(arrivals in jumpy()) {
            let mut flow = SeqTracker::default();
            for &seq in &arrivals {
                flow.record(seq);
            }
            let (received, unique, dups, reordered) = windowed_model(&arrivals);
            prop_assert_eq!(flow.received, received);
            prop_assert_eq!(flow.unique, unique);
            prop_assert_eq!(flow.duplicates, dups);
            prop_assert_eq!(flow.reordered, reordered);
        }

        #[test]
        fn accounting_matches_the_model_under_loss_duplication_and_reordering(
            arrivals in faulty_path()
        ) {
            let mut flow = SeqTracker::default();
            for &seq in &arrivals {
                flow.record(seq);
            }
            let (received, lost, dups, reordered) = model(&arrivals);
            prop_assert_eq!(flow.received, received);
            prop_assert_eq!(flow.lost(), lost);
            prop_assert_eq!(flow.duplicates, dups);
            prop_assert_eq!(flow.reordered, reordered);
        }

        #[test]
        fn any_numbers_at_all_never_panic_and_add_up(
            arrivals in prop::collection::vec(any::<u32>(), 0..500)
        ) {
            let mut flow = SeqTracker::default();
            for &seq in &arrivals {
                flow.record(seq);
            }
            prop_assert_eq!(flow.received, arrivals.len() as u64);
            prop_assert_eq!(flow.unique + flow.duplicates, flow.received);
        }
    }
}
