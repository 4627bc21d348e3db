//! lab-fwd between a client and a server, on real veths: pings cross it
//! both ways unchanged, its counters match what crossed, on af_packet,
//! af_xdp, both mixed, and netmap where /dev/netmap exists; a link going
//! down costs frames, not the forwarder; bad input is one line.
//!
//!     client eth1 198.18.3.1/24 — west lab-fwd east — eth1 198.18.3.2/24 server

use std::time::Duration;

use serde_json::Value;

use crate::support::bin;
use crate::support::chain::{Chain, End};
use crate::support::netns::{ip, run_in};
use crate::support::process::Running;
use crate::support::skip::skip_without_netmap;
use crate::support::tools::{burst_while_stopped, count, ping, start, READY};

struct Forwarded {
    client: String,
    middle: String,
    server: String,
    _chain: Chain,
}

/// The three namespaces, or `None` (the test is skipped) without root.
fn forwarded() -> Option<Forwarded> {
    if crate::support::skip::skip_without_root("the lab-fwd tests (namespaces, veths)") {
        return None;
    }
    let mut chain = Chain::new();
    let (client, middle, server) = (chain.netns("lfc"), chain.netns("lfm"), chain.netns("lfs"));
    chain.veth(
        End {
            netns: &client,
            iface: "eth1",
            mac: "02:00:00:00:03:01",
            cidr: Some("198.18.3.1/24"),
        },
        End {
            netns: &middle,
            iface: "west",
            mac: "02:00:00:00:03:fa",
            cidr: None,
        },
    );
    chain.veth(
        End {
            netns: &middle,
            iface: "east",
            mac: "02:00:00:00:03:fb",
            cidr: None,
        },
        End {
            netns: &server,
            iface: "eth1",
            mac: "02:00:00:00:03:02",
            cidr: Some("198.18.3.2/24"),
        },
    );
    chain.silence(&client, &["eth1"]);
    chain.silence(&server, &["eth1"]);
    chain.silence(&middle, &["west", "east"]);
    Some(Forwarded {
        client,
        middle,
        server,
        _chain: chain,
    })
}

fn start_fwd(netns: &str, extra: &[&str], env: &[(&str, &str)]) -> Running {
    let args: Vec<&str> = ["west", "east"].iter().chain(extra).copied().collect();
    let mut running = Running::spawn(netns, &bin("lab-fwd"), &args, env);
    running.wait_for("forwarding", READY);
    running
}

fn summary_of(lines: &[String]) -> Value {
    serde_json::from_str(lines.last().expect("a summary")).expect("a JSON summary")
}

/// Pings from the client to the server through lab-fwd (`fwd_args`,
/// `env` pick its datalinks; `tool_args` the ends'); the ready line names
/// both datalinks as `described`, and its counters are exactly the frames
/// of the exchange: one ARP request and the requests west->east, one ARP
/// reply and the replies east->west.
fn pings_cross(fwd_args: &[&str], env: &[(&str, &str)], tool_args: &[&str], described: [&str; 2]) {
    let Some(net) = forwarded() else {
        return;
    };
    let mut fwd_args_json = fwd_args.to_vec();
    fwd_args_json.push("--json");
    let fwd = start_fwd(&net.middle, &fwd_args_json, env);
    let pong_args: Vec<&str> = ["eth1"].iter().chain(tool_args).copied().collect();
    let pong = start(&net.server, "lab-pong", &pong_args, "listening on");
    let ping_args: Vec<&str> = ["eth1", "198.18.3.2", "--count", "5", "--interval", "50ms"]
        .iter()
        .chain(tool_args)
        .copied()
        .collect();
    let pinged = ping(&net.client, &ping_args);
    pong.stop(libc::SIGINT);
    let forwarded = fwd.stop(libc::SIGTERM);

    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(count(&pinged.stdout, " ttl=64 "), 5, "{pinged:?}");
    assert_eq!(count(&pinged.stdout, "DUP!"), 0, "{pinged:?}");
    assert!(forwarded.status.success(), "{forwarded:?}");
    let ready: Value = serde_json::from_str(&forwarded.stdout[0]).unwrap();
    assert_eq!(ready["event"], "forwarding");
    assert_eq!(
        [ready["datalink_a"].as_str(), ready["datalink_b"].as_str()],
        [Some(described[0]), Some(described[1])],
        "{forwarded:?}"
    );
    let summary = summary_of(&forwarded.stdout);
    assert_eq!(summary["a_to_b"]["forwarded"], 6, "{forwarded:?}");
    assert_eq!(summary["b_to_a"]["forwarded"], 6, "{forwarded:?}");
    assert_eq!(summary["dropped"], 0, "{forwarded:?}");
}

