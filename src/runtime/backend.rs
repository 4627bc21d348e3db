//! The node side of a lab behind one small interface, [`Backend`], so the
//! deploy, teardown and run logic is the same for every runtime and is
//! tested with a fake.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use crate::lab::Lab;

use super::console::Ending;
use super::error::RuntimeError;
use super::names::{Instance, Owner, RunId, Scope};
use super::node::{InterfaceLabel, NodeImage, NodeSpec};
use super::privilege::HostSupport;
use super::progress::Progress;

/// One node of a lab (a container, a netns namespace) as its runtime
/// finds it on the host: by its labels, so after a crash too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    pub lab: String,
    /// The instance of the lab ([`super::names::Instance`]).
    pub instance: String,
    /// The process that deployed it, if labelled.
    pub owner: Option<Owner>,
    /// `None` for helper containers (the tools-volume filler).
    pub node: Option<String>,
    pub run: String,
    pub file: Option<String>,
    /// How many nodes the lab of this deploy has.
    pub lab_nodes: Option<usize>,
    pub image: String,
    /// Its state in Docker's words: created, running, exited, ...
    pub state: String,
    pub interfaces: Vec<InterfaceLabel>,
}

impl NodeInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// Another labctl process that deployed this container and still runs:
    /// the instance is in use and must not be removed under it.
    pub fn live_owner(&self) -> Option<Owner> {
        self.owner.filter(|o| o.is_alive() && !o.is_current())
    }
}

/// A node that is up: where its network namespace is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedNode {
    /// The host pid of the node's init; `None` for a bare namespace.
    pub pid: Option<u32>,
    /// Its network namespace file: `/proc/PID/ns/net` of the init, or a
    /// named namespace (`/run/netns/NAME`).
    pub netns: PathBuf,
}

impl StartedNode {
    /// A node whose namespace is that of its init `pid`.
    pub fn of_pid(pid: u32) -> Self {
        StartedNode {
            pid: Some(pid),
            netns: crate::links::pid_path(pid),
        }
    }
}

/// A node's console kept in the run directory ([`Backend::keep_console`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptConsole {
    /// The file written.
    pub path: PathBuf,
    /// The node's command, as lab-init ran it.
    pub command: Vec<String>,
    /// How the command ended by itself, before anything told it to stop;
    /// `None` while it runs, or when a stop ended it.
    pub ended: Option<Ending>,
}

