//! Two network namespaces joined by one veth pair, for the tool tests.
//!
//! Each side is a fresh namespace with `eth1` in it, up, with an address
//! from 198.18.0.0/15. Dropping the pair deletes both namespaces, which
//! removes the veth with them, even when the test failed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::unique;

pub struct Side {
    pub netns: String,
    pub addr: &'static str,
    pub mac: &'static str,
}

pub struct VethPair {
    pub a: Side,
    pub b: Side,
    /// The veth's names in the host namespace until they are moved; removed
    /// by the guard too in case a move failed.
    host_names: [String; 2],
}

/// Runs `ip ARGS...`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    /// `a` is 198.18.0.1/24 (02:00:00:00:00:01), `b` 198.18.0.2/24
    /// (02:00:00:00:00:02), both on `eth1`. The kernels of both namespaces
    /// are silenced the way labctl silences a node (see
    /// [`VethPair::silence_kernel`]) unless `silent` is false.
    pub fn new(silent: bool) -> VethPair {
        let a = Side {
            netns: unique("lta"),
            addr: "198.18.0.1",
            mac: "02:00:00:00:00:01",
        };
        let b = Side {
            netns: unique("ltb"),
            addr: "198.18.0.2",
            mac: "02:00:00:00:00:02",
        };
        let (ta, tb) = (unique("lv"), unique("lv"));
        let pair = VethPair {
            a,
            b,
            host_names: [ta.clone(), tb.clone()],
        };
        ip(&["netns", "add", &pair.a.netns]);
        ip(&["netns", "add", &pair.b.netns]);
        ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb]);
        for (tmp, side) in [(&ta, &pair.a), (&tb, &pair.b)] {
            ip(&["link", "set", tmp, "netns", &side.netns, "name", "eth1"]);
            if silent {
                pair.silence_kernel(side);
            }
            let ns = &side.netns;
            ip(&["-n", ns, "link", "set", "eth1", "address", side.mac]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", side.addr),
                "dev",
                "eth1",
            ]);
            ip(&["-n", ns, "link", "set", "eth1", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// The same sysctls labctl applies to a node: no kernel ARP replies, no
    /// kernel echo replies, no IPv6 chatter.
    pub fn silence_kernel(&self, side: &Side) {
        for kv in [
            "net.ipv4.conf.all.arp_ignore=8",
            "net.ipv4.conf.eth1.arp_ignore=8",
            "net.ipv4.icmp_echo_ignore_all=1",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.eth1.disable_ipv6=1",
        ] {
            let out = in_netns(&side.netns, Command::new("sysctl").args(["-qw", kv]))
                .output()
                .expect("run sysctl");
            assert!(out.status.success(), "sysctl {kv}: {out:?}");
        }
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.a.netns, &self.b.netns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        for name in &self.host_names {
            let _ = Command::new("ip")
                .args(["link", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Wraps `cmd` so that it runs inside `netns` (`ip netns exec`).
pub fn in_netns(netns: &str, cmd: &Command) -> Command {
    let mut wrapped = Command::new("ip");
    wrapped
        .args(["netns", "exec", netns])
        .arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// Runs `program ARGS...` inside `netns` and waits for it.
pub fn run_in(netns: &str, program: &Path, args: &[&str]) -> Output {
    in_netns(netns, Command::new(program).args(args))
        .output()
        .expect("spawn in netns")
}

/// Sends `frames` out of `iface` in `netns`, through the tools' own
/// AF_PACKET datalink, from a thread that enters the namespace (only that
/// thread moves; it ends with the call).
pub fn inject(netns: &str, iface: &str, frames: Vec<Vec<u8>>) {
    use labctl::tools::datalink::{self, DatalinkKind, OpenOptions};
    use std::os::fd::AsRawFd;

    let path = format!("/run/netns/{netns}");
    let iface = iface.to_owned();
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: setns on a namespace fd we hold open; it only affects
        // this thread, which nothing else uses.
        let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let mut link = datalink::open(DatalinkKind::AfPacket, &iface, &OpenOptions::default())
            .expect("open the injecting datalink");
        for frame in &frames {
            link.send(frame).expect("inject a frame");
        }
    })
    .join()
    .expect("the injecting thread");
}

/// Runs `work` on a thread that enters `netns` first (only that thread
/// moves; it ends with the call) and returns what it returns.
pub fn in_thread_of<T: Send + 'static>(
    netns: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    use std::os::fd::AsRawFd;

    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: setns on a namespace fd we hold open; it only affects
        // this thread, which nothing else uses.
        let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        work()
    })
    .join()
    .expect("the thread in the namespace")
}

/// True when this process may create namespaces and veths.
pub fn have_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
