//! The hosts runtime: one lab over several Docker hosts (the lab file's
//! `hosts`, docs/scaling.md). Each node is a container on its host, made
//! by that host's [`DockerBackend`] exactly as on one host; a link between
//! two nodes of one host is a veth, a link across hosts a VXLAN device at
//! each end, unicast between the hosts' underlay addresses.
//!
//! labctl reaches a host only through its Docker API, so the netlink work
//! in a host's namespaces (veths, VXLAN ends, routes, impairments,
//! link-state steps) is done there by a short-lived helper container
//! running labctl's own binary on a typed [`plan::Plan`] (`helper.rs`).
//!
//! - [`HostsRuntime`]: connects every host and checks, before anything is
//!   created, what can be known then: each host answers with a recent
//!   enough API, holds its underlay address, carries each link's MTU.
//! - `backend`: [`HostsBackend`], each node on its host's backend; a host
//!   that stops answering is named, and the others are still torn down.
//! - `wiring`: [`HostsWiring`], the links through the helpers.
//! - `launcher`: steps by `docker exec` on the node's host.
//! - [`record`]: which hosts an instance uses, for `labctl destroy`.

mod backend;
mod helper;
mod launcher;
pub mod plan;
pub mod record;
mod wiring;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bollard::Docker;

use super::docker::connect;
use super::docker::DockerBackend;
use super::error::RuntimeError;
use super::inspect::LabStatus;
use super::names::Scope;
use super::Runtime;
use crate::lab::Lab;
pub use backend::HostsBackend;
pub use launcher::HostsLauncher;
use plan::{Op, Outcome, Plan};
use record::RecordedHost;
pub use wiring::HostsWiring;

/// The oldest Docker Engine API a host may speak (Docker 19.03): the
/// helper's `ReadonlyPaths` and the host PID mode need it.
pub const MIN_API: (usize, usize) = (1, 40);

/// VXLAN's UDP port (IANA) when a link names none.
pub const VXLAN_PORT: u16 = 4789;

/// Bytes a VXLAN frame adds on the underlay: outer Ethernet is not
/// counted, outer IP + UDP + VXLAN + inner Ethernet are.
pub fn overhead(underlay: IpAddr) -> u32 {
    match underlay {
        IpAddr::V4(_) => 50,
        IpAddr::V6(_) => 70,
    }
}

/// One host: its connection (or why it has none) and its helper image.
pub(crate) struct Host {
    pub name: String,
    pub endpoint: String,
    pub tls: Option<PathBuf>,
    pub underlay: Option<IpAddr>,
    /// `Err`: it did not answer when connected (a `destroy` goes on with
    /// the others and says so).
    pub docker: Result<(Docker, DockerBackend), String>,
    image: tokio::sync::OnceCell<String>,
    /// Operations waiting for the next helper run ([`Hosts::submit`]).
    pending: Mutex<Option<Pending>>,
}

/// Operations gathered for one helper run, and where each outcome goes.
struct Pending {
    owner: helper::Owner,
    ops: Vec<Op>,
    replies: Vec<tokio::sync::oneshot::Sender<Result<Outcome, String>>>,
}

/// How long the first operation for a host waits for others to join its
/// helper run: the deploy wires links several at a time, and one container
/// for all of them costs what one costs for each.
const GATHER: std::time::Duration = std::time::Duration::from_millis(30);

impl Host {
    async fn connect(recorded: RecordedHost) -> Host {
        let docker = match connect::connect_to(&recorded.docker, recorded.tls.as_deref()).await {
            Ok(docker) => Ok((docker.clone(), DockerBackend::new(docker))),
            Err(e) => Err(super::docker::DockerError(e).to_string()),
        };
        Host {
            name: recorded.name,
            endpoint: recorded.docker,
            tls: recorded.tls,
            underlay: recorded.underlay,
            docker,
            image: tokio::sync::OnceCell::new(),
            pending: Mutex::new(None),
        }
    }

