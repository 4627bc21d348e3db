//! The forwarder over in-memory links: what arrives on one side leaves by
//! the other unchanged, in order; what the far side refuses is dropped and
//! counted; nothing stops it.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

use super::*;
use crate::tools::datalink::{DatalinkError, Received, Stats};
use crate::tools::output::Format;

/// A link with frames queued to receive, that records what it sends and
/// refuses sends while `down` (as ENETDOWN would).
#[derive(Default)]
struct Wire {
    inbox: VecDeque<(Vec<u8>, Direction)>,
    sent: Vec<Vec<u8>>,
    down: bool,
    fail_receive: bool,
    /// Frames longer than this are refused (EMSGSIZE), as above an MTU.
    max_len: Option<usize>,
    /// What the kernel says this side's receive dropped (`stats`).
    ring_dropped: Option<u64>,
    current: Vec<u8>,
}

impl Wire {
    fn with(frames: &[Vec<u8>]) -> Wire {
        Wire {
            inbox: frames.iter().map(|f| (f.clone(), Direction::In)).collect(),
            ..Wire::default()
        }
    }
}

fn down(op: &'static str) -> DatalinkError {
    DatalinkError::Io {
        op,
        iface: "wire".into(),
        source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
    }
}

impl Datalink for Wire {
    fn describe(&self) -> String {
        "wire".into()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        if self.down {
            return Err(down("send"));
        }
        if self.max_len.is_some_and(|max| frame.len() > max) {
            return Err(DatalinkError::Io {
                op: "send",
                iface: "wire".into(),
                source: std::io::Error::from_raw_os_error(libc::EMSGSIZE),
            });
        }
        self.sent.push(frame.to_vec());
        Ok(())
    }

    fn recv(&mut self, _: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        if self.fail_receive {
            return Err(down("receive"));
        }
        let Some((frame, direction)) = self.inbox.pop_front() else {
            return Ok(None);
        };
        self.current = frame;
        Ok(Some(Received {
            frame: &self.current,
            direction,
        }))
    }

    fn stats(&self) -> Stats {
        Stats {
            dropped: self.ring_dropped,
        }
    }
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| n.wrapping_add(i as u8)).collect()
}

