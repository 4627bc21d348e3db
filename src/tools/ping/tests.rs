//! lab-ping against an in-memory link whose peer is pong's own handler (or
//! a scripted misbehaving one).

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;

use super::*;
use crate::tools::datalink::fake::{FakeLink, Peer};
use crate::tools::frames::Arp;
use crate::tools::output::Format;
use crate::tools::pong::{self, Handling, Identity};
use pnet::packet::ipv4::{self as pnet_ipv4, MutableIpv4Packet};

const ME: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
const PEER: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 2),
    mac: MacAddr(2, 0, 0, 0, 0, 2),
};

fn me() -> Interface {
    Interface {
        name: "eth1".into(),
        index: 2,
        mac: ME,
        ipv4: Some(Ipv4Addr::new(198, 18, 0, 1)),
    }
}

fn options(count: u64) -> PingOptions {
    PingOptions {
        destination: PEER.ip,
        gateway: None,
        source: Ipv4Addr::new(198, 18, 0, 1),
        count,
        pacing: Pacing::Interval(Duration::from_millis(1)),
        timeout: Duration::from_millis(100),
        size: 56,
        id: 70,
        quiet: false,
        peer_mac: None,
    }
}

/// Each answer pong would send, `copies` times.
fn pong_peer(copies: usize) -> Peer {
    Box::new(move |frame| match pong::answer(frame, &PEER, 0) {
        Handling::Answer { reply, .. } => vec![reply; copies],
        _ => Vec::new(),
    })
}

/// Runs a ping and returns its summary and its human output lines.
fn ping(
    link: &mut FakeLink,
    options: &PingOptions,
) -> (Result<PingSummary, ToolError>, Vec<String>) {
    let mut out = Output::new(Format::Human, Vec::new());
    let stop = AtomicBool::new(false);
    let result = run(link, &me(), options, &mut out, &stop);
    let text = String::from_utf8(out.into_inner()).unwrap();
    (result, text.lines().map(str::to_owned).collect())
}

#[test]
fn every_request_answered_once() {
    let mut link = FakeLink::new(pong_peer(1));
    let (summary, lines) = ping(&mut link, &options(3));
    let summary = summary.unwrap();
    assert_eq!(
        (summary.transmitted, summary.received, summary.duplicates),
        (3, 3, 0)
    );
    assert_eq!(
        lines[0],
        "PING 198.18.0.2 (02:00:00:00:00:02) from 198.18.0.1 eth1 (fake): 56 data bytes"
    );
    for (seq, line) in lines[1..4].iter().enumerate() {
        let prefix = format!("64 bytes from 198.18.0.2: icmp_seq={seq} ttl=64 time=");
        assert!(line.starts_with(&prefix) && line.ends_with(" ms"), "{line}");
    }
    assert_eq!(lines[4], "--- 198.18.0.2 ping statistics ---");
    assert_eq!(
        lines[5],
        "3 packets transmitted, 3 received, 0% packet loss"
    );
    assert!(lines[6].starts_with("rtt min/avg/max = "));
    // One ARP request, then three echo requests.
    assert_eq!(link.sent.len(), 4);
}

#[test]
fn requests_carry_our_id_sequence_and_payload() {
    let mut link = FakeLink::new(pong_peer(1));
    let _ = ping(&mut link, &options(2));
    let request = frames::decode(&link.sent[2]).unwrap();
    let (ip, icmp, echo) = request.ipv4_echo().unwrap();
    assert_eq!((icmp.icmp_type, echo.id, echo.seq), (8, 70, 1));
    assert_eq!(
        (ip.ttl, ip.header_checksum_ok, icmp.checksum_ok),
        (64, true, true)
    );
    assert_eq!(echo.payload, (0..56u8).collect::<Vec<_>>());
    assert_eq!(request.eth_dst, PEER.mac);
}

