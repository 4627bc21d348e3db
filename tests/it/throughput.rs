//! The throughput step through the real binaries: labctl searches with
//! lab-gen and lab-sink across a device of known capacity (a kernel router
//! whose egress to the server is a tbf rate limit), and the repository's
//! labs/ndr.yaml runs with its results in every report.

use crate::support::lab::{assert_nothing_left, TestLab};
use crate::support::run::{repo_lab_text, Run};
use crate::support::skip::skip_without_root;

/// The router forwards everything the kernel can, but its egress to the
/// server is limited to 8 Mbit/s: 1,000 frames/s of 1,000 bytes (tbf
/// counts the frame, Ethernet header included).
const RATE_BITS: f64 = 8e6;
const SIZE: f64 = 1000.0;
const TRIAL_S: f64 = 1.0;

const LIMITED_ROUTER: &str = r#"name: {name}
runtime: netns
nodes:
  client:
    routes:
      - { to: 198.18.2.0/24, via: 198.18.1.254 }
  router:
    kernel: normal
    sysctls: { net.ipv4.ip_forward: 1 }
  server: {}
links:
  - endpoints: ["client:eth1", "router:left"]
    ipv4: [198.18.1.1/24, 198.18.1.254/24]
  - endpoints:
      - { node: router, interface: right, ipv4: 198.18.2.254/24, impair: { rate: 8mbit } }
      - { node: server, interface: eth1, ipv4: 198.18.2.1/24 }
steps:
  - name: router throughput
    throughput:
      from: client:eth1
      to: server:eth1
      sizes: [1000]
      trial: 1s
      loss: 0%
      partial: 5%
    timeout: 20s
    expect:
      stdout:
        - match: '^ndr 1000 bytes: ([0-9]+) frames/s'
          at_least: 1
"#;

/// What the rate limit carries without loss in one trial: its rate, plus
/// what its bucket and queue absorb (links/impair.rs's `tbf_sizes`: a
/// burst of 10 ms at the rate, a queue of that and 100 ms more), which
/// the settle time lets drain to the sink.
fn capacity() -> f64 {
    let bytes_per_s = RATE_BITS / 8.0;
    let burst = bytes_per_s * 0.010;
    let queue = burst + bytes_per_s * 0.100;
    (bytes_per_s + (burst + queue) / TRIAL_S) / SIZE
}

#[test]
fn a_rate_limited_router_is_found_at_its_capacity() {
    if skip_without_root("a netns lab") {
        return;
    }
    let lab = TestLab::new("ndrcap", LIMITED_ROUTER);
    let run = Run::of(&lab, &[]);
    assert_eq!(
        run.code(),
        Some(0),
        "{}\nthe whole search:\n{}",
        run.describe(),
        run.step_stdout("router throughput")
    );
    let step = run.step("router throughput");
    assert_eq!(step["kind"], "throughput");
    let size = &step["throughput"]["sizes"][0];
    let ndr = size["results"][0]["rate"].as_f64().unwrap();
    let pdr = size["results"][1]["rate"].as_f64().unwrap();
    let expected = capacity();
    eprintln!(
        "tbf at {} frames/s ({expected:.0} over a {TRIAL_S} s trial): ndr {ndr}, pdr {pdr}, \
         ceiling {}, {} trials",
        RATE_BITS / 8.0 / SIZE,
        size["ceiling"],
        size["trials"].as_array().unwrap().len()
    );
    assert!(
        (ndr - expected).abs() <= expected * 0.05,
        "NDR {ndr} frames/s, expected {expected:.0} within 5 %\n{}",
        run.step_stdout("router throughput")
    );
    // 5 % loss allowed: the PDR is above the NDR, about 1/0.95 of it.
    assert!(
        pdr >= ndr && pdr <= expected / 0.95 * 1.05,
        "PDR {pdr}, NDR {ndr}"
    );
    // The search started where the generator got unpaced, far above.
    assert!(size["ceiling"].as_f64().unwrap() > 2.0 * expected);
    // Every trial below the capacity that counted passed; every one
    // well above failed.
    for trial in size["trials"].as_array().unwrap() {
        let (Some(rate), true) = (trial["offered_rate"].as_f64(), trial["valid"] == true) else {
            continue;
        };
        if trial["purpose"] == "ndr" && rate > expected * 1.1 {
            assert_eq!(trial["passed"], false, "{trial}");
        }
    }
    assert_nothing_left(&lab.name);
}

