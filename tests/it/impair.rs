//! Impairments applied by `labctl run`, proven by measurement: lab-gen
//! sends through an impaired veth end and lab-sink measures what came
//! through (real binaries, real veths, the lab's own numeric checks and
//! the numbers read back here). On af_packet and af_xdp, whose transmit
//! would skip the qdisc if the datalink let it.

use std::path::Path;

use crate::support::lab::{assert_nothing_left, TestLab};
use crate::support::run::Run;

/// lab-sink's summary line: `received N frames, lost N (P%), ..., R frames/s`.
struct SinkSummary {
    received: f64,
    loss_percent: f64,
    rate: f64,
}

fn sink_summary(output: &str) -> SinkSummary {
    let line = output
        .lines()
        .find(|l| l.starts_with("received "))
        .unwrap_or_else(|| panic!("no summary in {output:?}"));
    let word = |i: usize| -> f64 {
        line.split_whitespace()
            .nth(i)
            .map(|w| w.trim_matches(|c: char| "(%),".contains(c)))
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("word {i} of {line:?}"))
    };
    let rate = line
        .rsplit(", ")
        .next()
        .and_then(|r| r.strip_suffix(" frames/s"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {line:?}"));
    SinkSummary {
        received: word(1),
        loss_percent: word(5),
        rate,
    }
}

/// 10% loss on what `a` sends (the endpoint's own `impair`), none on
/// what `b` sends: lab-sink on each side measures it. At 1,000 frames/s:
/// a lab-sink kept off the CPU for 200 ms on a loaded machine (load 16 on
/// 2 cores was seen) still finds them all in its socket's buffer, where
/// at 5,000/s it lost a fifth more of its own. 6,000 frames put 10% loss
/// at 10 ± 0.4 points (one standard deviation), so ± 3 cannot fail by
/// chance.
const LOSSY: &str = r#"name: {name}
nodes:
  a: {}
  b: {}
links:
  - endpoints:
      - { node: a, interface: eth1, ipv4: 198.18.0.1/24, impair: { loss: 10% } }
      - { node: b, interface: eth1, ipv4: 198.18.0.2/24 }
steps:
  - name: sink b
    node: b
    exec: [lab-sink, eth1]
    background: true
    ready: "^receiving on eth1 "
  - name: a sends
    node: a
    exec: [lab-gen, eth1, 198.18.0.2, --rate, "1000", --count, "6000"]
    timeout: 60s
  - name: b received
    wait: sink b
    expect:
      stdout:
        - match: 'lost [0-9]+ \(([0-9.]+)%\)'
          at_least: 7
          at_most: 13
  - name: sink a
    node: a
    exec: [lab-sink, eth1]
    background: true
    ready: "^receiving on eth1 "
  - name: b sends
    node: b
    exec: [lab-gen, eth1, 198.18.0.1, --rate, "1000", --count, "2000"]
    timeout: 60s
  - name: a received
    wait: sink a
    expect:
      stdout:
        - match: 'lost [0-9]+ \(([0-9.]+)%\)'
          at_most: 2
"#;

fn ten_percent_loss_shows_in_the_sinks_loss(datalink: &str) {
    let lab = TestLab::new("iloss", LOSSY);
    // --privileged: af_xdp in a container needs it where Docker cannot
    // grant CAP_BPF (as ci/test runs the labs); nothing changes elsewhere.
    let privileged: &[&str] = if datalink == "af_xdp" {
        &["--privileged"]
    } else {
        &[]
    };
    let run = Run::of(&lab, &[&["--datalink", datalink], privileged].concat());
    // The lab's own checks say which bound failed, with the number.
    assert_eq!(run.out.status.code(), Some(0), "{}", run.describe());
    let forward = sink_summary(&run.step_stdout("b_received"));
    let back = sink_summary(&run.step_stdout("a_received"));
    assert!(
        (7.0..=13.0).contains(&forward.loss_percent),
        "a -> b through 10% loss: lab-sink lost {}%",
        forward.loss_percent
    );
    assert!(forward.received >= 5_100.0, "{} of 6000", forward.received);
    assert!(
        back.loss_percent <= 2.0,
        "b -> a is not impaired, yet lab-sink lost {}%",
        back.loss_percent
    );
    eprintln!(
        "{datalink}: 10% loss -> {}% ({} received), back {}%",
        forward.loss_percent, forward.received, back.loss_percent
    );
    let sent = run.step_stdout("a_sends");
    assert!(
        sent.contains(&format!("eth1 ({datalink}")),
        "lab-gen ran on {datalink}: {sent}"
    );
    assert_nothing_left(&lab.name);
}

#[test]
fn ten_percent_loss_on_af_packet() {
    ten_percent_loss_shows_in_the_sinks_loss("af_packet");
}

#[test]
fn ten_percent_loss_on_af_xdp() {
    ten_percent_loss_shows_in_the_sinks_loss("af_xdp");
}

/// Two links from `a` to `b`, eth1 limited to 4 Mbit/s, eth2 not: the
/// same offered load (2,000 frames/s of 1,000 bytes, 16 Mbit/s) on each,
/// four times the limit, so a generator that stalls on a loaded machine
/// still keeps the limited link busy.
const RATE: &str = r#"name: {name}
nodes:
  a: {}
  b: {}
links:
  - endpoints:
      - { node: a, interface: eth1, ipv4: 198.18.0.1/24 }
      - { node: b, interface: eth1, ipv4: 198.18.0.2/24 }
    impair: { rate: 4mbit }
  - endpoints:
      - { node: a, interface: eth2, ipv4: 198.18.1.1/24 }
      - { node: b, interface: eth2, ipv4: 198.18.1.2/24 }
steps:
  - name: sink limited
    node: b
    exec: [lab-sink, eth1]
    background: true
    ready: "^receiving on eth1 "
  - name: send limited
    node: a
    exec: [lab-gen, eth1, 198.18.0.2, --rate, "2000", --duration, 3s, --size, "1000"]
    timeout: 30s
  - name: limited
    wait: sink limited
    expect:
      stdout:
        # 4 Mbit/s of 1000-byte frames: 500 frames/s. Never more; less
        # when a loaded machine stalls the generator and the queue drains.
        - match: ', ([0-9.]+) frames/s$'
          at_least: 200
          at_most: 600
  - name: sink plain
    node: b
    exec: [lab-sink, eth2]
    background: true
    ready: "^receiving on eth2 "
  - name: send plain
    node: a
    exec: [lab-gen, eth2, 198.18.1.2, --rate, "2000", --duration, 3s, --size, "1000"]
    timeout: 30s
  - name: plain
    wait: sink plain
    expect:
      stdout:
        - match: ', ([0-9.]+) frames/s$'
          at_least: 1200
"#;

fn a_rate_limit_shows_in_the_sinks_rate(datalink: &str) {
    let lab = TestLab::new("irate", RATE);
    let run = Run::of(&lab, &["--datalink", datalink, "--runtime", "netns"]);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.describe());
    let limited = sink_summary(&run.step_stdout("limited"));
    let plain = sink_summary(&run.step_stdout("plain"));
    assert!(
        (200.0..=600.0).contains(&limited.rate),
        "4 Mbit/s of 1000-byte frames is 500 frames/s at most; lab-sink measured {}",
        limited.rate
    );
    assert!(
        plain.rate >= 1200.0 && plain.rate > 2.0 * limited.rate,
        "unimpaired {} frames/s, limited {}",
        plain.rate,
        limited.rate
    );
    eprintln!(
        "{datalink}: 4 Mbit/s -> {} frames/s ({}% lost), unimpaired {} frames/s",
        limited.rate, limited.loss_percent, plain.rate
    );
    assert_nothing_left(&lab.name);
}

