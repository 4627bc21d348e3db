//! [`HostsWiring`]: the links of a lab over several hosts, each piece of
//! netlink work done on its host by a helper ([`super::helper`]). A link
//! within one host is a veth as on one host; a link across hosts is a
//! VXLAN end made on each host ([`crate::links::VxlanEnd`]). A node's
//! "namespace file" here names its host and its init's pid there
//! ([`node_path`]): the seam's paths stay opaque to the generic deploy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::Op;
use super::{helper, Host, Hosts};
use crate::lab::Route;
use crate::links::{LinkError, VethPlan, VxlanEnd, Wiring};
use crate::runtime::error::RuntimeError;

const PREFIX: &str = "/labctl-host/";

/// Where node `pid` of `host` lives, as the wiring takes it.
pub(crate) fn node_path(host: &str, pid: u32) -> PathBuf {
    PathBuf::from(format!("{PREFIX}{host}/{pid}"))
}

/// The host and pid of a [`node_path`].
fn parse(path: &Path) -> Option<(&str, u32)> {
    let rest = path.to_str()?.strip_prefix(PREFIX)?;
    let (host, pid) = rest.rsplit_once('/')?;
    Some((host, pid.parse().ok()?))
}

#[derive(Clone)]
pub struct HostsWiring {
    hosts: Arc<Hosts>,
}

impl HostsWiring {
    pub(super) fn new(hosts: Arc<Hosts>) -> Self {
        HostsWiring { hosts }
    }

    fn locate<'a>(&'a self, path: &Path, doing: &str) -> Result<(&'a Host, u32), LinkError> {
        let found = parse(path).and_then(|(name, pid)| {
            let host = self.hosts.hosts.iter().find(|h| h.name == name)?;
            Some((host, pid))
        });
        found.ok_or_else(|| {
            LinkError::io(format!(
                "{doing}: {} names no host of the lab",
                path.display()
            ))(std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    fn owner(&self) -> helper::Owner {
        let owner = self.hosts.owner.lock().unwrap_or_else(|e| e.into_inner());
        owner.clone().unwrap_or(helper::Owner {
            lab: String::new(),
            instance: String::new(),
            run: String::new(),
        })
    }

    async fn on(&self, host: &Host, doing: &str, op: Op) -> Result<(), LinkError> {
        let index = self.hosts.index(&host.name).expect("a host of the lab");
        self.hosts
            .submit(index, &self.owner(), op)
            .await
            .map(|_| ())
            .map_err(|e| link_error(doing, e))
    }
}

fn link_error(doing: &str, error: RuntimeError) -> LinkError {
    LinkError::io(doing.to_owned())(std::io::Error::other(error.to_string()))
}

impl Wiring for HostsWiring {
    async fn wire(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        let doing = format!("wiring {}", plan.describe());
        let (a, pid_a) = self.locate(netns[0], &doing)?;
        let (b, pid_b) = self.locate(netns[1], &doing)?;
        if a.name == b.name {
            let op = Op::Veth {
                plan: plan.clone(),
                pids: [pid_a, pid_b],
            };
            return self.on(a, &doing, op).await;
        }
        let tunnel = {
            let tunnels = self.hosts.tunnels.lock().unwrap_or_else(|e| e.into_inner());
            tunnels.get(&plan.describe()).cloned()
        };
        let Some(tunnel) = tunnel else {
            return Err(LinkError::io(doing)(std::io::Error::other(
                "a link across hosts without its VXLAN settings (deploy settles them first)",
            )));
        };
        let (Some(local), Some(remote)) = (a.underlay, b.underlay) else {
            return Err(LinkError::io(doing)(std::io::Error::other(
                "a host without its underlay address",
            )));
        };
        let end = |k: usize, local, remote| VxlanEnd {
            alias: plan.alias.clone(),
            mtu: Some(tunnel.mtu),
            end: plan.ends[k].clone(),
            vni: tunnel.vni.unwrap_or_default(),
            port: tunnel.port,
            local,
            remote,
        };
        let ends = futures_util::future::join(
            self.on(
                a,
                &doing,
                Op::Vxlan {
                    end: end(0, local, remote),
                    pid: pid_a,
                },
            ),
            self.on(
                b,
                &doing,
                Op::Vxlan {
                    end: end(1, remote, local),
                    pid: pid_b,
                },
            ),
        )
        .await;
        // An end made while the other failed goes with its node.
        ends.0.and(ends.1)
    }

    async fn add_routes(
        &self,
        node: &str,
        routes: &[Route],
        netns: &Path,
    ) -> Result<(), LinkError> {
        if routes.is_empty() {
            return Ok(());
        }
        let doing = format!("adding the routes of {node}");
        let (host, pid) = self.locate(netns, &doing)?;
        let op = Op::Routes {
            node: node.to_owned(),
            routes: routes.to_vec(),
            pid,
        };
        self.on(host, &doing, op).await
    }

    async fn impair(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        let mtu = {
            let tunnels = self.hosts.tunnels.lock().unwrap_or_else(|e| e.into_inner());
            tunnels.get(&plan.describe()).map(|t| t.mtu).or(plan.mtu)
        };
        for (end, netns) in plan.ends.iter().zip(netns) {
            if end.impair.is_none() {
                continue;
            }
            let doing = format!("impairing {}", end.label());
            let (host, pid) = self.locate(netns, &doing)?;
            let op = Op::Impair {
                end: end.clone(),
                mtu,
                pid,
            };
            self.on(host, &doing, op).await?;
        }
        Ok(())
    }

    /// Nothing to sweep: no link of a lab ever exists in a host's own
    /// namespace (every veth and VXLAN end is made inside its node), and
    /// the helpers are containers, removed with the nodes by their labels.
    async fn remove_strays(
        &self,
        _matches: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<String>, LinkError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_path_names_its_host_and_pid() {
        let path = node_path("b", 4242);
        assert_eq!(parse(&path), Some(("b", 4242)));
        assert_eq!(parse(Path::new("/proc/4242/ns/net")), None);
        assert_eq!(parse(Path::new("/labctl-host/b/x")), None);
    }
}
