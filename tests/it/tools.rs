//! The packet tools on a real veth pair between two fresh network
//! namespaces: the real binaries, their lines and counts, the pcap file as
//! tshark reads it, the silence of the kernel, and bad input.
//!
//! Side a is 198.18.0.1 (02:00:00:00:00:01), side b 198.18.0.2
//! (02:00:00:00:00:02), both on eth1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use labctl::tools::datalink::{self, DatalinkKind, Direction, OpenOptions};
use labctl::tools::frames::{self, EchoKind, Ipv4Params, Link, TcpParams};
use pnet::util::MacAddr;
use serde_json::Value;

use crate::support::bin;
use crate::support::netns::{in_netns, in_thread_of, inject, run_in};
use crate::support::process::Running;
use crate::support::tools::{
    assert_busy_poll_behaviour, assert_ping_and_pong_print_the_contract_lines,
    assert_ping_interrupted_prints_its_summary, count, pair, ping, start, tshark_frames, READY,
};

const MAC_A: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

#[test]
fn ping_and_pong_print_the_contract_lines() {
    assert_ping_and_pong_print_the_contract_lines(&[], "af_packet");
}

/// With labctl's sysctls the kernel answers neither ARP nor echo: lab-ping
/// gets nothing without lab-pong, and with it exactly one reply per
/// request, each one lab-pong says it sent, and a capture on the pinger's
/// side sees exactly those frames.
#[test]
fn the_kernel_stays_silent() {
    let pair = pair(true);

    let unanswered = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "2", "--timeout", "200ms"],
    );
    assert_eq!(unanswered.status.code(), Some(1), "{unanswered:?}");
    assert!(unanswered.stdout.is_empty(), "{unanswered:?}");
    let error: Vec<&str> = unanswered.stderr.lines().collect();
    assert_eq!(error.len(), 1, "{unanswered:?}");
    assert!(
        error[0].starts_with("lab-ping: no ARP reply from 198.18.0.2 on eth1 after 3 requests"),
        "{error:?}"
    );

    let capture = start(
        &pair.a.netns,
        "lab-capture",
        &["eth1", "--json"],
        "capturing",
    );
    let pong = start(&pair.b.netns, "lab-pong", &["eth1"], "listening on");
    let pinged = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "5", "--interval", "50ms"],
    );
    // Stopped right after the ping, as labctl does: the capture must still
    // count every frame.
    let captured = capture.stop(libc::SIGINT);
    let ponged = pong.stop(libc::SIGINT);

    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(
        count(&pinged.stdout, " bytes from 198.18.0.2"),
        5,
        "{pinged:?}"
    );
    assert_eq!(count(&pinged.stdout, "DUP!"), 0, "{pinged:?}");
    assert!(pinged
        .stdout
        .contains(&"5 packets transmitted, 5 received, 0% packet loss".to_owned()));
    assert_eq!(count(&ponged.stdout, "ICMP echo reply"), 5, "{ponged:?}");

    assert!(captured.status.success(), "{captured:?}");
    let events = json_lines(&captured.stdout);
    let frames: Vec<&Value> = events.iter().filter(|e| e["event"] == "frame").collect();
    let arp_op = |direction: &str, op: u64| {
        frames
            .iter()
            .filter(|f| f["direction"] == direction && f["frame"]["operation"] == op)
            .count()
    };
    let echo = |direction: &str, icmp_type: u64| {
        frames
            .iter()
            .filter(|f| f["direction"] == direction && f["frame"]["transport"]["type"] == icmp_type)
            .count()
    };
    assert_eq!((arp_op("out", 1), arp_op("in", 2)), (1, 1), "{events:#?}");
    assert_eq!((echo("out", 8), echo("in", 0)), (5, 5), "{events:#?}");
    // Nothing else: no kernel ARP, no kernel echo reply, no IPv6.
    assert_eq!(frames.len(), 12, "{events:#?}");
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["captured"], 12);
    assert_eq!(summary["dropped"], 0);
}

/// The same setup without the sysctls: the kernel answers ARP and echo
/// itself, so a test of the silence can fail.
#[test]
fn without_the_sysctls_the_kernel_answers() {
    let pair = pair(false);
    let kernel_only = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "2", "--interval", "50ms"],
    );
    assert!(kernel_only.status.success(), "{kernel_only:?}");
    assert_eq!(count(&kernel_only.stdout, " bytes from 198.18.0.2"), 2);

    let pong = start(&pair.b.netns, "lab-pong", &["eth1"], "listening on");
    let both = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "3", "--interval", "100ms"],
    );
    pong.stop(libc::SIGINT);
    assert!(count(&both.stdout, "(DUP!)") >= 1, "{both:?}");
}

