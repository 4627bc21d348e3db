//! lab-sink: what it counts of each received frame (`Sink::on_frame`,
//! the function its receive loop calls), its ARP answerer, and its
//! events. The counts are exact: every frame is counted once as
//! received, ARP, corrupted or ignored; the flows add up to the totals;
//! with intervals, the intervals add up to the summary.
#![no_main]

use std::net::Ipv4Addr;
use std::time::Duration;

use labctl::tools::frames;
use labctl::tools::frames::Arp;
use labctl::tools::gen::ArpAnswerer;
use labctl::tools::output::{Format, Output};
use labctl::tools::sink::{Seen, Sink, SinkEvent, MAX_FLOWS};
use labctl_fuzz::{json_events, records};
use libfuzzer_sys::fuzz_target;
use pnet::util::MacAddr;

const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let (options, records) = records(data);
    // The clock starts where lab-gen's stamps in the seeds are.
    let mut now_ns: u64 = 1_000_000_000;
    let mut sink = Sink::new(IP);
    if options & 1 != 0 {
        // 1 to 128 ms (a frame comes at most 65 ms after the one before,
        // so a frame closes at most 65 intervals: a microsecond's would
        // close tens of thousands, each clearing a histogram).
        let every = Duration::from_millis(u64::from(options >> 1) + 1);
        sink = sink.with_intervals(every, now_ns);
    }
    let answerer = ArpAnswerer::new(MAC, IP);
    let mut out = Output::new(Format::Json, Vec::new());
    let (mut counted, mut arp, mut skipped) = (0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    for record in &records {
        now_ns += u64::from(record.after_us) * 1000;
        while let Some(sample) = sink.sample_due(now_ns) {
            samples.push(sample);
        }
        match sink.on_frame(&record.frame, now_ns) {
            Seen::Counted => counted += 1,
            Seen::Arp => {
                arp += 1;
                if let Some(reply) = answerer.answer(&record.frame) {
                    let reply = frames::decode(&reply).expect("an ARP reply decodes");
                    assert_eq!(reply.arp().map(|a| a.operation), Some(Arp::REPLY));
                }
            }
            Seen::Skipped => skipped += 1,
        }
        let _ = sink.take_new_port();
    }
    samples.extend(sink.last_sample(now_ns));
    let summary = sink.summary(Duration::from_secs(1));

    assert_eq!(summary.received, counted);
    assert_eq!(summary.corrupted + summary.ignored, skipped);
    assert_eq!(counted + arp + skipped, records.len() as u64);
    assert!(summary.flows.len() <= MAX_FLOWS);
    let flows_received: u64 = summary.flows.iter().map(|f| f.received).sum();
    assert_eq!(flows_received + summary.untracked, summary.received);
    assert_eq!(
        summary.lost,
        summary.flows.iter().map(|f| f.lost).sum::<u64>()
    );
    assert!((0.0..=100.0).contains(&summary.loss_percent), "{summary:?}");
    if options & 1 != 0 {
        let sum = |f: fn(&labctl::tools::sink::IntervalSample) -> u64| -> u64 {
            samples.iter().map(f).sum()
        };
        assert_eq!(sum(|s| s.received), summary.received);
        assert_eq!(sum(|s| s.duplicates), summary.duplicates);
        assert_eq!(sum(|s| s.reordered), summary.reordered);
        let lost: i64 = samples.iter().map(|s| s.lost).sum();
        assert_eq!(lost, summary.lost as i64);
        if let Some(last) = samples.last() {
            assert_eq!(last.lost_total, summary.lost);
        }
    }
    for sample in &samples {
        out.emit(&SinkEvent::Interval(sample)).unwrap();
    }
    for flow in &summary.flows {
        out.emit(&SinkEvent::Flow(flow)).unwrap();
    }
    out.emit(&SinkEvent::Summary(&summary)).unwrap();
    let events = json_events(&out.into_inner());
    assert_eq!(events.len(), samples.len() + summary.flows.len() + 1);
    // The human lines of the same events.
    let mut human = Output::new(Format::Human, Vec::new());
    human.emit(&SinkEvent::Summary(&summary)).unwrap();
});
