//! The tools route like a host: lab-ping through a kernel router between
//! two silenced namespaces, both ways, on each datalink; ARP answered by
//! every tool; `--gateway`; and no route, which fails at once.
//!
//!     left eth1 198.18.1.1/24 — eth1 198.18.1.254 router 198.18.2.254 eth2 — eth1 198.18.2.1/24 right
//!
//! The router is a namespace whose kernel forwards (ip_forward=1) and is
//! not silenced; left and right are silenced as labctl silences a node, so
//! only the tools answer ARP and echo there.

use std::time::{Duration, Instant};

use crate::support::bin;
use crate::support::chain::{Chain, End};
use crate::support::netns::{in_netns, ip};
use crate::support::process::Running;
use crate::support::tools::{count, ping, start};

pub const LEFT_MAC: &str = "02:00:00:00:01:01";
pub const RIGHT_MAC: &str = "02:00:00:00:02:01";
pub const ROUTER_LEFT_MAC: &str = "02:00:00:00:01:fe";

pub struct Routed {
    pub left: String,
    pub router: String,
    pub right: String,
    _chain: Chain,
}

/// The three namespaces above; `routes` adds each side's route through
/// the router.
/// `None` (the test is skipped) without root.
pub fn routed(routes: bool) -> Option<Routed> {
    if crate::support::skip::skip_without_root("the routing tests (namespaces, veths)") {
        return None;
    }
    let mut chain = Chain::new();
    let (left, router, right) = (chain.netns("lrl"), chain.netns("lrr"), chain.netns("lrx"));
    chain.veth(
        End {
            netns: &left,
            iface: "eth1",
            mac: LEFT_MAC,
            cidr: Some("198.18.1.1/24"),
        },
        End {
            netns: &router,
            iface: "eth1",
            mac: ROUTER_LEFT_MAC,
            cidr: Some("198.18.1.254/24"),
        },
    );
    chain.veth(
        End {
            netns: &router,
            iface: "eth2",
            mac: "02:00:00:00:02:fe",
            cidr: Some("198.18.2.254/24"),
        },
        End {
            netns: &right,
            iface: "eth1",
            mac: RIGHT_MAC,
            cidr: Some("198.18.2.1/24"),
        },
    );
    chain.silence(&left, &["eth1"]);
    chain.silence(&right, &["eth1"]);
    chain.sysctl(
        &router,
        &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.disable_ipv6=1"],
    );
    if routes {
        ip(&[
            "-n",
            &left,
            "route",
            "add",
            "198.18.2.0/24",
            "via",
            "198.18.1.254",
        ]);
        ip(&[
            "-n",
            &right,
            "route",
            "add",
            "default",
            "via",
            "198.18.2.254",
        ]);
    }
    Some(Routed {
        left,
        router,
        right,
        _chain: chain,
    })
}