/// Frames of every kind on the wire: one line each, and a pcap file that
/// tshark reads with the same number of frames.
#[test]
fn capture_prints_every_frame_and_tshark_reads_the_pcap() {
    let pair = pair(true);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("b-eth1.pcap");
    let frames = sample_frames();
    let expected_count = frames.len().to_string();
    let capture = start(
        &pair.b.netns,
        "lab-capture",
        &[
            "eth1",
            "--pcap",
            pcap.to_str().unwrap(),
            "--count",
            &expected_count,
        ],
        "capturing on eth1 (af_packet)",
    );
    inject(&pair.a.netns, "eth1", frames);
    let captured = capture.finish(Duration::from_secs(10));
    assert!(captured.status.success(), "{captured:?}");
    let lines = &captured.stdout;
    for line in [
        "[eth1]: ARP request who-has 198.18.0.2 tell 198.18.0.1",
        "[eth1]: ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq=7, id=70)",
        "[eth1]: UDP Packet: 198.18.0.1:5353 > 198.18.0.2:9; length: 12",
        "[eth1]: TCP Packet: 198.18.0.1:52472 > 198.18.0.2:6600; length: 39",
        "[eth1]: ICMPv6 packet fe80::1 -> ff02::1 (type=133, code=0)",
        "[eth1]: Unknown packet: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff; ethertype: 0x88b5 length: 60",
        "[eth1]: Malformed IPv4 Packet: total length 84, but only 46 bytes arrived",
    ] {
        assert!(lines.contains(&line.to_owned()), "{line:?} missing from {lines:#?}");
    }
    assert_eq!(
        lines.last().unwrap(),
        &format!("{expected_count} packets captured, 0 dropped, 1 malformed")
    );
    assert_eq!(tshark_frames(&pcap), frames_count(&expected_count));
}

fn frames_count(text: &str) -> usize {
    text.parse().unwrap()
}

