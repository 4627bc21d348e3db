//! The af_xdp datalink on real veths in network namespaces: frames both
//! ways with AF_PACKET on the peer, the kernel bypassed, the XDP program
//! gone when the socket closes (also after SIGKILL), and one clear line
//! for each missing capability.
//!
//! Datalink-level tests run the library on a thread that entered the
//! namespace (setns affects that thread only). Tests that need a separate
//! process (to kill it, or to run it with fewer capabilities) re-run this
//! test binary as a child: see `child_opens_af_xdp`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use labctl::tools::datalink::af_xdp::{self, AfXdp};
use labctl::tools::datalink::{Datalink, Direction, OpenOptions};
use pnet::datalink::{self as pnet_datalink, Channel, DataLinkReceiver, DataLinkSender};

use crate::support::netns::{in_netns, ip, VethPair};

/// An EtherType for local experiments (IEEE 802 "local experimental 1").
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const WAIT: Duration = Duration::from_secs(10);

/// Runs `f` on a new thread inside network namespace `netns`.
fn on_thread_in<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{netns}");
    thread::spawn(move || {
        let ns = File::open(&path).expect("open the namespace");
        // SAFETY: setns changes this thread's namespace only; ns is open.
        let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

fn mac(text: &str) -> [u8; 6] {
    let mut mac = [0; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

fn test_frame(dst: &str, src: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&mac(dst));
    frame.extend_from_slice(&mac(src));
    frame.extend_from_slice(&TEST_ETHERTYPE);
    frame.extend_from_slice(payload);
    frame.resize(frame.len().max(60), 0);
    frame
}

fn payload_of(frame: &[u8]) -> Option<&[u8]> {
    (frame.get(12..14) == Some(&TEST_ETHERTYPE[..])).then(|| &frame[14..])
}

/// An AF_PACKET channel on eth1 of the calling thread's namespace.
fn af_packet() -> (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>) {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == "eth1")
        .expect("eth1 in this namespace");
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    match pnet_datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
        Ok(_) => panic!("not an Ethernet channel"),
        Err(e) => panic!("AF_PACKET on eth1: {e}"),
    }
}

/// Waits for a test frame whose payload starts with `prefix`.
fn af_packet_wait_for(rx: &mut dyn DataLinkReceiver, prefix: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(frame) = rx.next() {
            if payload_of(frame).is_some_and(|p| p.starts_with(prefix)) {
                return frame.to_vec();
            }
        }
    }
    panic!("no frame starting with {prefix:?} arrived over AF_PACKET");
}

fn af_xdp_wait_for(link: &mut dyn Datalink, prefix: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
        match link.recv(remaining).expect("af_xdp recv") {
            Some(r) if payload_of(r.frame).is_some_and(|p| p.starts_with(prefix)) => {
                assert_eq!(r.direction, Direction::In);
                return r.frame.to_vec();
            }
            Some(_) => {}
            None => break,
        }
    }
    panic!("no frame starting with {prefix:?} arrived over af_xdp");
}

#[test]
fn frames_flow_both_ways_between_af_xdp_and_af_packet() {
    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (opened_tx, opened_rx) = mpsc::channel();
    let xdp_side = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp");
        opened_tx.send(link.describe()).unwrap();
        let probe = af_xdp_wait_for(&mut link, b"probe");
        for i in 0..100u8 {
            link.send(&test_frame(
                a_mac,
                b_mac,
                &[b'r', b'e', b'p', b'l', b'y', i],
            ))
            .expect("af_xdp send");
        }
        probe
    });
    let describe = opened_rx.recv_timeout(WAIT).expect("af_xdp opened");
    assert_eq!(describe, "af_xdp, native XDP, copy mode");

    let packet_side = on_thread_in(&pair.a.netns, move || {
        let (mut tx, mut rx) = af_packet();
        let sent = test_frame(b_mac, a_mac, b"probe over af_packet");
        tx.send_to(&sent, None).unwrap().unwrap();
        let mut replies = Vec::new();
        for i in 0..100u8 {
            let frame = af_packet_wait_for(&mut *rx, b"reply");
            assert_eq!(
                frame.get(14..20),
                Some(&[b'r', b'e', b'p', b'l', b'y', i][..])
            );
            replies.push(frame);
        }
        (sent, replies)
    });
    let (sent, replies) = packet_side.join().expect("the AF_PACKET side");
    let probe = xdp_side.join().expect("the af_xdp side");
    assert_eq!(probe, sent, "af_xdp received the frame byte for byte");
    assert_eq!(
        replies.len(),
        100,
        "every frame af_xdp sent arrived, in order"
    );
}

