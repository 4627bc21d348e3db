//! The netns runtime: nodes as bare named network namespaces on the host,
//! no Docker daemon, no image.
//!
//! Behind the same seams as the Docker runtime ([`super::Runtime`]), so
//! deploy, rollback, teardown, the steps, checks, evidence and reports are
//! the same code, and laid out as `runtime/docker/` is:
//!
//! - [`NetnsRuntime`]: gathers the seams for the CLI, a [`Runtime`].
//! - `backend`: [`NetnsBackend`], the node [`Backend`]: a node is a
//!   namespace mounted on `/run/netns/labctl-<lab>-<node>`, found again
//!   by its directory under `/run/labctl/netns` ([`ns`]); what a bare
//!   namespace cannot give a node is refused first ([`check_lab`]).
//! - [`exec`]: a host process set up inside a node, as `docker exec` sets
//!   one up in a container.
//! - `launcher`: [`NetnsLauncher`], the steps' launcher on `exec`.
//! - `copy`: a node's `/lab/out` copied out of its directory.
//!
//! The links are wired by the same [`Netlink`] as Docker's.
//!
//! What a netns node does not isolate (docs/runtime.md): the filesystem
//! (steps see the host's files, only `/lab/out` and `/lab/bin` are the
//! node's), the pid space (steps see and can signal host processes, as
//! far as their capabilities allow), users, IPC and resources (no cgroup).

mod backend;
mod copy;
pub mod exec;
mod launcher;
pub mod ns;
pub mod rootless;

use crate::lab::Lab;
use crate::links::Netlink;

use super::backend::Backend;
use super::deploy::{self, DeployError, DeployOptions, DeployOutcome};
use super::error::RuntimeError;
use super::inspect::{self, LabStatus};
use super::names::Scope;
use super::progress::Progress;
use super::teardown::{self, Removed};
use super::Runtime;

pub use backend::{check_lab, node_record, NetnsBackend, IMAGE};
pub use copy::copy_out;
pub use launcher::{command, NetnsLauncher};
pub use ns::{NodeRecord, RecordBind};

/// The netns runtime: no daemon to connect to, a netlink socket for the
/// links. Create one per process, inside a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct NetnsRuntime {
    backend: NetnsBackend,
    netlink: Netlink,
}

impl NetnsRuntime {
    pub fn new() -> Result<Self, RuntimeError> {
        Ok(NetnsRuntime {
            backend: NetnsBackend,
            netlink: Netlink::connect()?,
        })
    }

    /// Builds `lab`: namespaces, then links. On failure or cancellation,
    /// removes what this deploy created before returning.
    pub async fn deploy(
        &self,
        lab: &Lab,
        options: &DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployOutcome, DeployError> {
        deploy::deploy(&self.backend, &self.netlink, lab, options, progress).await
    }

    /// Removes every node of `scope`, the processes in them included;
    /// idempotent.
    pub async fn destroy(&self, scope: &Scope) -> Removed {
        teardown::teardown(&self.backend, &self.netlink, scope).await
    }

    /// The deployed netns labs in `scope`.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        let nodes = self.backend.list(scope).await?;
        inspect::statuses(nodes, |c| async move {
            Ok((None, c.is_running().then(|| ns::netns_path(&c.name))))
        })
        .await
    }

    /// Whether some node of `scope` is on this runtime.
    pub async fn has(&self, scope: &Scope) -> Result<bool, RuntimeError> {
        Ok(!self.backend.list(scope).await?.is_empty())
    }
}

impl Runtime for NetnsRuntime {
    type Backend = NetnsBackend;
    type Wiring = Netlink;
    type Launcher = NetnsLauncher;
    const NODE: &'static str = "node";
    const KIND: crate::lab::RuntimeKind = crate::lab::RuntimeKind::Netns;

    fn backend(&self) -> &NetnsBackend {
        &self.backend
    }

    fn wiring(&self) -> &Netlink {
        &self.netlink
    }

    fn launcher(&self, instance: &str) -> NetnsLauncher {
        NetnsLauncher::new(instance)
    }

    fn inspect(
        &self,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<Vec<LabStatus>, RuntimeError>> + Send {
        NetnsRuntime::inspect(self, scope)
    }
}
