//! What lab-sink's accounting costs a frame, for `ci/bench sink` to count
//! in instructions under callgrind (repeatable on a busy machine, where
//! seconds are not): `Sink::on_frame` over frames as lab-gen sends them.
//!
//!     sink_cost [FRAMES] [FLOWS] [BATCH]
//!
//! Frame i is flow i % FLOWS, number i / FLOWS (lab-gen's order); each
//! BATCH frames share one send time and one receive time, as a batch of
//! lab-gen's does and a sync of the sink's. Intervals are on (`--json`).
//! Prints what the sink counted, so the work cannot be optimised away and
//! a wrong count shows.

use std::net::Ipv4Addr;
use std::time::Duration;

use labctl::tools::frames::Link;
use labctl::tools::sink::Sink;
use labctl::tools::traffic::{FlowEnds, Stamp, Template};
use pnet::util::MacAddr;

const SINK: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 2);

fn main() {
    let arg = |at: usize, default: u64| {
        std::env::args()
            .nth(at)
            .map(|text| text.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (frames, flows, batch) = (arg(1, 100_000), arg(2, 3).max(1), arg(3, 256).max(1));
    let templates: Vec<Template> = (0..flows)
        .map(|flow| {
            Template::new(
                FlowEnds {
                    link: Link {
                        src: MacAddr::new(2, 0, 0, 0, 0x40, 1),
                        dst: MacAddr::new(2, 0, 0, 0, 0x40, 2),
                    },
                    src: Ipv4Addr::new(198, 18, 40, 1),
                    dst: SINK,
                    src_port: 49152 + flow as u16,
                    dst_port: 9,
                },
                64,
            )
            .expect("a 64-byte template")
        })
        .collect();
    // Built before counting starts, so the probe counts the sink only.
    let mut built = Vec::with_capacity(frames as usize);
    for index in 0..frames {
        let sent_ns = 1_000_000_000 + (index / batch) * 200_000;
        let mut frame = Vec::new();
        templates[(index % flows) as usize].stamp_into(
            Stamp {
                session: 7,
                seq: (index / flows) as u32,
                sent_ns,
            },
            &mut frame,
        );
        built.push((frame, sent_ns + 20_000 + (index / batch) % 7 * 1_000));
    }
    let mut sink = Sink::new(SINK).with_intervals(Duration::from_millis(100), 1_000_000_000);
    let started = std::time::Instant::now();
    for (frame, now_ns) in &built {
        while sink.sample_due(*now_ns).is_some() {}
        count(&mut sink, frame, *now_ns);
    }
    let took = started.elapsed();
    let summary = sink.summary(Duration::from_secs(1));
    println!(
        "received {} lost {} duplicates {} reordered {} flows {} p50 {:?} ms",
        summary.received,
        summary.lost,
        summary.duplicates,
        summary.reordered,
        summary.flows.len(),
        summary.latency_p50_ms
    );
    // Seconds are for a look under an emulator (qemu-x86_64, as TCG runs
    // the netmap guest); callgrind's instructions are the figure.
    eprintln!("{:.1} ns a frame", took.as_nanos() as f64 / frames as f64);
}

/// The one function callgrind counts (`--toggle-collect=*sink_cost::count*`).
#[inline(never)]
fn count(sink: &mut Sink, frame: &[u8], now_ns: u64) {
    sink.on_frame(frame, now_ns);
}