/// Round trips between two af_xdp ends, many more than the rings hold,
/// so every ring wraps several times; each answer must be the one asked.
#[test]
fn two_af_xdp_ends_talk_to_each_other() {
    const ROUND_TRIPS: u32 = 2000;
    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (ready_tx, ready_rx) = mpsc::channel();
    let b = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp on b");
        ready_tx.send(()).unwrap();
        for _ in 0..ROUND_TRIPS {
            let request = af_xdp_wait_for(&mut link, b"request");
            let mut answer = b"answer".to_vec();
            answer.extend_from_slice(&request[21..25]);
            link.send(&test_frame(a_mac, b_mac, &answer)).unwrap();
        }
        link.stats().dropped
    });
    ready_rx.recv_timeout(WAIT).expect("b opened");
    let a = on_thread_in(&pair.a.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp on a");
        for bad in [vec![0u8; 5], vec![0u8; 4000]] {
            let error = link.send(&bad).expect_err("refused").to_string();
            assert!(
                error.contains("af_xdp sends frames of 14 to 3840 bytes"),
                "{error}"
            );
        }
        let started = Instant::now();
        for seq in 0..ROUND_TRIPS {
            let mut request = b"request".to_vec();
            request.extend_from_slice(&seq.to_be_bytes());
            link.send(&test_frame(b_mac, a_mac, &request)).unwrap();
            let answer = af_xdp_wait_for(&mut link, b"answer");
            assert_eq!(answer[20..24], seq.to_be_bytes(), "answer to request {seq}");
        }
        (started.elapsed(), link.stats().dropped)
    });
    let (elapsed, a_dropped) = a.join().expect("side a");
    let b_dropped = b.join().expect("side b");
    assert_eq!((a_dropped, b_dropped), (Some(0), Some(0)));
    eprintln!("{ROUND_TRIPS} af_xdp round trips in {elapsed:?}");
}

/// Runs iputils ping from `netns`; returns how many replies came back.
fn kernel_ping(netns: &str, dst: &str, count: u32) -> u32 {
    let count_arg = count.to_string();
    let out = in_netns(
        netns,
        Command::new("ping").args(["-n", "-c", &count_arg, "-i", "0.2", "-W", "1", dst]),
    )
    .output()
    .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no ping summary in {text:?}"))
}

fn xdp_attached(netns: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", netns, "-d", "link", "show", "eth1"])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("prog/xdp") || text.contains(" xdp")
}

fn is_echo_request_to(frame: &[u8], dst: [u8; 4]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00][..])
        && frame.get(23) == Some(&1)
        && frame.get(30..34) == Some(&dst[..])
        && frame.get(34) == Some(&8)
}

