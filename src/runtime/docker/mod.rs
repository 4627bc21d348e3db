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
pub(crate) mod error;
pub mod exec;
pub(crate) mod image;
mod launcher;

use crate::lab::Lab;
use crate::links::Netlink;

use super::deploy::{self, DeployError, DeployOptions, DeployOutcome};
use super::error::RuntimeError;
use super::inspect::LabStatus;
use super::names::Scope;
use super::progress::Progress;
use super::teardown::{self, Removed};
use super::Runtime;
pub use backend::DockerBackend;
pub use error::DockerError;
use exec::{ExecHandle, ExecStream};
pub(crate) use launcher::forward;
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
        teardown::teardown(&self.backend, &self.netlink, scope).await
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
        self.backend.exec(name, node, argv).await
    }
}

impl Runtime for DockerRuntime {
    type Backend = DockerBackend;
    type Wiring = Netlink;
    type Launcher = DockerLauncher;
    const NODE: &'static str = "container";
    const KIND: crate::lab::RuntimeKind = crate::lab::RuntimeKind::Docker;

    fn backend(&self) -> &DockerBackend {
        &self.backend
    }

    fn wiring(&self) -> &Netlink {
        &self.netlink
    }

    fn launcher(&self, instance: &str) -> DockerLauncher {
        DockerLauncher::new(self.backend.clone(), instance)
    }

    fn inspect(
        &self,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<Vec<LabStatus>, RuntimeError>> + Send {
        DockerRuntime::inspect(self, scope)
    }
}
