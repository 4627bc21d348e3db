//! lab-fwd: what it does with the frames queued on each side
//! (`fwd::forward_once`, its loop's step), the far side taking them or
//! not as the fuzzer says. Frames are never parsed, so the check is that
//! the counts are exact: every frame that came in on one side left by the
//! other unchanged and in order, or was counted dropped; a frame the side
//! itself sent is never forwarded.
#![no_main]

use labctl::tools::datalink::Direction;
use labctl::tools::fwd::{forward_once, Batch, Counts, Pass};
use labctl_fuzz::{records, MemLink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (options, records) = records(data);
    let max = usize::from(options % 8) + 1;
    // Records alternate sides by their length's parity: both directions
    // run at once, as in lab-fwd's loop.
    let (mut a, mut b) = (MemLink::new([]), MemLink::new([]));
    a.ends = false;
    b.ends = false;
    let mut expected = [Vec::new(), Vec::new()];
    for record in &records {
        let side = record.frame.len() % 2;
        let (from, to) = if side == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        from.inbox
            .push_back((record.frame.clone(), record.direction));
        if record.direction == Direction::In {
            to.send_outcomes.push_back(record.outcome);
            expected[side].push(record.frame.clone());
        }
    }
    let mut batch = Batch::default();
    let (mut a_to_b, mut b_to_a) = (Counts::default(), Counts::default());
    loop {
        let forth = forward_once(&mut a, &mut b, &mut batch, max, &mut a_to_b);
        let back = forward_once(&mut b, &mut a, &mut batch, max, &mut b_to_a);
        assert_ne!(forth, Pass::Failed);
        assert_ne!(back, Pass::Failed);
        if forth == Pass::Moved(0) && back == Pass::Moved(0) {
            break;
        }
    }
    for (counts, expected, far) in [(a_to_b, &expected[0], &b), (b_to_a, &expected[1], &a)] {
        assert_eq!(counts.forwarded + counts.dropped, expected.len() as u64);
        assert_eq!(counts.forwarded, far.sent.len() as u64);
        // What left is what came, in order, less the drops.
        let mut left = far.sent.iter();
        let mut next = left.next();
        for frame in expected {
            if next == Some(frame) {
                next = left.next();
            }
        }
        assert_eq!(
            next, None,
            "a frame left that did not come, or out of order"
        );
    }
});