    /// The connection, or the error that says this host did not answer.
    pub fn docker(&self) -> Result<&(Docker, DockerBackend), RuntimeError> {
        self.docker
            .as_ref()
            .map_err(|cause| self.unreachable(cause))
    }

    pub fn unreachable(&self, cause: &str) -> RuntimeError {
        RuntimeError::HostUnreachable {
            host: self.name.clone(),
            endpoint: self.endpoint.clone(),
            cause: cause.to_owned(),
        }
    }

    pub fn unfit(&self, problem: impl Into<String>) -> RuntimeError {
        RuntimeError::HostUnfit {
            host: self.name.clone(),
            endpoint: self.endpoint.clone(),
            problem: problem.into(),
        }
    }

    fn recorded(&self) -> RecordedHost {
        RecordedHost {
            name: self.name.clone(),
            docker: self.endpoint.clone(),
            tls: self.tls.clone(),
            underlay: self.underlay,
        }
    }

    /// Carries out `plan` here through a helper container.
    async fn run_plan(
        &self,
        owner: &helper::Owner,
        plan: &Plan,
    ) -> Result<plan::Report, RuntimeError> {
        let (docker, _) = self.docker()?;
        let image = self
            .image
            .get_or_try_init(|| helper::ensure_image(docker, &self.name))
            .await?;
        helper::run(docker, &self.name, image, owner, plan).await
    }

    /// The API version the daemon speaks, refused when older than
    /// [`MIN_API`].
    async fn check_api(&self) -> Result<(), RuntimeError> {
        let (docker, _) = self.docker()?;
        let version = docker
            .version()
            .await
            .map_err(|e| self.unreachable(&super::docker::DockerError(e).to_string()))?;
        let api = version.api_version.unwrap_or_default();
        let parsed = api
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        match parsed {
            Some(v) if v >= MIN_API => Ok(()),
            _ => Err(self.unfit(format!(
                "its Docker speaks API {} (Docker {}); labctl needs API {}.{} (Docker 19.03) \
                 or newer on every host",
                if api.is_empty() { "unknown" } else { &api },
                version.version.as_deref().unwrap_or("unknown"),
                MIN_API.0,
                MIN_API.1
            ))),
        }
    }
}

/// A link across hosts, as its two VXLAN ends are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tunnel {
    /// The hosts of its two ends, in the order of its endpoints.
    pub hosts: [usize; 2],
    /// The VNI the lab gave, until deploy picks the others.
    pub vni: Option<u32>,
    pub port: u16,
    pub mtu: u32,
}

/// Everything the parts of the runtime share.
pub(crate) struct Hosts {
    pub hosts: Vec<Host>,
    /// Node name → its host, from the lab (empty when connected to clean
    /// up from records).
    pub nodes: HashMap<String, usize>,
    /// Link (`a:eth1 <-> b:eth1`) → its tunnel; VNIs settled by the
    /// deploy's first step.
    pub tunnels: Mutex<HashMap<String, Tunnel>>,
    /// Container name → its host, as last listed or started.
    pub containers: Mutex<HashMap<String, usize>>,
    /// Who the helpers work for, once a deploy started.
    pub owner: Mutex<Option<helper::Owner>>,
}