#[test]
fn a_second_reply_is_a_duplicate() {
    let mut link = FakeLink::new(pong_peer(2));
    let (summary, lines) = ping(&mut link, &options(3));
    let summary = summary.unwrap();
    assert_eq!(summary.received, 3);
    // The last request's duplicate comes after ping stopped listening.
    assert_eq!(summary.duplicates, 2);
    assert_eq!(
        lines.iter().filter(|line| line.ends_with("(DUP!)")).count(),
        2
    );
    assert!(lines
        .contains(&"3 packets transmitted, 3 received, +2 duplicates, 0% packet loss".to_owned()));
}

#[test]
fn nobody_answering_arp_is_an_error_with_exit_code_1() {
    let mut link = FakeLink::silent();
    let mut options = options(3);
    options.timeout = Duration::from_millis(5);
    let (result, lines) = ping(&mut link, &options);
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_string()
            .starts_with("no ARP reply from 198.18.0.2 on eth1 after 3 requests"),
        "{error}"
    );
    assert!(lines.is_empty());
    assert_eq!(link.sent.len(), arp::ARP_TRIES as usize);
}

#[test]
fn a_given_peer_mac_skips_arp() {
    let mut link = FakeLink::silent();
    let mut options = options(2);
    options.timeout = Duration::from_millis(5);
    options.peer_mac = Some(PEER.mac);
    let (result, lines) = ping(&mut link, &options);
    let summary = result.unwrap();
    assert_eq!((summary.transmitted, summary.received), (2, 0));
    assert_eq!(
        lines[0],
        "PING 198.18.0.2 (02:00:00:00:00:02) from 198.18.0.1 eth1 (fake): 56 data bytes"
    );
    assert_eq!(link.sent.len(), 2, "echo requests only, no ARP");
    for frame in &link.sent {
        let frame = frames::decode(frame).unwrap();
        assert_eq!(frame.eth_dst, PEER.mac);
        assert!(frame.ipv4_echo().is_some());
    }
}

#[test]
fn unanswered_echo_is_loss_not_an_error() {
    // Answers ARP only.
    let peer: Peer = Box::new(|frame| match pong::answer(frame, &PEER, 0) {
        Handling::Answer {
            reply,
            kind: pong::AnswerKind::Arp,
            ..
        } => vec![reply],
        _ => Vec::new(),
    });
    let mut link = FakeLink::new(peer);
    let mut options = options(2);
    options.timeout = Duration::from_millis(20);
    let (summary, lines) = ping(&mut link, &options);
    let summary = summary.unwrap();
    assert_eq!((summary.transmitted, summary.received), (2, 0));
    assert_eq!(summary.loss_percent, 100.0);
    assert_eq!(
        lines.last().unwrap(),
        "2 packets transmitted, 0 received, 100% packet loss"
    );
}

