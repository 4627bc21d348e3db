//! The tool tests of the AF_PACKET issue, repeated on af_xdp: the real
//! binaries on a veth pair between two namespaces, the mode in their
//! first line, af_xdp against af_packet, the kernel bypassed, a capture
//! sharing the interface with lab-pong, and errors on one line.
//!
//! Side a is 198.18.0.1 (02:00:00:00:00:01), side b 198.18.0.2
//! (02:00:00:00:00:02), both on eth1.

use std::path::Path;
use std::time::Duration;

use crate::support::bin;
use crate::support::netns::ip;
use crate::support::process::{Finished, Running};
use crate::support::tools::{
    assert_busy_poll_behaviour, assert_ping_and_pong_print_the_contract_lines,
    assert_ping_interrupted_prints_its_summary, count, pair, ping, start, tshark_frames, READY,
};

/// What af_xdp obtains on a veth.
const MODE: &str = "af_xdp, native XDP, copy mode";

#[test]
fn ping_and_pong_on_af_xdp_print_the_contract_lines_and_the_mode() {
    assert_ping_and_pong_print_the_contract_lines(&["--datalink", "af_xdp"], MODE);
}

/// AF_XDP has no "both ends" rule: either end may be af_packet.
#[test]
fn af_xdp_and_af_packet_ends_work_together() {
    let pair = pair(true);
    for (ping_datalink, pong_datalink) in [("af_xdp", "af_packet"), ("af_packet", "af_xdp")] {
        let pong = start(
            &pair.b.netns,
            "lab-pong",
            &["eth1", "--datalink", pong_datalink],
            "listening on",
        );
        let pinged = ping(
            &pair.a.netns,
            &[
                "eth1",
                "198.18.0.2",
                "--count",
                "3",
                "--interval",
                "50ms",
                "--datalink",
                ping_datalink,
            ],
        );
        let ponged = pong.stop(libc::SIGINT);
        let what = format!("ping on {ping_datalink}, pong on {pong_datalink}: {pinged:?}");
        assert!(pinged.status.success(), "{what}");
        assert!(
            pinged
                .stdout
                .contains(&"3 packets transmitted, 3 received, 0% packet loss".to_owned()),
            "{what}"
        );
        assert_eq!(count(&ponged.stdout, "ICMP echo reply"), 3, "{ponged:?}");
    }
}

/// The kernel of b is left to answer (no sysctls): with lab-pong on
/// af_xdp it sees nothing, so the pinger gets exactly one reply per
/// request, all from lab-pong, and no duplicate.
#[test]
fn pong_on_af_xdp_is_the_only_one_answering() {
    let pair = pair(false);
    // Without lab-pong, b's kernel answers ARP and echo itself.
    let kernel_only = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "2", "--interval", "50ms"],
    );
    assert_eq!(
        count(&kernel_only.stdout, " bytes from 198.18.0.2"),
        2,
        "{kernel_only:?}"
    );

    let pong = start(
        &pair.b.netns,
        "lab-pong",
        &["eth1", "--datalink", "af_xdp"],
        "listening on",
    );
    let pinged = ping(
        &pair.a.netns,
        &["eth1", "198.18.0.2", "--count", "5", "--interval", "50ms"],
    );
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
    assert_eq!(count(&ponged.stdout, "ARP reply"), 1, "{ponged:?}");
}

