//! Running the packet tools in the namespaces of a [`VethPair`], and
//! reading what they leave: shared by the tool tests on every datalink.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// lab-gen in `netns` sends `count` frames at 20,000/s to `dst` while
/// `stopped` is off the CPU: SIGSTOP once lab-gen has its peer's MAC (the
/// ARP answer came through `stopped` or from it), SIGCONT once every frame
/// is sent. `stopped`'s receive ring has to hold the whole burst. Asserts
/// lab-gen sent them all.
pub fn burst_while_stopped(netns: &str, dst: &str, count: u32, stopped: &Running) {
    let count = count.to_string();
    let args = ["eth1", dst, "--count", &count, "--rate", "20000"];
    let mut gen = Running::spawn(netns, &bin("lab-gen"), &args, &[]);
    gen.wait_for("generating to ", READY);
    stopped.signal(libc::SIGSTOP);
    let sent = gen.finish(Duration::from_secs(30));
    stopped.signal(libc::SIGCONT);
    assert!(sent.status.success(), "{sent:?}");
    let last = sent.stdout.last().map(String::as_str).unwrap_or("");
    assert!(
        last.starts_with(&format!("sent {count} frames in ")),
        "{sent:?}"
    );
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

/// The CPU time (user + system) process `pid` used so far, from
/// /proc/PID/stat (fields 14 and 15, after the command's parenthesis).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after_comm = &stat[stat.rfind(')').expect("a (comm) field") + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the comm.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// How much of a CPU process `pid` used over `window` of wall-clock time,
/// and how much it asked for: its time on a CPU plus its time waiting
/// for one (/proc/PID/schedstat). A process that never sleeps asks for a
/// whole CPU even when a loaded machine gives it less.
pub fn cpu_use(pid: u32, window: Duration) -> (f64, f64) {
    let schedstat = || -> Duration {
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
            .expect("read /proc/PID/schedstat");
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        Duration::from_nanos(fields.next().unwrap() + fields.next().unwrap())
    };
    let (cpu, asked, wall) = (cpu_time(pid), schedstat(), Instant::now());
    std::thread::sleep(window);
    let wall = wall.elapsed().as_secs_f64();
    let used = (cpu_time(pid) - cpu).as_secs_f64() / wall;
    (used, (schedstat() - asked).as_secs_f64() / wall)
}

/// `--busy-poll` through the real binaries (`extra` picks the datalink):
/// a busy-polling pong says so and answers; once its link is quiet past
/// the spin bound it uses no CPU without the flag and a core with it;
/// SIGINT ends a busy-polling wait at once (a lab-ping between requests
/// 10 s apart, which without the signal would spin on until the next).
pub fn assert_busy_poll_behaviour(extra: &[&str]) {
    let pair = pair(true);
    let with = |args: &[&'static str]| -> Vec<&str> { args.iter().chain(extra).copied().collect() };

    // The default: a short spin, then sleep.
    let idle = start(
        &pair.b.netns,
        "lab-pong",
        &with(&["eth1", "--quiet"]),
        "listening on",
    );
    let pinged = ping(
        &pair.a.netns,
        &with(&["eth1", "198.18.0.2", "-c", "3", "-i", "50ms"]),
    );
    assert!(pinged.status.success(), "{pinged:?}");
    let (idle_used, idle_asked) = cpu_use(idle.pid(), Duration::from_secs(1));
    assert!(idle.stop(libc::SIGINT).status.success());

    let mut busy = Running::spawn(
        &pair.b.netns,
        &bin("lab-pong"),
        &with(&["eth1", "--quiet", "--busy-poll"]),
        &[],
    );
    let listening = busy.wait_for("listening on", READY);
    assert!(listening.contains("busy-poll"), "{listening}");
    let pinged = ping(
        &pair.a.netns,
        &with(&["eth1", "198.18.0.2", "-c", "3", "-i", "50ms", "--busy-poll"]),
    );
    assert!(pinged.status.success(), "{pinged:?}");
    assert_eq!(
        count(&pinged.stdout, " bytes from 198.18.0.2: "),
        3,
        "{pinged:?}"
    );
    let (busy_used, busy_asked) = cpu_use(busy.pid(), Duration::from_secs(1));
    eprintln!(
        "CPU over an idle second (used, asked for): default {idle_used:.3}, {idle_asked:.3}; \
         --busy-poll {busy_used:.3}, {busy_asked:.3}"
    );
    assert!(
        idle_used < 0.05 && idle_asked < 0.05,
        "an idle default pong used {idle_used:.3} of a CPU and asked for {idle_asked:.3}"
    );
    // A whole CPU asked for; what it gets depends on the machine's load,
    // but it is never nothing.
    assert!(
        busy_asked > 0.9,
        "a busy-polling pong asked for only {busy_asked:.3} of a CPU"
    );
    assert!(
        busy_used > 0.05,
        "a busy-polling pong used only {busy_used:.3} of a CPU"
    );

    let mut pinging = Running::spawn(
        &pair.a.netns,
        &bin("lab-ping"),
        &with(&["eth1", "198.18.0.2", "-c", "3", "-i", "10s", "--busy-poll"]),
        &[],
    );
    pinging.wait_for("icmp_seq=0 ", READY);
    let asked = Instant::now();
    let pinged = pinging.stop(libc::SIGINT);
    let took = asked.elapsed();
    assert!(pinged.status.success(), "{pinged:?}");
    assert!(
        took < Duration::from_secs(2),
        "SIGINT took {took:?} to end a busy wait"
    );
    assert_eq!(
        count(&pinged.stdout, "1 packets transmitted, 1 received"),
        1,
        "{pinged:?}"
    );

    let asked = Instant::now();
    let ponged = busy.stop(libc::SIGINT);
    assert!(ponged.status.success(), "{ponged:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "pong took {:?}",
        asked.elapsed()
    );
}
