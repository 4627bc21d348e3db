use std::sync::atomic::AtomicBool;

use super::*;
use crate::tools::datalink::fake::FakeLink;
use crate::tools::frames;
use crate::tools::output::Format;
use crate::tools::sink::Sink;

fn me() -> Interface {
    Interface {
        name: "eth1".into(),
        index: 2,
        mac: MacAddr::new(2, 0, 0, 0, 0x40, 1),
        ipv4: Some(Ipv4Addr::new(198, 18, 40, 1)),
    }
}

fn options(limit: Limit, rate: Option<f64>) -> GenOptions {
    GenOptions {
        destination: Ipv4Addr::new(198, 18, 40, 2),
        destination_mac: MacAddr::new(2, 0, 0, 0, 0x40, 2),
        source: Ipv4Addr::new(198, 18, 40, 1),
        rate,
        limit,
        size: 64,
        flows: 3,
        port: DEFAULT_PORT,
        session: 7,
    }
}

fn run_on(link: &mut FakeLink, options: &GenOptions, format: Format) -> (GenSummary, String) {
    let mut out = Output::new(format, Vec::new());
    let summary = run(link, &me(), options, &mut out, &AtomicBool::new(false)).unwrap();
    (summary, String::from_utf8(out.into_inner()).unwrap())
}

#[test]
fn frames_are_numbered_per_flow_and_the_sink_counts_them_all() {
    let mut link = FakeLink::silent();
    let (summary, text) = run_on(&mut link, &options(Limit::Count(300), None), Format::Human);
    assert_eq!(summary.sent, 300);
    assert_eq!(link.sent.len(), 300);
    assert!(link.sent.iter().all(|frame| frame.len() == 64));
    let mut sink = Sink::new(Ipv4Addr::new(198, 18, 40, 2));
    for frame in &link.sent {
        sink.on_frame(frame, traffic::monotonic_ns());
    }
    let counted = sink.summary(Duration::from_secs(1));
    assert_eq!((counted.received, counted.lost), (300, 0));
    assert_eq!(counted.flows.len(), 3);
    assert!(counted.flows.iter().all(|flow| flow.received == 100));
    let ports: Vec<u16> = counted.flows.iter().map(|f| f.source_port).collect();
    assert_eq!(ports, [49152, 49153, 49154]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "generating to 198.18.40.2 (02:00:00:00:40:02) from 198.18.40.1 eth1 (fake): 64-byte frames at full speed"
    );
    assert!(lines[1].starts_with("sent 300 frames in "), "{text}");
}

#[test]
fn a_paced_count_run_prints_the_contract_lines() {
    let mut link = FakeLink::silent();
    let (summary, text) = run_on(
        &mut link,
        &options(Limit::Count(400), Some(20_000.0)),
        Format::Human,
    );
    assert_eq!(summary.sent, 400);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "generating to 198.18.40.2 (02:00:00:00:40:02) from 198.18.40.1 eth1 (fake): 64-byte frames at 20000/s"
    );
    // 400 frames at 20,000/s take 20 ms: the last line says so, to the
    // scheduling delay of a loaded test machine (the pacing itself is
    // tested on a simulated clock in pacing.rs).
    let rate: f64 = lines[1]
        .strip_prefix("sent 400 frames in 0.0")
        .and_then(|rest| rest.split_once(" s ("))
        .and_then(|(_, rest)| rest.strip_suffix(" frames/s)"))
        .unwrap_or_else(|| panic!("not the contract's last line: {}", lines[1]))
        .parse()
        .unwrap();
    assert!((10_000.0..=20_000.0).contains(&rate), "{}", lines[1]);
    assert_eq!(lines.len(), 2);
}

#[test]
fn json_carries_the_same_events() {
    let mut link = FakeLink::silent();
    let (_, text) = run_on(
        &mut link,
        &options(Limit::Count(10), Some(1000.0)),
        Format::Json,
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["destination_mac"], "02:00:00:00:40:02");
    assert_eq!(events[0]["rate"], 1000.0);
    assert_eq!(events[1]["event"], "summary");
    assert_eq!(events[1]["sent"], 10);
    assert_eq!(events[1]["lost"], 0);
}

