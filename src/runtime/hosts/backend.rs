//! [`HostsBackend`]: each node a container on its host's
//! [`DockerBackend`], as on one host. Listing goes on past a host that
//! does not answer, so a teardown still removes what the others hold; the
//! silent hosts are named once it ends ([`Backend::remove_host_state`]),
//! and the instance's record is kept until a teardown reaches them all.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{helper, record, Host, Hosts};
use crate::lab::Lab;
use crate::runtime::backend::{Backend, KeptConsole, NodeInfo, StartedNode};
use crate::runtime::error::RuntimeError;
use crate::runtime::inspect::{self, LabStatus};
use crate::runtime::names::{self, Instance, RunId, Scope};
use crate::runtime::node::{NodeImage, NodeSpec};
use crate::runtime::privilege::HostSupport;
use crate::runtime::progress::Progress;

/// The label listing the VNIs of a node's VXLAN ends (`1001/4789,...`):
/// how a deploy on the same hosts picks others.
pub const LABEL_VNIS: &str = "labctl.vnis";

#[derive(Clone)]
pub struct HostsBackend {
    hosts: Arc<Hosts>,
    /// Hosts that did not answer the last listing: name → why.
    silent: Arc<Mutex<HashMap<String, String>>>,
}

impl HostsBackend {
    pub(super) fn new(hosts: Arc<Hosts>) -> Self {
        HostsBackend {
            hosts,
            silent: Arc::default(),
        }
    }

    /// The host of `node` of `instance`: the lab's when known, else found
    /// by its labels.
    pub(super) async fn host_of(&self, instance: &str, node: &str) -> Result<&Host, RuntimeError> {
        if let Some(host) = self.hosts.host_of_node(node) {
            return Ok(host);
        }
        let container = names::container_name(instance, node);
        self.list(&Scope::Instance(instance.to_owned())).await?;
        let found = self.host_of_container(&container);
        found.ok_or_else(|| RuntimeError::NotDeployed {
            lab: format!("{instance} (node {node})"),
        })
    }

    fn host_of_container(&self, container: &str) -> Option<&Host> {
        let known = self
            .hosts
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.get(container).map(|&i| &self.hosts.hosts[i])
    }

    /// The labs in `scope` over every host that answers; a node's pid is
    /// on its own host, and its interfaces are shown as declared (labctl
    /// does not look inside another host's namespaces).
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        let containers = self.list(scope).await?;
        inspect::statuses(containers, |container| async move {
            let pid = match self.host_of_container(&container.name) {
                Some(host) if container.is_running() => {
                    host.docker()?.1.pid(&container.name).await?
                }
                _ => None,
            };
            Ok((pid, None))
        })
        .await
    }

    /// Settles the VNI of every link across hosts: the lab's own, else one
    /// no other lab uses on either host (their nodes' [`LABEL_VNIS`]); a
    /// given VNI another lab holds is refused before anything is created.
    async fn settle_vnis(&self, instance: &Instance) -> Result<(), RuntimeError> {
        let mut tunnels = self
            .hosts
            .tunnels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if tunnels.is_empty() {
            return Ok(());
        }
        let mut taken: Vec<BTreeSet<(u32, u16)>> = vec![BTreeSet::new(); self.hosts.hosts.len()];
        let mut holders: HashMap<(usize, u32, u16), String> = HashMap::new();
        for (i, host) in self.hosts.hosts.iter().enumerate() {
            for (other, vni, port) in vnis_in_use(&host.docker()?.0)
                .await
                .map_err(|e| on_host(host, e))?
            {
                if other != instance.as_str() {
                    taken[i].insert((vni, port));
                    holders.insert((i, vni, port), other);
                }
            }
        }
        let mut labels: Vec<_> = tunnels.keys().cloned().collect();
        labels.sort();
        let mut used: BTreeSet<(u32, u16)> = tunnels
            .values()
            .filter_map(|t| Some((t.vni?, t.port)))
            .collect();
        for label in &labels {
            let tunnel = tunnels.get_mut(label).expect("a tunnel");
            if let Some(vni) = tunnel.vni {
                for &i in &tunnel.hosts {
                    if let Some(other) = holders.get(&(i, vni, tunnel.port)) {
                        let host = &self.hosts.hosts[i];
                        return Err(RuntimeError::HostConflict {
                            host: host.name.clone(),
                            endpoint: host.endpoint.clone(),
                            problem: format!(
                                "link {label}: VNI {vni} on port {} is in use there by lab \
                             instance {other}; give the link another `vxlan: {{ vni: ... }}` or \
                             leave it out and labctl picks a free one",
                                tunnel.port
                            ),
                        });
                    }
                }
                continue;
            }
            let mut vni = first_vni(instance.as_str(), label);
            while used.contains(&(vni, tunnel.port))
                || tunnel
                    .hosts
                    .iter()
                    .any(|&i| taken[i].contains(&(vni, tunnel.port)))
            {
                vni = if vni >= VNI_LAST { VNI_FIRST } else { vni + 1 };
            }
            used.insert((vni, tunnel.port));
            tunnel.vni = Some(vni);
        }
        *self.hosts.tunnels.lock().unwrap_or_else(|e| e.into_inner()) = tunnels;
        Ok(())
    }

    /// `spec`'s labels plus the VNIs of its node's VXLAN ends.
    fn with_vnis(&self, spec: &NodeSpec) -> NodeSpec {
        let tunnels = self.hosts.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{}:", spec.node);
        let vnis: Vec<String> = tunnels
            .iter()
            .filter(|(label, _)| {
                label.starts_with(&prefix) || label.contains(&format!("<-> {prefix}"))
            })
            .filter_map(|(_, t)| Some(format!("{}/{}", t.vni?, t.port)))
            .collect();
        let mut spec = spec.clone();
        if !vnis.is_empty() {
            spec.labels.insert(LABEL_VNIS.to_owned(), vnis.join(","));
        }
        spec
    }
}

