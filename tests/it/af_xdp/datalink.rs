//! The af_xdp datalink itself, on threads inside test namespaces.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use labctl::tools::datalink::af_xdp::AfXdp;
use labctl::tools::datalink::{Datalink, Direction, OpenOptions};
use std::process::Command;

use super::*;
use crate::support::netns::{in_netns, ip, VethPair};

#[test]
fn frames_flow_both_ways_between_af_xdp_and_af_packet() {
    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (opened_tx, opened_rx) = mpsc::channel();
    let xdp_side = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp");
        opened_tx.send(link.describe()).unwrap();
        let probe = af_xdp_wait_for(&mut link, b"probe");
        for i in 0..100u8 {
            link.send(&test_frame(
                a_mac,
                b_mac,
                &[b'r', b'e', b'p', b'l', b'y', i],
            ))
            .expect("af_xdp send");
        }
        probe
    });
    let describe = opened_rx.recv_timeout(WAIT).expect("af_xdp opened");
    assert_eq!(describe, "af_xdp, native XDP, copy mode");

    let packet_side = on_thread_in(&pair.a.netns, move || {
        let (mut tx, mut rx) = af_packet();
        let sent = test_frame(b_mac, a_mac, b"probe over af_packet");
        tx.send_to(&sent, None).unwrap().unwrap();
        let mut replies = Vec::new();
        for i in 0..100u8 {
            let frame = af_packet_wait_for(&mut *rx, b"reply");
            assert_eq!(
                frame.get(14..20),
                Some(&[b'r', b'e', b'p', b'l', b'y', i][..])
            );
            replies.push(frame);
        }
        (sent, replies)
    });
    let (sent, replies) = packet_side.join().expect("the AF_PACKET side");
    let probe = xdp_side.join().expect("the af_xdp side");
    assert_eq!(probe, sent, "af_xdp received the frame byte for byte");
    assert_eq!(
        replies.len(),
        100,
        "every frame af_xdp sent arrived, in order"
    );
}

/// Round trips between two af_xdp ends, many more than the rings hold,
/// so every ring wraps several times; each answer must be the one asked.
#[test]
fn two_af_xdp_ends_talk_to_each_other() {
    const ROUND_TRIPS: u32 = 2000;
    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (ready_tx, ready_rx) = mpsc::channel();
    let b = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp on b");
        ready_tx.send(()).unwrap();
        for _ in 0..ROUND_TRIPS {
            let request = af_xdp_wait_for(&mut link, b"request");
            let mut answer = b"answer".to_vec();
            answer.extend_from_slice(&request[21..25]);
            link.send(&test_frame(a_mac, b_mac, &answer)).unwrap();
        }
        link.stats().dropped
    });
    ready_rx.recv_timeout(WAIT).expect("b opened");
    let a = on_thread_in(&pair.a.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp on a");
        for bad in [vec![0u8; 5], vec![0u8; 4000]] {
            let error = link.send(&bad).expect_err("refused").to_string();
            assert!(
                error.contains("af_xdp sends frames of 14 to 3840 bytes"),
                "{error}"
            );
        }
        let started = Instant::now();
        for seq in 0..ROUND_TRIPS {
            let mut request = b"request".to_vec();
            request.extend_from_slice(&seq.to_be_bytes());
            link.send(&test_frame(b_mac, a_mac, &request)).unwrap();
            let answer = af_xdp_wait_for(&mut link, b"answer");
            assert_eq!(answer[20..24], seq.to_be_bytes(), "answer to request {seq}");
        }
        (started.elapsed(), link.stats().dropped)
    });
    let (elapsed, a_dropped) = a.join().expect("side a");
    let b_dropped = b.join().expect("side b");
    assert_eq!((a_dropped, b_dropped), (Some(0), Some(0)));
    eprintln!("{ROUND_TRIPS} af_xdp round trips in {elapsed:?}");
}

/// Runs iputils ping from `netns`; returns how many replies came back.
fn kernel_ping(netns: &str, dst: &str, count: u32) -> u32 {
    let count_arg = count.to_string();
    let out = in_netns(
        netns,
        Command::new("ping").args(["-n", "-c", &count_arg, "-i", "0.2", "-W", "1", dst]),
    )
    .output()
    .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no ping summary in {text:?}"))
}

fn is_echo_request_to(frame: &[u8], dst: [u8; 4]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00][..])
        && frame.get(23) == Some(&1)
        && frame.get(30..34) == Some(&dst[..])
        && frame.get(34) == Some(&8)
}