/// The number of frames tshark reads from `pcap`.
/// The example lab, on namespaces: lab-pong and lab-capture on the same
/// eth1, both on af_xdp; the capture sees both directions, 8 frames,
/// whichever of the two starts first (and so owns the socket).
#[test]
fn capture_and_pong_share_an_interface_and_the_capture_sees_both_ways() {
    let pair = pair(true);
    let dir = tempfile::tempdir().unwrap();
    for capture_first in [false, true] {
        let pcap = dir.path().join(format!("b-eth1-{capture_first}.pcap"));
        let capture_args = [
            "eth1",
            "--datalink",
            "af_xdp",
            "--count",
            "8",
            "--pcap",
            pcap.to_str().unwrap(),
        ];
        let pong_args = ["eth1", "--datalink", "af_xdp"];
        let (capture, pong) = if capture_first {
            let capture = start(&pair.b.netns, "lab-capture", &capture_args, "capturing on");
            let pong = start(&pair.b.netns, "lab-pong", &pong_args, "listening on");
            (capture, pong)
        } else {
            let pong = start(&pair.b.netns, "lab-pong", &pong_args, "listening on");
            let capture = start(&pair.b.netns, "lab-capture", &capture_args, "capturing on");
            (capture, pong)
        };
        let pinged = ping(
            &pair.a.netns,
            &[
                "eth1",
                "198.18.0.2",
                "--count",
                "3",
                "--interval",
                "200ms",
                "--datalink",
                "af_xdp",
            ],
        );
        assert!(pinged.status.success(), "{pinged:?}");
        let captured = capture.finish(Duration::from_secs(10));
        let ponged = pong.stop(libc::SIGINT);
        let what = format!("capture first: {capture_first}: {captured:?} {ponged:?}");
        assert!(captured.status.success(), "{what}");
        let (shared, owner) = if capture_first {
            (&ponged.stdout[0], &captured.stdout[0])
        } else {
            (&captured.stdout[0], &ponged.stdout[0])
        };
        assert!(owner.ends_with(&format!("{MODE})")), "{what}");
        assert!(
            shared.contains(&format!("{MODE}, shared with pid ")),
            "the second tool says it shares the socket: {what}"
        );
        let lines = &captured.stdout;
        assert_eq!(count(lines, "ARP request who-has 198.18.0.2"), 1, "{what}");
        assert_eq!(count(lines, "ARP reply 198.18.0.2 is-at"), 1, "{what}");
        assert_eq!(
            count(lines, "ICMP echo request 198.18.0.1 -> 198.18.0.2"),
            3,
            "{what}"
        );
        assert_eq!(
            count(lines, "ICMP echo reply 198.18.0.2 -> 198.18.0.1"),
            3,
            "{what}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "8 packets captured, 0 dropped, 0 malformed",
            "{what}"
        );
        assert_eq!(tshark_frames(&pcap), 8, "{what}");
    }
}

/// When the tool that owns the socket exits, the one sharing it takes
/// over, and the next tool joins it: no frame is answered twice, none
/// is lost for the capture.
#[test]
fn the_capture_takes_over_when_pong_leaves() {
    let pair = pair(true);
    let af_xdp_pong = ["eth1", "--datalink", "af_xdp"];
    let ping_once = || {
        ping(
            &pair.a.netns,
            &["eth1", "198.18.0.2", "--count", "1", "--timeout", "2s"],
        )
    };
    let first_pong = start(&pair.b.netns, "lab-pong", &af_xdp_pong, "listening on");
    let capture = start(
        &pair.b.netns,
        "lab-capture",
        &["eth1", "--datalink", "af_xdp"],
        "shared with pid",
    );
    assert!(ping_once().status.success());
    first_pong.stop(libc::SIGINT);

    let second_pong = start(&pair.b.netns, "lab-pong", &af_xdp_pong, "listening on");
    let pinged = ping_once();
    let ponged = second_pong.stop(libc::SIGINT);
    let captured = capture.stop(libc::SIGINT);
    assert!(
        pinged.status.success(),
        "{pinged:?} {ponged:?} {captured:?}"
    );
    assert!(
        ponged.stdout[0].contains("shared with pid"),
        "the new pong joined the capture, which took over: {ponged:?}"
    );
    let lines = &captured.stdout;
    assert_eq!(count(lines, "ICMP echo request"), 2, "{captured:?}");
    assert_eq!(count(lines, "ICMP echo reply"), 2, "{captured:?}");
}

/// labctl tells the tools their datalink through the environment.
#[test]
fn the_environment_selects_af_xdp() {
    let pair = pair(true);
    let mut pong = Running::spawn(
        &pair.b.netns,
        &bin("lab-pong"),
        &["eth1"],
        &[("LABCTL_DATALINK_eth1", "af_xdp")],
    );
    let line = pong.wait_for("listening on", READY);
    pong.stop(libc::SIGINT);
    assert_eq!(
        line,
        format!("listening on eth1 (198.18.0.2, 02:00:00:00:00:02, {MODE})")
    );
}

