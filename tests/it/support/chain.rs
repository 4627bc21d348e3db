//! Namespaces chained by veth pairs, for the tests with something in the
//! middle: a kernel router, lab-fwd. Dropping the guard deletes every
//! namespace it made (the veths go with them), even when the test failed.

use std::process::{Command, Stdio};

use super::netns::{in_netns, ip};
use super::unique;

/// One interface end: its namespace, name, MAC and, if any, its address
/// with its prefix length ("198.18.1.1/24").
pub struct End<'a> {
    pub netns: &'a str,
    pub iface: &'a str,
    pub mac: &'a str,
    pub cidr: Option<&'a str>,
}

#[derive(Default)]
pub struct Chain {
    namespaces: Vec<String>,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::default()
    }

    /// A fresh namespace with `lo` up and no IPv6 (interfaces moved in
    /// later take its defaults, so no router solicitation or MLD report
    /// ever leaves them); its name.
    pub fn netns(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        self.sysctl(
            &name,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        );
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A veth pair from `a` to `b`, both ends up with their MAC and address.
    pub fn veth(&self, a: End<'_>, b: End<'_>) {
        let (ta, tb) = (unique("lc"), unique("lc"));
        ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb]);
        for (tmp, end) in [(&ta, &a), (&tb, &b)] {
            ip(&["link", "set", tmp, "netns", end.netns, "name", end.iface]);
            ip(&[
                "-n", end.netns, "link", "set", end.iface, "address", end.mac,
            ]);
            if let Some(cidr) = end.cidr {
                ip(&["-n", end.netns, "addr", "add", cidr, "dev", end.iface]);
            }
        }
        for end in [&a, &b] {
            ip(&["-n", end.netns, "link", "set", end.iface, "up"]);
        }
    }

    /// Runs `sysctl -qw` for each setting in `netns`.
    pub fn sysctl(&self, netns: &str, settings: &[&str]) {
        for setting in settings {
            let out = in_netns(netns, Command::new("sysctl").args(["-qw", setting]))
                .output()
                .expect("run sysctl");
            assert!(out.status.success(), "sysctl {setting} in {netns}: {out:?}");
        }
    }

    /// labctl's silencing of a node's kernel (no ARP, no echo replies, no
    /// IPv6), on `ifaces` and for all.
    pub fn silence(&self, netns: &str, ifaces: &[&str]) {
        let mut settings = vec![
            "net.ipv4.conf.all.arp_ignore=8".to_owned(),
            "net.ipv4.icmp_echo_ignore_all=1".to_owned(),
            "net.ipv6.conf.all.disable_ipv6=1".to_owned(),
        ];
        for iface in ifaces {
            settings.push(format!("net.ipv4.conf.{iface}.arp_ignore=8"));
            settings.push(format!("net.ipv6.conf.{iface}.disable_ipv6=1"));
        }
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        self.sysctl(netns, &settings);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
