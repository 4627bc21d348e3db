//! The Docker runtime: nodes are containers on the Docker Engine API,
//! links are veths wired with netlink, steps are `docker exec`.
//!
//! - [`DockerRuntime`]: the handle the CLI connects, a [`Runtime`].
//! - [`DockerBackend`]: [`Backend`] on the daemon.
//! - `connect`: connecting, API version negotiation.
//! - [`exec`]: a command in a container, its output, signal, exit code.
//! - `launcher`: [`DockerLauncher`], the steps' launcher on `exec`.
//! - `copy`: a node's directory streamed out of its container.
//! - `console`: a node's own command stopped, its output kept.

pub(crate) mod connect;
mod console;
mod copy;
pub mod exec;
mod launcher;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;

use crate::lab::Lab;
use crate::links::Netlink;

use super::backend::{Backend, ContainerInfo, KeptConsole, StartedNode};
use super::deploy::{self, DeployError, DeployOptions, DeployOutcome, Removed};
use super::error::{is_not_found, RuntimeError};
use super::image::{self, ToolsImage};
use super::inspect::{self, LabStatus};
use super::names::{self, Instance, RunId, Scope};
use super::node::{node_command, NodeImage, NodeSpec};
use super::privilege::{self, HostSupport};
use super::progress::Progress;
use super::Runtime;
use exec::{ExecHandle, ExecStream};
pub use launcher::DockerLauncher;

/// A connection to Docker and to the host's netlink. Create one per
/// process, inside a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct DockerRuntime {
    backend: DockerBackend,
    netlink: Netlink,
}

impl DockerRuntime {
    /// Connects to Docker (`DOCKER_HOST` or the local socket, API version
    /// negotiated) and opens a netlink socket.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = connect::connect().await?;
        let netlink = Netlink::connect()?;
        Ok(DockerRuntime {
            backend: DockerBackend::new(docker),
            netlink,
        })
    }

    pub(crate) fn docker(&self) -> &Docker {
        self.backend.docker()
    }

    /// Builds `lab`: containers, then links. On failure or cancellation,
    /// removes what this deploy created before returning.
    pub async fn deploy(
        &self,
        lab: &Lab,
        options: &DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployOutcome, DeployError> {
        deploy::deploy(&self.backend, &self.netlink, lab, options, progress).await
    }

    /// Removes every container and stray veth in `scope`; idempotent.
    pub async fn destroy(&self, scope: &Scope) -> Removed {
        deploy::teardown(&self.backend, &self.netlink, scope).await
    }

    /// The deployed labs in `scope`.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        inspect::inspect(&self.backend, scope).await
    }

    /// Starts `argv` in node `node` of the deployed lab `name`: an
    /// instance's name, or a lab's name when one instance of it is up.
    pub async fn exec(
        &self,
        name: &str,
        node: &str,
        argv: &[String],
    ) -> Result<(ExecHandle, ExecStream), RuntimeError> {
        let target = self.running_node(name, node).await?;
        exec::start(self.docker(), &target.name, argv).await
    }

    /// The network namespace of node `node` of the deployed lab `name`
    /// (as in [`Self::exec`]): its init's `/proc/PID/ns/net`.
    pub(crate) async fn node_netns(
        &self,
        name: &str,
        node: &str,
    ) -> Result<std::path::PathBuf, RuntimeError> {
        let target = self.running_node(name, node).await?;
        match self.backend.pid(&target.name).await? {
            Some(pid) => Ok(crate::links::pid_path(pid)),
            None => Err(RuntimeError::NotRunning {
                lab: target.instance.clone(),
                node: node.to_owned(),
                state: "stopped".into(),
            }),
        }
    }

    /// The running container of `node` in the deployed lab `name`.
    async fn running_node(&self, name: &str, node: &str) -> Result<ContainerInfo, RuntimeError> {
        let containers = self.backend.list(&Scope::Named(name.to_owned())).await?;
        let instance = one_instance(name, &containers)?;
        let nodes: Vec<_> = containers
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
        Ok((*target).clone())
    }
}

