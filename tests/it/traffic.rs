//! lab-gen and lab-sink through the real binaries, over a veth between two
//! namespaces: counts, the contract's lines, --json, a tc rate limit seen
//! in the sink's rate, a link cut and restored, bad input.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::bin;
use crate::support::netns::{in_netns, ip, run_in, VethPair};
use crate::support::process::{Finished, Running};
use crate::support::skip::{live_frames_refused, skip_lacking};
use crate::support::tools::{burst_while_stopped, cpu_use, pair, start};

const SINK_READY: &str = "receiving on eth1 (198.18.0.2, 02:00:00:00:00:02, ";

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn gen(pair: &VethPair, args: &[&str]) -> Finished {
    Running::spawn(&pair.a.netns, &bin("lab-gen"), args, &[]).finish(Duration::from_secs(60))
}

/// The number before `what` in `line` ("40000 frames" -> 40000).
fn number_before(line: &str, what: &str) -> f64 {
    let before = line
        .split(what)
        .next()
        .unwrap_or_else(|| panic!("{what:?} not in {line:?}"));
    before
        .rsplit([' ', '('])
        .next()
        .and_then(|n| n.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no number before {what:?} in {line:?}"))
}

/// lab-gen --count N into lab-sink --count N: every frame arrives, and
/// both print the contract's lines (lab-gen's datalink described as
/// `gen_described`: on af_xdp, the sink's XDP program takes live frames).
fn assert_count_run(extra: &[&str], gen_only: &[&str], described: &str, gen_described: &str) {
    let pair = pair(true);
    let sink_args = with(&["eth1", "--count", "3000"], extra);
    let sink = start(&pair.b.netns, "lab-sink", &refs(&sink_args), SINK_READY);
    let gen_args = with(
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "3000",
            "--rate",
            "5000",
            "--flows",
            "3",
        ],
        &[extra, gen_only].concat(),
    );
    let sent = gen(&pair, &refs(&gen_args));
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(
        sent.stdout[0],
        format!(
            "generating to 198.18.0.2 (02:00:00:00:00:02) from 198.18.0.1 eth1 ({gen_described}): 64-byte frames at 5000/s"
        )
    );
    let last = sent.stdout.last().unwrap();
    assert!(last.starts_with("sent 3000 frames in "), "{sent:?}");
    assert!(last.ends_with(" frames/s)"), "{last}");
    // The pacer holds the rate from above: 3000 frames at 5000/s take
    // 0.6 s at least. How far below a loaded machine falls (3858 seen) is
    // the scheduler's, not lab-gen's.
    let rate = number_before(last, " frames/s)");
    let seconds = number_before(last, " s (");
    assert!(rate > 0.0 && rate <= 5000.0, "{last}");
    assert!(seconds >= 0.6, "faster than paced: {last}");
    assert_eq!(sent.stdout.len(), 2, "{sent:?}");

    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    let out = &received.stdout;
    assert_eq!(out[0], format!("{SINK_READY}{described})"));
    let summary = &out[out.len() - 2];
    assert!(
        summary.starts_with("received 3000 frames, lost 0 (0.00%), duplicates 0, reordered 0, "),
        "{received:?}"
    );
    // What arrives comes no faster than it was sent (a little jitter in
    // the receive times aside).
    let sink_rate = number_before(summary, " frames/s");
    assert!(sink_rate > 0.0 && sink_rate <= 5500.0, "{summary}");
    let latency = out.last().unwrap();
    let values = latency
        .strip_prefix("latency min/p50/p99/max = ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("not the latency line: {latency}"));
    let values: Vec<f64> = values.split('/').map(|v| v.parse().unwrap()).collect();
    assert_eq!(values.len(), 4, "{latency}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{latency}");
    assert!(values[0] > 0.0 && values[3] < 1000.0, "{latency}");
}

#[test]
fn gen_to_sink_on_af_packet_counts_every_frame() {
    assert_count_run(&[], &[], "af_packet", "af_packet");
}

#[test]
fn gen_to_sink_on_af_xdp_counts_every_frame() {
    let described = "af_xdp, native XDP, copy mode";
    // Where the kernel refuses live frames, lab-gen's own choice falls
    // back to the datalink's send, and that must count alike.
    let gen_described = match live_frames_refused() {
        Some(why) => {
            skip_lacking(
                "live_frames",
                format!("part: lab-gen on live frames: {why}"),
            );
            described.to_owned()
        }
        None => format!("XDP live frames; ARP on {described}"),
    };
    assert_count_run(&["--datalink", "af_xdp"], &[], described, &gen_described);
}

/// The same on the datalink's own send, as before live frames.
#[test]
fn gen_to_sink_on_af_xdp_without_live_frames_counts_every_frame() {
    let described = "af_xdp, native XDP, copy mode";
    assert_count_run(
        &["--datalink", "af_xdp"],
        &["--path", "datalink"],
        described,
        described,
    );
}

/// `--busy-poll` on lab-gen and lab-sink: both say so, every frame
/// arrives, and the idle sink asks for a whole CPU (it never sleeps).
/// (Behaviour, not rates: two spinning tools on a loaded machine get what
/// the scheduler leaves them.)
#[test]
fn busy_polling_gen_and_sink_count_every_frame() {
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "3000", "--busy-poll"],
        SINK_READY,
    );
    let (_, asked) = cpu_use(sink.pid(), Duration::from_millis(500));
    assert!(
        asked > 0.9,
        "an idle busy-polling sink asked for {asked:.3} of a CPU"
    );
    let args = [
        "eth1",
        "198.18.0.2",
        "--count",
        "3000",
        "--rate",
        "5000",
        "--busy-poll",
    ];
    let sent = gen(&pair, &args);
    assert!(sent.status.success(), "{sent:?}");
    assert!(
        sent.stdout[0].ends_with("(af_packet, busy-poll): 64-byte frames at 5000/s"),
        "{sent:?}"
    );
    assert!(
        sent.stdout
            .last()
            .unwrap()
            .starts_with("sent 3000 frames in "),
        "{sent:?}"
    );
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    assert_eq!(
        received.stdout[0],
        format!("{SINK_READY}af_packet, busy-poll)")
    );
    let summary = &received.stdout[received.stdout.len() - 2];
    assert!(
        summary.starts_with("received 3000 frames, lost 0 (0.00%), "),
        "{received:?}"
    );
}