#[test]
fn the_kernel_does_not_see_frames_the_socket_takes() {
    // Kernels left to answer: without af_xdp, b's kernel replies to ping.
    let pair = VethPair::new(false);
    ip(&[
        "-n",
        &pair.a.netns,
        "neigh",
        "replace",
        pair.b.addr,
        "lladdr",
        pair.b.mac,
        "dev",
        "eth1",
        "nud",
        "permanent",
    ]);
    assert_eq!(kernel_ping(&pair.a.netns, pair.b.addr, 1), 1, "baseline");

    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let b = on_thread_in(&pair.b.netns, move || {
        let mut link = AfXdp::open("eth1", &OpenOptions::default()).expect("open af_xdp");
        ready_tx.send(()).unwrap();
        let mut requests = 0;
        while stop_rx.try_recv().is_err() {
            if let Some(r) = link.recv(Duration::from_millis(50)).unwrap() {
                requests += u32::from(is_echo_request_to(r.frame, [198, 18, 0, 2]));
            }
        }
        requests
    });
    ready_rx.recv_timeout(WAIT).expect("af_xdp opened");
    assert!(
        xdp_attached(&pair.b.netns),
        "the program is attached while open"
    );
    let replies = kernel_ping(&pair.a.netns, pair.b.addr, 3);
    stop_tx.send(()).unwrap();
    let requests = b.join().expect("the af_xdp side");
    assert_eq!(requests, 3, "every echo request went to the socket");
    assert_eq!(
        replies, 0,
        "and none reached b's kernel, which would have answered"
    );

    // Closed: the link is gone with the program, and the kernel answers.
    assert!(
        !xdp_attached(&pair.b.netns),
        "no XDP program is left behind"
    );
    assert_eq!(kernel_ping(&pair.a.netns, pair.b.addr, 1), 1);
}

const CHILD_ENV: &str = "LABCTL_TEST_AF_XDP_CHILD";
/// How long the child holds the socket open, in seconds (default 30).
const HOLD_ENV: &str = "LABCTL_TEST_AF_XDP_HOLD";

/// Not a test of its own: the child process of the tests below. It opens
/// af_xdp on the interface named by LABCTL_TEST_AF_XDP_CHILD, prints
/// "opened: <describe>" or "error: <message>", holds the socket for
/// LABCTL_TEST_AF_XDP_HOLD seconds and exits with 0 or 1.
#[test]
#[ignore = "run by other af_xdp tests as a child process"]
fn child_opens_af_xdp() {
    let iface = std::env::var(CHILD_ENV)
        .unwrap_or_else(|_| panic!("{CHILD_ENV} is unset: only other tests run this one"));
    match AfXdp::open(&iface, &OpenOptions::default()) {
        Ok(link) => {
            // libtest has printed "test ... " without a newline.
            println!("\nopened: {}", link.describe());
            let hold = std::env::var(HOLD_ENV).ok().and_then(|s| s.parse().ok());
            thread::sleep(Duration::from_secs(hold.unwrap_or(30)));
            std::process::exit(0);
        }
        Err(e) => {
            println!("\nerror: {e}");
            std::process::exit(1);
        }
    }
}

/// This test binary, run as `child_opens_af_xdp` on eth1 of `netns`,
/// behind `wrapper` (e.g. setpriv) when given.
fn spawn_child(netns: &str, wrapper: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).args(wrapper).arg(exe);
    cmd.args([
        "--exact",
        "af_xdp::child_opens_af_xdp",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd.env(CHILD_ENV, "eth1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.spawn().expect("spawn the child")
}

/// The child's "opened: ..." or "error: ..." line.
fn child_verdict(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("opened: ") || line.starts_with("error: ") {
                let _ = line_tx.send(line);
                return;
            }
        }
    });
    line_rx.recv_timeout(WAIT).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("the child printed no verdict")
    })
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn no_program_is_left_after_sigkill() {
    let pair = VethPair::new(true);
    let mut child = KillOnDrop(spawn_child(&pair.b.netns, &[]));
    let verdict = child_verdict(&mut child.0);
    assert_eq!(verdict, "opened: af_xdp, native XDP, copy mode");
    assert!(xdp_attached(&pair.b.netns));
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");
    // The link's file descriptor closed with the process; the kernel
    // releases the program as the process exits.
    let deadline = Instant::now() + Duration::from_secs(2);
    while xdp_attached(&pair.b.netns) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !xdp_attached(&pair.b.netns),
        "the XDP program outlived its process"
    );
    // And the interface can be opened again at once.
    let mut again = KillOnDrop(spawn_child(&pair.b.netns, &[]));
    assert!(child_verdict(&mut again.0).starts_with("opened: "));
}