impl Hosts {
    /// Carries out `op` on host `host` through a helper there, together
    /// with the operations other callers submit meanwhile; its own outcome,
    /// a failure being an error that names the host. The run is a task of
    /// its own, so a caller that goes away strands no other.
    pub async fn submit(
        self: &Arc<Self>,
        host: usize,
        owner: &helper::Owner,
        op: Op,
    ) -> Result<Outcome, RuntimeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let leads = {
            let mut pending = self.hosts[host]
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let leads = pending.is_none();
            let batch = pending.get_or_insert_with(|| Pending {
                owner: owner.clone(),
                ops: Vec::new(),
                replies: Vec::new(),
            });
            batch.ops.push(op);
            batch.replies.push(tx);
            leads
        };
        if leads {
            let hosts = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(GATHER).await;
                let this = &hosts.hosts[host];
                let taken = this
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let Some(batch) = taken else { return };
                let plan = Plan { ops: batch.ops };
                match this.run_plan(&batch.owner, &plan).await {
                    Ok(report) => {
                        for (reply, outcome) in batch.replies.into_iter().zip(report.outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let error = e.to_string();
                        for reply in batch.replies {
                            let _ = reply.send(Err(error.clone()));
                        }
                    }
                }
            });
        }
        let this = &self.hosts[host];
        let failed = |error: String| {
            RuntimeError::io(format!("on host {} ({})", this.name, this.endpoint))(
                std::io::Error::other(error),
            )
        };
        match rx.await {
            Ok(Ok(Outcome::Failed { error })) | Ok(Err(error)) => Err(failed(error)),
            Ok(Ok(outcome)) => Ok(outcome),
            Err(_) => Err(failed(
                "the wiring helper's run ended without an answer".into(),
            )),
        }
    }

    pub fn host_of_node(&self, node: &str) -> Option<&Host> {
        self.nodes.get(node).map(|&i| &self.hosts[i])
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }
}

/// The lab over its hosts.
#[derive(Clone)]
pub struct HostsRuntime {
    hosts: Arc<Hosts>,
    backend: HostsBackend,
    wiring: HostsWiring,
}

impl HostsRuntime {
    /// Connects every host of `lab` and checks what can be known before
    /// anything is created: each host answers with API 1.40 or newer, holds
    /// its underlay address, and each link across hosts fits the underlay's
    /// MTU. The first problem is one line naming the host.
    pub async fn connect(lab: &Lab) -> Result<Self, RuntimeError> {
        let recorded = lab.hosts().iter().map(|h| RecordedHost {
            name: h.name.clone(),
            docker: h.docker.to_string(),
            tls: h.tls.clone(),
            underlay: Some(h.underlay),
        });
        let hosts: Vec<Host> = futures_util::future::join_all(recorded.map(Host::connect)).await;
        for host in &hosts {
            host.docker()?;
        }
        let checked = futures_util::future::join_all(hosts.iter().map(Host::check_api)).await;
        checked.into_iter().collect::<Result<Vec<()>, _>>()?;
        let nodes: HashMap<String, usize> = lab
            .nodes()
            .iter()
            .filter_map(|n| {
                let host = n.host.as_deref()?;
                Some((n.name.clone(), hosts.iter().position(|h| h.name == host)?))
            })
            .collect();
        let runtime = Self::of(Hosts {
            hosts,
            nodes,
            tunnels: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            owner: Mutex::new(None),
        });
        let underlays = runtime.probe_underlays(lab).await?;
        let tunnels = tunnels(lab, &runtime.hosts, &underlays)?;
        *runtime
            .hosts
            .tunnels
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = tunnels;
        Ok(runtime)
    }

    /// The hosts of every recorded instance in `scope`, for the verbs that
    /// look everywhere (`destroy`, `inspect`, `exec`); `None` when no
    /// instance in `scope` spans hosts. A host that does not answer is
    /// kept, and named by what fails on it.
    pub async fn recorded(scope: &Scope) -> Option<Self> {
        let records = record::in_scope(scope);
        if records.is_empty() {
            return None;
        }
        let mut seen = HashSet::new();
        let unique: Vec<RecordedHost> = records
            .iter()
            .flat_map(|r| r.hosts.iter().cloned())
            .filter(|h| seen.insert((h.docker.clone(), h.tls.clone())))
            .collect();
        let hosts = futures_util::future::join_all(unique.into_iter().map(Host::connect)).await;
        Some(Self::of(Hosts {
            hosts,
            nodes: HashMap::new(),
            tunnels: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            owner: Mutex::new(None),
        }))
    }

    fn of(hosts: Hosts) -> Self {
        let hosts = Arc::new(hosts);
        HostsRuntime {
            backend: HostsBackend::new(hosts.clone()),
            wiring: HostsWiring::new(hosts.clone()),
            hosts,
        }
    }

