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

/// lab-ping and lab-pong print exactly the contract's lines: `extra` picks
/// the datalink (empty: the default), `described` is how the tools name
/// what they obtained (e.g. "af_packet").
pub fn assert_ping_and_pong_print_the_contract_lines(extra: &[&str], described: &str) {
    let pair = pair(true);
    let pong_args: Vec<&str> = ["eth1"].iter().chain(extra).copied().collect();
    let pong = start(&pair.b.netns, "lab-pong", &pong_args, "listening on");
    let ping_args: Vec<&str> = [
        "eth1",
        "198.18.0.2",
        "--count",
        "3",
        "--interval",
        "100ms",
        "--id",
        "70",
    ]
    .iter()
    .chain(extra)
    .copied()
    .collect();
    let pinged = ping(&pair.a.netns, &ping_args);
    assert!(pinged.status.success(), "{pinged:?}");
    let out = &pinged.stdout;
    assert_eq!(
        out[0],
        format!(
            "PING 198.18.0.2 (02:00:00:00:00:02) from 198.18.0.1 eth1 ({described}): 56 data bytes"
        )
    );
    for seq in 0..3 {
        assert_reply_line(&out[1 + seq], seq);
    }
    assert_eq!(out[4], "--- 198.18.0.2 ping statistics ---");
    assert_eq!(out[5], "3 packets transmitted, 3 received, 0% packet loss");
    assert!(out[6].starts_with("rtt min/avg/max = "), "{out:?}");
    assert_eq!(out.len(), 7);

    let ponged = pong.stop(libc::SIGTERM);
    assert!(ponged.status.success(), "{ponged:?}");
    let mut expected = vec![
        format!("listening on eth1 (198.18.0.2, 02:00:00:00:00:02, {described})"),
        "[eth1]: ARP request who-has 198.18.0.2 tell 198.18.0.1".to_owned(),
        "[eth1]: ARP reply 198.18.0.2 is-at 02:00:00:00:00:02".to_owned(),
    ];
    for seq in 0..3 {
        expected.push(format!(
            "[eth1]: ICMP echo request 198.18.0.1 -> 198.18.0.2 (seq={seq}, id=70)"
        ));
        expected.push(format!(
            "[eth1]: ICMP echo reply 198.18.0.2 -> 198.18.0.1 (seq={seq}, id=70)"
        ));
    }
    assert_eq!(ponged.stdout[..expected.len()], expected[..]);
    let summary = ponged.stdout.last().unwrap();
    assert!(
        summary.starts_with("3 echo replies sent, 1 ARP replies sent, "),
        "{summary}"
    );
}