#[test]
fn the_kernel_does_not_see_frames_the_socket_takes() {
    // Kernels left to answer: without af_xdp, b's kernel replies to ping.
    let pair = VethPair::new(false);
    ip(&[
        "-n",
        &pair.a.netns,
        "neigh",
        "replace",
        pair.b.addr,
        "lladdr",
        pair.b.mac,
        "dev",
        "eth1",
        "nud",
        "permanent",
    ]);
    assert_eq!(kernel_ping(&pair.a.netns, pair.b.addr, 1), 1, "baseline");

    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let b = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp");
        ready_tx.send(()).unwrap();
        let mut requests = 0;
        while stop_rx.try_recv().is_err() {
            if let Some(r) = link.recv(Duration::from_millis(50)).unwrap() {
                requests += u32::from(is_echo_request_to(r.frame, [198, 18, 0, 2]));
            }
        }
        requests
    });
    ready_rx.recv_timeout(WAIT).expect("af_xdp opened");
    assert!(
        xdp_attached(&pair.b.netns),
        "the program is attached while open"
    );
    let replies = kernel_ping(&pair.a.netns, pair.b.addr, 3);
    stop_tx.send(()).unwrap();
    let requests = b.join().expect("the af_xdp side");
    assert_eq!(requests, 3, "every echo request went to the socket");
    assert_eq!(
        replies, 0,
        "and none reached b's kernel, which would have answered"
    );

    // Closed: the link is gone with the program, and the kernel answers.
    assert!(
        !xdp_attached(&pair.b.netns),
        "no XDP program is left behind"
    );
    assert_eq!(kernel_ping(&pair.a.netns, pair.b.addr, 1), 1);
}

/// Two tools on one interface through the hub, as in the example lab:
/// a pong-like owner and a capture that must see both directions.
#[test]
fn a_capture_shares_the_interface_with_a_responder() {
    use labctl::tools::datalink::{self, DatalinkKind};

    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (ready_tx, ready_rx) = mpsc::channel();
    let responder_ready = ready_tx.clone();
    let responder = on_thread_in(&pair.b.netns, move || {
        let options = OpenOptions {
            capture: false,
            ..OpenOptions::default()
        };
        let mut link = datalink::open(DatalinkKind::AfXdp, "eth1", &options).expect("open");
        responder_ready.send(link.describe()).unwrap();
        // Serve the hub until the request comes, then answer it.
        af_xdp_wait_for(&mut *link, b"request");
        link.send(&test_frame(a_mac, b_mac, b"reply")).unwrap();
        // Keep serving until the capture has seen the reply.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let _ = link.recv(Duration::from_millis(50)).unwrap();
        }
    });
    let owner = ready_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(owner, "af_xdp, native XDP, copy mode");

    let capture = on_thread_in(&pair.b.netns, move || {
        let options = OpenOptions {
            capture: true,
            ..OpenOptions::default()
        };
        let mut link = datalink::open(DatalinkKind::AfXdp, "eth1", &options).expect("open");
        ready_tx.send(link.describe()).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        while seen.len() < 2 && Instant::now() < deadline {
            if let Some(r) = link.recv(Duration::from_millis(50)).unwrap() {
                if let Some(payload) = payload_of(r.frame) {
                    let word = payload.split(|&b| b == 0).next().unwrap_or_default();
                    seen.push((r.direction, String::from_utf8_lossy(word).into_owned()));
                }
            }
        }
        (seen, link.stats().dropped)
    });
    let client = ready_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        client,
        format!(
            "af_xdp, native XDP, copy mode, shared with pid {}",
            std::process::id()
        )
    );

    let peer = on_thread_in(&pair.a.netns, move || {
        let (mut tx, mut rx) = af_packet();
        tx.send_to(&test_frame(b_mac, a_mac, b"request"), None)
            .unwrap()
            .unwrap();
        af_packet_wait_for(&mut *rx, b"reply");
    });
    peer.join().expect("the peer got the reply");
    let (seen, dropped) = capture.join().expect("the capture");
    responder.join().expect("the responder");
    assert_eq!(
        seen,
        vec![
            (Direction::In, "request".to_owned()),
            (Direction::Out, "reply".to_owned())
        ]
    );
    assert_eq!(dropped, Some(0));
}

#[test]
fn no_program_is_left_after_sigkill() {
    let pair = VethPair::new(true);
    let mut child = KillOnDrop(spawn_child(&pair.b.netns, &[]));
    let verdict = child_verdict(&mut child.0);
    assert_eq!(verdict, "opened: af_xdp, native XDP, copy mode");
    assert!(xdp_attached(&pair.b.netns));
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");
    // The link's file descriptor closed with the process; the kernel
    // releases the program as the process exits.
    let deadline = Instant::now() + Duration::from_secs(2);
    while xdp_attached(&pair.b.netns) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !xdp_attached(&pair.b.netns),
        "the XDP program outlived its process"
    );
    // And the interface can be opened again at once.
    let mut again = KillOnDrop(spawn_child(&pair.b.netns, &[]));
    assert!(child_verdict(&mut again.0).starts_with("opened: "));
}