#[test]
fn out_of_order_late_and_wrong_data_are_flagged() {
    // Holds the reply to seq 0 until seq 1 is sent, and answers seq 1 with
    // a changed payload.
    let held = Rc::new(RefCell::new(None));
    let held_by_peer = Rc::clone(&held);
    let peer: Peer = Box::new(move |frame| {
        let Handling::Answer { request, reply, .. } = pong::answer(frame, &PEER, 0) else {
            return Vec::new();
        };
        let Some((_, _, echo)) = request.ipv4_echo() else {
            return vec![reply];
        };
        match echo.seq {
            0 => {
                *held_by_peer.borrow_mut() = Some(reply);
                Vec::new()
            }
            _ => {
                let link = Link {
                    src: PEER.mac,
                    dst: ME,
                };
                let ip = Ipv4Params {
                    src: PEER.ip,
                    dst: Ipv4Addr::new(198, 18, 0, 1),
                    ident: 0,
                    dont_fragment: false,
                };
                let changed = vec![0xee; echo.payload.len()];
                let wrong =
                    frames::icmp_echo(link, ip, EchoKind::Reply, echo.id, echo.seq, &changed)
                        .unwrap();
                let mut answers = vec![wrong];
                answers.extend(held_by_peer.borrow_mut().take());
                answers
            }
        }
    });
    let mut link = FakeLink::new(peer);
    let mut options = options(2);
    options.pacing = Pacing::Interval(Duration::from_millis(30));
    options.timeout = Duration::from_millis(10);
    let (summary, lines) = ping(&mut link, &options);
    let summary = summary.unwrap();
    assert_eq!(
        (
            summary.received,
            summary.out_of_order,
            summary.late,
            summary.wrong_data
        ),
        (2, 1, 1, 1)
    );
    assert!(
        lines[1].starts_with("64 bytes from 198.18.0.2: icmp_seq=1 ")
            && lines[1].ends_with(" ms (wrong data)"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("64 bytes from 198.18.0.2: icmp_seq=0 ")
            && lines[2].ends_with(" ms (late) (out of order)"),
        "{}",
        lines[2]
    );
}

#[test]
fn corrupted_foreign_and_malformed_frames_are_skipped() {
    let peer: Peer = Box::new(|frame| {
        let Handling::Answer { reply, kind, .. } = pong::answer(frame, &PEER, 0) else {
            return Vec::new();
        };
        if kind == pong::AnswerKind::Arp {
            return vec![reply];
        }
        let mut corrupted = reply.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0xff;
        let mut foreign_id = reply.clone();
        foreign_id[frames::ETHERNET_HEADER_LEN + 20 + 4] ^= 1;
        vec![vec![1, 2, 3], corrupted, foreign_id, reply]
    });
    let mut link = FakeLink::new(peer);
    let (summary, _) = ping(&mut link, &options(2));
    let summary = summary.unwrap();
    assert_eq!((summary.received, summary.duplicates), (2, 0));
    assert_eq!((summary.corrupted, summary.malformed), (2, 2));
}

#[test]
fn our_own_outgoing_frames_are_never_replies() {
    // The peer never answers echo, but the link shows us our own requests.
    let peer: Peer = Box::new(|frame| match pong::answer(frame, &PEER, 0) {
        Handling::Answer {
            reply,
            kind: pong::AnswerKind::Arp,
            ..
        } => vec![reply],
        _ => Vec::new(),
    });
    let mut link = FakeLink::new(peer);
    let mut options = options(1);
    options.timeout = Duration::from_millis(20);
    let mut out = Output::new(Format::Human, Vec::new());
    let stop = AtomicBool::new(false);
    let me = me();
    let peer_mac = arp::resolve_mac(
        &mut link,
        &me,
        options.source,
        PEER.ip,
        options.timeout,
        &stop,
    )
    .unwrap();
    let mut session = Session::new(&me, &options, peer_mac);
    let request = session.request(0).unwrap();
    link.queue(request.clone(), Direction::Out);
    exchange(&mut link, &mut session, &mut out, &stop).unwrap();
    assert_eq!(session.summary().received, 0);
    // Even handed over as if incoming, a request is not a reply.
    assert!(session.on_frame(&request, Instant::now()).is_none());
}

#[test]
fn flood_sends_on_each_reply_and_prints_only_the_summary() {
    let mut link = FakeLink::new(pong_peer(1));
    let mut options = options(200);
    options.pacing = Pacing::Flood;
    let started = Instant::now();
    let (summary, lines) = ping(&mut link, &options);
    assert_eq!(summary.unwrap().received, 200);
    // Paced by replies, not by the 10ms fallback.
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(lines.len(), 4, "{lines:?}");
}

#[test]
fn rate_spreads_the_requests() {
    let mut link = FakeLink::new(pong_peer(1));
    let mut options = options(11);
    options.pacing = Pacing::Rate(500.0);
    let started = Instant::now();
    let (summary, _) = ping(&mut link, &options);
    assert_eq!(summary.unwrap().received, 11);
    // Ten gaps of 2ms.
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_stop_ends_the_run_with_a_summary() {
    let mut link = FakeLink::new(pong_peer(1));
    let mut out = Output::new(Format::Json, Vec::new());
    let stop = AtomicBool::new(true);
    let summary = run(&mut link, &me(), &options(5), &mut out, &stop);
    // Stopped before ARP could be answered.
    assert_eq!(summary.unwrap_err().exit_code(), 1);
}

#[test]
fn json_events_carry_the_same_facts() {
    let mut link = FakeLink::new(pong_peer(1));
    let mut out = Output::new(Format::Json, Vec::new());
    let stop = AtomicBool::new(false);
    run(&mut link, &me(), &options(2), &mut out, &stop).unwrap();
    let text = String::from_utf8(out.into_inner()).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["start", "reply", "reply", "summary"]);
    assert_eq!(events[0]["destination_mac"], "02:00:00:00:00:02");
    assert_eq!(events[2]["seq"], 1);
    assert_eq!(events[2]["ttl"], 64);
    assert_eq!(events[2]["dup"], false);
    assert_eq!(events[3]["received"], 2);
    assert!(events[3]["rtt_avg_ms"].as_f64().unwrap() >= 0.0);
}

#[test]
fn summary_lines() {
    let summary = PingSummary {
        destination: Some(PEER.ip),
        transmitted: 3,
        received: 2,
        duplicates: 1,
        late: 1,
        loss_percent: 33.3333,
        rtt_min_ms: Some(0.061),
        rtt_avg_ms: Some(0.072),
        rtt_max_ms: Some(0.084),
        ..PingSummary::default()
    };
    assert_eq!(
        summary.to_string(),
        "--- 198.18.0.2 ping statistics ---\n\
         3 packets transmitted, 2 received, +1 duplicates, 1 late, 33.3333% packet loss\n\
         rtt min/avg/max = 0.061/0.072/0.084 ms"
    );
}

#[test]
fn the_kernels_receive_time_ends_the_rtt_when_it_fits() {
    let me = me();
    let options = options(3);
    let mut session = Session::new(&me, &options, PEER.mac);
    let reply_to = |session: &Session<'_>, index: u64| match pong::answer(
        &session.request(index).unwrap(),
        &PEER,
        0,
    ) {
        Handling::Answer { reply, .. } => reply,
        other => panic!("pong did not answer: {other:?}"),
    };
    let (sent, wall) = (Instant::now(), SystemTime::now());
    let read = sent + Duration::from_micros(900);
    // Received by the kernel 300 µs after the send, read 600 µs later.
    session.sent_at(0, sent, wall);
    let reply = reply_to(&session, 0);
    let kernel = wall + Duration::from_micros(300);
    let timed = session.on_frame_at(&reply, read, Some(kernel)).unwrap();
    assert_eq!(timed.time_ms, 0.3);
    // A "kernel time" after the read (the real-time clock stepped): the
    // read time counts.
    session.sent_at(1, sent, wall);
    let reply = reply_to(&session, 1);
    let stepped = wall + Duration::from_secs(5);
    assert_eq!(
        session
            .on_frame_at(&reply, read, Some(stepped))
            .unwrap()
            .time_ms,
        0.9
    );
    // Before the send: the same.
    session.sent_at(2, sent, wall);
    let reply = reply_to(&session, 2);
    let early = wall - Duration::from_secs(1);
    assert_eq!(
        session
            .on_frame_at(&reply, read, Some(early))
            .unwrap()
            .time_ms,
        0.9
    );
}