/// The one instance `name` designates among `containers` (those of
/// [`Scope::Named`]): the instance of that name, else the lab's only one.
pub(crate) fn one_instance(
    name: &str,
    containers: &[ContainerInfo],
) -> Result<String, RuntimeError> {
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

impl Runtime for DockerRuntime {
    type Backend = DockerBackend;
    type Wiring = Netlink;
    type Launcher = DockerLauncher;
    const NODE: &'static str = "container";

    fn backend(&self) -> &DockerBackend {
        &self.backend
    }

    fn wiring(&self) -> &Netlink {
        &self.netlink
    }

    fn launcher(&self, instance: &str) -> DockerLauncher {
        DockerLauncher::new(self.clone(), instance)
    }

    fn inspect(
        &self,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<Vec<LabStatus>, RuntimeError>> + Send {
        DockerRuntime::inspect(self, scope)
    }
}

/// [`Backend`] on a Docker daemon: nodes are containers.
#[derive(Clone)]
pub struct DockerBackend {
    docker: Docker,
}

impl DockerBackend {
    pub(crate) fn new(docker: Docker) -> Self {
        DockerBackend { docker }
    }

    pub(crate) fn docker(&self) -> &Docker {
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

impl Backend for DockerBackend {
    async fn prepare_images(
        &self,
        lab: &Lab,
        instance: &Instance,
        run: &RunId,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        let tools = self.tools_image(progress).await?;
        let mut images = HashMap::new();
        let mut own_images: HashMap<&str, image::ImageConfig> = HashMap::new();
        for node in lab.nodes() {
            let image = match &node.image {
                None => NodeImage::Tools(tools.clone()),
                Some(own) => {
                    let config = match own_images.get(own.as_str()) {
                        Some(config) => config.clone(),
                        None => {
                            let config = image::image_config(&self.docker, &node.name, own).await?;
                            own_images.insert(own, config.clone());
                            config
                        }
                    };
                    NodeImage::Custom {
                        image: own.clone(),
                        command: node_command(&config.entrypoint, &config.cmd, node.cmd.as_deref()),
                        path: config.path,
                        // Root needs no switch (nor the capabilities for it).
                        user: config
                            .user
                            .filter(|u| !matches!(u.as_str(), "0" | "root" | "0:0" | "root:root")),
                        tools: tools.clone(),
                    }
                }
            };
            images.insert(node.name.clone(), image);
        }
        if !own_images.is_empty() {
            image::fill_tools_volume(&self.docker, &tools, lab.name(), instance, run).await?;
        }
        Ok(images)
    }

    async fn host_support(&self) -> Result<HostSupport, RuntimeError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(RuntimeError::docker("asking Docker for its version"))?;
        // The daemon's kernel, which is this one unless DOCKER_HOST is
        // another machine.
        let kernel = version
            .kernel_version
            .unwrap_or_else(privilege::running_kernel);
        Ok(HostSupport::docker(
            version.version.as_deref().unwrap_or("unknown"),
            &kernel,
        ))
    }

    async fn start_node(&self, spec: &NodeSpec) -> Result<StartedNode, RuntimeError> {
        let name = &spec.container;
        // The pin directory is bind-mounted at create time: it must exist.
        if let Some(dir) = &spec.xdp_dir {
            super::xdp::prepare(Path::new(super::xdp::BPF_ROOT), dir)?;
        }
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

    async fn attach_xdp(&self, spec: &NodeSpec, netns: &Path) -> Result<(), RuntimeError> {
        let Some(dir) = &spec.xdp_dir else {
            return Ok(());
        };
        super::xdp::attach(netns, dir, &spec.pinned_xdp).await
    }

    async fn remove_host_state(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        super::xdp::remove_dirs(Path::new(super::xdp::BPF_ROOT), scope)
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
            .filter(|c| scope.has(&c.lab, &c.instance, &c.run))
            .collect();
        found.sort_by(|a, b| (&a.instance, &a.name).cmp(&(&b.instance, &b.name)));
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

    async fn stop_command(&self, instance: &str, node: &str) -> Result<(), RuntimeError> {
        console::stop_command(&self.docker, &names::container_name(instance, node)).await
    }

    async fn keep_console(
        &self,
        instance: &str,
        node: &str,
        dest: &Path,
    ) -> Result<Option<KeptConsole>, RuntimeError> {
        console::keep_console(&self.docker, &names::container_name(instance, node), dest).await
    }

    async fn copy_out(
        &self,
        instance: &str,
        node: &str,
        from: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, RuntimeError> {
        copy::copy_out(
            &self.docker,
            &names::container_name(instance, node),
            from,
            dest,
        )
        .await
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
        instance: labels
            .get(names::LABEL_INSTANCE)
            .or_else(|| labels.get(names::LABEL_LAB))?
            .clone(),
        owner: labels
            .get(names::LABEL_OWNER)
            .and_then(|o| names::Owner::parse(o)),
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