#[test]
fn pings_cross_lab_fwd_on_af_packet() {
    pings_cross(&[], &[], &[], ["af_packet", "af_packet"]);
}

#[test]
fn pings_cross_lab_fwd_on_af_xdp() {
    pings_cross(
        &["--datalink", "af_xdp"],
        &[],
        &["--datalink", "af_xdp"],
        [
            "af_xdp, native XDP, copy mode",
            "af_xdp, native XDP, copy mode",
        ],
    );
}

/// lab-fwd on af_xdp stopped (SIGSTOP) while lab-gen sends 3,000 frames
/// at 20,000/s through it, then let go: its receive ring held them all
/// and it forwards every one. With the 192 frames it used to receive
/// into, most of such a burst was lost at its ring (and its `dropped`
/// says so where that happens).
#[test]
fn a_forwarder_off_the_cpu_during_a_burst_loses_nothing_its_ring_holds() {
    let Some(net) = forwarded() else {
        return;
    };
    let fwd = start_fwd(&net.middle, &["--datalink", "af_xdp", "--json"], &[]);
    let sink = start(
        &net.server,
        "lab-sink",
        &["eth1", "--count", "3000", "--json"],
        "\"event\":\"ready\"",
    );
    // lab-fwd is away for the whole 150 ms of the burst.
    burst_while_stopped(&net.client, "198.18.3.2", 3000, &fwd);
    let received = sink.finish(Duration::from_secs(30));
    let forwarded = fwd.stop(libc::SIGTERM);
    assert!(received.status.success(), "{received:?}");
    let summary: Value = serde_json::from_str(received.stdout.last().unwrap()).unwrap();
    assert_eq!(summary["received"], 3000, "{summary} {forwarded:?}");
    assert_eq!(summary["lost"], 0, "{summary} {forwarded:?}");
    let fwd_summary = summary_of(&forwarded.stdout);
    assert_eq!(fwd_summary["dropped"], 0, "{forwarded:?}");
    assert_eq!(fwd_summary["a_to_b"]["ring_dropped"], 0, "{forwarded:?}");
}

/// `--busy-poll` on lab-fwd and on both ends: the forwarder says so on both
/// sides and forwards every frame.
#[test]
fn pings_cross_a_busy_polling_lab_fwd() {
    pings_cross(
        &["--busy-poll"],
        &[],
        &["--busy-poll"],
        ["af_packet, busy-poll", "af_packet, busy-poll"],
    );
    pings_cross(
        &["--datalink", "af_xdp", "--busy-poll"],
        &[],
        &["--datalink", "af_xdp"],
        [
            "af_xdp, native XDP, copy mode, busy-poll",
            "af_xdp, native XDP, copy mode, busy-poll",
        ],
    );
}

/// Each interface on its own datalink: one from the environment labctl
/// sets, one from the flag.
#[test]
fn each_side_takes_its_own_datalink() {
    pings_cross(
        &["--datalink-b", "af_packet"],
        &[
            ("LABCTL_DATALINK_west", "af_xdp"),
            ("LABCTL_DATALINK_east", "af_xdp"),
        ],
        &[],
        ["af_xdp, native XDP, copy mode", "af_packet"],
    );
}