proptest! {
    #[test]
    fn any_frame_is_safe_for_a_session(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let me = me();
        let options = options(1);
        let mut session = Session::new(&me, &options, PEER.mac);
        session.sent(0, Instant::now());
        let _ = session.on_frame(&bytes, Instant::now());
        let _ = session.summary().to_string();
    }
}

/// A router on our link at 198.18.0.254: it answers ARP for itself and
/// brings back, from PEER one hop further, the reply to each echo request
/// sent to its MAC (TTL 63, as after one hop).
const ROUTER: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 254),
    mac: MacAddr(2, 0, 0, 0, 0, 0xfe),
};
const FAR: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 9, 2),
    mac: MacAddr(2, 0, 0, 0, 9, 2),
};

fn router_peer(ask_for_us_first: bool) -> Peer {
    let mut asked = !ask_for_us_first;
    Box::new(move |frame| {
        if let Some(reply) = arp::answer(frame, &ROUTER) {
            return vec![reply];
        }
        let Ok(decoded) = frames::decode(frame) else {
            return Vec::new();
        };
        if decoded.eth_dst != ROUTER.mac {
            return Vec::new();
        }
        // As a kernel router does, on the far side: FAR answers, and the
        // router rewrites the Ethernet ends and takes one from the TTL.
        let mut rewritten = frame.to_vec();
        rewritten[..6].copy_from_slice(&FAR.mac.octets());
        let Handling::Answer { reply, .. } = pong::answer(&rewritten, &FAR, 0) else {
            return Vec::new();
        };
        let mut reply = reply;
        reply[..6].copy_from_slice(&ME.octets());
        reply[6..12].copy_from_slice(&ROUTER.mac.octets());
        let mut ip = MutableIpv4Packet::new(&mut reply[14..]).unwrap();
        ip.set_ttl(ip.get_ttl() - 1);
        let checksum = pnet_ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(checksum);
        let mut answers = Vec::new();
        if !asked {
            // The router must resolve us before it forwards the reply.
            asked = true;
            answers.push(frames::arp_request(
                ROUTER.mac,
                ROUTER.ip,
                Ipv4Addr::new(198, 18, 0, 1),
            ));
        }
        answers.push(reply);
        answers
    })
}