/// lab-sink on af_packet stopped (SIGSTOP) while lab-gen sends 5,000
/// frames at 20,000/s, then let go: its receive ring held them all.
/// The socket queue it read before (`rmem_max`, 212 KiB: a few hundred
/// frames) lost most of such a burst.
#[test]
fn a_sink_off_the_cpu_during_a_burst_loses_nothing_its_ring_holds() {
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "5000", "--json"],
        "\"event\":\"ready\"",
    );
    // lab-sink is away for the whole 250 ms of the burst.
    burst_while_stopped(&pair.a.netns, "198.18.0.2", 5000, &sink);
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    let summary: Value = serde_json::from_str(received.stdout.last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["received"], 5000, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");
}

#[test]
fn json_events_from_gen_and_sink() {
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "100", "--json"],
        "\"event\":\"ready\"",
    );
    let sent = gen(
        &pair,
        &[
            "eth1",
            "198.18.0.2",
            "--count",
            "100",
            "--rate",
            "1000",
            "--json",
            "--flows",
            "2",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    let events: Vec<Value> = sent
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["destination_mac"], "02:00:00:00:00:02");
    assert_eq!(events[0]["size"], 64);
    assert_eq!(events[1]["event"], "summary");
    assert_eq!(events[1]["sent"], 100);
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    let events: Vec<Value> = received
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "ready");
    assert_eq!(events[0]["ip"], "198.18.0.2");
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["received"], 100);
    assert_eq!(summary["lost"], 0);
    let flows = summary["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["source_port"], 49152);
    assert_eq!(flows[0]["received"], 50);
    assert!(summary["latency_p99_ms"].as_f64().unwrap() > 0.0);
}

