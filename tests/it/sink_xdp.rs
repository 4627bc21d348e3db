//! lab-sink counting in XDP (`--path xdp`) through the real binaries and
//! the real verifier: exact counts at a fixed `--count` from lab-gen on
//! live frames and on af_packet, duplicates and late frames told apart
//! per flow (frames built and injected by the test), the intervals adding
//! up to the summary, the fallback line, and nothing left attached after
//! a run, a SIGINT or a SIGKILL.

use std::process::Command;
use std::time::Duration;

use labctl::tools::frames::Link;
use labctl::tools::traffic::{FlowEnds, Stamp, Template};
use pnet::util::MacAddr;
use serde_json::Value;

use crate::support::bin;
use crate::support::netns::{inject, VethPair};
use crate::support::process::{Finished, Running};
use crate::support::skip::{live_frames_refused, skip_lacking};
use crate::support::tools::{pair, start};

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn gen(pair: &VethPair, args: &[&str]) -> Finished {
    Running::spawn(&pair.a.netns, &bin("lab-gen"), args, &[]).finish(Duration::from_secs(60))
}

fn xdp_attached(pair: &VethPair) -> bool {
    let out = Command::new("ip")
        .args(["-n", &pair.b.netns, "-d", "link", "show", "eth1"])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

fn sink_xdp(pair: &VethPair, count: &str) -> Running {
    start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", count, "--path", "xdp", "--json"],
        "\"event\":\"ready\"",
    )
}

fn summary_of(finished: &Finished) -> Value {
    assert!(finished.status.success(), "{finished:?}");
    let events = json_lines(&finished.stdout);
    let summary = events.last().unwrap().clone();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["path"], "xdp", "{summary}");
    summary
}