/// Picked VNIs start high, away from the small numbers people write.
const VNI_FIRST: u32 = 0x10_0000;
const VNI_LAST: u32 = 0xFF_FFFF;

/// Where the search for a free VNI starts: a hash of the instance and the
/// link, so two instances rarely probe the same numbers.
fn first_vni(instance: &str, link: &str) -> u32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{instance}\n{link}"));
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    VNI_FIRST + n % (VNI_LAST - VNI_FIRST + 1)
}

/// The VNIs the labctl containers on a host hold, with their instances.
async fn vnis_in_use(docker: &bollard::Docker) -> Result<Vec<(String, u32, u16)>, RuntimeError> {
    let filters = HashMap::from([("label".to_owned(), vec![LABEL_VNIS.to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(RuntimeError::docker("listing the VXLAN ends of other labs"))?;
    Ok(containers
        .into_iter()
        .filter_map(|c| c.labels)
        .flat_map(|labels| {
            let instance = labels
                .get(names::LABEL_INSTANCE)
                .cloned()
                .unwrap_or_default();
            let vnis = labels
                .get(LABEL_VNIS)
                .map(|l| parse_vnis(l))
                .unwrap_or_default();
            vnis.into_iter()
                .map(move |(vni, port)| (instance.clone(), vni, port))
        })
        .collect())
}

/// The VNIs a node's label lists.
pub(crate) fn parse_vnis(label: &str) -> Vec<(u32, u16)> {
    label
        .split(',')
        .filter_map(|item| {
            let (vni, port) = item.split_once('/')?;
            Some((vni.parse().ok()?, port.parse().ok()?))
        })
        .collect()
}

impl Backend for HostsBackend {
    async fn prepare_images(
        &self,
        lab: &Lab,
        instance: &Instance,
        run: &RunId,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        // Before anything exists on any host: the record that lets a
        // `destroy` after a crash find every host.
        record::write(&record::Record {
            lab: lab.name().to_owned(),
            instance: instance.to_string(),
            run: run.to_string(),
            hosts: self.hosts.hosts.iter().map(Host::recorded).collect(),
        })?;
        *self.hosts.owner.lock().unwrap_or_else(|e| e.into_inner()) = Some(helper::Owner {
            lab: lab.name().to_owned(),
            instance: instance.to_string(),
            run: run.to_string(),
        });
        self.settle_vnis(instance).await?;
        let per_host = self
            .hosts
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| async move {
                let (_, backend) = host.docker()?;
                let mine = |node: &crate::lab::Node| self.hosts.nodes.get(&node.name) == Some(&i);
                if !lab.nodes().iter().any(mine) {
                    return Ok(HashMap::new());
                }
                backend
                    .prepare_images_of(lab, &mine, instance, run, progress)
                    .await
                    .map_err(|e| host.unfit(e.to_string()))
            });
        let mut images = HashMap::new();
        for found in futures_util::future::join_all(per_host).await {
            images.extend(found?);
        }
        Ok(images)
    }

    async fn host_support(&self) -> Result<HostSupport, RuntimeError> {
        let mut support: Option<HostSupport> = None;
        for host in &self.hosts.hosts {
            let here = host.docker()?.1.host_support().await?;
            support = Some(match support {
                None => here,
                // The least any host grants.
                Some(mut all) => {
                    all.no_cap_bpf = all.no_cap_bpf.or(here.no_cap_bpf);
                    for (cap, why) in here.ungrantable {
                        if all.cannot_grant(cap).is_none() {
                            all.ungrantable.push((cap, why));
                        }
                    }
                    all
                }
            });
        }
        let mut support = support.unwrap_or(HostSupport::FULL);
        // The pins of an XDP program attached from the host live on that
        // host; labctl attaches none on a host it reaches only by its API.
        support.no_pinned_xdp = Some(
            "a lab across hosts has no XDP program attached from the host: its af_xdp nodes \
             load their own (CAP_BPF, Docker 23.0 or later, or `privileged: true`)"
                .to_owned(),
        );
        Ok(support)
    }

    async fn start_node(&self, spec: &NodeSpec) -> Result<StartedNode, RuntimeError> {
        let Some(&index) = self.hosts.nodes.get(&spec.node) else {
            return Err(RuntimeError::NotDeployed {
                lab: format!("node {} (on no host)", spec.node),
            });
        };
        let host = &self.hosts.hosts[index];
        self.hosts
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.container.clone(), index);
        let started = host.docker()?.1.start_node(&self.with_vnis(spec)).await;
        let started = started.map_err(|e| on_host(host, e))?;
        let pid = started.pid.expect("a container has an init");
        Ok(StartedNode {
            pid: Some(pid),
            netns: super::wiring::node_path(&host.name, pid),
        })
    }

    async fn remove_host_state(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        let silent = std::mem::take(&mut *self.silent.lock().unwrap_or_else(|e| e.into_inner()));
        let what = match scope {
            Scope::Instance(name) | Scope::Named(name) => name.clone(),
            Scope::Run { instance, .. } => instance.clone(),
            Scope::All { prefix } if prefix.is_empty() => "--all".to_owned(),
            Scope::All { prefix } => format!("--all --prefix {prefix}"),
        };
        if let Some((name, cause)) = silent.into_iter().min() {
            let host = self.hosts.hosts.iter().find(|h| h.name == name);
            let endpoint = host.map(|h| h.endpoint.as_str()).unwrap_or_default();
            return Err(RuntimeError::HostLeft {
                host: format!("{name} ({endpoint})"),
                cause,
                retry: format!("labctl destroy {what}"),
            });
        }
        let mut removed = Vec::new();
        for found in record::in_scope(scope) {
            record::remove(&found.instance)?;
            removed.push(format!(
                "record of {} on {} hosts",
                found.instance,
                found.hosts.len()
            ));
        }
        Ok(removed)
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<NodeInfo>, RuntimeError> {
        let listed =
            futures_util::future::join_all(self.hosts.hosts.iter().map(|host| async move {
                match host.docker() {
                    Ok((_, backend)) => backend.list(scope).await.map_err(|e| e.to_string()),
                    Err(_) => Err(host.docker.as_ref().err().cloned().unwrap_or_default()),
                }
            }))
            .await;
        let mut found = Vec::new();
        let mut silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        let mut known = self
            .hosts
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (i, (host, listed)) in self.hosts.hosts.iter().zip(listed).enumerate() {
            match listed {
                Ok(nodes) => {
                    silent.remove(&host.name);
                    for node in &nodes {
                        known.insert(node.name.clone(), i);
                    }
                    found.extend(nodes);
                }
                Err(cause) => {
                    silent.insert(host.name.clone(), cause);
                }
            }
        }
        Ok(found)
    }

    async fn remove(&self, container: &str) -> Result<(), RuntimeError> {
        match self.host_of_container(container) {
            Some(host) => host
                .docker()?
                .1
                .remove(container)
                .await
                .map_err(|e| on_host(host, e)),
            // Never listed: nothing of it is known to exist.
            None => Ok(()),
        }
    }

    async fn stop_command(&self, instance: &str, node: &str) -> Result<(), RuntimeError> {
        let host = self.host_of(instance, node).await?;
        host.docker()?
            .1
            .stop_command(instance, node)
            .await
            .map_err(|e| on_host(host, e))
    }

    async fn keep_console(
        &self,
        instance: &str,
        node: &str,
        dest: &Path,
    ) -> Result<Option<KeptConsole>, RuntimeError> {
        let host = self.host_of(instance, node).await?;
        host.docker()?
            .1
            .keep_console(instance, node, dest)
            .await
            .map_err(|e| on_host(host, e))
    }

    async fn copy_out(
        &self,
        instance: &str,
        node: &str,
        from: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, RuntimeError> {
        let host = self.host_of(instance, node).await?;
        host.docker()?
            .1
            .copy_out(instance, node, from, dest)
            .await
            .map_err(|e| on_host(host, e))
    }
}

/// A host's Docker error, with the host named: which of several daemons
/// failed is the first thing a user needs.
pub(super) fn on_host(host: &Host, error: RuntimeError) -> RuntimeError {
    match error {
        RuntimeError::Docker { doing, cause } => RuntimeError::Docker {
            doing: format!("on host {} ({}): {doing}", host.name, host.endpoint),
            cause,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_labels_read_back_and_picks_stay_in_range() {
        assert_eq!(
            parse_vnis("1001/4789,1048576/8472"),
            [(1001, 4789), (1_048_576, 8472)]
        );
        assert_eq!(parse_vnis("x,1/2/3,"), []);
        for link in ["a:eth1 <-> b:eth1", "c:x <-> d:y"] {
            let vni = first_vni("lab-1", link);
            assert!((VNI_FIRST..=VNI_LAST).contains(&vni), "{vni}");
            assert_eq!(vni, first_vni("lab-1", link));
        }
        assert_ne!(
            first_vni("lab-1", "a:eth1 <-> b:eth1"),
            first_vni("lab-2", "a:eth1 <-> b:eth1")
        );
    }
}