#[test]
fn the_ndr_lab_reports_its_results_everywhere() {
    if skip_without_root("a netns lab") {
        return;
    }
    let lab = TestLab::new("ndrlab", &repo_lab_text("labs/ndr.yaml".as_ref()));
    let started = std::time::Instant::now();
    let run = Run::of(&lab, &["--runtime", "netns"]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    eprintln!(
        "labs/ndr.yaml on netns: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let out = run.step_stdout("forwarder throughput");
    for size in [64, 1514] {
        for kind in ["ndr", "pdr"] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{kind} {size} bytes: ")))
                .unwrap_or_else(|| panic!("no {kind} line for {size} bytes:\n{out}"));
            eprintln!("{line}");
        }
    }
    let json = run.json();
    assert_eq!(json["schema_version"], 3);
    let step = run.step("forwarder throughput");
    let sizes = step["throughput"]["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    let ndr64 = sizes[0]["results"][0]["rate"].as_f64().unwrap();
    assert!(out.contains(&format!("ndr 64 bytes: {ndr64:.0} frames/s")));
    assert_eq!(sizes[0]["latency"].as_array().unwrap().len(), 3);
    assert!(sizes[0]["trials"].as_array().unwrap().len() >= 5);
    let junit = run.junit();
    assert!(
        junit.contains(&format!(
            "name=\"throughput.forwarder throughput.ndr.64.frames_per_s\" value=\"{ndr64:.0}\""
        )),
        "{junit}"
    );
    // The page draws the search and prints its result lines.
    let page = std::fs::read_to_string(run.run_dir().join("report.html")).expect("report.html");
    assert!(
        page.contains("class=\"plot throughput\"><svg"),
        "no throughput plot"
    );
    assert!(page.contains(&format!("ndr 64 bytes: {ndr64:.0} frames/s")));
    assert_nothing_left(&lab.name);
}

/// Ctrl-C in the middle of a search on af_xdp (Docker: labctl attaches the
/// XDP programs from the host and pins their maps): the trial's tools
/// are stopped, the step says interrupted with the trials it ran, and
/// nothing of the lab is left, no pin either.
#[test]
fn ctrl_c_during_a_search_leaves_nothing_attached() {
    use std::io::BufRead;
    let lab = TestLab::new("ndrint", &repo_lab_text("labs/ndr.yaml".as_ref()));
    let runs = tempfile::tempdir().expect("temporary directory");
    let json = runs.path().join("report.json");
    let mut child = crate::support::lab::labctl_command(&[
        "run",
        lab.path(),
        "--datalink",
        "af_xdp",
        "--runs-dir",
        runs.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start labctl run");
    // Read to its end: labctl's progress goes on after the line waited for.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("forwarder throughput: running") => break,
            Ok(_) => {}
            Err(_) => panic!("the throughput step never started"),
        }
    }
    // A few trials in, one of them running.
    std::thread::sleep(std::time::Duration::from_secs(4));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait for labctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{text}\n{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report.json"))
            .expect("valid JSON");
    let step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "forwarder throughput")
        .expect("the step")
        .clone();
    assert_eq!(step["status"], "interrupted", "{step}");
    let trials = step["throughput"]["sizes"][0]["trials"].as_array().unwrap();
    assert!(!trials.is_empty(), "{step}");
    assert!(step["stdout"]
        .as_str()
        .unwrap()
        .starts_with("trial 1 (64 bytes, ceiling)"));
    assert_nothing_left(&lab.name);
}
