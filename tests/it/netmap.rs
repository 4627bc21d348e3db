//! The netmap datalink on real veths in two network namespaces.
//!
//! Everything here but the preflight checks needs /dev/netmap (the netmap
//! kernel module); where it is absent those tests are skipped with the
//! reason printed (`support::skip`), never passed silently.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use labctl::tools::datalink::netmap::Netmap;
use labctl::tools::datalink::{Datalink, Direction, OpenOptions};

use crate::support::bin;
use crate::support::netns::VethPair;
use crate::support::process::Running;
use crate::support::skip::{skip_with_netmap, skip_without_netmap, skip_without_root};

/// An experimental EtherType (IEEE 802 local use): nothing else in the
/// namespaces sends it.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

fn mac(text: &str) -> [u8; 6] {
    let mut mac = [0; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16).expect("a MAC from the test's own table");
    }
    mac
}

fn frame(dst: &str, src: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&mac(dst));
    frame.extend_from_slice(&mac(src));
    frame.extend_from_slice(&ETHERTYPE);
    frame.extend_from_slice(payload);
    frame.resize(frame.len().max(60), 0);
    frame
}

fn is_ours(frame: &[u8]) -> bool {
    frame.len() >= 14 && frame[12..14] == ETHERTYPE
}

/// Runs `f` on a thread that has entered `netns`, so the test's own
/// threads stay in the host namespace.
fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = File::open(format!("/run/netns/{netns}")).expect("open the netns");
                // SAFETY: setns on this thread only, with a valid fd.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread panicked")
    })
}

/// The next frame of ours on `link` within `timeout`.
fn recv_ours(link: &mut Netmap, timeout: Duration) -> Option<(Vec<u8>, Direction)> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match link.recv(left).expect("recv") {
            Some(got) if is_ours(got.frame) => return Some((got.frame.to_vec(), got.direction)),
            Some(_) => continue,
            None => return None,
        }
    }
    None
}

#[test]
fn a_frame_crosses_a_veth_with_netmap_on_both_ends() {
    if skip_without_netmap() {
        return;
    }
    if skip_without_root("the netmap tests (namespaces, veths)") {
        return;
    }
    let pair = VethPair::new(true);
    let sent = frame(pair.b.mac, pair.a.mac, b"labctl netmap a->b");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let received = thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            in_netns(&pair.b.netns, || {
                let mut link = Netmap::open("eth1", &OpenOptions::default()).expect("open b");
                assert!(
                    link.describe().starts_with("netmap, netmap:eth1"),
                    "{}",
                    link.describe()
                );
                ready_tx.send(()).unwrap();
                let got = recv_ours(&mut link, Duration::from_secs(5));
                done_tx.send(()).unwrap();
                got
            })
        });
        let sent = &sent;
        in_netns(&pair.a.netns, move || {
            let mut link = Netmap::open("eth1", &OpenOptions::default()).expect("open a");
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("b is ready");
            // Resend until b is done: switching into netmap mode can take
            // the link down and up for a moment.
            while let Err(RecvTimeoutError::Timeout) =
                done_rx.recv_timeout(Duration::from_millis(200))
            {
                link.send(sent).expect("send");
            }
        });
        receiver.join().expect("receiver")
    });
    let (frame, direction) = received.expect("b received the frame from a");
    assert_eq!(frame, sent);
    assert_eq!(direction, Direction::In);
}

