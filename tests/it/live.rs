//! lab-gen's XDP live-frames path through the real binaries and the real
//! verifier: the program stamps frames the sink reads back exactly (a
//! plain test run), lab-gen on live frames into lab-sink counts every
//! frame, a stop midway leaves the two counts equal, and where the peer
//! takes no XDP frames or the interface has a qdisc, lab-gen falls back
//! with one line (or, with `--path live`, exits 3 saying why). Nothing
//! stays attached after any run.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use labctl::bpf::{Program, SingleValue, XdpTestRun, BPF_PROG_TYPE_XDP, BPF_XDP, XDP_DROP, XDP_TX};
use labctl::tools::frames::Link;
use labctl::tools::gen::live::{program, state, Schedule, StampPlan};
use labctl::tools::traffic::{self, FlowEnds, Parsed, Stamp, Template};
use pnet::util::MacAddr;

use crate::support::bin;
use crate::support::netns::{in_netns, VethPair};
use crate::support::process::{Finished, Running};
use crate::support::skip::{live_frames_refused, skip_without_live_frames, skip_without_root};
use crate::support::tools::{pair, start};

const SINK_READY: &str = "receiving on eth1 (198.18.0.2, 02:00:00:00:00:02, ";

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn gen(pair: &VethPair, args: &[&str]) -> Finished {
    Running::spawn(&pair.a.netns, &bin("lab-gen"), args, &[]).finish(Duration::from_secs(60))
}

/// No XDP program left on either end's eth1 (lab-gen attaches none; the
/// sink's goes with it).
fn assert_nothing_attached(pair: &VethPair) {
    for side in [&pair.a, &pair.b] {
        let out = Command::new("ip")
            .args(["-n", &side.netns, "-d", "link", "show", "eth1"])
            .output()
            .expect("run ip");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("prog/xdp"), "{}: {text}", side.netns);
    }
}

#[test]
fn the_live_program_stamps_frames_the_sink_reads_back() {
    if skip_without_root("loading an XDP program") {
        return;
    }
    let ends = FlowEnds {
        link: Link {
            src: MacAddr::new(2, 0, 0, 0, 0, 1),
            dst: MacAddr::new(2, 0, 0, 0, 0, 2),
        },
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        src_port: 49152,
        dst_port: 9,
    };
    for (size, flows) in [(64usize, 3u16), (62, 1), (1514, 2)] {
        let template = Template::new(ends, size).unwrap();
        let session = 0xabcd_0123;
        let counter = SingleValue::create(b"test_gen", state::SIZE).expect("an array map");
        let plan = StampPlan {
            flows,
            base_port: 49152,
            base_sum: template.sum_without_port_seq_time(session),
        };
        let insns = program(counter.fd(), plan);
        let loaded = Program {
            prog_type: BPF_PROG_TYPE_XDP,
            expected_attach_type: BPF_XDP,
            name: b"test_gen",
            insns: &insns,
        }
        .load()
        .unwrap_or_else(|e| panic!("the verifier: {:?} {:?}", e.error, e.verifier));
        let mut input = Vec::new();
        template.stamp_into(
            Stamp {
                session,
                seq: 0,
                sent_ns: 0,
            },
            &mut input,
        );
        // Frames 0..7 of the run, from index 4_294_967_290 * flows on too
        // (the 32-bit sequence number wraps).
        for first in [0u64, (u64::from(u32::MAX) - 3) * u64::from(flows)] {
            counter.write(&Schedule::unpaced(first).to_bytes()).unwrap();
            for index in first..first + 7 {
                let before = traffic::monotonic_ns();
                let mut output = vec![0u8; input.len()];
                let action = XdpTestRun {
                    program: std::os::fd::AsFd::as_fd(&loaded),
                    data: &input,
                    data_out: Some(&mut output),
                    ingress_ifindex: 0,
                    repeat: 1,
                    flags: 0,
                    batch_size: 0,
                }
                .run()
                .expect("a test run");
                assert_eq!(action, XDP_TX as u32);
                let flow = (index % u64::from(flows)) as u16;
                match traffic::parse(&output) {
                    Parsed::Traffic {
                        src_port, stamp, ..
                    } => {
                        assert_eq!(src_port, 49152 + flow, "frame {index}");
                        assert_eq!(stamp.session, session);
                        assert_eq!(stamp.seq, (index / u64::from(flows)) as u32);
                        let after = traffic::monotonic_ns();
                        assert!((before..=after).contains(&stamp.sent_ns), "{stamp:?}");
                    }
                    other => panic!("size {size}, frame {index}: {other:?}"),
                }
                let after = Schedule::from_bytes(&counter.read().unwrap());
                assert_eq!(after.next, index + 1);
                assert!(after.last_ns >= before, "{after:?}");
            }
        }
    }
}

