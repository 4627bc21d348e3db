//! The Docker side of a lab and the lab's life: deploy, inspect, exec,
//! destroy.
//!
//! - [`docker`]: connecting, API version negotiation.
//! - [`image`]: the tools image, built locally, and its volume.
//! - [`node`]: what a node's container looks like ([`node::NodeSpec`]).
//! - [`needs`]: capabilities and devices per datalink, host preflight.
//! - [`names`]: container names, labels, veth aliases, scopes.
//! - [`engine`]: containers behind a small trait, and the Docker one.
//! - [`deploy`]: deploy with rollback, and teardown.
//! - [`inspect`], [`exec`]: looking at and running things in a lab.
//!
//! [`Runtime`] ties them to the real daemon and kernel; `labctl run`
//! and the CLI verbs use it.

pub mod deploy;
pub mod docker;
pub mod engine;
mod error;
pub mod exec;
mod handle;
pub mod image;
pub mod inspect;
pub mod names;
pub mod needs;
pub mod node;
pub mod progress;

pub use deploy::{
    Cancel, DeployError, DeployOptions, DeployOutcome, DeployedLab, DeployedNode, Removed,
};
pub use error::RuntimeError;
pub use exec::{ExecHandle, ExecOutput, ExecStream};
pub use handle::Runtime;
pub use inspect::{LabStatus, NodeStatus};
pub use names::{RunId, Scope};
pub use progress::{Phase, Progress, Quiet, Timings};
