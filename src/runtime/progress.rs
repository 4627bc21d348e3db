//! What a long operation reports while it runs. The library only emits
//! events; the CLI decides how to show them (a spinner on a terminal,
//! plain lines otherwise), and a caller that wants silence uses [`NoProgress`].

use std::time::Duration;

/// The phases of a deploy or a teardown, as `--timings` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checking or building the tools image (and its volume).
    Image,
    /// Creating and starting the containers.
    Containers,
    /// Creating the veths in the nodes' namespaces and configuring them.
    Links,
    /// Removing containers and stray veths.
    Teardown,
}

impl Phase {
    /// Its name where nodes are called `node` (`containers`, on Docker).
    pub fn name(self, node: &str) -> String {
        match self {
            Phase::Containers => format!("{node}s"),
            other => other.as_str().to_owned(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Image => "image",
            Phase::Containers => "containers",
            Phase::Links => "links",
            Phase::Teardown => "teardown",
        }
    }
}

/// How long each phase took, in order.
pub type Timings = Vec<(Phase, Duration)>;

pub trait Progress: Sync {
    /// The tools image `tag` is missing and is being built.
    fn building_image(&self, _tag: &str) {}
    /// One line of the build's output.
    fn build_output(&self, _line: &str) {}
    /// The build of `tag` finished.
    fn image_built(&self, _tag: &str, _took: Duration) {}
    /// A run copies its nodes' files out (a long copy is visibly alive,
    /// and a signal now is known to land in the copy).
    fn copying_evidence(&self) {}
    /// A run tears its lab down.
    fn tearing_down(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
