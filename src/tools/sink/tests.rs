use proptest::prelude::*;

use super::*;
use crate::tools::frames::{self, Ipv4Params, Link};
use crate::tools::traffic::{FlowEnds, Stamp, Template};

const SINK: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 2);

fn template(src_port: u16) -> Template {
    Template::new(
        FlowEnds {
            link: Link {
                src: MacAddr::new(2, 0, 0, 0, 0x40, 1),
                dst: MacAddr::new(2, 0, 0, 0, 0x40, 2),
            },
            src: Ipv4Addr::new(198, 18, 40, 1),
            dst: SINK,
            src_port,
            dst_port: 9,
        },
        64,
    )
    .unwrap()
}

fn frame(template: &Template, seq: u32, sent_ns: u64) -> Vec<u8> {
    let mut out = Vec::new();
    template.stamp_into(
        Stamp {
            session: 1,
            seq,
            sent_ns,
        },
        &mut out,
    );
    out
}

#[test]
fn loss_duplicates_reordering_and_latency_add_up() {
    let flow = template(49152);
    let mut sink = Sink::new(SINK);
    // Sent at t, received at t + 10 µs; 5 and 6 lost, 3 late, 8 twice.
    for seq in [0u32, 1, 2, 4, 3, 7, 8, 8, 9] {
        let sent = 1_000_000 + u64::from(seq) * 1000;
        assert_eq!(
            sink.on_frame(&frame(&flow, seq, sent), sent + 10_000),
            Seen::Counted
        );
    }
    let summary = sink.summary(Duration::from_secs(1));
    assert_eq!(summary.received, 9);
    assert_eq!(summary.lost, 2);
    assert_eq!(summary.duplicates, 1);
    assert_eq!(summary.reordered, 1);
    assert_eq!(summary.loss_percent, 20.0);
    assert_eq!(summary.latency_min_ms, Some(0.01));
    assert_eq!(summary.latency_max_ms, Some(0.01));
    let text = SinkEvent::Summary(&summary).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "received 9 frames, lost 2 (20.00%), duplicates 1, reordered 1, {} frames/s",
            summary.rate
        )
    );
    assert_eq!(
        lines[1],
        "latency min/p50/p99/max = 0.010/0.010/0.010/0.010 ms"
    );
}

#[test]
fn the_rate_is_over_the_span_of_the_frames() {
    let flow = template(49152);
    let mut sink = Sink::new(SINK);
    // 1001 frames, one every 50 µs: 20,000 frames/s.
    for seq in 0..=1000u32 {
        let at = 5_000_000_000 + u64::from(seq) * 50_000;
        sink.on_frame(&frame(&flow, seq, at - 20_000), at);
    }
    let summary = sink.summary(Duration::from_secs(10));
    assert_eq!(summary.rate, 20_000.0);
    assert_eq!(summary.latency_p50_ms, Some(0.02));
}

#[test]
fn percentiles_come_from_the_histogram() {
    let flow = template(49152);
    let mut sink = Sink::new(SINK);
    // 100 frames: latencies 1..=100 µs.
    for seq in 0..100u32 {
        let sent = 1_000_000_000;
        sink.on_frame(&frame(&flow, seq, sent), sent + u64::from(seq + 1) * 1000);
    }
    let summary = sink.summary(Duration::from_secs(1));
    assert_eq!(summary.latency_min_ms, Some(0.001));
    assert_eq!(summary.latency_p50_ms, Some(0.05));
    assert_eq!(summary.latency_p99_ms, Some(0.099));
    assert_eq!(summary.latency_max_ms, Some(0.1));
}

#[test]
fn nothing_received_prints_dashes_not_zeros() {
    let summary = Sink::new(SINK).summary(Duration::from_secs(1));
    let text = SinkEvent::Summary(&summary).to_string();
    assert_eq!(
        text,
        "received 0 frames, lost 0 (0.00%), duplicates 0, reordered 0, 0 frames/s\n\
         latency min/p50/p99/max = -/-/-/- ms"
    );
}

#[test]
fn frames_not_for_us_or_broken_are_skipped() {
    let flow = template(49152);
    let mut sink = Sink::new(Ipv4Addr::new(198, 18, 40, 3));
    assert_eq!(sink.on_frame(&frame(&flow, 0, 1), 2), Seen::Skipped);
    let mut sink = Sink::new(SINK);
    let mut bad = frame(&flow, 0, 1);
    bad[50] ^= 1;
    assert_eq!(sink.on_frame(&bad, 2), Seen::Skipped);
    let arp = frames::arp_request(
        MacAddr::new(2, 0, 0, 0, 0, 9),
        Ipv4Addr::new(198, 18, 40, 9),
        SINK,
    );
    assert_eq!(sink.on_frame(&arp, 2), Seen::Arp);
    let other = frames::udp_datagram(
        Link {
            src: MacAddr::new(2, 0, 0, 0, 0, 9),
            dst: MacAddr::new(2, 0, 0, 0, 0x40, 2),
        },
        Ipv4Params {
            src: Ipv4Addr::new(198, 18, 40, 9),
            dst: SINK,
            ident: 0,
            dont_fragment: true,
        },
        5353,
        9,
        b"hello",
    )
    .unwrap();
    assert_eq!(sink.on_frame(&other, 2), Seen::Skipped);
    let summary = sink.summary(Duration::from_secs(1));
    assert_eq!(
        (summary.received, summary.corrupted, summary.ignored),
        (0, 1, 1)
    );
}

#[test]
fn flows_beyond_the_limit_count_in_the_totals_only() {
    let mut sink = Sink::new(SINK);
    let template = template(49152);
    for session in 0..(MAX_FLOWS as u32 + 10) {
        let mut out = Vec::new();
        template.stamp_into(
            Stamp {
                session,
                seq: 0,
                sent_ns: 1,
            },
            &mut out,
        );
        sink.on_frame(&out, 2);
    }
    let summary = sink.summary(Duration::from_secs(1));
    assert_eq!(summary.flows.len(), MAX_FLOWS);
    assert_eq!(summary.untracked, 10);
    assert_eq!(summary.received, MAX_FLOWS as u64 + 10);
}

proptest! {
    #[test]
    fn any_frame_at_all_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), now in any::<u64>()) {
        let mut sink = Sink::new(SINK);
        sink.on_frame(&bytes, now);
        let summary = sink.summary(Duration::ZERO);
        prop_assert!(summary.received <= 1);
    }

    #[test]
    fn a_real_frame_with_any_bytes_changed_never_panics(
        seq in any::<u32>(),
        sent in any::<u64>(),
        edits in prop::collection::vec((0usize..64, any::<u8>()), 0..8),
        cut in 0usize..=64,
        now in any::<u64>(),
    ) {
        let mut bytes = frame(&template(49152), seq, sent);
        for (at, value) in edits {
            bytes[at] = value;
        }
        bytes.truncate(cut);
        let mut sink = Sink::new(SINK);
        sink.on_frame(&bytes, now);
        let _ = SinkEvent::Summary(&sink.summary(Duration::from_millis(1))).to_string();
    }
}