/// The program keeps its schedule: past the limit, after the end, and
/// before a frame is due it drops the copy without numbering it; a due
/// frame moves the schedule on by the interval (its fraction carried).
#[test]
fn the_live_program_keeps_its_schedule() {
    if skip_without_root("loading an XDP program") {
        return;
    }
    let ends = FlowEnds {
        link: Link {
            src: MacAddr::new(2, 0, 0, 0, 0, 1),
            dst: MacAddr::new(2, 0, 0, 0, 0, 2),
        },
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        src_port: 49152,
        dst_port: 9,
    };
    let template = Template::new(ends, 64).unwrap();
    let state_map = SingleValue::create(b"test_sched", state::SIZE).unwrap();
    let plan = StampPlan {
        flows: 1,
        base_port: 49152,
        base_sum: template.sum_without_port_seq_time(1),
    };
    let insns = program(state_map.fd(), plan);
    let loaded = Program {
        prog_type: BPF_PROG_TYPE_XDP,
        expected_attach_type: BPF_XDP,
        name: b"test_sched",
        insns: &insns,
    }
    .load()
    .unwrap_or_else(|e| panic!("the verifier: {:?} {:?}", e.error, e.verifier));
    let mut input = Vec::new();
    template.stamp_into(
        Stamp {
            session: 1,
            seq: 0,
            sent_ns: 0,
        },
        &mut input,
    );
    let run_once = |schedule: Schedule| -> (u32, Schedule) {
        state_map.write(&schedule.to_bytes()).unwrap();
        let mut output = vec![0u8; input.len()];
        let action = XdpTestRun {
            program: std::os::fd::AsFd::as_fd(&loaded),
            data: &input,
            data_out: Some(&mut output),
            ingress_ifindex: 0,
            repeat: 1,
            flags: 0,
            batch_size: 0,
        }
        .run()
        .unwrap();
        (action, Schedule::from_bytes(&state_map.read().unwrap()))
    };
    let now = traffic::monotonic_ns();
    // At the limit: dropped, not numbered.
    let (action, after) = run_once(Schedule {
        limit: 5,
        ..Schedule::unpaced(5)
    });
    assert_eq!((action, after.next), (XDP_DROP as u32, 5));
    // After the end: the same.
    let (action, after) = run_once(Schedule {
        end_ns: now,
        ..Schedule::unpaced(5)
    });
    assert_eq!((action, after.next), (XDP_DROP as u32, 5));
    // 2.5 frames a microsecond (400 ns apart), 0.75 ns more each: not
    // due for a minute.
    let paced = Schedule::paced(7, 2_500_000.0, now + 60_000_000_000, 20_000_000);
    assert_eq!((paced.interval_ns, paced.interval_frac), (400, 0));
    let paced = Schedule {
        interval_frac: 3 << 30,
        ..paced
    };
    let (action, after) = run_once(paced);
    assert_eq!((action, after.next), (XDP_DROP as u32, 7));
    // Due: sent, and the next one 400.75 ns later.
    let due = Schedule {
        next_due_ns: now,
        ..paced
    };
    let (action, after) = run_once(due);
    assert_eq!((action, after.next), (XDP_TX as u32, 8));
    assert_eq!(after.next_due_ns, now + 400);
    assert_eq!(after.frac_acc, 3 << 30);
    let (_, after) = run_once(Schedule {
        frac_acc: 3 << 30,
        ..due
    });
    // 0.75 + 0.75: one whole nanosecond carried.
    assert_eq!((after.next_due_ns, after.frac_acc), (now + 401, 1 << 31));
    // Far behind (a minute): the debt beyond 20 ms is forgiven.
    let (action, after) = run_once(Schedule {
        next_due_ns: now - 60_000_000_000,
        ..paced
    });
    assert_eq!(action, XDP_TX as u32);
    assert!(after.next_due_ns >= now - 20_000_000 + 400, "{after:?}");
}