/// Runs the child with only `caps` (setpriv drops the rest from the
/// bounding set, so even root gets no more) and returns its verdict.
fn verdict_with_caps(caps: &[&str], memlock_kib: Option<u64>) -> String {
    let pair = VethPair::new(true);
    let bounding = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{}", c.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",");
    let bounding_arg = format!("--bounding-set={bounding}");
    let memlock_arg = memlock_kib.map(|k| format!("--memlock={}", k * 1024));
    let mut wrapper = Vec::new();
    if let Some(memlock) = &memlock_arg {
        wrapper.extend(["prlimit", memlock.as_str()]);
    }
    wrapper.extend(["setpriv", "--inh-caps=-all", bounding_arg.as_str()]);
    let mut child = KillOnDrop(spawn_child(&pair.b.netns, &wrapper));
    child_verdict(&mut child.0)
}

#[test]
fn the_documented_capabilities_are_enough() {
    let verdict = verdict_with_caps(af_xdp::CAPABILITIES, Some(64));
    assert_eq!(verdict, "opened: af_xdp, native XDP, copy mode");
}

#[test]
fn without_sys_admin_bpf_is_refused_and_named() {
    let verdict = verdict_with_caps(&["NET_RAW", "IPC_LOCK", "NET_ADMIN"], None);
    assert!(
        verdict.starts_with("error: af_xdp is not available: bpf() was refused (EPERM)")
            && verdict.contains("CAP_SYS_ADMIN"),
        "{verdict}"
    );
}

#[test]
fn without_net_raw_the_socket_is_refused_and_named() {
    let verdict = verdict_with_caps(&["SYS_ADMIN", "IPC_LOCK"], None);
    assert!(
        verdict.starts_with("error: af_xdp is not available: socket(AF_XDP) was refused")
            && verdict.contains("CAP_NET_RAW"),
        "{verdict}"
    );
}

#[test]
fn without_ipc_lock_a_small_memlock_limit_is_named() {
    let verdict = verdict_with_caps(&["SYS_ADMIN", "NET_RAW"], Some(64));
    assert!(
        verdict.contains("does not fit the locked-memory limit (64 KiB")
            && verdict.contains("CAP_IPC_LOCK"),
        "{verdict}"
    );
}

/// Two tools on one interface through the hub, as in the example lab:
/// a pong-like owner and a capture that must see both directions.
#[test]
fn a_capture_shares_the_interface_with_a_responder() {
    use labctl::tools::datalink::{self, DatalinkKind};

    let pair = VethPair::new(true);
    let (a_mac, b_mac) = (pair.a.mac, pair.b.mac);
    let (ready_tx, ready_rx) = mpsc::channel();
    let responder_ready = ready_tx.clone();
    let responder = on_thread_in(&pair.b.netns, move || {
        let options = OpenOptions { capture: false };
        let mut link = datalink::open(DatalinkKind::AfXdp, "eth1", &options).expect("open");
        responder_ready.send(link.describe()).unwrap();
        // Serve the hub until the request comes, then answer it.
        af_xdp_wait_for(&mut *link, b"request");
        link.send(&test_frame(a_mac, b_mac, b"reply")).unwrap();
        // Keep serving until the capture has seen the reply.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let _ = link.recv(Duration::from_millis(50)).unwrap();
        }
    });
    let owner = ready_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(owner, "af_xdp, native XDP, copy mode");

    let capture = on_thread_in(&pair.b.netns, move || {
        let options = OpenOptions { capture: true };
        let mut link = datalink::open(DatalinkKind::AfXdp, "eth1", &options).expect("open");
        ready_tx.send(link.describe()).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        while seen.len() < 2 && Instant::now() < deadline {
            if let Some(r) = link.recv(Duration::from_millis(50)).unwrap() {
                if let Some(payload) = payload_of(r.frame) {
                    let word = payload.split(|&b| b == 0).next().unwrap_or_default();
                    seen.push((r.direction, String::from_utf8_lossy(word).into_owned()));
                }
            }
        }
        (seen, link.stats().dropped)
    });
    let client = ready_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        client,
        format!(
            "af_xdp, native XDP, copy mode, shared with pid {}",
            std::process::id()
        )
    );

    let peer = on_thread_in(&pair.a.netns, move || {
        let (mut tx, mut rx) = af_packet();
        tx.send_to(&test_frame(b_mac, a_mac, b"request"), None)
            .unwrap()
            .unwrap();
        af_packet_wait_for(&mut *rx, b"reply");
    });
    peer.join().expect("the peer got the reply");
    let (seen, dropped) = capture.join().expect("the capture");
    responder.join().expect("the responder");
    assert_eq!(
        seen,
        vec![
            (Direction::In, "request".to_owned()),
            (Direction::Out, "reply".to_owned())
        ]
    );
    assert_eq!(dropped, Some(0));
}

