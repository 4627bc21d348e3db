//! The container side of a lab behind one small interface, so the deploy
//! and teardown logic can be tested with a fake, and [`DockerEngine`], the
//! real one on the Docker Engine API.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;

use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;

use crate::lab::Lab;

use super::error::{is_not_found, RuntimeError};
use super::image::{self, ToolsImage};
use super::names::{self, RunId, Scope};
use super::node::{InterfaceLabel, NodeImage, NodeSpec};
use super::progress::Progress;

/// One labctl container as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub lab: String,
    /// `None` for helper containers (the tools-volume filler).
    pub node: Option<String>,
    pub run: String,
    pub file: Option<String>,
    /// How many nodes the lab of this deploy has.
    pub lab_nodes: Option<usize>,
    pub image: String,
    /// Docker's state: created, running, exited, ...
    pub state: String,
    pub interfaces: Vec<InterfaceLabel>,
}

impl ContainerInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
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

pub trait Engine: Sync {
    /// Resolves every node's image: builds the tools image if needed,
    /// fills the tools volume if a node has its own image, and checks that
    /// those images exist locally. Keyed by node name.
    fn prepare_images(
        &self,
        lab: &Lab,
        run: &RunId,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<HashMap<String, NodeImage>, RuntimeError>> + Send;

    /// Creates and starts a node; returns where it lives.
    fn start_node(
        &self,
        spec: &NodeSpec,
    ) -> impl Future<Output = Result<StartedNode, RuntimeError>> + Send;

    /// Every labctl container in `scope`, running or not.
    fn list(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, RuntimeError>> + Send;

    /// Removes a container (killing it if needed); gone already is fine.
    fn remove(&self, container: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}

/// [`Engine`] on a Docker daemon.
#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
}

impl DockerEngine {
    pub fn new(docker: Docker) -> Self {
        DockerEngine { docker }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The host pid of a running container's init, `None` when it is not
    /// running.
    pub async fn pid(&self, container: &str) -> Result<Option<u32>, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(RuntimeError::docker(format!(
                "inspecting container {container}"
            )))?;
        Ok(inspect
            .state
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.pid)
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0))
    }

    async fn tools_image(&self, progress: &dyn Progress) -> Result<ToolsImage, RuntimeError> {
        image::ensure_tools_image(&self.docker, progress).await
    }
}

impl Engine for DockerEngine {
    async fn prepare_images(
        &self,
        lab: &Lab,
        run: &RunId,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        let tools = self.tools_image(progress).await?;
        let mut images = HashMap::new();
        let mut own_image_paths: HashMap<&str, Option<String>> = HashMap::new();
        for node in lab.nodes() {
            let image = match &node.image {
                None => NodeImage::Tools(tools.clone()),
                Some(own) => {
                    let path = match own_image_paths.get(own.as_str()) {
                        Some(path) => path.clone(),
                        None => {
                            let path = image::image_path_env(&self.docker, &node.name, own).await?;
                            own_image_paths.insert(own, path.clone());
                            path
                        }
                    };
                    NodeImage::Custom {
                        image: own.clone(),
                        path,
                        tools: tools.clone(),
                    }
                }
            };
            images.insert(node.name.clone(), image);
        }
        if !own_image_paths.is_empty() {
            image::fill_tools_volume(&self.docker, &tools, lab.name(), run).await?;
        }
        Ok(images)
    }

    async fn start_node(&self, spec: &NodeSpec) -> Result<StartedNode, RuntimeError> {
        let name = &spec.container;
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), spec.create_body())
            .await
            .map_err(RuntimeError::docker(format!("creating container {name}")))?;
        self.docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(RuntimeError::docker(format!("starting container {name}")))?;
        match self.pid(name).await? {
            Some(pid) => Ok(StartedNode::of_pid(pid)),
            None => Err(RuntimeError::NotRunning {
                lab: spec
                    .labels
                    .get(names::LABEL_LAB)
                    .cloned()
                    .unwrap_or_default(),
                node: spec.node.clone(),
                state: "exited right after it started".into(),
            }),
        }
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters = HashMap::from([("label".to_owned(), scope.label_filters())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers =
            self.docker
                .list_containers(Some(options))
                .await
                .map_err(RuntimeError::docker(format!(
                    "listing the containers of {}",
                    scope.describe()
                )))?;
        let mut found: Vec<ContainerInfo> = containers
            .into_iter()
            .filter_map(container_info)
            .filter(|c| scope.has_lab(&c.lab))
            .collect();
        found.sort_by(|a, b| (&a.lab, &a.name).cmp(&(&b.lab, &b.name)));
        Ok(found)
    }

    async fn remove(&self, container: &str) -> Result<(), RuntimeError> {
        // `v`: anonymous volumes an image declares go with the container.
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: another teardown is already removing it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(RuntimeError::docker(format!(
                "removing container {container}"
            ))(e)),
        }
    }
}

fn container_info(summary: bollard::models::ContainerSummary) -> Option<ContainerInfo> {
    let labels = summary.labels.unwrap_or_default();
    let name = summary
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_owned())?;
    let interfaces = labels
        .get(names::LABEL_INTERFACES)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    Some(ContainerInfo {
        id: summary.id?,
        name,
        lab: labels.get(names::LABEL_LAB)?.clone(),
        node: labels.get(names::LABEL_NODE).cloned(),
        run: labels.get(names::LABEL_RUN).cloned().unwrap_or_default(),
        file: labels.get(names::LABEL_FILE).cloned(),
        lab_nodes: labels.get(names::LABEL_NODES).and_then(|n| n.parse().ok()),
        image: summary.image.unwrap_or_default(),
        state: summary
            .state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        interfaces,
    })
}