/// Runs the forwarder with the stop flag already set: it forwards what is
/// queued (the drain) and prints its summary, in `format`.
fn run_to_end(a: &mut Wire, b: &mut Wire, batch: usize, format: Format) -> (FwdSummary, String) {
    let mut out = Output::new(format, Vec::new());
    let stop = AtomicBool::new(true);
    let summary = run(
        Side {
            iface: "west",
            link: a,
        },
        Side {
            iface: "east",
            link: b,
        },
        &FwdOptions {
            batch,
            ..FwdOptions::default()
        },
        &mut out,
        &stop,
    )
    .unwrap();
    (summary, String::from_utf8(out.into_inner()).unwrap())
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn frames_cross_both_ways_unchanged_and_in_order() {
    let west: Vec<Vec<u8>> = (0..150).map(|n| frame(n, 60 + n as usize)).collect();
    let east: Vec<Vec<u8>> = (0..7).map(|n| frame(200 + n, 1514)).collect();
    let (mut a, mut b) = (Wire::with(&west), Wire::with(&east));
    let (summary, text) = run_to_end(&mut a, &mut b, 16, Format::Human);
    assert_eq!(b.sent, west);
    assert_eq!(a.sent, east);
    assert_eq!(
        summary.a_to_b,
        Counts {
            forwarded: 150,
            dropped: 0,
            ring_dropped: 0,
        }
    );
    assert_eq!(
        summary.b_to_a,
        Counts {
            forwarded: 7,
            dropped: 0,
            ring_dropped: 0,
        }
    );
    assert_eq!(
        lines(&text),
        [
            "forwarding west <-> east (wire | wire)",
            "forwarded 150 west->east, 7 east->west, dropped 0"
        ]
    );
}

#[test]
fn a_batch_takes_at_most_its_size_from_one_side() {
    let west: Vec<Vec<u8>> = (0..10).map(|n| frame(n, 64)).collect();
    let (mut a, mut b) = (Wire::with(&west), Wire::default());
    let mut batch = Batch::default();
    let mut counts = Counts::default();
    let mut pass = |max| forward_once(&mut a, &mut b, &mut batch, max, &mut counts);
    assert_eq!(pass(4), Pass::Moved(4));
    assert_eq!(pass(100), Pass::Moved(6));
    assert_eq!(pass(100), Pass::Moved(0));
    assert_eq!(b.sent, west);
    assert_eq!(counts.forwarded, 10);
}

#[test]
fn outgoing_frames_are_never_sent_back() {
    let mut a = Wire::default();
    a.inbox.push_back((frame(1, 64), Direction::Out));
    a.inbox.push_back((frame(2, 64), Direction::In));
    let mut b = Wire::default();
    let (summary, _) = run_to_end(&mut a, &mut b, 8, Format::Human);
    assert_eq!(b.sent, [frame(2, 64)]);
    assert_eq!(summary.a_to_b.forwarded, 1);
}

#[test]
fn what_a_down_side_cannot_take_is_dropped_and_forwarding_goes_on() {
    let west: Vec<Vec<u8>> = (0..5).map(|n| frame(n, 64)).collect();
    let mut a = Wire::with(&west);
    let mut b = Wire {
        down: true,
        ..Wire::default()
    };
    let mut batch = Batch::default();
    let mut counts = Counts::default();
    forward_once(&mut a, &mut b, &mut batch, 3, &mut counts);
    assert_eq!(
        counts,
        Counts {
            forwarded: 0,
            dropped: 3,
            ring_dropped: 0,
        }
    );
    // The link comes back: the rest goes through.
    b.down = false;
    forward_once(&mut a, &mut b, &mut batch, 3, &mut counts);
    assert_eq!(
        counts,
        Counts {
            forwarded: 2,
            dropped: 3,
            ring_dropped: 0,
        }
    );
    assert_eq!(b.sent, west[3..]);
}

#[test]
fn a_frame_too_big_for_the_far_side_is_dropped_alone() {
    let west = vec![frame(1, 64), frame(2, 9000), frame(3, 64)];
    let mut a = Wire::with(&west);
    let mut b = Wire {
        max_len: Some(1514),
        ..Wire::default()
    };
    let (summary, _) = run_to_end(&mut a, &mut b, 8, Format::Human);
    assert_eq!(
        summary.a_to_b,
        Counts {
            forwarded: 2,
            dropped: 1,
            ring_dropped: 0,
        }
    );
    assert_eq!(b.sent, [frame(1, 64), frame(3, 64)]);
}

#[test]
fn a_failing_receive_is_counted_not_fatal() {
    let mut a = Wire {
        fail_receive: true,
        ..Wire::default()
    };
    let mut b = Wire::with(&[frame(9, 64)]);
    let (summary, text) = run_to_end(&mut a, &mut b, 8, Format::Human);
    assert!(summary.receive_errors >= 1);
    assert_eq!(a.sent, [frame(9, 64)]);
    assert_eq!(
        lines(&text)[1],
        "forwarded 0 west->east, 1 east->west, dropped 0"
    );
}

#[test]
fn the_json_events_carry_the_same_counts() {
    let mut a = Wire::with(&[frame(1, 64), frame(2, 64)]);
    let mut b = Wire {
        down: true,
        ..Wire::default()
    };
    b.inbox.push_back((frame(3, 64), Direction::In));
    let (_, text) = run_to_end(&mut a, &mut b, DEFAULT_BATCH, Format::Json);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "forwarding");
    assert_eq!(events[0]["a"], "west");
    assert_eq!(events[0]["datalink_b"], "wire");
    let summary = &events[1];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["a_to_b"]["dropped"], 2);
    assert_eq!(summary["b_to_a"]["forwarded"], 1);
    assert_eq!(summary["dropped"], 2);
    assert_eq!(events.len(), 2);
}

#[test]
fn what_a_receive_ring_dropped_is_lost_at_the_forwarder() {
    let mut a = Wire {
        ring_dropped: Some(7),
        ..Wire::with(&[frame(1, 64)])
    };
    // A datalink that keeps no count (None) adds nothing.
    let mut b = Wire::default();
    let (summary, text) = run_to_end(&mut a, &mut b, 8, Format::Human);
    assert_eq!(
        summary.a_to_b,
        Counts {
            forwarded: 1,
            dropped: 0,
            ring_dropped: 7,
        }
    );
    assert_eq!(summary.b_to_a.ring_dropped, 0);
    assert_eq!(
        lines(&text)[1],
        "forwarded 1 west->east, 0 east->west, dropped 7"
    );
}

proptest! {
    /// Any bytes at all, any batch size, sides going down at random: no
    /// panic, and every frame taken is either forwarded unchanged, in
    /// order, or counted as dropped.
    #[test]
    fn any_frames_are_forwarded_or_counted(
        west in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..40),
        east in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..40),
        batch in 1usize..10,
        downs in proptest::collection::vec(any::<(bool, bool)>(), 1..20),
    ) {
        let (mut a, mut b) = (Wire::with(&west), Wire::with(&east));
        let mut frames = Batch::default();
        let (mut ab, mut ba) = (Counts::default(), Counts::default());
        for (a_down, b_down) in downs.iter().cycle().take(100) {
            a.down = *a_down;
            b.down = *b_down;
            forward_once(&mut a, &mut b, &mut frames, batch, &mut ab);
            forward_once(&mut b, &mut a, &mut frames, batch, &mut ba);
        }
        prop_assert_eq!(ab.forwarded + ab.dropped, west.len() as u64);
        prop_assert_eq!(ba.forwarded + ba.dropped, east.len() as u64);
        prop_assert_eq!(b.sent.len() as u64, ab.forwarded);
        prop_assert_eq!(a.sent.len() as u64, ba.forwarded);
        // What went through is a subsequence of what came in.
        let mut rest = west.iter();
        for sent in &b.sent {
            prop_assert!(rest.any(|w| w == sent));
        }
    }
}