    /// Each host's underlay interface and MTU, through a helper there.
    async fn probe_underlays(&self, lab: &Lab) -> Result<Vec<(String, u32)>, RuntimeError> {
        let owner = helper::Owner {
            lab: lab.name().to_owned(),
            instance: lab.name().to_owned(),
            run: "probe".to_owned(),
        };
        let probes = self.hosts.hosts.iter().enumerate().map(|(i, host)| {
            let owner = owner.clone();
            async move {
                let underlay = host.underlay.expect("a lab's host has an underlay");
                let probed = self.hosts.submit(i, &owner, Op::Probe { underlay }).await?;
                match probed {
                    Outcome::Probed {
                        underlay: Some(found),
                    } => Ok(found),
                    _ => Err(host.unfit(format!(
                        "no interface of the host holds its underlay address {underlay}; set \
                         `underlay` to an address of the host that the other hosts reach"
                    ))),
                }
            }
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .collect()
    }

    /// The deployed labs in `scope`, over every host that answers.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        self.backend.inspect(scope).await
    }
}

/// Every link of `lab` across hosts, with its MTU checked against both
/// underlays (`underlays[i]`: host i's interface and MTU): a link without
/// `mtu` gets the largest that fits, as the kernel gives a VXLAN device
/// over a known lower device.
fn tunnels(
    lab: &Lab,
    hosts: &Hosts,
    underlays: &[(String, u32)],
) -> Result<HashMap<String, Tunnel>, RuntimeError> {
    let mut tunnels = HashMap::new();
    for link in lab.links() {
        let Some([a, b]) = lab.link_hosts(link) else {
            continue;
        };
        let ends = [
            hosts.index(&a.name).expect("a lab host"),
            hosts.index(&b.name).expect("a lab host"),
        ];
        let overhead = overhead(a.underlay);
        let room = ends.map(|i| underlays[i].1.saturating_sub(overhead));
        let fits = room[0].min(room[1]);
        let label = format!(
            "{} <-> {}",
            link.endpoints[0].label(),
            link.endpoints[1].label()
        );
        let mtu = match link.mtu {
            None => fits,
            Some(mtu) if mtu <= fits => mtu,
            Some(mtu) => {
                let narrow = if room[0] <= room[1] { 0 } else { 1 };
                let host = &hosts.hosts[ends[narrow]];
                let (iface, under) = &underlays[ends[narrow]];
                return Err(host.unfit(format!(
                    "link {label}: MTU {mtu} plus {overhead} bytes of VXLAN does not fit the \
                     underlay's MTU {under} ({iface}); set the link's `mtu` to {fits} or less, \
                     or raise the underlay's"
                )));
            }
        };
        tunnels.insert(
            label,
            Tunnel {
                hosts: ends,
                vni: link.vxlan.and_then(|v| v.vni),
                port: link.vxlan.and_then(|v| v.port).unwrap_or(VXLAN_PORT),
                mtu,
            },
        );
    }
    Ok(tunnels)
}

impl Runtime for HostsRuntime {
    type Backend = HostsBackend;
    type Wiring = HostsWiring;
    type Launcher = HostsLauncher;
    const NODE: &'static str = "container";
    // Each host is a Docker host: what a node is, and what a capability
    // held in it reaches, are Docker's.
    const KIND: crate::lab::RuntimeKind = crate::lab::RuntimeKind::Docker;

    fn backend(&self) -> &HostsBackend {
        &self.backend
    }

    fn wiring(&self) -> &HostsWiring {
        &self.wiring
    }

    fn launcher(&self, instance: &str) -> HostsLauncher {
        HostsLauncher::new(self.hosts.clone(), instance)
    }

    fn inspect(
        &self,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<Vec<LabStatus>, RuntimeError>> + Send {
        HostsRuntime::inspect(self, scope)
    }
}