#[test]
fn a_duration_run_stops_on_time_at_its_rate() {
    let mut link = FakeLink::silent();
    let (summary, _) = run_on(
        &mut link,
        &options(Limit::Duration(Duration::from_millis(300)), Some(1000.0)),
        Format::Human,
    );
    assert!(summary.sent + summary.behind <= 301, "{summary:?}");
    assert!(summary.sent >= 250, "{summary:?}");
    assert_eq!(summary.seconds, 0.3);
}

#[test]
fn arp_requests_for_the_generator_are_answered() {
    let mut link = FakeLink::silent();
    let asker = MacAddr::new(2, 0, 0, 0, 0x40, 2);
    link.queue(
        frames::arp_request(
            asker,
            Ipv4Addr::new(198, 18, 40, 2),
            Ipv4Addr::new(198, 18, 40, 1),
        ),
        Direction::In,
    );
    link.queue(
        frames::arp_request(
            asker,
            Ipv4Addr::new(198, 18, 40, 2),
            Ipv4Addr::new(198, 18, 40, 9),
        ),
        Direction::In,
    );
    let (summary, _) = run_on(
        &mut link,
        &options(Limit::Count(5), Some(100.0)),
        Format::Human,
    );
    assert_eq!(summary.arp_replies, 1);
    let replies: Vec<_> = link
        .sent
        .iter()
        .filter_map(|frame| frames::decode(frame).ok()?.arp().copied())
        .collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].sender_ip, Ipv4Addr::new(198, 18, 40, 1));
    assert_eq!(replies[0].target_mac, asker);
}

/// Refuses sends (ENETDOWN) while `down` says so.
struct Flaky {
    inner: FakeLink,
    down: Box<dyn FnMut(usize) -> bool>,
    calls: usize,
}

impl Datalink for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }
    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        self.calls += 1;
        if (self.down)(self.calls) {
            return Err(DatalinkError::Io {
                op: "sending a frame",
                iface: "eth1".into(),
                source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
            });
        }
        self.inner.send(frame)
    }
    fn recv(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<crate::tools::datalink::Received<'_>>, DatalinkError> {
        self.inner.recv(timeout.min(Duration::from_millis(1)))
    }
}

#[test]
fn a_down_link_loses_frames_with_a_line_and_the_run_goes_on() {
    let mut link = Flaky {
        inner: FakeLink::silent(),
        down: Box::new(|call| (50..250).contains(&call)),
        calls: 0,
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let options = options(Limit::Count(2000), Some(20_000.0));
    let summary = run(
        &mut link,
        &me(),
        &options,
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap();
    let text = String::from_utf8(out.into_inner()).unwrap();
    assert_eq!(summary.sent + summary.lost, 2000, "{summary:?}");
    assert!(summary.lost > 0 && summary.sent >= 49, "{summary:?}");
    assert_eq!(link.inner.sent.len() as u64, summary.sent);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(
            &"eth1: Network is down (os error 100): frames count as lost until it is back up"
        ),
        "{text}"
    );
    assert!(
        lines.contains(
            &format!("eth1: {} frames lost while the link was down", summary.lost).as_str()
        ),
        "{text}"
    );
    // The sink sees exactly the gap lab-gen counted.
    let mut sink = Sink::new(options.destination);
    for frame in &link.inner.sent {
        sink.on_frame(frame, traffic::monotonic_ns());
    }
    let counted = sink.summary(Duration::from_secs(1));
    assert_eq!(counted.received, summary.sent);
    // Losses after the last frame received are invisible to a sink.
    assert!(counted.lost <= summary.lost, "{counted:?}");
}

/// Drops every `nth` frame it is given (ENOBUFS: the frame was taken and
/// dropped by a qdisc, as a lab's loss filter does).
struct Lossy {
    inner: FakeLink,
    nth: usize,
    calls: usize,
}

impl Datalink for Lossy {
    fn describe(&self) -> String {
        "lossy".into()
    }
    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        self.calls += 1;
        if self.calls % self.nth == 0 {
            return Err(DatalinkError::Io {
                op: "sending a frame",
                iface: "eth1".into(),
                source: std::io::Error::from_raw_os_error(libc::ENOBUFS),
            });
        }
        self.inner.send(frame)
    }
    fn recv(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<crate::tools::datalink::Received<'_>>, DatalinkError> {
        self.inner.recv(timeout.min(Duration::from_millis(1)))
    }
}