/// The binaries read nothing from disk for af_xdp either (no XDP object
/// file, no bpffs): they run from an otherwise empty root.
#[test]
fn the_tools_run_on_af_xdp_from_an_empty_root() {
    let pair = pair(true);
    let root = tempfile::tempdir().unwrap();
    for tool in ["lab-ping", "lab-pong"] {
        std::fs::copy(bin(tool), root.path().join(tool)).unwrap();
    }
    let chroot = Path::new("/usr/sbin/chroot");
    let root_dir = root.path().to_str().unwrap();
    let mut pong = Running::spawn(
        &pair.b.netns,
        chroot,
        &[root_dir, "/lab-pong", "eth1", "--datalink", "af_xdp"],
        &[],
    );
    pong.wait_for("listening on", READY);
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
            "--datalink",
            "af_xdp",
        ],
        &[],
    )
    .finish(Duration::from_secs(30));
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(count(&pinged.stdout, " bytes from 198.18.0.2"), 2);
}

/// SIGINT ends lab-ping on af_xdp early with its summary: the signal
/// interrupts the datalink's wait.
#[test]
fn ping_on_af_xdp_interrupted_prints_its_summary() {
    assert_ping_interrupted_prints_its_summary(&["--datalink", "af_xdp"]);
}

/// `--busy-poll` on af_xdp answers, spins only when asked, and stops on
/// SIGINT.
#[test]
fn busy_poll_on_af_xdp_answers_spins_only_when_asked_and_stops_at_once() {
    assert_busy_poll_behaviour(&["--datalink", "af_xdp"]);
}

/// One tool run that must fail: exit 3 and one line naming what is
/// missing.
fn assert_unavailable(finished: &Finished, tool: &str, mention: &str) {
    let what = format!("{tool}: {finished:?}");
    assert_eq!(finished.status.code(), Some(3), "{what}");
    let lines: Vec<&str> = finished.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}");
    assert!(lines[0].starts_with(&format!("{tool}: ")), "{what}");
    assert!(lines[0].contains(mention), "{what}");
    assert!(!finished.stderr.contains("panicked"), "{what}");
}

#[test]
fn without_sys_admin_the_tools_say_so_on_one_line() {
    let pair = pair(true);
    let setpriv = Path::new("/usr/bin/setpriv");
    for tool in ["lab-ping", "lab-pong", "lab-capture"] {
        let tool_path = bin(tool);
        let mut args = vec![
            "--inh-caps=-all",
            "--bounding-set=-all,+net_raw,+ipc_lock,+net_admin",
            tool_path.to_str().unwrap(),
            "eth1",
        ];
        if tool == "lab-ping" {
            args.push("198.18.0.2");
        }
        args.extend(["--datalink", "af_xdp"]);
        let finished =
            Running::spawn(&pair.a.netns, setpriv, &args, &[]).finish(Duration::from_secs(10));
        assert_unavailable(
            &finished,
            tool,
            "af_xdp is not available: bpf() was refused (EPERM): the process needs CAP_BPF and CAP_NET_ADMIN",
        );
    }
}

#[test]
fn an_interface_with_several_queues_is_refused() {
    let pair = pair(true);
    ip(&[
        "-n",
        &pair.b.netns,
        "link",
        "add",
        "eth2",
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        "eth3",
    ]);
    ip(&["-n", &pair.b.netns, "link", "set", "eth2", "up"]);
    let finished = Running::spawn(
        &pair.b.netns,
        &bin("lab-capture"),
        &["eth2", "--datalink", "af_xdp"],
        &[],
    )
    .finish(Duration::from_secs(10));
    assert_unavailable(&finished, "lab-capture", "eth2 has 2 receive queues");
}

/// A program outside labctl's tools (here, the child of these tests,
/// which opens the socket without the hub) holds eth1: the tool waits a
/// moment in case it is leaving, then names the conflict.
#[test]
fn an_interface_held_outside_the_tools_is_named() {
    let pair = pair(true);
    let mut holder = super::KillOnDrop(super::spawn_child(&pair.b.netns, &[]));
    assert!(super::child_verdict(&mut holder.0).starts_with("opened: "));
    let finished = Running::spawn(
        &pair.b.netns,
        &bin("lab-pong"),
        &["eth1", "--datalink", "af_xdp"],
        &[],
    )
    .finish(Duration::from_secs(15));
    assert_unavailable(
        &finished,
        "lab-pong",
        "queue 0 of eth1 is already bound to another AF_XDP socket",
    );
}
