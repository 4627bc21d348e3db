//! lab-capture on an in-memory link: every kind of frame gets its line,
//! the pcap file holds every frame, and the stops behave.

use std::net::Ipv4Addr;

use pcap_file::pcap::PcapReader;
use pnet::util::MacAddr;

use super::*;
use crate::tools::datalink::fake::FakeLink;
use crate::tools::frames::{EchoKind, Ipv4Params, Link, TcpParams};
use crate::tools::output::Format;

const A: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
const B: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);
const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// One frame of each kind, with the line lab-capture prints for it.
fn sample_frames() -> Vec<(Vec<u8>, Direction, &'static str)> {
    let link = Link { src: A, dst: B };
    let ip = Ipv4Params {
        src: IP_A,
        dst: IP_B,
        ident: 1,
        dont_fragment: true,
    };
    let tcp = TcpParams {
        src_port: 52472,
        dst_port: 6600,
        sequence: 1,
        acknowledgement: 0,
        flags: 0x02,
        window: 1024,
    };
    let mut ipv6 = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    ipv6.extend([0x60, 0, 0, 0, 0, 8, 58, 255]);
    ipv6.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ipv6.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ipv6.extend([133, 0, 0, 0, 0, 0, 0, 0]);
    let echo = frames::icmp_echo(link, ip, EchoKind::Request, 70, 0, b"abcd").unwrap();
    vec![
        (frames::arp_request(A, IP_A, IP_B), Direction::Out, "[eth1]: ARP request who-has 198.18.0.2 tell 198.18.0.1"),
        (echo.clone(), Direction::Out, "[eth1]: ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq=0, id=70)"),
        (frames::udp_datagram(link, ip, 5353, 9, b"four").unwrap(), Direction::In, "[eth1]: UDP Packet: 198.18.0.1:5353 > 198.18.0.2:9; length: 12"),
        (frames::tcp_segment(link, ip, tcp, b"").unwrap(), Direction::In, "[eth1]: TCP Packet: 198.18.0.1:52472 > 198.18.0.2:6600; length: 20"),
        (ipv6, Direction::In, "[eth1]: ICMPv6 packet fe80::1 -> ff02::1 (type=133, code=0)"),
        (vec![0xff; 6].into_iter().chain([2, 0, 0, 0, 0, 1, 0x88, 0xb5, 1, 2]).collect(), Direction::In,
         "[eth1]: Unknown packet: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff; ethertype: 0x88b5 length: 16"),
        (echo[..30].to_vec(), Direction::In, "[eth1]: Malformed IPv4 Packet: 16 bytes, shorter than its 20-byte header"),
    ]
}

fn capture(
    link: &mut FakeLink,
    options: &CaptureOptions,
    format: Format,
) -> (CaptureSummary, String) {
    let mut out = Output::new(format, Vec::new());
    let summary = run(link, options, &mut out, &AtomicBool::new(false)).unwrap();
    (summary, String::from_utf8(out.into_inner()).unwrap())
}

#[test]
fn a_line_per_frame_and_every_frame_in_the_pcap() {
    let samples = sample_frames();
    let mut link = FakeLink::silent();
    for (frame, direction, _) in &samples {
        link.queue(frame.clone(), *direction);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eth1.pcap");
    let options = CaptureOptions {
        iface: "eth1".into(),
        pcap: Some(path.clone()),
        count: Some(samples.len() as u64),
        ..CaptureOptions::default()
    };
    let (summary, text) = capture(&mut link, &options, Format::Human);
    let mut expected = vec!["capturing on eth1 (fake)"];
    expected.extend(samples.iter().map(|(_, _, line)| *line));
    expected.push("7 packets captured, 0 dropped, 1 malformed");
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    assert_eq!(summary.captured, 7);

    let mut reader = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.header().datalink, DataLink::ETHERNET);
    let mut written = Vec::new();
    while let Some(packet) = reader.next_packet() {
        written.push(packet.unwrap().data.into_owned());
    }
    let sent: Vec<Vec<u8>> = samples.into_iter().map(|(frame, _, _)| frame).collect();
    assert_eq!(written, sent);
}

#[test]
fn json_frames_say_their_direction() {
    let mut link = FakeLink::silent();
    for (frame, direction, _) in sample_frames() {
        link.queue(frame, direction);
    }
    let options = CaptureOptions {
        iface: "eth1".into(),
        count: Some(7),
        ..CaptureOptions::default()
    };
    let (_, text) = capture(&mut link, &options, Format::Json);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "capturing");
    assert_eq!(events[1]["event"], "frame");
    assert_eq!(events[1]["direction"], "out");
    assert_eq!(events[1]["frame"]["network"], "arp");
    assert_eq!(events[3]["direction"], "in");
    assert_eq!(events[3]["frame"]["transport"]["dst_port"], 9);
    assert_eq!(events[7]["event"], "malformed");
    assert_eq!(events[7]["layer"], "ipv4");
    assert_eq!(events[8]["event"], "summary");
    assert_eq!(events[8]["captured"], 7);
    assert_eq!(events[8]["malformed"], 1);
}

#[test]
fn a_duration_ends_the_capture_after_draining() {
    let mut link = FakeLink::silent();
    link.queue(frames::arp_request(A, IP_A, IP_B), Direction::In);
    let options = CaptureOptions {
        iface: "eth1".into(),
        duration: Some(Duration::from_millis(30)),
        quiet: true,
        ..CaptureOptions::default()
    };
    let started = Instant::now();
    let (summary, text) = capture(&mut link, &options, Format::Human);
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(summary.captured, 1);
    assert_eq!(
        text,
        "capturing on eth1 (fake)\n1 packets captured, 0 dropped, 0 malformed\n"
    );
}

#[test]
fn a_watched_port_that_goes_away_ends_the_capture_with_its_summary() {
    let mut link = FakeLink::silent();
    for (frame, direction, _) in sample_frames().into_iter().take(2) {
        link.queue(frame, direction);
    }
    link.ends = true;
    // No count, no duration: only the end of the port stops it.
    let (summary, text) = capture(&mut link, &CaptureOptions::default(), Format::Human);
    assert_eq!(summary.captured, 2);
    assert_eq!(
        text.lines().last(),
        Some("2 packets captured, 0 dropped, 0 malformed")
    );
}

#[test]
fn a_stop_still_counts_what_is_queued() {
    let mut link = FakeLink::silent();
    for _ in 0..5 {
        link.queue(frames::arp_request(A, IP_A, IP_B), Direction::In);
    }
    let options = CaptureOptions {
        iface: "eth1".into(),
        quiet: true,
        ..CaptureOptions::default()
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(&mut link, &options, &mut out, &AtomicBool::new(true)).unwrap();
    assert_eq!(summary.captured, 5);
}

#[test]
fn an_unwritable_pcap_file_is_an_output_error() {
    let mut link = FakeLink::silent();
    let options = CaptureOptions {
        iface: "eth1".into(),
        pcap: Some("/nonexistent-dir/x.pcap".into()),
        ..CaptureOptions::default()
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let error = run(&mut link, &options, &mut out, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(error.exit_code(), 4);
    assert_eq!(
        error.to_string(),
        "creating pcap file /nonexistent-dir/x.pcap: No such file or directory (os error 2)"
    );
}