#[test]
fn a_queue_drop_loses_the_frame_it_hit_and_the_batch_goes_on() {
    let mut link = Lossy {
        inner: FakeLink::silent(),
        nth: 10,
        calls: 0,
    };
    let mut out = Output::new(Format::Human, Vec::new());
    let options = options(Limit::Count(2001), Some(200_000.0));
    let summary = run(
        &mut link,
        &me(),
        &options,
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap();
    // One frame in ten, whatever the batches: never the rest of a batch,
    // never a dropped frame sent again.
    assert_eq!(summary.queue_drops, 200, "{summary:?}");
    assert_eq!((summary.sent, summary.lost), (1801, 200), "{summary:?}");
    assert_eq!(link.inner.sent.len(), 1801);
    let mut sink = Sink::new(options.destination);
    for frame in &link.inner.sent {
        sink.on_frame(frame, traffic::monotonic_ns());
    }
    let counted = sink.summary(Duration::from_secs(1));
    assert_eq!(counted.received, 1801, "{counted:?}");
    // A flow's drops after its last frame received are invisible (3 flows).
    assert!((197..=200).contains(&counted.lost), "{counted:?}");
}

#[test]
fn another_error_is_fatal() {
    let mut link = Flaky {
        inner: FakeLink::silent(),
        down: Box::new(|_| false),
        calls: 0,
    };
    struct Broken;
    impl Datalink for Broken {
        fn describe(&self) -> String {
            "broken".into()
        }
        fn send(&mut self, _: &[u8]) -> Result<(), DatalinkError> {
            Err(DatalinkError::Io {
                op: "sending a frame",
                iface: "eth1".into(),
                source: std::io::Error::from_raw_os_error(libc::EMSGSIZE),
            })
        }
        fn recv(
            &mut self,
            _: Duration,
        ) -> Result<Option<crate::tools::datalink::Received<'_>>, DatalinkError> {
            Ok(None)
        }
    }
    let mut out = Output::new(Format::Human, Vec::new());
    let error = run(
        &mut Broken,
        &me(),
        &options(Limit::Count(5), None),
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(
        matches!(error, ToolError::FrameTooBig { len: 64, .. }),
        "{error}"
    );
    // The flaky link with no outage sends everything.
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(
        &mut link,
        &me(),
        &options(Limit::Count(5), None),
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.sent, 5);
}

#[test]
fn a_rate_the_path_could_not_reach_is_said_so() {
    let summary = |path, sent, lost, behind, seconds: f64| GenSummary {
        path,
        sent,
        lost,
        behind,
        seconds,
        rate: (sent as f64 / seconds).round(),
        ..GenSummary::default()
    };
    // Kept up (lost frames were offered in time): nothing to say.
    assert_eq!(
        shortfall(&summary(PATH_LIVE, 1000, 0, 0, 1.0), Some(1000.0)),
        None
    );
    assert_eq!(
        shortfall(&summary(PATH_DATALINK, 600, 400, 0, 1.0), Some(1000.0)),
        None
    );
    assert_eq!(shortfall(&summary(PATH_LIVE, 1000, 0, 0, 1.0), None), None);
    let said = shortfall(&summary(PATH_LIVE, 500_000, 0, 0, 1.0), Some(3e6)).unwrap();
    assert_eq!(
        said,
        "asked for 3000000/s, sent 500000/s on XDP live frames (0 frames behind): this path cannot reach that rate here; lower --rate"
    );
    let said = shortfall(&summary(PATH_DATALINK, 900, 0, 100, 1.0), Some(1000.0)).unwrap();
    assert!(
        said.contains("on the datalink (100 frames behind)"),
        "{said}"
    );
    assert!(
        said.ends_with("or let lab-gen use XDP live frames (--path auto)"),
        "{said}"
    );
}

#[test]
fn on_netmap_frames_are_written_in_place_numbered_and_counted_exactly() {
    use crate::tools::datalink::netmap::fake_link::FakeNetmap;
    // 2 TX rings of 64 slots; a native veth's swapped buffers.
    let mut link = FakeNetmap::new(2, 1, 64, 2048);
    link.kernel().swap_buffers(true);
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(
        &mut link,
        &me(),
        &options(Limit::Count(5000), None),
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.sent, 5000);
    let text = String::from_utf8(out.into_inner()).unwrap();
    assert!(
        text.lines().next().unwrap().starts_with("generating to 198.18.40.2 (02:00:00:00:40:02) from 198.18.40.1 eth1 (netmap (fake kernel)): 64-byte frames at full speed"),
        "{text}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("sent 5000 frames in "),
        "{text}"
    );
    let kernel = link.kernel();
    // Every free slot of both rings per sync: 126 frames a sync.
    assert!(kernel.txsyncs <= 5000 / 126 + 2, "{} syncs", kernel.txsyncs);
    let wire = kernel.wire().to_vec();
    assert_eq!(wire.len(), 5000);
    // The same bytes the copying path builds, but for the send times.
    let generator = Generator::new(&me(), &options(Limit::Count(5000), None)).unwrap();
    let mut sink = Sink::new(Ipv4Addr::new(198, 18, 40, 2));
    for (i, frame) in wire.iter().enumerate() {
        let sent_ns = u64::from_be_bytes(
            frame[traffic::SENT_AT..traffic::SENT_AT + 8]
                .try_into()
                .unwrap(),
        );
        let (flow, stamp) = generator.stamp_of(i as u64, sent_ns);
        let mut expected = Vec::new();
        generator.templates[flow].stamp_into(stamp, &mut expected);
        assert_eq!(frame, &expected, "frame {i}");
        sink.on_frame(frame, traffic::monotonic_ns());
    }
    let counted = sink.summary(Duration::from_secs(1));
    assert_eq!(
        (counted.received, counted.lost, counted.corrupted),
        (5000, 0, 0)
    );
    let per_flow: Vec<u64> = counted.flows.iter().map(|f| f.received).collect();
    assert_eq!(per_flow, [1667, 1667, 1666]);
}

#[test]
fn on_netmap_a_paced_run_keeps_its_count() {
    use crate::tools::datalink::netmap::fake_link::FakeNetmap;
    let mut link = FakeNetmap::new(1, 1, 256, 2048);
    let mut out = Output::new(Format::Human, Vec::new());
    let summary = run(
        &mut link,
        &me(),
        &options(Limit::Count(2000), Some(100_000.0)),
        &mut out,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.sent, 2000);
    assert_eq!(link.kernel().wire().len(), 2000);
    // 100,000/s: bursts of 100 µs, 10 frames, not whole rings.
    assert!(
        link.kernel().txsyncs >= 150,
        "{} syncs",
        link.kernel().txsyncs
    );
}

/// A lab that chose netmap measures netmap: `auto` never sends live
/// frames around its rings (and says why, before loading anything).
#[test]
fn netmap_is_never_bypassed_by_live_frames() {
    let why = match try_live(DatalinkKind::Netmap, &me(), &options(Limit::Count(1), None)) {
        Ok(_) => panic!("live frames on a netmap interface"),
        Err(why) => why.to_string(),
    };
    assert_eq!(
        why,
        "eth1 is on netmap, whose rings XDP frames would bypass"
    );
}