#[test]
fn a_rate_limit_on_af_packet() {
    a_rate_limit_shows_in_the_sinks_rate("af_packet");
}

#[test]
fn a_rate_limit_on_af_xdp() {
    a_rate_limit_shows_in_the_sinks_rate("af_xdp");
}

/// netmap's transmit skips the qdiscs: an impaired netmap endpoint is
/// refused before anything is created, never run unimpaired.
#[test]
fn loss_on_a_netmap_endpoint_exits_3_before_anything_is_created() {
    let lab = TestLab::new(
        "inmap",
        &LOSSY.replace("  a: {}\n  b: {}\n", "  a: {}\n  b: {}\ndatalink: netmap\n"),
    );
    let run = Run::of(&lab, &[]);
    assert_eq!(run.out.status.code(), Some(3), "{}", run.describe());
    let said = run.describe();
    assert!(
        said.contains("endpoints a:eth1 impair what they send through netmap")
            && said.contains("af_packet or af_xdp"),
        "{said}"
    );
    assert_nothing_left(&lab.name);
}

/// Where the kernel has no netem (this host: no sch_netem, no modules),
/// each key that needs it stops the run before anything is created,
/// exit 3, naming netem: never a run that silently goes unimpaired.
/// (tests/labs/vm/netem.yaml measures them where netem exists: ci/vm-netem.)
#[test]
fn every_netem_key_without_netem_exits_3_before_anything_is_created() {
    if crate::support::skip::skip_if(
        Path::new("/sys/module/sch_netem").exists(),
        "this kernel has netem, so the labs would deploy (ci/vm-netem checks it applied)",
    ) {
        return;
    }
    for key in [
        "delay: 10ms",
        "delay: 10ms, jitter: 2ms",
        "duplicate: 1%",
        "delay: 10ms, reorder: 25%",
        "corrupt: 0.1%",
    ] {
        let lab = TestLab::new("inetem", &LOSSY.replace("loss: 10%", key));
        assert!(lab_source(&lab).contains(key), "LOSSY changed shape");
        for runtime in ["netns", "docker"] {
            let run = Run::of(&lab, &["--runtime", runtime]);
            let said = run.describe();
            assert_eq!(run.out.status.code(), Some(3), "{key}: {said}");
            assert!(
                said.contains(
                    "links a:eth1 - b:eth1 need netem for delay, jitter, duplicate, reorder or \
                     corrupt, but this kernel has no netem"
                ),
                "{key}: {said}"
            );
            // No namespace, container, veth or qdisc of the lab.
            assert_nothing_left(&lab.name);
        }
    }
}

fn lab_source(lab: &TestLab) -> String {
    std::fs::read_to_string(lab.path()).expect("lab file")
}
