//! The Docker runtime: nodes are containers on the Docker Engine API,
//! links are veths wired with netlink, steps are `docker exec`.
//!
//! Everything here speaks to the daemon (bollard); what the runtimes
//! share (the [`NodeSpec`](super::node::NodeSpec), the tools directory,
//! names and labels) stays in [`super`].
//!
//! - [`DockerRuntime`]: the handle the CLI connects, a [`Runtime`].
//! - `backend`: [`DockerBackend`], the [`Backend`](super::backend::Backend)
//!   on the daemon: nodes are containers.
//! - `container`: the container-create call a node spec becomes.
//! - [`image`]: the tools image and the volume that carries it into other
//!   images; a node's own image's config.
//! - `connect`: connecting, API version negotiation.
//! - [`exec`]: a command in a container, its output, signal, exit code.
//! - `launcher`: [`DockerLauncher`], the steps' launcher on `exec`.
//! - `copy`: a node's directory streamed out of its container.
//! - `console`: a node's own command stopped, its output kept.

mod backend;
pub(crate) mod connect;
mod console;
mod container;
mod copy;
pub mod exec;
pub(crate) mod image;
mod launcher;

use bollard::Docker;

use crate::lab::Lab;
use crate::links::Netlink;

use super::backend::{one_instance, Backend, ContainerInfo};
use super::deploy::{self, DeployError, DeployOptions, DeployOutcome, Removed};
use super::error::RuntimeError;
use super::inspect::LabStatus;
use super::names::Scope;
use super::progress::Progress;
use super::Runtime;
pub use backend::DockerBackend;
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
        self.backend.inspect(scope).await
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

impl Runtime for DockerRuntime {
    type Backend = DockerBackend;
    type Wiring = Netlink;
    type Launcher = DockerLauncher;

    fn backend(&self) -> &DockerBackend {
        &self.backend
    }

    fn wiring(&self) -> &Netlink {
        &self.netlink
    }

    fn launcher(&self, instance: &str) -> DockerLauncher {
        DockerLauncher::new(self.clone(), instance)
    }
}