/// The node side of a runtime: what deploy, teardown and the run's
/// evidence need, and nothing else. Docker implements it with containers
/// ([`super::docker::DockerBackend`]), the netns runtime with named
/// network namespaces ([`super::netns::NetnsBackend`]). The deploy and teardown logic
/// ([`super::deploy`]) and the run ([`crate::lifecycle`]) are generic over
/// it, and tested with the fake in `runtime::fake`.
pub trait Backend: Sync {
    /// Resolves every node's image: builds the tools image if needed,
    /// fills the tools volume if a node has its own image, and checks that
    /// those images exist locally. Keyed by node name.
    fn prepare_images(
        &self,
        lab: &Lab,
        instance: &Instance,
        run: &RunId,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<HashMap<String, NodeImage>, RuntimeError>> + Send;

    /// What this host lets the runtime grant a node (CAP_BPF or not),
    /// asked before anything is created.
    fn host_support(&self) -> impl Future<Output = Result<HostSupport, RuntimeError>> + Send;

    /// Creates and starts a node; returns where it lives.
    fn start_node(
        &self,
        spec: &NodeSpec,
    ) -> impl Future<Output = Result<StartedNode, RuntimeError>> + Send;

    /// Once the node's links are up: attaches, from the host, the XDP
    /// programs of the af_xdp interfaces in `spec.pinned_xdp` inside the
    /// node's namespace `netns`, and pins their maps where the node finds
    /// them ([`super::xdp`]). A runtime whose nodes load their programs
    /// themselves never gets such a spec ([`HostSupport::no_pinned_xdp`]).
    fn attach_xdp(
        &self,
        _spec: &NodeSpec,
        _netns: &Path,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        async { Ok(()) }
    }

    /// After a teardown removed `scope`'s containers: what the runtime
    /// keeps on the host for them (the XDP pins), removed; returns what it
    /// removed.
    fn remove_host_state(
        &self,
        _scope: &Scope,
    ) -> impl Future<Output = Result<Vec<String>, RuntimeError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Every labctl container in `scope`, running or not.
    fn list(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Vec<NodeInfo>, RuntimeError>> + Send;

    /// Removes a container (killing it if needed); gone already is fine.
    fn remove(&self, container: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes several containers at once, when the backend does that
    /// better than one by one (the netns one scans /proc once for all);
    /// `None`: the caller removes them one by one.
    fn remove_many(
        &self,
        _containers: &[String],
    ) -> impl Future<Output = Option<Vec<(String, Result<(), RuntimeError>)>>> + Send {
        async { None }
    }

    /// After the steps: stops the command of node `node` of `instance`
    /// (its own image's entrypoint and command) as `docker stop` would,
    /// so its last words and files are in the evidence; returns once the
    /// node has stopped. A node that runs no command is left as it is,
    /// which is every node by default (bare namespaces run no image).
    fn stop_command(
        &self,
        _instance: &str,
        _node: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        async { Ok(()) }
    }

    /// Writes the console of node `node` of `instance` (the output of its
    /// command) to the file `dest`, streamed; `None` when the node runs no command
    /// (by default). A failure to write on the host is
    /// [`RuntimeError::Write`].
    fn keep_console(
        &self,
        _instance: &str,
        _node: &str,
        _dest: &Path,
    ) -> impl Future<Output = Result<Option<KeptConsole>, RuntimeError>> + Send {
        async { Ok(None) }
    }

    /// Copies the directory `from` of node `node` of the deployed instance
    /// `instance`
    /// into `dest` on the host (created if needed) and returns the files
    /// written. Only regular files and directories are copied, never
    /// anything outside `dest`. A failure to write on the host is
    /// [`RuntimeError::Write`].
    fn copy_out(
        &self,
        instance: &str,
        node: &str,
        from: &str,
        dest: &Path,
    ) -> impl Future<Output = Result<Vec<PathBuf>, RuntimeError>> + Send;
}

/// The running node `node` of the one instance `name` designates among
/// `found` (the nodes of [`Scope::Named`]): where `labctl exec` goes.
pub(crate) fn running_node<'a>(
    name: &str,
    node: &str,
    found: &'a [NodeInfo],
) -> Result<&'a NodeInfo, RuntimeError> {
    let instance = one_instance(name, found)?;
    let nodes: Vec<&NodeInfo> = found
        .iter()
        .filter(|c| c.node.is_some() && c.instance == instance)
        .collect();
    let Some(target) = nodes.iter().find(|c| c.node.as_deref() == Some(node)) else {
        return Err(RuntimeError::NoSuchNode {
            lab: instance,
            node: node.to_owned(),
            nodes: nodes.iter().filter_map(|c| c.node.clone()).collect(),
        });
    };
    if !target.is_running() {
        return Err(RuntimeError::NotRunning {
            lab: instance,
            node: node.to_owned(),
            state: target.state.clone(),
        });
    }
    Ok(target)
}

/// The one instance `name` designates among `containers` (those of
/// [`Scope::Named`]): the instance of that name, else the lab's only one.
pub(crate) fn one_instance(name: &str, containers: &[NodeInfo]) -> Result<String, RuntimeError> {
    let nodes = containers.iter().filter(|c| c.node.is_some());
    if nodes.clone().any(|c| c.instance == name) {
        return Ok(name.to_owned());
    }
    let mut instances: Vec<String> = nodes.map(|c| c.instance.clone()).collect();
    instances.sort();
    instances.dedup();
    match instances.len() {
        0 => Err(RuntimeError::NotDeployed {
            lab: name.to_owned(),
        }),
        1 => Ok(instances.remove(0)),
        _ => Err(RuntimeError::Ambiguous {
            lab: name.to_owned(),
            instances,
        }),
    }
}