/// lab-gen on live frames into lab-sink on af_xdp (whose XDP program
/// takes the frames): every frame counted, per flow, both tools saying
/// which path ran.
#[test]
fn gen_on_live_frames_into_an_af_xdp_sink_counts_every_frame() {
    if skip_without_live_frames() {
        return;
    }
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "30000", "--datalink", "af_xdp", "--json"],
        "\"event\":\"ready\"",
    );
    let sent = gen(
        &pair,
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "30000",
            "--rate",
            "30000",
            "--flows",
            "3",
            "--path",
            "live",
            "--json",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    // Nothing on stderr but, on a loaded machine, the notice that the
    // rate was not reached (the count still is).
    assert!(
        sent.stderr.is_empty() || sent.stderr.contains("cannot reach that rate here"),
        "{sent:?}"
    );
    let events = json_lines(&sent.stdout);
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["path"], "live_frames");
    assert!(
        events[0]["datalink"]
            .as_str()
            .unwrap()
            .starts_with("XDP live frames; ARP on af_packet"),
        "{}",
        events[0]
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["path"], "live_frames");
    assert_eq!(summary["sent"], 30000, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    let counted = json_lines(&received.stdout);
    let counted = counted.last().unwrap();
    assert_eq!(counted["received"], 30000, "{counted}");
    assert_eq!(counted["lost"], 0, "{counted}");
    assert_eq!(counted["duplicates"], 0, "{counted}");
    assert_eq!(counted["reordered"], 0, "{counted}");
    let flows = counted["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 3);
    assert!(flows.iter().all(|f| f["received"] == 10000), "{counted}");
    assert_nothing_attached(&pair);
}

/// The human lines on live frames: the start line names the path, the
/// summary is the contract's.
#[test]
fn gen_on_live_frames_prints_the_contract_lines() {
    if skip_without_live_frames() {
        return;
    }
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "2000", "--datalink", "af_xdp"],
        SINK_READY,
    );
    let sent = gen(
        &pair,
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "2000",
            "--rate",
            "5000",
            "--datalink",
            "af_xdp",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(
        sent.stdout[0],
        "generating to 198.18.0.2 (02:00:00:00:00:02) from 198.18.0.1 eth1 (XDP live frames; ARP on af_xdp, native XDP, copy mode): 64-byte frames at 5000/s"
    );
    assert!(
        sent.stdout[1].starts_with("sent 2000 frames in "),
        "{sent:?}"
    );
    assert_eq!(sent.stdout.len(), 2, "{sent:?}");
    let received = sink.finish(Duration::from_secs(30));
    let summary = &received.stdout[received.stdout.len() - 2];
    assert!(
        summary.starts_with("received 2000 frames, lost 0 (0.00%), duplicates 0, reordered 0, "),
        "{received:?}"
    );
}

/// SIGINT in the middle of a live run: lab-gen's summary counts what the
/// kernel ran, to the frame, and the sink got exactly that.
#[test]
fn a_stopped_live_run_counts_what_went_to_the_frame() {
    if skip_without_live_frames() {
        return;
    }
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--datalink", "af_xdp", "--json"],
        "\"event\":\"ready\"",
    );
    let mut sending = Running::spawn(
        &pair.a.netns,
        &bin("lab-gen"),
        &[
            "eth1",
            "198.18.0.2",
            "--rate",
            "50000",
            "--duration",
            "20",
            "--path",
            "live",
            "--json",
        ],
        &[],
    );
    sending.wait_for("\"event\":\"start\"", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(700));
    let sent = sending.stop(libc::SIGINT);
    assert!(sent.status.success(), "{sent:?}");
    let summary = json_lines(&sent.stdout).pop().unwrap();
    let count = summary["sent"].as_u64().unwrap();
    assert!(count > 1000, "{summary}");
    std::thread::sleep(Duration::from_millis(300));
    let received = sink.stop(libc::SIGINT);
    let counted = json_lines(&received.stdout).pop().unwrap();
    // Every frame lab-gen counts as sent reached the sink's XDP program:
    // it is received, or dropped by the sink's full RX ring (a sink off
    // the CPU on a loaded machine), which its `dropped` says.
    let got = counted["received"].as_u64().unwrap();
    let dropped = counted["dropped"].as_u64().unwrap();
    assert_eq!(got + dropped, count, "{counted}; lab-gen: {summary}");
    // Gaps are what the ring dropped (none but a tail it cannot see).
    assert!(counted["lost"].as_u64().unwrap() <= dropped, "{counted}");
    assert_nothing_attached(&pair);
}

