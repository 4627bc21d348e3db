//! The links of a lab: veth pairs wired into the nodes' network namespaces
//! through netlink.
//!
//! Each link is created with both ends already in their nodes' namespaces
//! under their final names (one request from the host; `netlink.rs` says
//! why nothing is ever made on the host), then each end is configured from
//! inside its node: the deploy's alias (`labctl:<lab>:<run>`), address,
//! interface sysctls, up. `destroy` still sweeps host interfaces carrying
//! the alias, as a safety net.
//!
//! [`plan`] is pure; [`Wiring`] is the small interface the deploy logic
//! uses (any runtime whose nodes have a network namespace can use it),
//! with [`Netlink`] the real implementation.

pub mod impair;
mod namespace;
mod netlink;
pub mod sysctl;

use std::future::Future;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::lab::{Impairment, Lab, Node};

pub use namespace::{pid_path, Netns};
pub use netlink::{
    impair_end, interfaces_in, live_interfaces, set_link_state, LiveInterface, Netlink,
};

/// One veth pair to create.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VethPlan {
    /// IFLA_IFALIAS on both ends: `labctl:<lab>:<run>`.
    pub alias: String,
    pub mtu: Option<u32>,
    pub ends: [VethEnd; 2],
}

impl VethPlan {
    /// `a:eth1 <-> b:eth1`, for messages.
    pub fn describe(&self) -> String {
        format!("{} <-> {}", self.ends[0].label(), self.ends[1].label())
    }
}

/// One end of a veth, as it must look inside its node.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VethEnd {
    pub node: String,
    pub interface: String,
    pub ipv4: Option<Ipv4Net>,
    pub mac: Option<[u8; 6]>,
    /// `(key, value)` sysctls of this interface from the node's `sysctls`.
    pub sysctls: Vec<(String, String)>,
    /// What the frames this end sends go through (`impair`).
    pub impair: Option<Impairment>,
}

impl VethEnd {
    pub fn label(&self) -> String {
        format!("{}:{}", self.node, self.interface)
    }
}

/// One end of a link carried by VXLAN between two hosts: a VXLAN device
/// created from the host's namespace, where its UDP socket stays, directly
/// inside the node's namespace under the end's final name, so the node sees
/// a plain interface and nothing of the lab ever exists on the host (as a
/// veth, `netlink.rs`). Point to point: the remote is the other host's
/// underlay address, no learning, no multicast.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VxlanEnd {
    /// IFLA_IFALIAS: `labctl:<lab>:<run>`, as a veth's.
    pub alias: String,
    pub mtu: Option<u32>,
    pub end: VethEnd,
    pub vni: u32,
    /// The UDP destination port (4789 unless the link says).
    pub port: u16,
    /// This host's underlay address.
    pub local: std::net::IpAddr,
    /// The other host's.
    pub remote: std::net::IpAddr,
}

/// The veths of `lab`, in file order, all carrying `alias`.
pub fn plan(lab: &Lab, alias: &str) -> Vec<VethPlan> {
    lab.links()
        .iter()
        .map(|link| VethPlan {
            alias: alias.to_owned(),
            mtu: link.mtu,
            ends: link.endpoints.clone().map(|e| {
                let sysctls = lab
                    .node(&e.node)
                    .map(|node| interface_sysctls(node, &e.interface))
                    .unwrap_or_default();
                VethEnd {
                    node: e.node,
                    interface: e.interface,
                    ipv4: e.ipv4,
                    mac: e.mac.map(|m| m.octets()),
                    sysctls,
                    impair: e.impair,
                }
            }),
        })
        .collect()
}