/// lab-gen at 2,000 frames/s for a second into lab-sink --json: about ten
/// 100 ms `interval` events carry the frames, and they add up to the
/// summary's.
#[test]
fn the_sinks_intervals_add_up_to_its_summary() {
    let pair = pair(true);
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--count", "2000", "--json"],
        "\"event\":\"ready\"",
    );
    let sent = gen(
        &pair,
        &["eth1", "198.18.0.2", "--count", "2000", "--rate", "2000"],
    );
    assert!(sent.status.success(), "{sent:?}");
    let received = sink.finish(Duration::from_secs(30));
    assert!(received.status.success(), "{received:?}");
    let events: Vec<Value> = received
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["received"], 2000, "{summary}");
    let intervals: Vec<&Value> = events.iter().filter(|e| e["event"] == "interval").collect();
    let sum = |field: &str| -> u64 { intervals.iter().map(|e| e[field].as_u64().unwrap()).sum() };
    assert_eq!(sum("received"), 2000, "{intervals:?}");
    assert_eq!(sum("duplicates"), 0);
    assert_eq!(sum("reordered"), 0);
    // The intervals before lab-gen began are empty; the second of frames
    // spans ten of them, or eleven or twelve where it does not line up
    // with them or the machine paused lab-gen.
    let with_frames: Vec<&&Value> = intervals
        .iter()
        .filter(|e| e["received"].as_u64() > Some(0))
        .collect();
    assert!(
        (10..=12).contains(&with_frames.len()),
        "{} intervals with frames: {with_frames:?}",
        with_frames.len()
    );
    let mut start = 0.0;
    for interval in &intervals {
        assert_eq!(interval["start_ms"].as_f64(), Some(start), "{interval}");
        start += interval["duration_ms"].as_f64().unwrap();
    }
    let full = &intervals[..intervals.len() - 1];
    assert!(
        full.iter().all(|e| e["duration_ms"] == 100.0),
        "{intervals:?}"
    );
}