#[test]
fn a_monitor_sees_both_directions_and_takes_nothing() {
    if skip_without_netmap() {
        return;
    }
    if skip_without_root("the netmap tests (namespaces, veths)") {
        return;
    }
    let pair = VethPair::new(true);
    let request = frame(pair.b.mac, pair.a.mac, b"request");
    let answer = frame(pair.a.mac, pair.b.mac, b"answer");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let (req, ans, a_ns, b_ns) = (&request, &answer, &pair.a.netns, &pair.b.netns);
    let ((requests_seen_by_b, watched), answered) = thread::scope(|scope| {
        let b_side = scope.spawn(move || {
            in_netns(b_ns, move || {
                let mut link = Netmap::open("eth1", &OpenOptions::default()).expect("open b");
                let mut monitor = Netmap::open(
                    "eth1",
                    &OpenOptions {
                        capture: true,
                        ..OpenOptions::default()
                    },
                )
                .expect("open monitor");
                assert!(monitor.describe().contains("monitor netmap:eth1/rt"));
                assert!(monitor.send(ans).is_err(), "a monitor cannot send");
                ready_tx.send(()).unwrap();
                // Answer every request until a has an answer.
                let mut requests = 0;
                while let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(Duration::ZERO) {
                    if let Some((got, _)) = recv_ours(&mut link, Duration::from_millis(100)) {
                        assert_eq!(&got, req);
                        requests += 1;
                        link.send(ans).expect("answer");
                    }
                }
                let mut watched = Vec::new();
                while let Some(seen) = recv_ours(&mut monitor, Duration::from_millis(500)) {
                    watched.push(seen);
                }
                (requests, watched)
            })
        });
        let answered = in_netns(a_ns, move || {
            let mut link = Netmap::open("eth1", &OpenOptions::default()).expect("open a");
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("b is ready");
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut answered = None;
            while answered.is_none() && Instant::now() < deadline {
                link.send(req).expect("send");
                answered = recv_ours(&mut link, Duration::from_millis(200));
            }
            done_tx.send(()).unwrap();
            answered
        });
        (b_side.join().expect("b side"), answered)
    });
    assert!(requests_seen_by_b > 0, "the monitor took nothing from b");
    assert_eq!(answered.map(|(f, _)| f), Some(answer.clone()));
    assert!(
        watched.contains(&(request, Direction::In)),
        "the monitor saw the request arrive: {watched:?}"
    );
    assert!(
        watched.contains(&(answer, Direction::Out)),
        "the monitor saw the answer leave: {watched:?}"
    );
}

#[test]
fn ping_pong_and_capture_run_on_netmap() {
    if skip_without_netmap() {
        return;
    }
    if skip_without_root("the netmap tests (namespaces, veths)") {
        return;
    }
    let pair = VethPair::new(true);
    let wait = Duration::from_secs(10);
    let netmap_eth1 = ["--datalink", "netmap", "eth1"];
    let mut pong = Running::spawn(&pair.b.netns, &bin("lab-pong"), &netmap_eth1, &[]);
    let listening = pong.wait_for("listening on eth1", wait);
    assert!(listening.contains("netmap, netmap:eth1,"), "{listening}");
    let capture_args = [&netmap_eth1[..], &["--count", "8"]].concat();
    let mut capture = Running::spawn(&pair.b.netns, &bin("lab-capture"), &capture_args, &[]);
    let capturing = capture.wait_for("capturing on eth1", wait);
    assert!(
        capturing.contains("copy monitor netmap:eth1/rt"),
        "{capturing}"
    );

    let ping_args = [
        &netmap_eth1[..],
        &["198.18.0.2", "--count", "3", "--interval", "200ms"],
    ]
    .concat();
    let ping = Running::spawn(&pair.a.netns, &bin("lab-ping"), &ping_args, &[])
        .finish(Duration::from_secs(30));
    assert_eq!(ping.status.code(), Some(0), "{ping:?}");
    let count = |lines: &[String], text: &str| lines.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        count(&ping.stdout, "64 bytes from 198.18.0.2: icmp_seq="),
        3,
        "{ping:?}"
    );
    assert_eq!(
        count(
            &ping.stdout,
            "3 packets transmitted, 3 received, 0% packet loss"
        ),
        1,
        "{ping:?}"
    );

    let captured = capture.finish(wait);
    assert_eq!(
        count(&captured.stdout, "8 packets captured"),
        1,
        "{captured:?}"
    );
    assert_eq!(
        count(&captured.stdout, "ICMP echo request"),
        3,
        "{captured:?}"
    );
    assert_eq!(
        count(&captured.stdout, "ICMP echo reply"),
        3,
        "{captured:?}"
    );
    let ponged = pong.stop(libc::SIGINT);
    assert_eq!(ponged.status.code(), Some(0), "{ponged:?}");
    assert_eq!(count(&ponged.stdout, "ICMP echo reply"), 3, "{ponged:?}");
}