/// The node's sysctls that are about `iface`.
fn interface_sysctls(node: &Node, iface: &str) -> Vec<(String, String)> {
    node.sysctls
        .iter()
        .filter(|(key, _)| sysctl::interface_of(key, &[iface]).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the deploy logic needs from the kernel's side of a lab.
pub trait Wiring: Sync {
    /// Creates the veth pair of `plan` (names, MACs, MTU) directly in the
    /// nodes' network namespaces (namespace files: `/proc/PID/ns/net` of a
    /// container's init, or a named namespace; in the order of
    /// `plan.ends`), then configures each end from inside: alias, address,
    /// sysctls, up. Nothing is created in the host namespace; if
    /// configuring fails the pair is deleted, and whatever survives goes
    /// with its node.
    fn wire(
        &self,
        plan: &VethPlan,
        netns: [&Path; 2],
    ) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// Adds `routes` to the main table of the namespace `netns` (a node's
    /// `routes`, after its links are wired and up), in order; the first
    /// that fails stops the rest.
    fn add_routes(
        &self,
        node: &str,
        routes: &[crate::lab::Route],
        netns: &Path,
    ) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// Applies each end's `impair` (rate: a tbf qdisc; loss: a clsact
    /// egress filter; the other keys: a netem qdisc; `links/impair.rs`) to
    /// its interface inside its node (`netns` in the order of
    /// `plan.ends`), after the pair is wired; a no-op for a plain link.
    /// What it adds lives on the interface and goes with it.
    fn impair(
        &self,
        plan: &VethPlan,
        netns: [&Path; 2],
    ) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// Deletes every host interface whose alias `matches`; returns their
    /// names.
    fn remove_strays(
        &self,
        matches: &(dyn Fn(&str) -> bool + Sync),
    ) -> impl Future<Output = Result<Vec<String>, LinkError>> + Send;
}

/// Why a link could not be wired or removed; says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{doing}: {cause}")]
    Netlink {
        doing: String,
        cause: rtnetlink::Error,
    },
    #[error("{doing}: {cause}")]
    Io {
        doing: String,
        cause: std::io::Error,
    },
}

impl LinkError {
    pub(crate) fn netlink(doing: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let doing = doing.into();
        move |cause| LinkError::Netlink { doing, cause }
    }

    pub(crate) fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let doing = doing.into();
        move |cause| LinkError::Io { doing, cause }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_plan_follows_the_lab() {
        let src = r#"
name: p
nodes:
  a: { sysctls: { net.ipv4.conf.eth1.rp_filter: "2", net.ipv4.ip_forward: "1" } }
  b: {}
links:
  - endpoints:
      - { node: a, interface: eth1, ipv4: 198.18.0.1/24, mac: "02:00:00:00:00:01" }
      - { node: b, interface: eth9 }
    mtu: 9000
"#;
        let lab = crate::lab::parse(src, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let plans = plan(&lab, "labctl:p:run");
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.describe(), "a:eth1 <-> b:eth9");
        assert_eq!(p.alias, "labctl:p:run");
        assert_eq!(p.mtu, Some(9000));
        assert_eq!(p.ends[0].mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.ends[0].ipv4.unwrap().to_string(), "198.18.0.1/24");
        assert_eq!(
            p.ends[0].sysctls,
            [("net.ipv4.conf.eth1.rp_filter".to_owned(), "2".to_owned())]
        );
        assert!(p.ends[1].sysctls.is_empty() && p.ends[1].ipv4.is_none());
        assert!(p.ends.iter().all(|e| e.impair.is_none()));
    }

    #[test]
    fn each_end_carries_its_impairment() {
        let src = r#"
name: p
nodes: { a: {}, b: {} }
links:
  - endpoints:
      - { node: a, interface: eth1, impair: { rate: 10mbit } }
      - b:eth1
    impair: { loss: 10% }
"#;
        let lab = crate::lab::parse(src, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let plans = plan(&lab, "labctl:p:run");
        let [a, b] = &plans[0].ends;
        let a = a.impair.unwrap();
        let b = b.impair.unwrap();
        assert_eq!((a.rate, a.loss), (Some(10_000_000), Some(0.1)));
        assert_eq!((b.rate, b.loss), (None, Some(0.1)));
        assert!(!a.needs_netem() && !b.needs_netem());
    }
}