#[test]
fn pings_cross_lab_fwd_on_netmap() {
    if skip_without_netmap() {
        return;
    }
    let Some(net) = forwarded() else {
        return;
    };
    let fwd = start_fwd(&net.middle, &["--datalink", "netmap"], &[]);
    let pong = start(
        &net.server,
        "lab-pong",
        &["eth1", "--datalink", "netmap"],
        "listening on",
    );
    let pinged = ping(
        &net.client,
        &[
            "eth1",
            "198.18.3.2",
            "--count",
            "3",
            "--interval",
            "50ms",
            "--datalink",
            "netmap",
        ],
    );
    pong.stop(libc::SIGINT);
    let forwarded = fwd.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(
        forwarded.stdout.last().unwrap(),
        "forwarded 4 west->east, 4 east->west, dropped 0"
    );
}

/// The human lines are the contract's.
#[test]
fn the_lines_are_the_contracts() {
    let Some(net) = forwarded() else {
        return;
    };
    let fwd = start_fwd(&net.middle, &[], &[]);
    let pong = start(&net.server, "lab-pong", &["eth1"], "listening on");
    let pinged = ping(
        &net.client,
        &["eth1", "198.18.3.2", "--count", "2", "--interval", "50ms"],
    );
    pong.stop(libc::SIGINT);
    let forwarded = fwd.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(
        forwarded.stdout,
        [
            "forwarding west <-> east (af_packet | af_packet)",
            "forwarded 3 west->east, 3 east->west, dropped 0"
        ],
        "{forwarded:?}"
    );
}

/// East goes down: what should leave by it is dropped and counted, lab-fwd
/// runs on, and once east is back up pings cross again.
#[test]
fn a_link_down_costs_frames_not_the_forwarder() {
    let Some(net) = forwarded() else {
        return;
    };
    let fwd = start_fwd(&net.middle, &["--json"], &[]);
    let pong = start(&net.server, "lab-pong", &["eth1"], "listening on");
    let quick = [
        "eth1",
        "198.18.3.2",
        "--count",
        "2",
        "--interval",
        "50ms",
        "--timeout",
        "300ms",
    ];
    assert!(ping(&net.client, &quick).status.success());
    ip(&["-n", &net.middle, "link", "set", "east", "down"]);
    let cut = ping(&net.client, &quick);
    assert_eq!(cut.status.code(), Some(1), "{cut:?}");
    ip(&["-n", &net.middle, "link", "set", "east", "up"]);
    // The veth needs a moment to carry frames again.
    std::thread::sleep(Duration::from_millis(200));
    let back = ping(&net.client, &quick);
    pong.stop(libc::SIGINT);
    let forwarded = fwd.stop(libc::SIGINT);
    assert!(back.status.success(), "{back:?}");
    assert!(forwarded.status.success(), "{forwarded:?}");
    let summary = summary_of(&forwarded.stdout);
    // The ARP requests of the cut ping (3 tries) had nowhere to go.
    assert!(
        summary["a_to_b"]["dropped"].as_u64() >= Some(3),
        "{forwarded:?}"
    );
}

#[test]
fn bad_input_is_one_line() {
    let Some(net) = forwarded() else {
        return;
    };
    for (args, code, mention) in [
        (
            &["west", "west"][..],
            2,
            "IFACE_A and IFACE_B are both west",
        ),
        (&["west", "nosuch9"][..], 3, "\"nosuch9\""),
        (&["west"][..], 2, "IFACE_B"),
        (&["west", "east", "--datalink-a", "dpdk"][..], 2, "dpdk"),
        (&["west", "east", "--batch", "0"][..], 2, "--batch"),
    ] {
        let out = run_in(&net.middle, &bin("lab-fwd"), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("lab-fwd: "), "{stderr}");
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
