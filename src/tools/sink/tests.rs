use proptest::prelude::*;

use super::*;
use crate::tools::frames::{self, Ipv4Params, Link};
use crate::tools::output::Format;
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
    // The histogram's buckets double from 1 µs and hold every frame, each
    // those below its bound (a latency on a bound counts in the next).
    let bounds: Vec<f64> = summary.latency_histogram.iter().map(|b| b.0).collect();
    assert_eq!(
        bounds,
        [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128]
    );
    let counts: Vec<u64> = summary.latency_histogram.iter().map(|b| b.1).collect();
    assert_eq!(counts, [0, 1, 2, 4, 8, 16, 32, 37]);
}

#[test]
fn nothing_received_prints_dashes_not_zeros() {
    let summary = Sink::new(SINK).summary(Duration::from_secs(1));
    assert!(summary.latency_histogram.is_empty());
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

const MS: u64 = 1_000_000;

/// A sink ready at `READY`, in intervals of 100 ms.
const READY: u64 = 7_000 * MS;

fn sampling_sink() -> Sink {
    Sink::new(SINK).with_intervals(Duration::from_millis(100), READY)
}

/// Counts `frame` at `now`, after the intervals that ended by then.
fn feed(sink: &mut Sink, frame: &[u8], now: u64, samples: &mut Vec<IntervalSample>) {
    while let Some(sample) = sink.sample_due(now) {
        samples.push(sample);
    }
    sink.on_frame(frame, now);
}

#[test]
fn intervals_count_their_own_frames_and_the_loss_seen_in_them() {
    let flow = template(49152);
    let mut sink = sampling_sink();
    let mut samples = Vec::new();
    // 0 to 100 ms: 0, 1, then 4 (2 and 3 missing); 100 to 200 ms: nothing;
    // from 200 ms: 2 late (fills a gap), 2 again, 5; the run ends at 250.
    for (seq, at_ms) in [(0, 10), (1, 20), (4, 30), (2, 210), (2, 220), (5, 230)] {
        let now = READY + at_ms * MS;
        feed(
            &mut sink,
            &frame(&flow, seq, now - 20_000),
            now,
            &mut samples,
        );
    }
    samples.extend(sink.last_sample(READY + 250 * MS));
    let brief: Vec<_> = samples
        .iter()
        .map(|s| {
            (
                s.start_ms,
                s.duration_ms,
                s.received,
                s.rate,
                s.lost,
                s.lost_total,
                s.duplicates,
                s.reordered,
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (0.0, 100.0, 3, 30.0, 2, 2, 0, 0),
            (100.0, 100.0, 0, 0.0, 0, 2, 0, 0),
            (200.0, 50.0, 3, 60.0, -1, 1, 1, 1),
        ]
    );
    assert_eq!(samples[0].latency_p99_ms, Some(0.02));
    assert_eq!(samples[1].latency_max_ms, None);
    let summary = sink.summary(Duration::from_millis(250));
    assert_eq!(
        (
            summary.received,
            summary.lost,
            summary.duplicates,
            summary.reordered
        ),
        (6, 1, 1, 1)
    );
    assert_eq!(
        SinkEvent::Interval(&samples[2]).to_string(),
        "interval at 0.200 s (50.000 ms): received 3 (60 frames/s), lost -1 (1 so far), \
         duplicates 1, reordered 1, latency p50/p99/max = 0.020/0.020/0.020 ms"
    );
    let json = serde_json::to_value(SinkEvent::Interval(&samples[1])).unwrap();
    assert_eq!(json["event"], "interval");
    assert_eq!(json["latency_p50_ms"], serde_json::Value::Null);
}

#[test]
fn a_latency_is_only_in_the_interval_of_its_frame() {
    let flow = template(49152);
    let mut sink = sampling_sink();
    let mut samples = Vec::new();
    let slow = READY + 50 * MS;
    feed(
        &mut sink,
        &frame(&flow, 0, slow - 5 * MS),
        slow,
        &mut samples,
    );
    let fast = READY + 150 * MS;
    feed(
        &mut sink,
        &frame(&flow, 1, fast - 10_000),
        fast,
        &mut samples,
    );
    samples.extend(sink.last_sample(READY + 200 * MS));
    assert_eq!(samples.len(), 2);
    // 3 significant digits: 5 ms is 5.000 to 5.005.
    let slow_max = samples[0].latency_max_ms.unwrap();
    assert!((5.0..5.005).contains(&slow_max), "{slow_max}");
    assert_eq!(samples[1].latency_max_ms, Some(0.01));
}

#[test]
fn no_last_sample_for_an_interval_not_begun() {
    let mut sink = sampling_sink();
    assert!(sink.sample_due(READY + 100 * MS).is_some());
    assert_eq!(sink.last_sample(READY + 100 * MS), None);
    assert_eq!(Sink::new(SINK).last_sample(READY), None);
}

/// Frames of two flows, each lost, duplicated or delayed at random, with
/// random gaps between arrivals (some crossing several intervals).
fn faulty_arrivals() -> impl Strategy<Value = Vec<(u16, u32, u64)>> {
    prop::collection::vec((0u16..2, 0u8..100, 0u32..40, 0u64..150 * MS), 1..600).prop_map(
        |faults| {
            let mut next = [0u32; 2];
            let mut out = Vec::new();
            for (flow, roll, back, gap) in faults {
                let at = &mut next[usize::from(flow)];
                let seq = match roll {
                    0..=9 => {
                        *at += 2; // one lost
                        *at - 1
                    }
                    10..=19 => at.saturating_sub(back), // a duplicate or late one
                    _ => {
                        *at += 1;
                        *at - 1
                    }
                };
                out.push((flow, seq, gap));
            }
            out
        },
    )
}

proptest! {
    #[test]
    fn the_intervals_add_up_to_the_summary(arrivals in faulty_arrivals(), tail in 0u64..300 * MS) {
        let flows = [template(49152), template(49153)];
        let mut sink = sampling_sink();
        let mut samples = Vec::new();
        let mut now = READY;
        for (flow, seq, gap) in arrivals {
            now += gap;
            feed(&mut sink, &frame(&flows[usize::from(flow)], seq, now - 1000), now, &mut samples);
        }
        now += tail;
        while let Some(sample) = sink.sample_due(now) {
            samples.push(sample);
        }
        samples.extend(sink.last_sample(now));
        let summary = sink.summary(Duration::from_nanos(now - READY));
        prop_assert_eq!(samples.iter().map(|s| s.received).sum::<u64>(), summary.received);
        prop_assert_eq!(samples.iter().map(|s| s.duplicates).sum::<u64>(), summary.duplicates);
        prop_assert_eq!(samples.iter().map(|s| s.reordered).sum::<u64>(), summary.reordered);
        prop_assert_eq!(samples.iter().map(|s| s.lost).sum::<i64>(), summary.lost as i64);
        prop_assert_eq!(samples.last().map(|s| s.lost_total), Some(summary.lost));
        // Back to back from the ready line, each 100 ms but the last.
        let mut start = 0.0;
        for sample in &samples {
            prop_assert!((sample.start_ms - start).abs() < 1e-6);
            prop_assert!(sample.duration_ms <= 100.0);
            start += sample.duration_ms;
        }
        // The last is to the microsecond.
        prop_assert!((start - (now - READY) as f64 / 1e6).abs() <= 0.0005 + 1e-9);
    }
}

fn run_on_fake(format: Format, interval: Option<Duration>) -> Vec<String> {
    use crate::tools::datalink::fake::FakeLink;
    let flow = template(49152);
    let mut link = FakeLink::silent();
    for seq in [0u32, 1, 3, 2, 2] {
        link.queue(frame(&flow, seq, traffic::monotonic_ns()), Direction::In);
    }
    let options = SinkOptions {
        iface: "eth1".into(),
        ip: SINK,
        mac: MacAddr::new(2, 0, 0, 0, 0x40, 2),
        count: None,
        duration: Some(Duration::from_millis(120)),
        per_flow: false,
        interval,
        kernel_sees_frames: false,
        fallback: None,
    };
    let mut out = Output::new(format, Vec::new());
    run(&mut link, &options, &mut out, &AtomicBool::new(false)).unwrap();
    String::from_utf8(out.into_inner())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_json_summary_opens_with_received_lost_and_loss_percent() {
    // Lab files match these in this order (labs/throughput.yaml): fields
    // added later go after them.
    let lines = run_on_fake(Format::Json, None);
    let summary = lines.last().expect("a summary line");
    assert!(
        summary.starts_with(r#"{"event":"summary","received":"#),
        "{summary}"
    );
    assert!(summary.contains(r#","lost":"#) && summary.contains(r#","loss_percent":"#));
    let (lost, percent) = (summary.find(r#""lost""#), summary.find(r#""loss_percent""#));
    assert!(lost < percent, "{summary}");
}

#[test]
fn json_has_the_intervals_before_the_summary_and_the_human_lines_none() {
    let events: Vec<serde_json::Value> = run_on_fake(Format::Json, Some(Duration::from_millis(50)))
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"ready"));
    assert_eq!(kinds.last(), Some(&"summary"));
    let intervals = &events[1..events.len() - 1];
    assert!(intervals.len() >= 3, "{kinds:?}");
    assert!(
        intervals.iter().all(|e| e["event"] == "interval"),
        "{kinds:?}"
    );
    let sum = |field: &str| -> i64 { intervals.iter().map(|e| e[field].as_i64().unwrap()).sum() };
    let summary = events.last().unwrap();
    assert_eq!(
        (sum("received"), summary["received"].as_i64()),
        (5, Some(5))
    );
    assert_eq!(
        (sum("duplicates"), sum("reordered"), sum("lost")),
        (1, 1, 0)
    );

    let lines = run_on_fake(Format::Human, None);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("receiving on eth1 (198.18.40.2, "));
    assert!(lines[1].starts_with("received 5 frames, lost 0 (0.00%), duplicates 1, reordered 1, "));
}

/// Per flow, what an exact sink counts for `arrivals` (numbers below the
/// 4096 window, so that nothing is too old to tell): received, lost,
/// duplicates, reordered.
fn exact_model(arrivals: &[u32]) -> (u64, u64, u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let (mut dups, mut reordered, mut highest) = (0, 0, None::<u32>);
    for &seq in arrivals {
        if !seen.insert(seq) {
            dups += 1;
        } else if highest.is_some_and(|h| seq < h) {
            reordered += 1;
        }
        highest = highest.max(Some(seq));
    }
    let expected = highest.map_or(0, |h| u64::from(h) + 1);
    let lost = expected - seen.len() as u64;
    (arrivals.len() as u64, lost, dups, reordered)
}

proptest! {
    /// lab-sink's whole receive loop (one `recv`, then batches of what is
    /// queued, with `--count`) over frames of four flows with loss,
    /// duplication and reordering counts each flow exactly. Three of the
    /// flows' source ports share a slot of the sink's recent flows.
    #[test]
    fn the_receive_loop_counts_every_flow_exactly_under_loss_duplication_and_reordering(
        faults in prop::collection::vec((0u16..4, 0u8..100, 0u32..40), 1..1500),
    ) {
        use crate::tools::datalink::fake::FakeLink;
        let ports = [49152, 49152 + RECENT as u16, 49152 + 2 * RECENT as u16, 49153];
        let flows = ports.map(template);
        let mut next = [0u32; 4];
        let mut per_flow: [Vec<u32>; 4] = Default::default();
        let mut link = FakeLink::silent();
        let now = traffic::monotonic_ns();
        for (flow, roll, back) in faults {
            let at = &mut next[usize::from(flow)];
            let seq = match roll {
                0..=9 => {
                    *at += 3; // two lost
                    *at - 1
                }
                10..=14 => at.saturating_sub(1), // a duplicate of the last
                15..=24 => at.saturating_sub(back), // late, or a duplicate
                _ => {
                    *at += 1;
                    *at - 1
                }
            };
            per_flow[usize::from(flow)].push(seq);
            link.queue(frame(&flows[usize::from(flow)], seq, now), Direction::In);
        }
        let total: u64 = per_flow.iter().map(|f| f.len() as u64).sum();
        let options = SinkOptions {
            iface: "eth1".into(),
            ip: SINK,
            mac: MacAddr::new(2, 0, 0, 0, 0x40, 2),
            count: Some(total),
            duration: Some(Duration::from_secs(10)),
            per_flow: false,
            interval: None,
            kernel_sees_frames: false,
            fallback: None,
        };
        let mut out = Output::new(Format::Json, Vec::new());
        let summary = run(&mut link, &options, &mut out, &AtomicBool::new(false)).unwrap();
        prop_assert_eq!(summary.received, total);
        let mut lost = 0;
        for (port, arrivals) in ports.into_iter().zip(&per_flow) {
            let counted = summary.flows.iter().find(|f| f.source_port == port);
            if arrivals.is_empty() {
                prop_assert!(counted.is_none());
                continue;
            }
            let counted = counted.unwrap();
            let (received, flow_lost, dups, reordered) = exact_model(arrivals);
            prop_assert_eq!(
                (counted.received, counted.lost, counted.duplicates, counted.reordered),
                (received, flow_lost, dups, reordered),
                "flow {}: {:?}", port, arrivals
            );
            lost += flow_lost;
        }
        prop_assert_eq!(summary.lost, lost);
    }
}

/// lab-sink's receive loop over `link` with a clock that moves 1 ms per
/// reading and 1 ms intervals, until `count` frames: its summary, how
/// many times it read the clock, and the frames of each interval that
/// had any (each clock reading begins an interval of its own).
fn run_on_counted_clock(link: &mut dyn Datalink, count: u64) -> (SinkSummary, u64, Vec<u64>) {
    let readings = std::cell::Cell::new(0u64);
    let clock = || {
        readings.set(readings.get() + 1);
        readings.get() * MS
    };
    let options = SinkOptions {
        iface: "eth1".into(),
        ip: SINK,
        mac: MacAddr::new(2, 0, 0, 0, 0x40, 2),
        count: Some(count),
        duration: Some(Duration::from_secs(5)),
        per_flow: false,
        interval: Some(Duration::from_millis(1)),
        kernel_sees_frames: false,
        fallback: None,
    };
    let mut out = Output::new(Format::Json, Vec::new());
    let summary = run_clocked(link, &options, &mut out, &AtomicBool::new(false), &clock).unwrap();
    let batches = String::from_utf8(out.into_inner())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == "interval")
        .map(|event| event["received"].as_u64().unwrap())
        .filter(|&received| received > 0)
        .collect();
    (summary, readings.get(), batches)
}

#[test]
fn on_netmap_every_frame_is_counted_straight_off_the_ring_at_its_syncs_clock_reading() {
    use crate::tools::datalink::netmap::fake_link::FakeNetmap;
    let mut link = FakeNetmap::new(1, 1, 64, 2048);
    let flows = [template(49152), template(49153)];
    for seq in 0..3000u32 {
        // Sent at 0: a frame's latency is the clock reading it got.
        link.kernel()
            .deliver(0, &frame(&flows[(seq % 2) as usize], seq / 2, 0));
    }
    let (summary, readings, batches) = run_on_counted_clock(&mut link, 3000);
    assert_eq!(
        (summary.received, summary.lost, summary.corrupted),
        (3000, 0, 0)
    );
    assert_eq!(summary.flows.len(), 2);
    // A sync every 16 frames taken (a quarter of the 64-slot ring), which
    // gives their slots back before the ring runs dry and brings 16 more:
    // no sync per frame.
    let syncs = (link.kernel().rxsyncs + link.kernel().polls) as u64;
    assert!(syncs <= 3000 / 16 + 5, "{syncs} syncs");
    // One clock reading per sync that brought frames, not per frame: the
    // frames taken after it share it (the first sync's first frame comes
    // through `recv`, which reads the clock for it; the rest of that sync
    // goes with it). Once nothing more arrives, the ring's last frames
    // keep the reading of the last sync that brought any.
    assert!(readings <= syncs + 3, "{readings} readings, {syncs} syncs");
    assert_eq!(batches.iter().sum::<u64>(), 3000);
    let (last, whole) = batches[1..].split_last().unwrap();
    assert_eq!(batches[0], 17, "{batches:?}");
    assert!(whole.iter().all(|&frames| frames == 16), "{batches:?}");
    assert!(*last <= 63, "{batches:?}");
    let latest = ms(readings * MS);
    assert!(summary.latency_max_ms.unwrap() <= latest);
    assert!(summary.latency_min_ms.unwrap() >= ms(2 * MS), "{summary:?}");
}

#[test]
fn frames_taken_one_at_a_time_each_get_a_clock_reading() {
    use crate::tools::datalink::fake::FakeLink;
    let flow = template(49152);
    let mut link = FakeLink::silent();
    for seq in 0..300u32 {
        link.queue(frame(&flow, seq, 0), Direction::In);
    }
    let (summary, readings, batches) = run_on_counted_clock(&mut link, 300);
    assert_eq!((summary.received, summary.lost), (300, 0));
    assert!(readings >= 300, "{readings} readings");
    assert_eq!(batches, [1; 300]);
}

/// With intervals on, each frame's latency is recorded once, in its
/// interval, and joins the run's as the interval closes: the summary is
/// that of a sink without intervals, the open interval included.
#[test]
fn the_summary_with_intervals_has_every_latency() {
    let template = template(49152);
    let mut plain = Sink::new(SINK);
    let mut sampled = Sink::new(SINK).with_intervals(Duration::from_millis(10), 0);
    for seq in 0..1000u32 {
        // Arrivals over 35 ms, latencies from 1 us to 5 ms.
        let now = 5_000_000 + u64::from(seq) * 35_000;
        let frame = frame(&template, seq, now - 1_000 - u64::from(seq % 50) * 100_000);
        while sampled.sample_due(now).is_some() {}
        plain.on_frame(&frame, now);
        sampled.on_frame(&frame, now);
    }
    let (a, b) = (
        plain.summary(Duration::ZERO),
        sampled.summary(Duration::ZERO),
    );
    assert!(a.latency_max_ms.unwrap() > 4.0, "{a:?}");
    assert_eq!(
        (
            a.latency_min_ms,
            a.latency_p50_ms,
            a.latency_p99_ms,
            a.latency_max_ms
        ),
        (
            b.latency_min_ms,
            b.latency_p50_ms,
            b.latency_p99_ms,
            b.latency_max_ms
        )
    );
    assert_eq!(a.latency_histogram, b.latency_histogram);
}
