//! The runtimes: how a validated lab becomes running nodes joined by
//! links, how commands start in them, and how they are removed.
//!
//! A runtime is three seams, gathered by the [`Runtime`] trait:
//! - [`backend::Backend`]: the nodes (prepare, start, list, remove, copy a
//!   directory out);
//! - [`crate::links::Wiring`]: the veths between the nodes' namespaces;
//! - [`process::Launcher`]: commands started in a node (the steps).
//!
//! Everything above them is generic and shared by every runtime:
//! [`deploy`] (order, concurrency, rollback, teardown) here, and the run
//! in [`crate::lifecycle`]. Two runtimes implement them, each in a folder
//! of the same layout (`mod.rs` the runtime, `backend.rs` the nodes,
//! `launcher.rs` the steps): [`docker`] (containers; the only place that
//! speaks to the Docker daemon) and [`netns`] (bare named network
//! namespaces and host processes). `fake` (tests only) holds in-memory
//! fakes of the three seams.
//!
//! Runtime-neutral pieces: [`names`] (container names, labels, veth
//! aliases, scopes), [`node`] (what a node looks like, [`node::NodeSpec`]),
//! [`tools_dir`] (the packet tools beside labctl, where nodes see them;
//! [`linkage`] tells a static tool from one that is not), [`console`]
//! (lab-init's words about a node's own command), [`needs`] (capabilities
//! and devices per datalink, host preflight), [`privilege`] (whether the
//! host can grant CAP_BPF, or attach af_xdp nodes' programs itself),
//! [`seccomp`] (the profile of af_xdp nodes under Docker, as the JSON the
//! node spec carries), [`xdp`] (XDP programs attached from the host, their
//! pins), [`inspect`] (what `labctl inspect` shows, from any backend's
//! list), [`progress`] (what a deploy reports while it runs), the host's
//! privileges ([`check_host_privileges`]).

pub mod backend;
pub mod console;
pub mod deploy;
pub(crate) mod docker;
mod error;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod fan_out;
pub mod hosts;
pub(crate) mod inspect;
mod labctl_caps;
pub mod linkage;
pub mod names;
pub(crate) mod needs;
pub mod netns;
pub mod node;
pub mod privilege;
pub mod process;
pub mod progress;
pub mod registry;
pub mod seccomp;
#[cfg(test)]
pub(crate) mod skip;
pub mod teardown;
pub mod tools_dir;
pub mod xdp;

pub use deploy::{
    DeployError, DeployOptions, DeployOutcome, DeployedLab, DeployedNode, Interrupts,
};
pub use docker::exec::{ExecHandle, ExecOutput, ExecStream};
pub use docker::image::check_tools_static;
pub use docker::DockerRuntime;
pub use error::RuntimeError;
pub use inspect::{InterfaceStatus, LabStatus, NodeStatus};
pub use labctl_caps::check_host_privileges;
pub use names::{RunId, Scope};
pub use progress::{NoProgress, Phase, Progress, Timings};
pub use registry::AnyRuntime;
pub use teardown::Removed;

/// Where the tools write the files a run keeps (pcaps, logs), in every
/// node; `labctl run` copies it into the run directory before teardown.
pub const NODE_OUT_DIR: &str = "/lab/out";

/// The file, in a node's folder of the run directory, that keeps the
/// output of the node's own image's command ([`console`]).
pub const CONSOLE_FILE: &str = "console.log";

/// One runtime: its three seams. The run ([`crate::lifecycle`]), deploy
/// and teardown ([`deploy`]) take any `Runtime`, so a new runtime only
/// implements these and gets steps, checks, evidence, reports, teardown
/// and Ctrl-C handling unchanged.
pub trait Runtime: Sync {
    type Backend: backend::Backend;
    type Wiring: crate::links::Wiring;
    type Launcher: process::Launcher;

    /// What the runtime calls a node where it reports one (what teardown
    /// removed, the phase that starts them): "container" on Docker.
    const NODE: &'static str;
    /// Which runtime it is (the reports say what the run used).
    const KIND: crate::lab::RuntimeKind;

    fn backend(&self) -> &Self::Backend;
    fn wiring(&self) -> &Self::Wiring;
    /// Starts commands in the nodes of the lab instance `instance`
    /// (deployed or about to be: nothing is looked up until a command
    /// starts).
    fn launcher(&self, instance: &str) -> Self::Launcher;
    /// The deployed labs in `scope`: their nodes, and each interface as
    /// declared and as it is in the node now.
    fn inspect(
        &self,
        scope: &Scope,
    ) -> impl std::future::Future<Output = Result<Vec<LabStatus>, RuntimeError>> + Send;
}