/// The number of frames tshark reads from `pcap`.
/// One frame of each kind, as side a would send them.
fn sample_frames() -> Vec<Vec<u8>> {
    let a = "198.18.0.1".parse().unwrap();
    let b = "198.18.0.2".parse().unwrap();
    // Addressed to a MAC nobody has: b's kernel drops them (no port
    // unreachable, no RST, no ARP of its own), the capture sees them all.
    let link = Link {
        src: MAC_A,
        dst: MacAddr(2, 0, 0, 0, 0, 0x99),
    };
    let ip = Ipv4Params {
        src: a,
        dst: b,
        ident: 1,
        dont_fragment: true,
    };
    let push = TcpParams {
        src_port: 52472,
        dst_port: 6600,
        sequence: 1,
        acknowledgement: 0,
        flags: 0x18,
        window: 1024,
    };
    let echo = frames::icmp_echo(link, ip, EchoKind::Request, 70, 7, &[0; 56]).unwrap();
    let mut router_solicitation = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    router_solicitation.extend([0x60, 0, 0, 0, 0, 8, 58, 255]);
    router_solicitation.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    router_solicitation.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    router_solicitation.extend([133, 0, 0, 0, 0, 0, 0, 0]);
    let mut unknown = vec![0xff; 6];
    unknown.extend([2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    unknown.resize(60, 0);
    vec![
        frames::arp_request(MAC_A, a, b),
        echo.clone(),
        frames::udp_datagram(link, ip, 5353, 9, b"abcd").unwrap(),
        frames::tcp_segment(link, ip, push, b"nineteen bytes here").unwrap(),
        router_solicitation,
        unknown,
        // Cut short: the IPv4 header says 84 bytes.
        echo[..60].to_vec(),
    ]
}

#[test]
fn json_events_from_each_tool() {
    let pair = pair(true);
    let capture = start(
        &pair.b.netns,
        "lab-capture",
        &["eth1", "--json"],
        "capturing",
    );
    let pong = start(
        &pair.b.netns,
        "lab-pong",
        &["eth1", "--json", "--count", "2"],
        "listening",
    );
    let pinged = ping(
        &pair.a.netns,
        &[
            "eth1",
            "198.18.0.2",
            "--json",
            "--count",
            "2",
            "--interval",
            "50ms",
        ],
    );
    // lab-pong stops by itself after two echo replies.
    let ponged = pong.finish(Duration::from_secs(10));
    let captured = capture.stop(libc::SIGINT);

    assert!(pinged.status.success(), "{pinged:?}");
    let events = json_lines(&pinged.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["start", "reply", "reply", "summary"]);
    assert_eq!(events[0]["destination_mac"], "02:00:00:00:00:02");
    assert_eq!(events[0]["datalink"], "af_packet");
    assert_eq!(
        (events[1]["seq"].as_u64(), events[1]["ttl"].as_u64()),
        (Some(0), Some(64))
    );
    assert!(events[1]["time_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(events[3]["transmitted"], 2);
    assert_eq!(events[3]["received"], 2);
    assert_eq!(events[3]["duplicates"], 0);

    assert!(ponged.status.success(), "{ponged:?}");
    let events = json_lines(&ponged.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "listening",
            "request",
            "reply",
            "request",
            "reply",
            "request",
            "reply",
            "summary"
        ]
    );
    assert_eq!(events[0]["mac"], "02:00:00:00:00:02");
    assert_eq!(events[1]["frame"]["network"], "arp");
    assert_eq!(events[6]["frame"]["transport"]["seq"], 1);
    assert_eq!(events[7]["echo_replies"], 2);
    assert_eq!(events[7]["arp_replies"], 1);

    assert!(captured.status.success(), "{captured:?}");
    let events = json_lines(&captured.stdout);
    assert_eq!(events[0]["event"], "capturing");
    let summary = events.last().unwrap();
    assert_eq!(summary["captured"], 6);
    assert_eq!(events.len(), 1 + 6 + 1);
}

/// The binaries need nothing from the file system: they run from an
/// otherwise empty root, as in a FROM-scratch image.
#[test]
fn the_tools_run_from_an_empty_root() {
    let pair = pair(true);
    let root = tempfile::tempdir().unwrap();
    for tool in ["lab-ping", "lab-pong"] {
        std::fs::copy(bin(tool), root.path().join(tool)).unwrap();
    }
    let chroot = Path::new("/usr/sbin/chroot");
    let root_dir = root.path().to_str().unwrap();
    let pong = start_in_root(&pair.b.netns, chroot, root_dir, "/lab-pong");
    let pinged = Running::spawn(
        &pair.a.netns,
        chroot,
        &[
            root_dir,
            "/lab-ping",
            "eth1",
            "198.18.0.2",
            "--count",
            "2",
            "--interval",
            "50ms",
        ],
        &[],
    )
    .finish(Duration::from_secs(30));
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(count(&pinged.stdout, " bytes from 198.18.0.2"), 2);
}

fn start_in_root(netns: &str, chroot: &Path, root: &str, tool: &str) -> Running {
    let mut running = Running::spawn(netns, chroot, &[root, tool, "eth1"], &[]);
    running.wait_for("listening on", READY);
    running
}

/// One bad invocation and what it must give.
struct BadInput {
    tool: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: i32,
    mention: &'static str,
}

const fn bad(
    tool: &'static str,
    args: &'static [&'static str],
    code: i32,
    mention: &'static str,
) -> BadInput {
    BadInput {
        tool,
        args,
        env: &[],
        code,
        mention,
    }
}

/// Bad input: one line on stderr, the documented exit code, never a panic.
#[test]
fn bad_input_gets_one_line_and_a_non_zero_exit() {
    let pair = pair(true);
    let ns = &pair.a.netns;
    let no_such = "no interface named \"nosuch0\"";
    let cases = [
        bad("lab-ping", &["nosuch0", "198.18.0.2"], 3, no_such),
        bad("lab-pong", &["nosuch0"], 3, no_such),
        bad("lab-capture", &["nosuch0"], 3, no_such),
        bad("lab-ping", &["eth1", "198.18.0.256"], 2, "198.18.0.256"),
        bad(
            "lab-ping",
            &["eth1", "198.18.0.2", "--count", "0"],
            2,
            "--count",
        ),
        bad(
            "lab-ping",
            &["eth1", "198.18.0.2", "--interval", "soon"],
            2,
            "soon",
        ),
        bad(
            "lab-capture",
            &["eth1", "--datalink", "netmap"],
            3,
            "netmap",
        ),
        bad("lab-capture", &["eth1", "--frobnicate"], 2, "--frobnicate"),
        bad(
            "lab-ping",
            &["eth1", "198.18.0.2", "--peer-mac", "02:00:zz"],
            2,
            "--peer-mac",
        ),
        BadInput {
            env: &[("LABCTL_DATALINK_eth1", "dpdk")],
            ..bad("lab-pong", &["eth1"], 2, "LABCTL_DATALINK_eth1")
        },
    ];
    for case in cases {
        let finished = Running::spawn(ns, &bin(case.tool), case.args, case.env)
            .finish(Duration::from_secs(10));
        let what = format!("{} {:?} {:?}: {finished:?}", case.tool, case.args, case.env);
        assert_eq!(finished.status.code(), Some(case.code), "{what}");
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}");
        assert!(lines[0].starts_with(&format!("{}: ", case.tool)), "{what}");
        assert!(lines[0].contains(case.mention), "{what}");
        assert!(!finished.stderr.contains("panicked"), "{what}");
    }

    let help = run_in(ns, &bin("lab-ping"), &["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--rate <PPS>"));
}

/// Standard output that cannot be written (/dev/full: ENOSPC) ends a
/// tool with one line and exit 4 (docs/tools.md), not a panic or a hang.
#[test]
fn an_unwritable_stdout_exits_4() {
    let pair = pair(true);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let mut pong = in_netns(&pair.a.netns, Command::new(bin("lab-pong")).arg("eth1"))
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lab-pong");
    // Its first line ("listening on eth1") fails at once; without the
    // check it would run until killed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = pong.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = pong.kill();
            let _ = pong.wait();
            panic!("lab-pong with stdout on /dev/full was still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut pong.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("lab-pong: writing to standard output"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// SIGINT ends lab-ping early with its summary, as `ping` does.
#[test]
fn ping_interrupted_prints_its_summary() {
    assert_ping_interrupted_prints_its_summary(&[]);
}

/// `--busy-poll` answers, spins only when asked, and stops on SIGINT.
#[test]
fn busy_poll_answers_spins_only_when_asked_and_stops_at_once() {
    assert_busy_poll_behaviour(&[]);
}

/// The kernel's receive time comes with every frame af_packet hands a
/// ping or pong: after the frame was injected, before it was read.
#[test]
fn af_packet_gives_the_kernels_receive_time() {
    let pair = pair(true);
    let (ready_tx, ready_rx) = mpsc::channel();
    let netns = pair.b.netns.clone();
    let receiver = std::thread::spawn(move || {
        in_thread_of(&netns, move || {
            let mut link = datalink::open(DatalinkKind::AfPacket, "eth1", &OpenOptions::default())
                .expect("open af_packet");
            ready_tx.send(()).unwrap();
            let received = link
                .recv(Duration::from_secs(5))
                .expect("recv")
                .map(|r| r.frame.len());
            let read = std::time::SystemTime::now();
            (received, link.received_at(), read)
        })
    });
    ready_rx.recv().unwrap();
    let before = std::time::SystemTime::now();
    inject(&pair.a.netns, "eth1", vec![unroutable_echo(1)]);
    let (received, at, read) = receiver.join().unwrap();
    assert!(received.is_some(), "nothing received");
    let at = at.expect("a kernel timestamp");
    assert!(
        before <= at && at <= read,
        "{before:?} <= {at:?} <= {read:?}"
    );
}

/// More frames than lab-capture's receive ring holds (16 blocks of 256 KiB,
/// about 25,000 small frames): every one is captured, counted and saved, so
/// the ring hands its blocks back to the kernel and goes round.
#[test]
fn capture_goes_round_its_ring_without_losing_a_frame() {
    const CHUNKS: u16 = 12;
    const PER_CHUNK: u16 = 5000;
    let pair = pair(true);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("b-eth1.pcap");
    let total = (u32::from(CHUNKS) * u32::from(PER_CHUNK)).to_string();
    let mut capture = start(
        &pair.b.netns,
        "lab-capture",
        &["eth1", "--count", &total, "--pcap", pcap.to_str().unwrap()],
        "capturing on eth1 (af_packet)",
    );
    for chunk in 0..CHUNKS {
        let first = chunk * PER_CHUNK;
        let frames = (first..first + PER_CHUNK).map(unroutable_echo).collect();
        inject(&pair.a.netns, "eth1", frames);
        // A debug build captures more slowly than it injects, and a chunk
        // is a fifth of the ring: the next one goes once the capture has
        // printed this one's last frame (this test is about going round the
        // ring, not about speed: ci/bench is).
        let last = first + PER_CHUNK - 1;
        capture.wait_for(&format!("(seq={last}, "), Duration::from_secs(60));
    }
    let captured = capture.finish(Duration::from_secs(30));
    assert!(captured.status.success(), "{:?}", captured.stderr);
    let lines = &captured.stdout;
    assert_eq!(lines[0], "capturing on eth1 (af_packet)");
    assert_eq!(
        lines[lines.len() - 1],
        format!("{total} packets captured, 0 dropped, 0 malformed")
    );
    assert_eq!(count(lines, "(seq="), frames_count(&total));
    assert_eq!(lines.len(), frames_count(&total) + 2);
    assert_eq!(tshark_frames(&pcap), frames_count(&total));
}

/// What the capture's ring still leaves with the kernel (the block it is
/// filling, handed over only when full or 10 ms after its first frame) is
/// queued all the same: a zero-timeout receive, which a capture uses to
/// drain before its summary, waits for it. Without that wait the receive
/// returns at once, empty, and these frames are lost at a stop.
#[test]
fn a_draining_capture_gets_the_frames_the_kernel_still_holds() {
    let pair = pair(true);
    let (go_tx, go) = mpsc::channel::<()>();
    let (sent_tx, sent) = mpsc::channel();
    let (drained_tx, drained_rx) = mpsc::channel::<()>();
    // The sender keeps its socket open until the drain is over: closing an
    // AF_PACKET socket waits for an RCU grace period, long enough for the
    // kernel to hand the block over by itself.
    let sender = std::thread::spawn({
        let netns = pair.a.netns.clone();
        move || {
            in_thread_of(&netns, move || {
                let mut link =
                    datalink::open(DatalinkKind::AfPacket, "eth1", &OpenOptions::default())
                        .expect("open the sending datalink");
                go.recv().expect("the capture is open");
                for seq in 0..10 {
                    link.send(&unroutable_echo(seq)).expect("send a frame");
                }
                sent_tx.send(()).expect("tell the capture");
                let _ = drained_rx.recv();
            })
        }
    });
    let drained = in_thread_of(&pair.b.netns, move || {
        // A plain socket that sees the frames once b's kernel has handled
        // them (the softirq may run a moment after the sends). Opened
        // first, it gets each frame after the capture's ring does.
        let mut witness = datalink::open(DatalinkKind::AfPacket, "eth1", &OpenOptions::default())
            .expect("open a witness on eth1");
        let mut link = datalink::open(
            DatalinkKind::AfPacket,
            "eth1",
            &OpenOptions {
                capture: true,
                ..OpenOptions::default()
            },
        )
        .expect("open a capture on eth1");
        // Nothing came yet: a zero timeout returns at once.
        assert!(link.recv(Duration::ZERO).expect("receive").is_none());
        go_tx.send(()).expect("start the sender");
        sent.recv().expect("the sender sent");
        for _ in 0..10 {
            let seen = witness.recv(Duration::from_secs(5)).expect("receive");
            assert!(seen.is_some(), "a frame never reached b");
        }
        let mut drained = 0;
        while let Some(received) = link.recv(Duration::ZERO).expect("receive") {
            assert_eq!(received.direction, Direction::In);
            drained += 1;
        }
        drained
    });
    let _ = drained_tx.send(());
    sender.join().expect("the sender");
    assert_eq!(drained, 10);
}

/// An echo request to a MAC nobody has: b's kernel drops it silently.
fn unroutable_echo(seq: u16) -> Vec<u8> {
    let link = Link {
        src: MAC_A,
        dst: MacAddr(2, 0, 0, 0, 0, 0x99),
    };
    let ip = Ipv4Params {
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        ident: seq,
        dont_fragment: true,
    };
    frames::icmp_echo(link, ip, EchoKind::Request, 70, seq, &[0; 56]).unwrap()
}

/// `--quiet` pong answers every request but prints only its start line and
/// its summary.
#[test]
fn quiet_pong_answers_without_a_line_per_frame() {
    let pair = pair(true);
    let pong = start(
        &pair.b.netns,
        "lab-pong",
        &["eth1", "--quiet"],
        "listening on eth1",
    );
    let pinged = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "-c", "3", "-i", "10ms"],
    );
    assert!(pinged.status.success(), "{pinged:?}");
    assert!(
        pinged
            .stdout
            .iter()
            .any(|line| line.contains("3 packets transmitted, 3 received, 0% packet loss")),
        "{pinged:?}"
    );
    let ponged = pong.stop(libc::SIGINT);
    assert!(ponged.status.success(), "{ponged:?}");
    assert_eq!(ponged.stdout.len(), 2, "{ponged:?}");
    assert_eq!(
        ponged.stdout[1],
        "3 echo replies sent, 1 ARP replies sent, 0 frames ignored, 0 malformed"
    );
}

/// `bin` finds every tool of the one list where cargo built it (the list
/// itself is checked against `src/bin/` and the Dockerfile by the unit
/// tests of `labctl::tools`).
#[test]
fn every_listed_tool_is_built_next_to_labctl() {
    for tool in labctl::tools::TOOLS {
        let path = bin(tool);
        assert!(path.is_file(), "{tool}: no {}", path.display());
        assert_eq!(path.parent(), bin("labctl").parent(), "{tool}");
    }
}