/// lab-gen on live frames (the program on the sink's veth is what takes
/// them) and on af_packet (frames through the peer's driver, ARP
/// answered beside the program): every frame counted, per flow.
#[test]
fn the_xdp_sink_counts_every_frame_of_lab_gen_exactly() {
    let pair = pair(true);
    for path in ["live", "datalink"] {
        if let Some(why) = live_frames_refused().filter(|_| path == "live") {
            skip_lacking(
                "live_frames",
                format!("part: lab-gen on live frames: {why}"),
            );
            continue;
        }
        let sink = sink_xdp(&pair, "30000");
        assert!(xdp_attached(&pair), "the counting program is attached");
        let sent = gen(
            &pair,
            &[
                "eth1",
                "198.18.0.2",
                "--count",
                "30000",
                "--rate",
                "100000",
                "--flows",
                "3",
                "--path",
                path,
                "--json",
            ],
        );
        assert!(sent.status.success(), "{sent:?}");
        let sent = json_lines(&sent.stdout);
        assert_eq!(sent.last().unwrap()["sent"], 30000);
        let finished = sink.finish(Duration::from_secs(30));
        let events = json_lines(&finished.stdout);
        assert!(
            events[0]["datalink"]
                .as_str()
                .unwrap()
                .starts_with("XDP counting (native); ARP on af_packet"),
            "{}",
            events[0]
        );
        let summary = summary_of(&finished);
        assert_eq!(summary["received"], 30000, "{path}: {summary}");
        assert_eq!(summary["lost"], 0, "{path}: {summary}");
        assert_eq!(summary["duplicates"], 0, "{summary}");
        assert_eq!(summary["reordered"], 0, "{summary}");
        let flows = summary["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 3, "{summary}");
        for flow in flows {
            assert_eq!(flow["received"], 10000, "{summary}");
            assert_eq!(flow["lost"], 0, "{summary}");
            assert_eq!(flow["source"], "198.18.0.1");
            assert_eq!(flow["port"], 9);
        }
        assert!(summary["latency_p50_ms"].as_f64().unwrap() > 0.0);
        assert!(
            summary["latency_min_ms"].as_f64().unwrap()
                <= summary["latency_max_ms"].as_f64().unwrap()
        );
        let histogram: u64 = summary["latency_histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[1].as_u64().unwrap())
            .sum();
        assert_eq!(histogram, 30000, "{summary}");
        // Intervals add up to the summary.
        let intervals: Vec<&Value> = events.iter().filter(|e| e["event"] == "interval").collect();
        assert!(!intervals.is_empty());
        let received: u64 = intervals
            .iter()
            .map(|i| i["received"].as_u64().unwrap())
            .sum();
        assert_eq!(received, 30000);
        assert!(
            !xdp_attached(&pair),
            "{path}: the program went with lab-sink"
        );
    }
}

/// Frames built by the test: gaps, duplicates and late frames, per flow,
/// as the user-space sink counts them (within the program's window).
#[test]
fn the_xdp_sink_tells_loss_duplicates_and_reordering_per_flow() {
    let pair = pair(true);
    let sink = sink_xdp(&pair, "14");
    let session = 0x1234_5678;
    let template = |src_port| {
        Template::new(
            FlowEnds {
                link: Link {
                    src: pair.a.mac.parse::<MacAddr>().unwrap(),
                    dst: pair.b.mac.parse::<MacAddr>().unwrap(),
                },
                src: "198.18.0.1".parse().unwrap(),
                dst: "198.18.0.2".parse().unwrap(),
                src_port,
                dst_port: 9,
            },
            64,
        )
        .unwrap()
    };
    let (one, two) = (template(40000), template(40001));
    let mut frames = Vec::new();
    let now = labctl::tools::traffic::monotonic_ns();
    // Flow one: 0 1 3 3 2 5 -> 6 received, unique 0..=3 and 5: lost 1
    // (4), 1 duplicate (3), 1 reordered (2).
    // Flow two: 0 10 10 5 9 100 2 -> unique 0 2 5 9 10 100: lost 95,
    // 1 duplicate, 3 reordered (5, 9, 2).
    for (t, seq) in [
        (&one, 0),
        (&one, 1),
        (&one, 3),
        (&one, 3),
        (&one, 2),
        (&one, 5),
        (&two, 0),
        (&two, 10),
        (&two, 10),
        (&two, 5),
        (&two, 9),
        (&two, 100),
        (&two, 2),
    ] {
        let mut frame = Vec::new();
        t.stamp_into(
            Stamp {
                session,
                seq,
                sent_ns: now,
            },
            &mut frame,
        );
        frames.push(frame);
    }
    // Not ours: another destination (passed on, not counted).
    let mut other = Vec::new();
    Template::new(
        FlowEnds {
            link: Link {
                src: pair.a.mac.parse::<MacAddr>().unwrap(),
                dst: pair.b.mac.parse::<MacAddr>().unwrap(),
            },
            src: "198.18.0.1".parse().unwrap(),
            dst: "198.18.0.3".parse().unwrap(),
            src_port: 40000,
            dst_port: 9,
        },
        64,
    )
    .unwrap()
    .stamp_into(
        Stamp {
            session,
            seq: 7,
            sent_ns: now,
        },
        &mut other,
    );
    frames.insert(3, other);
    // And the 14th: flow one's 4, late, now no longer lost.
    let mut late = Vec::new();
    one.stamp_into(
        Stamp {
            session,
            seq: 4,
            sent_ns: now,
        },
        &mut late,
    );
    frames.push(late);
    inject(&pair.a.netns, "eth1", frames);
    let finished = sink.finish(Duration::from_secs(30));
    let summary = summary_of(&finished);
    assert_eq!(summary["received"], 14, "{summary}");
    let flows = summary["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2, "{summary}");
    let get = |i: usize, what: &str| flows[i][what].as_u64().unwrap();
    assert_eq!(flows[0]["source_port"], 40000);
    assert_eq!(flows[0]["session"], session);
    assert_eq!(
        (
            get(0, "received"),
            get(0, "lost"),
            get(0, "duplicates"),
            get(0, "reordered")
        ),
        (7, 0, 1, 2),
        "{summary}"
    );
    assert_eq!(
        (
            get(1, "received"),
            get(1, "lost"),
            get(1, "duplicates"),
            get(1, "reordered")
        ),
        (7, 95, 1, 3),
        "{summary}"
    );
    assert_eq!(summary["lost"], 95);
    assert_eq!(summary["duplicates"], 2);
    assert_eq!(summary["reordered"], 5);
    assert!(!xdp_attached(&pair));
}

/// SIGINT ends a run with its summary, SIGKILL with nothing: either way
/// the program is gone (it was held by a link, not pinned).
#[test]
fn nothing_stays_attached_after_sigint_or_sigkill() {
    let pair = pair(true);
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let sink = start(
            &pair.b.netns,
            "lab-sink",
            &["eth1", "--path", "xdp"],
            "receiving on eth1",
        );
        assert!(xdp_attached(&pair));
        let finished = sink.stop(signal);
        if signal == libc::SIGINT {
            assert!(
                finished
                    .stdout
                    .iter()
                    .any(|l| l.starts_with("received 0 frames")),
                "{finished:?}"
            );
        }
        // The kernel releases a killed process's link as its files close.
        let mut attached = true;
        for _ in 0..100 {
            attached = xdp_attached(&pair);
            if !attached {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!attached, "signal {signal}: the program stayed attached");
    }
}

/// Where the program cannot attach (an af_xdp tool holds the interface's
/// XDP), `--path auto` falls back with one line and counts anyway, and
/// `--path xdp` exits 3 saying why.
#[test]
fn an_interface_taken_falls_back_with_one_line_or_says_why() {
    let pair = pair(true);
    let holder = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--datalink", "af_xdp", "--address", "198.18.0.9"],
        "receiving on eth1",
    );
    let refused = Running::spawn(
        &pair.b.netns,
        &bin("lab-sink"),
        &["eth1", "--path", "xdp", "--count", "1"],
        &[],
    )
    .finish(Duration::from_secs(10));
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("lab-sink: counting in XDP: eth1 already has an XDP program"),
        "{refused:?}"
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
    // With auto: one line, then the datalink counts (the holder takes
    // the frames here, so this one sees none: the summary says why).
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--path", "auto", "--json"],
        "\"event\":\"ready\"",
    );
    let finished = sink.stop(libc::SIGINT);
    assert!(
        finished
            .stderr
            .starts_with("lab-sink: not counting in XDP: eth1 already has an XDP program"),
        "{finished:?}"
    );
    assert_eq!(finished.stderr.lines().count(), 1, "{finished:?}");
    let events = json_lines(&finished.stdout);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["path"], "datalink");
    assert!(summary["fallback"]
        .as_str()
        .unwrap()
        .contains("already has an XDP program"));
    drop(holder.stop(libc::SIGINT));
}

