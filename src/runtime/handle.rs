//! [`Runtime`]: the lab operations on the real Docker daemon and kernel.

use bollard::Docker;

use crate::lab::Lab;
use crate::links::Netlink;

use super::deploy::{self, DeployError, DeployOptions, DeployOutcome, Removed};
use super::docker;
use super::engine::{DockerEngine, Engine};
use super::error::RuntimeError;
use super::exec::{self, ExecHandle, ExecStream};
use super::inspect::{self, LabStatus};
use super::names::{self, Scope};
use super::progress::Progress;

/// A connection to Docker and to the host's netlink. Create one per
/// process, inside a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct Runtime {
    engine: DockerEngine,
    netlink: Netlink,
}

impl Runtime {
    /// Connects to Docker (`DOCKER_HOST` or the local socket, API version
    /// negotiated) and opens a netlink socket.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = docker::connect().await?;
        let netlink = Netlink::connect()?;
        Ok(Runtime {
            engine: DockerEngine::new(docker),
            netlink,
        })
    }

    pub fn docker(&self) -> &Docker {
        self.engine.docker()
    }

    /// Builds `lab`: containers, then links. On failure or cancellation,
    /// removes what this deploy created before returning.
    pub async fn deploy(
        &self,
        lab: &Lab,
        options: &DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployOutcome, DeployError> {
        deploy::deploy(&self.engine, &self.netlink, lab, options, progress).await
    }

    /// Removes every container and stray veth in `scope`; idempotent.
    pub async fn destroy(&self, scope: &Scope) -> Removed {
        deploy::teardown(&self.engine, &self.netlink, scope).await
    }

    /// The deployed labs in `scope`.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        inspect::inspect(&self.engine, scope).await
    }

    /// Starts `argv` in node `node` of the deployed lab `lab`.
    pub async fn exec(
        &self,
        lab: &str,
        node: &str,
        argv: &[String],
    ) -> Result<(ExecHandle, ExecStream), RuntimeError> {
        let containers = self.engine.list(&Scope::Lab(lab.to_owned())).await?;
        let nodes: Vec<_> = containers.iter().filter(|c| c.node.is_some()).collect();
        if nodes.is_empty() {
            return Err(RuntimeError::NotDeployed {
                lab: lab.to_owned(),
            });
        }
        let Some(target) = nodes.iter().find(|c| c.node.as_deref() == Some(node)) else {
            return Err(RuntimeError::NoSuchNode {
                lab: lab.to_owned(),
                node: node.to_owned(),
                nodes: nodes.iter().filter_map(|c| c.node.clone()).collect(),
            });
        };
        if !target.is_running() {
            return Err(RuntimeError::NotRunning {
                lab: lab.to_owned(),
                node: node.to_owned(),
                state: target.state.clone(),
            });
        }
        exec::start(self.docker(), &names::container_name(lab, node), argv).await
    }
}
