//! What is deployed: labs, nodes, their state, and each interface as
//! declared (labels) and as it is inside the node right now (netlink).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::lab::DatalinkKind;
use crate::links::{self, LiveInterface};

use super::backend::NodeInfo;
use super::error::RuntimeError;

#[derive(Clone, Debug, Serialize)]
pub struct LabStatus {
    /// The lab's name.
    pub name: String,
    /// The instance (what `exec` and `destroy` take).
    pub instance: String,
    /// The lab file it was deployed from.
    pub file: Option<String>,
    /// The deploy's run id.
    pub run: String,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub container: String,
    pub id: String,
    pub image: String,
    /// Docker's state: running, exited, created, ...
    pub state: String,
    /// The host pid of the node's init, when running.
    pub pid: Option<u32>,
    pub interfaces: Vec<InterfaceStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub datalink: DatalinkKind,
    /// The other end, `node:interface`.
    pub peer: String,
    /// The address the lab file gives it.
    pub ipv4: Option<String>,
    /// What the interface is like inside the node; `None` when the node is
    /// not running, the interface is missing, or labctl may not look.
    pub live: Option<LiveInterface>,
}

/// The labs of `containers`, by name, their nodes by name; `locate` says
/// where a node's init and network namespace are, if it runs.
pub async fn statuses<F, Fut>(
    containers: Vec<NodeInfo>,
    locate: F,
) -> Result<Vec<LabStatus>, RuntimeError>
where
    F: Fn(NodeInfo) -> Fut,
    Fut: std::future::Future<Output = Result<(Option<u32>, Option<PathBuf>), RuntimeError>>,
{
    let mut labs: BTreeMap<String, LabStatus> = BTreeMap::new();
    for container in containers {
        let Some(node) = container.node.clone() else {
            continue;
        };
        let (pid, netns) = locate(container.clone()).await?;
        let status = node_status(node, &container, pid, netns).await;
        labs.entry(container.instance.clone())
            .or_insert_with(|| LabStatus {
                name: container.lab.clone(),
                instance: container.instance.clone(),
                file: container.file.clone(),
                run: container.run.clone(),
                nodes: Vec::new(),
            })
            .nodes
            .push(status);
    }
    Ok(labs.into_values().collect())
}

async fn node_status(
    node: String,
    container: &NodeInfo,
    pid: Option<u32>,
    netns: Option<PathBuf>,
) -> NodeStatus {
    // Looking inside needs root; without it, inspect shows what was declared.
    let live = match netns {
        Some(netns) => links::interfaces_in(&netns).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let interfaces = container
        .interfaces
        .iter()
        .map(|declared| InterfaceStatus {
            name: declared.name.clone(),
            datalink: declared.datalink,
            peer: declared.peer.clone(),
            ipv4: declared.ipv4.clone(),
            live: live.iter().find(|l| l.name == declared.name).cloned(),
        })
        .collect();
    NodeStatus {
        node,
        container: container.name.clone(),
        id: container.id.chars().take(12).collect(),
        image: container.image.clone(),
        state: container.state.clone(),
        pid,
        interfaces,
    }
}
