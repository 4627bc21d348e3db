//! The af_xdp datalink and the tools on it, on real veths in network
//! namespaces and in a FROM-scratch container.
//!
//! - [`datalink`]: the library on a thread that entered a namespace
//!   (setns affects that thread only): frames both ways with AF_PACKET on
//!   the peer, the kernel bypassed, the hub, no program left behind.
//! - [`privileges`]: one clear line for each missing capability, and the
//!   documented ones enough, also under Docker's seccomp profile.
//! - [`tools`]: the tool tests of the AF_PACKET issue, on af_xdp.
//! - [`lab`]: the example lab deployed by labctl on af_xdp.
//!
//! Tests that need a separate process holding the datalink (to kill it,
//! or to run it with fewer capabilities) re-run this test binary as a
//! child: see [`child_opens_af_xdp`].

mod datalink;
mod lab;
mod privileges;
mod tools;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use labctl::tools::datalink::af_xdp::AfXdp;
use labctl::tools::datalink::{Datalink, Direction, OpenOptions};
use pnet::datalink::{self as pnet_datalink, Channel, DataLinkReceiver, DataLinkSender};

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

/// True when an XDP program is attached to eth1 of `netns`.
fn xdp_attached(netns: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", netns, "-d", "link", "show", "eth1"])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("prog/xdp") || text.contains(" xdp")
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