/// The capture starts before the program whose port it watches, and ends
/// with its summary (exit 0) when that program exits.
#[test]
fn a_capture_waits_for_its_port_and_ends_when_the_port_goes() {
    if skip_without_netmap() {
        return;
    }
    if skip_without_root("the netmap tests (namespaces, veths)") {
        return;
    }
    let pair = VethPair::new(true);
    let wait = Duration::from_secs(10);
    let netmap_eth1 = ["--datalink", "netmap", "eth1"];
    let mut capture = Running::spawn(&pair.b.netns, &bin("lab-capture"), &netmap_eth1, &[]);
    let capturing = capture.wait_for("capturing on eth1", wait);
    assert!(capturing.contains("waiting for a program"), "{capturing}");
    // Longer than any fixed wait a monitor had.
    thread::sleep(Duration::from_secs(6));
    let mut pong = Running::spawn(&pair.b.netns, &bin("lab-pong"), &netmap_eth1, &[]);
    pong.wait_for("listening on eth1", wait);
    let ping_args = [
        &netmap_eth1[..],
        &["198.18.0.2", "--count", "3", "--interval", "200ms"],
    ]
    .concat();
    let ping = Running::spawn(&pair.a.netns, &bin("lab-ping"), &ping_args, &[])
        .finish(Duration::from_secs(30));
    assert_eq!(ping.status.code(), Some(0), "{ping:?}");
    let ponged = pong.stop(libc::SIGINT);
    assert_eq!(ponged.status.code(), Some(0), "{ponged:?}");
    let captured = capture.finish(wait);
    assert_eq!(captured.status.code(), Some(0), "{captured:?}");
    let count = |text: &str| captured.stdout.iter().filter(|l| l.contains(text)).count();
    assert_eq!(count("ICMP echo request"), 3, "{captured:?}");
    assert_eq!(count("ICMP echo reply"), 3, "{captured:?}");
    assert_eq!(count("packets captured"), 1, "{captured:?}");
}

/// On this machine (no netmap module) each tool, asked for netmap by flag
/// or by labctl's environment variable, stops with the documented exit
/// code and one line naming /dev/netmap and the module.
#[test]
fn the_tools_without_dev_netmap_say_what_is_missing() {
    if skip_with_netmap() {
        return;
    }
    if skip_without_root("the netmap tests (namespaces, veths)") {
        return;
    }
    let pair = VethPair::new(true);
    let by_flag = ["--datalink", "netmap"];
    let env = [("LABCTL_DATALINK_eth1", "netmap")];
    let no_env: &[(&str, &str)] = &[];
    let cases = [
        (
            "lab-ping",
            [&by_flag[..], &["eth1", "198.18.0.2"]].concat(),
            no_env,
        ),
        ("lab-pong", [&by_flag[..], &["eth1"]].concat(), no_env),
        ("lab-capture", [&by_flag[..], &["eth1"]].concat(), no_env),
        ("lab-pong", vec!["eth1"], &env[..]),
    ];
    for (tool, args, env) in cases {
        let finished =
            Running::spawn(&pair.a.netns, &bin(tool), &args, env).finish(Duration::from_secs(10));
        let what = format!("{tool} {args:?} {env:?}: {finished:?}");
        assert_eq!(finished.status.code(), Some(3), "{what}");
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {what}");
        assert!(lines[0].starts_with(&format!("{tool}: ")), "{what}");
        assert!(lines[0].contains("/dev/netmap"), "{what}");
        assert!(lines[0].contains("netmap kernel module"), "{what}");
        assert!(finished.stdout.is_empty(), "nothing on stdout: {what}");
    }
}