#[test]
fn through_a_gateway_arp_goes_to_the_gateway_and_the_ttl_shows_the_hop() {
    let mut link = FakeLink::new(router_peer(false));
    let mut options = options(2);
    options.destination = FAR.ip;
    options.gateway = Some(ROUTER.ip);
    let (result, lines) = ping(&mut link, &options);
    let summary = result.unwrap();
    assert_eq!(summary.received, 2);
    let arp = frames::decode(&link.sent[0]).unwrap();
    assert_eq!(arp.arp().unwrap().target_ip, ROUTER.ip);
    for request in &link.sent[1..] {
        let frame = frames::decode(request).unwrap();
        assert_eq!(frame.eth_dst, ROUTER.mac);
        assert_eq!(frame.ipv4_echo().unwrap().0.dst, FAR.ip);
    }
    assert_eq!(
        lines[0],
        "PING 198.18.9.2 via 198.18.0.254 (02:00:00:00:00:fe) from 198.18.0.1 eth1 (fake): 56 data bytes"
    );
    assert!(
        lines[1].starts_with("64 bytes from 198.18.9.2: icmp_seq=0 ttl=63 time="),
        "{}",
        lines[1]
    );
}

#[test]
fn arp_requests_for_us_are_answered_while_pinging() {
    let mut link = FakeLink::new(router_peer(true));
    let mut options = options(3);
    options.destination = FAR.ip;
    options.gateway = Some(ROUTER.ip);
    let (result, _) = ping(&mut link, &options);
    let summary = result.unwrap();
    assert_eq!(summary.received, 3);
    assert_eq!(summary.arp_replies, 1);
    let replies: Vec<_> = link
        .sent
        .iter()
        .filter_map(|sent| {
            let frame = frames::decode(sent).ok()?;
            let arp = *frame.arp()?;
            (arp.operation == Arp::REPLY).then_some((frame.eth_dst, arp))
        })
        .collect();
    assert_eq!(replies.len(), 1);
    let (eth_dst, arp) = &replies[0];
    assert_eq!(*eth_dst, ROUTER.mac);
    assert_eq!((arp.sender_ip, arp.sender_mac), (options.source, ME));
    assert_eq!(arp.target_ip, ROUTER.ip);
}
