//! Running the packet tools in the namespaces of a [`VethPair`], and
//! reading what they leave: shared by the tool tests on every datalink.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::bin;
use super::netns::{have_root, VethPair};
use super::process::{Finished, Running};

/// How long a tool may take to print its ready line.
pub const READY: Duration = Duration::from_secs(10);

/// A fresh veth pair between two namespaces (see [`VethPair::new`]).
pub fn pair(silent: bool) -> VethPair {
    assert!(have_root(), "the tool tests need root (namespaces, veths)");
    VethPair::new(silent)
}

/// Starts `tool ARGS...` in `netns` and waits for `ready` on its output.
pub fn start(netns: &str, tool: &str, args: &[&str], ready: &str) -> Running {
    let mut running = Running::spawn(netns, &bin(tool), args, &[]);
    running.wait_for(ready, READY);
    running
}

/// Runs `lab-ping ARGS...` in `netns` to its end.
pub fn ping(netns: &str, args: &[&str]) -> Finished {
    Running::spawn(netns, &bin("lab-ping"), args, &[]).finish(Duration::from_secs(30))
}

/// How many lines contain `text`.
pub fn count(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|line| line.contains(text)).count()
}

/// Asserts `line` is the contract's reply line from 198.18.0.2 for `seq`,
/// with a time of three decimals.
pub fn assert_reply_line(line: &str, seq: usize) {
    let prefix = format!("64 bytes from 198.18.0.2: icmp_seq={seq} ttl=64 time=");
    let time = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("not a reply line for seq {seq}: {line:?}"));
    let (whole, decimals) = time.split_once('.').expect("a decimal time");
    assert!(
        whole.parse::<u32>().is_ok() && decimals.len() == 3,
        "{line}"
    );
}

/// How many frames tshark reads in `pcap`.
pub fn tshark_frames(pcap: &Path) -> usize {
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("run tshark (ci/setup installs it)");
    assert!(out.status.success(), "tshark: {out:?}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// SIGINT ends lab-ping early with its summary, as `ping` does; `extra`
/// picks the datalink (empty: the default).
pub fn assert_ping_interrupted_prints_its_summary(extra: &[&str]) {
    let pair = pair(true);
    let pong_args: Vec<&str> = ["eth1"].iter().chain(extra).copied().collect();
    let pong = start(&pair.b.netns, "lab-pong", &pong_args, "listening on");
    let ping_args: Vec<&str> = [
        "eth1",
        "198.18.0.2",
        "--count",
        "1000",
        "--interval",
        "50ms",
    ]
    .iter()
    .chain(extra)
    .copied()
    .collect();
    let mut pinging = Running::spawn(&pair.a.netns, &bin("lab-ping"), &ping_args, &[]);
    pinging.wait_for("icmp_seq=1 ", READY);
    let pinged = pinging.stop(libc::SIGINT);
    pong.stop(libc::SIGINT);
    assert!(pinged.status.success(), "{pinged:?}");
    let summary = pinged
        .stdout
        .iter()
        .find(|line| line.contains(" packets transmitted, "))
        .unwrap_or_else(|| panic!("no summary: {pinged:?}"));
    let transmitted: u64 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!((2..1000).contains(&transmitted), "{summary}");
}