/// A FROM-scratch image holding only this (static) test binary, removed
/// on drop.
struct ScratchImage(String);

impl ScratchImage {
    fn with_this_binary() -> ScratchImage {
        let name = format!("labctl-test-afxdp:{}", crate::support::unique("i"));
        let exe = std::env::current_exe().expect("the test binary");
        let mut import = Command::new("docker")
            .args(["import", "--change", r#"ENTRYPOINT ["/it"]"#, "-", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker import");
        {
            let mut tar = tar::Builder::new(import.stdin.take().expect("piped stdin"));
            // docker import knows no GNU sparse entries.
            tar.sparse(false);
            tar.append_path_with_name(&exe, "it")
                .expect("tar the binary");
            tar.finish().expect("finish the tar");
        }
        assert!(import.wait().unwrap().success(), "docker import failed");
        ScratchImage(name)
    }

    /// Runs the child test in a container with no network but lo, with
    /// `docker_args` (capabilities); returns its verdict line.
    fn verdict(&self, docker_args: &[&str]) -> String {
        let container = crate::support::unique("labctl-afxdp-");
        let out = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--name", &container])
            .args([
                "-e",
                &format!("{CHILD_ENV}=lo"),
                "-e",
                &format!("{HOLD_ENV}=0"),
            ])
            .args(docker_args)
            .arg(&self.0)
            .args([
                "--exact",
                "af_xdp::child_opens_af_xdp",
                "--ignored",
                "--nocapture",
            ])
            .output()
            .expect("docker run");
        let _ = Command::new("docker")
            .args(["rm", "-f", &container])
            .stderr(Stdio::null())
            .output();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("opened: ") || l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no verdict from the container: {out:?}"))
            .to_owned()
    }
}

impl Drop for ScratchImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Under Docker's default seccomp profile, in a FROM-scratch image: the
/// documented capabilities, and nothing else, are enough; without
/// SYS_ADMIN, bpf() is refused (Docker 20.10 cannot even add CAP_BPF), and
/// the message says what to add.
#[test]
fn in_a_scratch_container_exactly_the_documented_capabilities_work() {
    let image = ScratchImage::with_this_binary();
    let mut only_documented = vec!["--cap-drop", "ALL"];
    for cap in af_xdp::CAPABILITIES {
        only_documented.extend(["--cap-add", cap]);
    }
    assert_eq!(
        image.verdict(&only_documented),
        "opened: af_xdp, generic XDP, copy mode"
    );

    let verdict = image.verdict(&[
        "--cap-add",
        "NET_RAW",
        "--cap-add",
        "IPC_LOCK",
        "--cap-add",
        "NET_ADMIN",
    ]);
    assert!(
        verdict.starts_with("error: af_xdp is not available: bpf() was refused (EPERM)")
            && verdict.contains("CAP_SYS_ADMIN"),
        "{verdict}"
    );
}
