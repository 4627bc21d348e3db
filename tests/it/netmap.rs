//! The netmap datalink on real veths in two network namespaces.
//!
//! Everything here but the preflight checks needs /dev/netmap (the netmap
//! kernel module); where it is absent those tests are reported as ignored
//! with the reason, never as passed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use labctl::tools::datalink::netmap::Netmap;
use labctl::tools::datalink::{Datalink, Direction, OpenOptions};

use crate::support::netns::{have_root, VethPair};

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
#[cfg_attr(
    not(labctl_has_netmap),
    ignore = "needs /dev/netmap: the netmap kernel module is not loaded on this machine"
)]
fn a_frame_crosses_a_veth_with_netmap_on_both_ends() {
    assert!(have_root(), "netns tests run as root");
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
#[cfg_attr(
    not(labctl_has_netmap),
    ignore = "needs /dev/netmap: the netmap kernel module is not loaded on this machine"
)]
fn a_monitor_sees_both_directions_and_takes_nothing() {
    assert!(have_root(), "netns tests run as root");
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
                let mut monitor =
                    Netmap::open("eth1", &OpenOptions { capture: true }).expect("open monitor");
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

/// A tool running in a namespace, killed when the test ends however it
/// ends; its stdout lines arrive on a channel.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(netns: &str, tool: &str, args: &[&str]) -> Running {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let mut cmd = Command::new(crate::support::bin(tool));
        cmd.args(args);
        let mut child = crate::support::netns::in_netns(netns, &cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the tool");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to `timeout` for a line containing `text`.
    fn wait_for(&mut self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[cfg_attr(
    not(labctl_has_netmap),
    ignore = "needs /dev/netmap: the netmap kernel module is not loaded on this machine"
)]
fn ping_pong_and_capture_run_on_netmap() {
    assert!(have_root(), "netns tests run as root");
    let pair = VethPair::new(true);
    let long = Duration::from_secs(10);
    let dl = ["--datalink", "netmap"];
    let mut pong = Running::start(&pair.b.netns, "lab-pong", &[&dl[..], &["eth1"]].concat());
    assert!(
        pong.wait_for("listening on eth1", long),
        "pong: {:?}",
        pong.seen
    );
    assert!(
        pong.seen.last().unwrap().contains("netmap"),
        "{:?}",
        pong.seen
    );
    let capture_args = [&dl[..], &["eth1", "--count", "8"]].concat();
    let mut capture = Running::start(&pair.b.netns, "lab-capture", &capture_args);
    assert!(
        capture.wait_for("capturing on eth1", long),
        "capture: {:?}",
        capture.seen
    );

    let ping_args = [
        &dl[..],
        &["eth1", "198.18.0.2", "--count", "3", "--interval", "200ms"],
    ];
    let ping = crate::support::netns::run_in(
        &pair.a.netns,
        &crate::support::bin("lab-ping"),
        &ping_args.concat(),
    );
    let stdout = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.status.success(), "ping: {ping:?}");
    let replies = stdout
        .lines()
        .filter(|l| l.starts_with("64 bytes from 198.18.0.2: icmp_seq="))
        .count();
    assert_eq!(replies, 3, "{stdout}");
    assert!(
        stdout.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{stdout}"
    );

    assert!(
        capture.wait_for("8 packets captured", long),
        "capture: {:?}",
        capture.seen
    );
    let echo = |kind: &str| capture.seen.iter().filter(|l| l.contains(kind)).count();
    assert_eq!(echo("ICMP echo request"), 3, "{:?}", capture.seen);
    assert_eq!(echo("ICMP echo reply"), 3, "{:?}", capture.seen);
}