/// The program against the user-space tracker (`sink::seq`), through the
/// real verifier and `BPF_PROG_TEST_RUN`: random runs of two flows with
/// gaps, late frames and duplicates (within the program's 64-number
/// window, the only place the two differ), every count per flow equal.
#[test]
fn the_program_counts_as_the_user_space_tracker_does() {
    use labctl::bpf::{XdpTestRun, XDP_DROP, XDP_PASS};
    use labctl::tools::sink::seq::SeqTracker;
    use labctl::tools::sink::xdp::XdpCounter;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    if crate::support::skip::skip_without_root("loading an XDP program") {
        return;
    }
    let template = |src_port| {
        Template::new(
            FlowEnds {
                link: Link {
                    src: MacAddr::new(2, 0, 0, 0, 0, 1),
                    dst: MacAddr::new(2, 0, 0, 0, 0, 2),
                },
                src: "198.18.0.1".parse().unwrap(),
                dst: "198.18.0.2".parse().unwrap(),
                src_port,
                dst_port: 9,
            },
            64,
        )
        .unwrap()
    };
    let flows = [template(40000), template(40001)];
    // Steps: (flow, kind, amount): 0 next, 1 skip ahead, 2 a duplicate
    // of one up to 60 back, 3 a late one of the skipped.
    let steps = proptest::collection::vec((0usize..2, 0u8..4, 1u32..200), 1..300);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&steps, |steps| {
            let counter = XdpCounter::load("198.18.0.2".parse().unwrap(), None)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut trackers = [SeqTracker::default(), SeqTracker::default()];
            let mut next = [0u32; 2];
            let mut sent: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
            let mut skipped: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
            let mut frame = Vec::new();
            for (flow, kind, amount) in steps {
                let seq = match kind {
                    1 => {
                        skipped[flow].extend(next[flow]..next[flow] + amount);
                        next[flow] += amount;
                        let seq = next[flow];
                        next[flow] += 1;
                        seq
                    }
                    2 if !sent[flow].is_empty() => {
                        let back = (amount as usize % 60).min(sent[flow].len() - 1);
                        let seq = sent[flow][sent[flow].len() - 1 - back];
                        if next[flow] - seq > 60 {
                            continue;
                        }
                        seq
                    }
                    3 if !skipped[flow].is_empty() => {
                        let at = amount as usize % skipped[flow].len();
                        skipped[flow].swap_remove(at)
                    }
                    _ => {
                        let seq = next[flow];
                        next[flow] += 1;
                        seq
                    }
                };
                sent[flow].push(seq);
                trackers[flow].record(seq);
                flows[flow].stamp_into(
                    Stamp {
                        session: 7,
                        seq,
                        sent_ns: labctl::tools::traffic::monotonic_ns(),
                    },
                    &mut frame,
                );
                let action = XdpTestRun {
                    program: counter.program(),
                    data: &frame,
                    data_out: None,
                    ingress_ifindex: 0,
                    repeat: 1,
                    flags: 0,
                    batch_size: 0,
                }
                .run()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(action, XDP_DROP as u32);
            }
            let mut counted = counter.flows().unwrap();
            counted.sort_by_key(|f| f.source_port);
            let mut at = 0;
            for (flow, tracker) in trackers.iter().enumerate() {
                if tracker.received == 0 {
                    continue;
                }
                let c = &counted[at];
                at += 1;
                prop_assert_eq!(c.source_port, 40000 + flow as u16);
                prop_assert_eq!(c.received, tracker.received);
                prop_assert_eq!(c.unique, tracker.unique);
                prop_assert_eq!(c.expected - c.unique, tracker.lost());
                prop_assert_eq!(c.duplicates, tracker.duplicates);
                prop_assert_eq!(c.reordered, tracker.reordered);
            }
            prop_assert_eq!(at, counted.len());
            let totals = counter.totals().unwrap();
            prop_assert_eq!(
                totals.lost(),
                trackers.iter().map(SeqTracker::lost).sum::<u64>()
            );
            Ok(())
        })
        .unwrap();
    // A frame to another address is passed on, not counted.
    let counter = XdpCounter::load("198.18.0.3".parse().unwrap(), None).unwrap();
    let mut frame = Vec::new();
    flows[0].stamp_into(
        Stamp {
            session: 7,
            seq: 0,
            sent_ns: 1,
        },
        &mut frame,
    );
    let action = XdpTestRun {
        program: counter.program(),
        data: &frame,
        data_out: None,
        ingress_ifindex: 0,
        repeat: 1,
        flags: 0,
        batch_size: 0,
    }
    .run()
    .unwrap();
    assert_eq!(action, XDP_PASS as u32);
    assert_eq!(counter.totals().unwrap().received, 0);
}