#[test]
fn a_tbf_rate_limit_shows_in_the_sinks_rate() {
    let pair = pair(true);
    // 64-byte frames at 2 Mbit/s: 3,906 frames a second get through (a
    // rate a debug build keeps up with on a loaded machine).
    let tc = in_netns(
        &pair.a.netns,
        Command::new("tc").args([
            "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", "2mbit", "burst", "2kb",
            "latency", "20ms",
        ]),
    )
    .output()
    .expect("run tc");
    assert!(tc.status.success(), "tc: {tc:?}");
    let sink = start(
        &pair.b.netns,
        "lab-sink",
        &["eth1", "--duration", "6", "--json"],
        "\"event\":\"ready\"",
    );
    let sent = gen(
        &pair,
        &[
            "eth1",
            "198.18.0.2",
            "--rate",
            "50000",
            "--duration",
            "3",
            "--json",
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    let gen_summary: Value = serde_json::from_str(sent.stdout.last().unwrap()).unwrap();
    let received = sink.stop(libc::SIGINT);
    let summary: Value = serde_json::from_str(received.stdout.last().unwrap()).unwrap();
    let rate = summary["rate"].as_f64().unwrap();
    assert!(
        (3_300.0..=4_500.0).contains(&rate),
        "the sink measured {rate} frames/s through a 2 Mbit/s limit: {summary}; lab-gen: {gen_summary}"
    );
    // Through a queue lab-gen is held back (the socket's send buffer fills
    // with what the qdisc holds) or its frames are dropped (ENOBUFS,
    // counted lost): either way no more than the limit gets through.
    let sent = gen_summary["sent"].as_u64().unwrap();
    let seconds = gen_summary["seconds"].as_f64().unwrap();
    let got = summary["received"].as_u64().unwrap();
    assert!(
        got <= sent && got as f64 <= 4_500.0 * seconds,
        "{summary}; lab-gen: {gen_summary}"
    );
}

#[test]
fn a_cut_link_loses_frames_with_a_line_and_everything_carries_on() {
    let pair = pair(true);
    for extra in [&[][..], &["--datalink", "af_xdp"][..]] {
        let sink_args = with(&["eth1", "--duration", "8"], extra);
        let sink = start(&pair.b.netns, "lab-sink", &refs(&sink_args), SINK_READY);
        let gen_args = with(
            &["eth1", "198.18.0.2", "--rate", "2000", "--duration", "3"],
            extra,
        );
        let mut sending = Running::spawn(&pair.a.netns, &bin("lab-gen"), &refs(&gen_args), &[]);
        sending.wait_for("generating to", Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(800));
        ip(&["-n", &pair.a.netns, "link", "set", "eth1", "down"]);
        std::thread::sleep(Duration::from_millis(700));
        ip(&["-n", &pair.a.netns, "link", "set", "eth1", "up"]);
        let sent = sending.finish(Duration::from_secs(30));
        assert!(sent.status.success(), "{extra:?}: {sent:?}");
        let down_line = sent
            .stdout
            .iter()
            .find(|l| {
                l.starts_with("eth1: ") && l.ends_with(": frames count as lost until it is back up")
            })
            .unwrap_or_else(|| panic!("{extra:?}: no link-down line: {sent:?}"));
        assert!(down_line.contains("down"), "{down_line}");
        let lost = sent
            .stdout
            .iter()
            .find(|l| l.ends_with(" frames lost while the link was down"))
            .map(|l| number_before(l, " frames lost"))
            .unwrap_or_else(|| panic!("{extra:?}: no link-up line: {sent:?}"));
        // 700 ms down at 2000 frames/s; the link takes a moment to come up.
        assert!((1000.0..=4000.0).contains(&lost), "{extra:?}: {sent:?}");

        let received = sink.stop(libc::SIGINT);
        assert!(received.status.success(), "{extra:?}: {received:?}");
        let summary = &received.stdout[received.stdout.len() - 2];
        let got = number_before(summary, " frames,");
        let sink_lost = number_before(summary, " (");
        // Frames before and after the cut arrived: the sink carried on.
        assert!(got > 3000.0, "{extra:?}: {summary}");
        assert!(
            sink_lost >= lost * 0.9,
            "{extra:?}: sink {summary}, lab-gen lost {lost}"
        );
    }
}

#[test]
fn bad_input_gets_one_line_and_a_non_zero_exit() {
    let pair = pair(true);
    let cases: [(&str, &[&str], &str, i32); 6] = [
        (
            "lab-gen",
            &["eth1", "198.18.0.2", "--size", "20"],
            "frame size from 62",
            2,
        ),
        (
            "lab-gen",
            &["eth1", "198.18.0.2", "--rate", "0"],
            "positive number",
            2,
        ),
        ("lab-gen", &["eth1", "not-an-address"], "not-an-address", 2),
        ("lab-gen", &["nosuch0", "198.18.0.2"], "nosuch0", 3),
        (
            "lab-gen",
            &["eth1", "198.18.0.2", "--count", "1", "--duration", "1s"],
            "cannot be used with",
            2,
        ),
        ("lab-sink", &["nosuch0"], "nosuch0", 3),
    ];
    for (tool, args, mention, code) in cases {
        let out = run_in(&pair.a.netns, &bin(tool), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{tool} {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{tool} {args:?}: {stderr}");
        assert!(stderr.contains(mention), "{tool} {args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{tool} {args:?}");
    }
    // Nobody answers ARP at 198.18.0.9: exit 1, one line.
    let out = run_in(
        &pair.a.netns,
        &bin("lab-gen"),
        &["eth1", "198.18.0.9", "-W", "200ms"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no ARP reply from 198.18.0.9"), "{stderr}");
}

/// The number after `icmp_seq=` in a line of lab-ping.
fn icmp_seq(line: &str) -> Option<u64> {
    let rest = line.split("icmp_seq=").nth(1)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// lab-ping, lab-pong and lab-capture ride out their links going down and
/// coming back: the pinger's own link first (its requests are refused:
/// a line each, counted lost), then the responder's (pong and the capture
/// see the link vanish and come back).
#[test]
fn ping_pong_and_capture_survive_their_links_going_down_and_up() {
    let pair = pair(true);
    for extra in [&[][..], &["--datalink", "af_xdp"][..]] {
        let pong_args = with(&["eth1"], extra);
        let pong = start(&pair.b.netns, "lab-pong", &refs(&pong_args), "listening on");
        // A capture beside pong (on af_xdp it joins pong's hub).
        let capture_args = with(&["eth1"], extra);
        let capture = start(
            &pair.b.netns,
            "lab-capture",
            &refs(&capture_args),
            "capturing on",
        );
        let ping_args = with(
            &["eth1", "198.18.0.2", "--count", "40", "--interval", "100ms"],
            extra,
        );
        let mut pinging = Running::spawn(&pair.a.netns, &bin("lab-ping"), &refs(&ping_args), &[]);
        pinging.wait_for("icmp_seq=3 ", Duration::from_secs(10));
        ip(&["-n", &pair.a.netns, "link", "set", "eth1", "down"]);
        // Up again once two requests were refused, each with its line.
        let refused = pinging.wait_for("eth1: icmp_seq=", Duration::from_secs(10));
        let first = icmp_seq(&refused).unwrap();
        pinging.wait_for(
            &format!("eth1: icmp_seq={}: ", first + 1),
            Duration::from_secs(10),
        );
        ip(&["-n", &pair.a.netns, "link", "set", "eth1", "up"]);
        // The responder's turn once a request after the cut was answered.
        pinging.wait_until(
            "reply after the cut",
            |line| {
                line.contains(" bytes from ") && icmp_seq(line).is_some_and(|seq| seq > first + 1)
            },
            Duration::from_secs(10),
        );
        ip(&["-n", &pair.b.netns, "link", "set", "eth1", "down"]);
        // An outage of this length, not a wait for something: the requests
        // it swallows print nothing.
        std::thread::sleep(Duration::from_millis(600));
        ip(&["-n", &pair.b.netns, "link", "set", "eth1", "up"]);
        let pinged = pinging.finish(Duration::from_secs(30));
        assert!(pinged.status.success(), "{extra:?}: {pinged:?}");
        let refused = pinged
            .stdout
            .iter()
            .filter(|l| l.starts_with("eth1: icmp_seq=") && l.contains("down"))
            .count();
        assert!(
            refused >= 2,
            "{extra:?}: no line for the refused requests: {pinged:?}"
        );
        let summary = pinged
            .stdout
            .iter()
            .find(|l| l.contains(" packets transmitted, "))
            .unwrap_or_else(|| panic!("{extra:?}: no summary: {pinged:?}"));
        assert!(summary.starts_with("40 packets transmitted, "), "{summary}");
        let received = number_before(summary, " received");
        assert!((15.0..40.0).contains(&received), "{extra:?}: {summary}");
        // Replies came after both cuts: the last requests were answered.
        assert!(
            pinged.stdout.iter().any(|l| l.contains("icmp_seq=39 ")),
            "{extra:?}: pong did not carry on: {pinged:?}"
        );
        let ponged = pong.stop(libc::SIGTERM);
        assert!(ponged.status.success(), "{extra:?}: {ponged:?}");
        let captured = capture.stop(libc::SIGINT);
        assert!(captured.status.success(), "{extra:?}: {captured:?}");
        assert!(
            captured.stdout.iter().any(|l| l.contains("(seq=39, ")),
            "{extra:?}: the capture stopped seeing frames: {:?}",
            &captured.stdout[captured.stdout.len().saturating_sub(5)..]
        );
    }
}
