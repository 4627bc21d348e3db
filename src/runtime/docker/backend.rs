//! [`DockerBackend`]: the nodes of a lab as containers on a Docker daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;

use super::error::is_not_found;
use crate::lab::Lab;
use crate::links;
use crate::runtime::backend::{self, Backend, KeptConsole, NodeInfo, StartedNode};
use crate::runtime::error::RuntimeError;
use crate::runtime::inspect::{self, LabStatus};
use crate::runtime::names::{self, Instance, RunId, Scope};
use crate::runtime::node::{node_command, NodeImage, NodeSpec, ToolsImage};
use crate::runtime::privilege::{self, HostSupport};
use crate::runtime::progress::Progress;
use crate::runtime::xdp;

use super::exec::{self, ExecHandle, ExecStream};
use super::{console, container, copy, image};

/// [`Backend`] on a Docker daemon: nodes are containers.
#[derive(Clone)]
pub struct DockerBackend {
    docker: Docker,
}

impl DockerBackend {
    pub(crate) fn new(docker: Docker) -> Self {
        DockerBackend { docker }
    }

    /// The host pid of a running container's init, `None` when it is not
    /// running, or is gone: listed a moment ago, then removed (another
    /// lab's teardown racing `labctl inspect`).
    pub async fn pid(&self, container: &str) -> Result<Option<u32>, RuntimeError> {
        let inspect = match self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Err(e) if is_not_found(&e) => return Ok(None),
            found => found.map_err(RuntimeError::docker(format!(
                "inspecting container {container}"
            )))?,
        };
        Ok(inspect
            .state
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.pid)
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0))
    }

    /// The instances in `scope`, by name, their nodes by name.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        let containers = self.list(scope).await?;
        inspect::statuses(containers, |container| async move {
            let pid = if container.is_running() {
                self.pid(&container.name).await?
            } else {
                None
            };
            Ok((pid, pid.map(links::pid_path)))
        })
        .await
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
        exec::start(&self.docker, &target.name, argv).await
    }

    /// The network namespace of node `node` of the deployed lab `name`
    /// (as in [`Self::exec`]): its init's `/proc/PID/ns/net`.
    pub(crate) async fn node_netns(
        &self,
        name: &str,
        node: &str,
    ) -> Result<std::path::PathBuf, RuntimeError> {
        let target = self.running_node(name, node).await?;
        match self.pid(&target.name).await? {
            Some(pid) => Ok(crate::links::pid_path(pid)),
            None => Err(RuntimeError::NotRunning {
                lab: target.instance.clone(),
                node: node.to_owned(),
                state: "stopped".into(),
            }),
        }
    }

    /// The running container of `node` in the deployed lab `name`.
    async fn running_node(&self, name: &str, node: &str) -> Result<NodeInfo, RuntimeError> {
        let containers = self.list(&Scope::Named(name.to_owned())).await?;
        let target = backend::running_node(name, node, &containers)?;
        Ok(target.clone())
    }

    async fn tools_image(&self, progress: &dyn Progress) -> Result<ToolsImage, RuntimeError> {
        image::ensure_tools_image(&self.docker, progress).await
    }
}

impl DockerBackend {
    /// [`Backend::prepare_images`] for the nodes of `lab` that `mine`
    /// picks (those of one host, in a lab over several).
    pub(crate) async fn prepare_images_of(
        &self,
        lab: &Lab,
        mine: &(dyn Fn(&crate::lab::Node) -> bool + Sync),
        instance: &Instance,
        run: &RunId,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        let tools = self.tools_image(progress).await?;
        let mut images = HashMap::new();
        let mut own_images: HashMap<&str, image::ImageConfig> = HashMap::new();
        for node in lab.nodes().iter().filter(|n| mine(n)) {
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
}

impl Backend for DockerBackend {
    async fn prepare_images(
        &self,
        lab: &Lab,
        instance: &Instance,
        run: &RunId,
        progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        self.prepare_images_of(lab, &|_| true, instance, run, progress)
            .await
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
            xdp::prepare(Path::new(xdp::BPF_ROOT), dir)?;
        }
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), container::create_body(spec))
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
        xdp::attach(netns, dir, &spec.pinned_xdp).await
    }

    async fn remove_host_state(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        xdp::remove_dirs(Path::new(xdp::BPF_ROOT), scope)
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<NodeInfo>, RuntimeError> {
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
        let mut found: Vec<NodeInfo> = containers
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

fn container_info(summary: bollard::models::ContainerSummary) -> Option<NodeInfo> {
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
    Some(NodeInfo {
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