fn with(args: &[&str], extra: &[&str]) -> Vec<String> {
    args.iter().chain(extra).map(|a| a.to_string()).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// lab-ping from `from` to `to_addr` (where lab-pong answers in `to`):
/// every reply crossed the router, so its TTL is 63.
fn ping_through(from: &str, to: &str, to_addr: &str, extra: &[&str]) {
    let pong_args = with(&["eth1"], extra);
    let pong = start(to, "lab-pong", &strs(&pong_args), "listening on");
    let ping_args = with(
        &["eth1", to_addr, "--count", "3", "--interval", "100ms"],
        extra,
    );
    let pinged = ping(from, &strs(&ping_args));
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(
        count(&pinged.stdout, &format!(" bytes from {to_addr}: ")),
        3,
        "{pinged:?}"
    );
    assert_eq!(count(&pinged.stdout, " ttl=63 "), 3, "{pinged:?}");
    assert!(pinged.stdout[0].contains(" via 198.18."), "{pinged:?}");
}

fn both_ways(extra: &[&str]) {
    let Some(net) = routed(true) else {
        return;
    };
    ping_through(&net.left, &net.right, "198.18.2.1", extra);
    ping_through(&net.right, &net.left, "198.18.1.1", extra);
}

#[test]
fn ping_crosses_a_kernel_router_both_ways_on_af_packet() {
    both_ways(&[]);
}

#[test]
fn ping_crosses_a_kernel_router_both_ways_on_af_xdp() {
    both_ways(&["--datalink", "af_xdp"]);
}

/// With the router's MAC given, lab-ping sends no ARP, so the router has
/// never heard of it: it must resolve the pinger before it can forward the
/// first reply, and only lab-ping itself can answer (its kernel is
/// silenced). Every reply coming back proves lab-ping answers ARP.
#[test]
fn the_router_resolves_lab_ping_through_its_own_arp() {
    let Some(net) = routed(true) else {
        return;
    };
    let pong = start(&net.right, "lab-pong", &["eth1"], "listening on");
    let pinged = ping(
        &net.left,
        &[
            "eth1",
            "198.18.2.1",
            "--peer-mac",
            ROUTER_LEFT_MAC,
            "--count",
            "3",
            "--interval",
            "100ms",
            "--json",
        ],
    );
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    let summary: serde_json::Value = serde_json::from_str(pinged.stdout.last().unwrap()).unwrap();
    assert_eq!(summary["received"], 3, "{pinged:?}");
    assert!(summary["arp_replies"].as_u64() >= Some(1), "{pinged:?}");
    let neighbours = in_netns(
        &net.router,
        std::process::Command::new("ip").args(["neigh", "show", "dev", "eth1"]),
    )
    .output()
    .unwrap();
    let neighbours = String::from_utf8_lossy(&neighbours.stdout);
    assert!(
        neighbours.contains(&format!("198.18.1.1 lladdr {LEFT_MAC}")),
        "{neighbours}"
    );
}

/// No route in the table: `--gateway` alone gets through.
#[test]
fn a_gateway_given_needs_no_route() {
    let Some(net) = routed(false) else {
        return;
    };
    let pong = start(&net.right, "lab-pong", &["eth1"], "listening on");
    ip(&[
        "-n",
        &net.right,
        "route",
        "add",
        "198.18.1.0/24",
        "via",
        "198.18.2.254",
    ]);
    let pinged = ping(
        &net.left,
        &[
            "eth1",
            "198.18.2.1",
            "--gateway",
            "198.18.1.254",
            "--count",
            "2",
            "--interval",
            "100ms",
        ],
    );
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(count(&pinged.stdout, " ttl=63 "), 2, "{pinged:?}");
    assert!(
        pinged.stdout[0].starts_with("PING 198.18.2.1 via 198.18.1.254 (02:00:00:00:01:fe) "),
        "{pinged:?}"
    );
}

/// No route: one line naming the destination, exit 1, at once (no ARP
/// is even tried).
#[test]
fn no_route_is_one_line_and_fast() {
    let Some(net) = routed(false) else {
        return;
    };
    let started = Instant::now();
    let pinged = ping(&net.left, &["eth1", "198.18.2.1", "--count", "3"]);
    let took = started.elapsed();
    assert_eq!(pinged.status.code(), Some(1), "{pinged:?}");
    assert!(pinged.stdout.is_empty(), "{pinged:?}");
    assert_eq!(
        pinged.stderr.trim_end(),
        "lab-ping: no route to 198.18.2.1 out of eth1: add a route for it \
         (the node's `routes` in the lab) or pass --gateway",
        "{pinged:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// lab-pong answers ARP, and now lab-ping does too: a second lab-ping
/// towards the first resolves its MAC (and then gets no echo reply, as
/// lab-ping answers none).
#[test]
fn a_running_lab_ping_answers_arp_for_its_address() {
    let Some(net) = routed(true) else {
        return;
    };
    let pong = start(&net.right, "lab-pong", &["eth1"], "listening on");
    let mut long = Running::spawn(
        &net.left,
        &bin("lab-ping"),
        &["eth1", "198.18.2.1", "--count", "100", "--interval", "50ms"],
        &[],
    );
    long.wait_for("icmp_seq=1 ", Duration::from_secs(10));
    let asking = ping(
        &net.router,
        &["eth1", "198.18.1.1", "--count", "1", "--timeout", "200ms"],
    );
    long.stop(libc::SIGINT);
    pong.stop(libc::SIGINT);
    assert_eq!(asking.status.code(), Some(1), "{asking:?}");
    assert!(
        asking.stdout[0].starts_with(&format!(
            "PING 198.18.1.1 ({LEFT_MAC}) from 198.18.1.254 eth1"
        )),
        "{asking:?}"
    );
}
