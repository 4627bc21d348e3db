//! lab-pong, and the ARP answerer every tool with an address runs: what
//! they do with each received frame. The whole receive loop
//! (`pong::run`) over the fuzzer's frames, then each frame through
//! `pong::answer` and `arp::answer` directly: every answer is a
//! well-formed reply to exactly what was asked, and both output formats
//! stay whole lines (JSON lines parse).
#![no_main]

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;

use labctl::tools::arp::{self, Identity};
use labctl::tools::frames::{self, Arp};
use labctl::tools::output::{Format, Output};
use labctl::tools::pong::{self, AnswerKind, Handling, PongOptions};
use labctl_fuzz::{human_lines, json_events, records, MemLink};
use libfuzzer_sys::fuzz_target;
use pnet::util::MacAddr;

const ME: Identity = Identity {
    ip: Ipv4Addr::new(198, 18, 0, 2),
    mac: MacAddr(2, 0, 0, 0, 0, 2),
};

fuzz_target!(|data: &[u8]| {
    let (options, records) = records(data);
    let format = if options & 1 != 0 {
        Format::Json
    } else {
        Format::Human
    };
    let mut link = MemLink::new(records.iter().map(|r| (r.frame.clone(), r.direction)));
    link.send_outcomes = records.iter().map(|r| r.outcome).collect();
    let pong_options = PongOptions {
        iface: "fuzz0".into(),
        me: ME,
        count: None,
        quiet: options & 2 != 0,
    };
    let mut out = Output::new(format, Vec::new());
    // The loop ends when the frames run out (the link "ends").
    let ended = pong::run(&mut link, &pong_options, &mut out, &AtomicBool::new(false));
    assert!(ended.is_err(), "pong::run ended without its link ending");
    let output = out.into_inner();
    match format {
        Format::Json => {
            json_events(&output);
        }
        Format::Human => human_lines(&output),
    }
    // Every frame pong sent is a reply it could read back.
    for sent in &link.sent {
        frames::decode(sent).expect("pong sent a frame it cannot decode");
    }

    for record in &records {
        let bytes = &record.frame;
        let by_arp = arp::answer(bytes, &ME);
        match pong::answer(bytes, &ME, 7) {
            Handling::Answer {
                request,
                reply,
                kind: AnswerKind::Arp,
            } => {
                assert_eq!(
                    by_arp.as_ref(),
                    Some(&reply),
                    "pong and the ARP answerer disagree"
                );
                let asked = request.arp().expect("an ARP answer to an ARP frame");
                let answered = frames::decode(&reply).expect("an ARP reply decodes");
                let answered = answered.arp().expect("the reply is ARP");
                assert_eq!(answered.operation, Arp::REPLY);
                assert_eq!((answered.sender_ip, answered.sender_mac), (ME.ip, ME.mac));
                assert_eq!(
                    (answered.target_ip, answered.target_mac),
                    (asked.sender_ip, asked.sender_mac)
                );
            }
            Handling::Answer {
                request,
                reply,
                kind: AnswerKind::Echo,
            } => {
                assert_eq!(by_arp, None);
                let (ip, _, echo) = request.ipv4_echo().expect("an echo answer to an echo");
                assert_eq!((request.eth_dst, ip.dst), (ME.mac, ME.ip));
                let answered = frames::decode(&reply).expect("an echo reply decodes");
                assert_eq!(answered.eth_dst, request.eth_src);
                let (reply_ip, icmp, reply_echo) =
                    answered.ipv4_echo().expect("the reply is an echo");
                assert_eq!((reply_ip.src, reply_ip.dst), (ME.ip, ip.src));
                assert!(reply_ip.header_checksum_ok && icmp.checksum_ok);
                assert_eq!(icmp.icmp_type, 0);
                assert_eq!(
                    (reply_echo.id, reply_echo.seq, reply_echo.payload),
                    (echo.id, echo.seq, echo.payload)
                );
            }
            Handling::Ignore | Handling::Malformed(_) => {
                // pong and the ARP answerer agree on what is theirs to answer.
                assert_eq!(by_arp, None, "the ARP answerer answered what pong ignored");
            }
        }
        // The decoder's words for any frame: the capture and pong lines.
        if let Ok(frame) = frames::decode(bytes) {
            let _ = frame.to_string();
        }
    }
});