/// A peer that takes no XDP frames (lab-sink on af_packet: no XDP program
/// on its end): `auto` falls back to the datalink with one line and every
/// frame still arrives; `live` exits 3 with the reason. On a kernel that
/// refuses live-frames runs altogether, that refusal is the reason.
#[test]
fn without_a_peer_that_takes_xdp_frames_lab_gen_falls_back_or_says_why() {
    let pair = pair(true);
    let why = match live_frames_refused() {
        Some(_) => "this kernel refuses live-frames runs",
        None => "eth1's veth peer takes no XDP frames",
    };
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "3000", "--json"],
        "\"event\":\"ready\"",
    );
    let sent = gen(
        &pair,
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "3000",
            "--rate",
            "10000",
            "--json",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    // One line for the fallback; on a loaded machine the datalink may
    // also fall behind 10,000/s, which its own line says.
    let mut lines = sent.stderr.lines();
    let fallback = lines.next().unwrap_or_default();
    assert!(
        fallback.starts_with(&format!("lab-gen: not using XDP live frames: {why}")),
        "{}",
        sent.stderr
    );
    assert!(
        fallback.ends_with("; sending on af_packet"),
        "{}",
        sent.stderr
    );
    assert!(
        lines.all(|line| line.starts_with("lab-gen: asked for 10000/s, sent ")),
        "{sent:?}"
    );
    let events = json_lines(&sent.stdout);
    assert_eq!(events[0]["path"], "datalink");
    assert!(events[0]["fallback"].as_str().unwrap().starts_with(why));
    assert_eq!(events.last().unwrap()["sent"], 3000);
    let received = sink.finish(Duration::from_secs(30));
    let counted = json_lines(&received.stdout).pop().unwrap();
    assert_eq!(counted["received"], 3000, "{counted}");
    assert_eq!(counted["lost"], 0, "{counted}");

    let out = crate::support::netns::run_in(
        &pair.a.netns,
        &bin("lab-gen"),
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "10",
            "--path",
            "live",
            "-W",
            "300ms",
        ],
    );
    // Nobody answers ARP now (the sink is gone): exit 1. Answer for it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let pong = start(&pair.b.netns, "lab-pong", &["eth1"], "listening on");
    let out = crate::support::netns::run_in(
        &pair.a.netns,
        &bin("lab-gen"),
        &["eth1", "198.18.0.2", "--count", "10", "--path", "live"],
    );
    drop(pong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("lab-gen: XDP live frames: {why}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A qdisc of the interface's own (a lab's rate limit) would be skipped by
/// XDP frames: lab-gen does not use them there.
#[test]
fn an_interface_with_a_qdisc_is_not_sent_live() {
    let pair = pair(true);
    let tc = in_netns(
        &pair.a.netns,
        Command::new("tc").args([
            "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", "10mbit", "burst", "32kb",
            "latency", "50ms",
        ]),
    )
    .output()
    .expect("run tc");
    assert!(tc.status.success(), "tc: {tc:?}");
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--datalink", "af_xdp", "--count", "100"],
        SINK_READY,
    );
    let out = crate::support::netns::run_in(
        &pair.a.netns,
        &bin("lab-gen"),
        &["eth1", "198.18.0.2", "--count", "100", "--path", "live"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("has a qdisc of its own"), "{stderr}");
    let sent = gen(&pair, &["eth1", "198.18.0.2", "--count", "100"]);
    assert!(sent.status.success(), "{sent:?}");
    assert!(sent.stderr.contains("has a qdisc of its own"), "{sent:?}");
    assert!(sent.stdout[0].contains("(af_packet)"), "{sent:?}");
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
}

#[test]
fn an_unreachable_rate_is_said_so() {
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--datalink", "af_xdp", "--duration", "3"],
        SINK_READY,
    );
    let sent = gen(
        &pair,
        &["eth1", "198.18.0.2", "--rate", "1e12", "--duration", "0.3"],
    );
    assert!(sent.status.success(), "{sent:?}");
    assert!(
        sent.stderr
            .contains("this path cannot reach that rate here"),
        "{sent:?}"
    );
    drop(sink);
}
