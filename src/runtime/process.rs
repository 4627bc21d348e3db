//! The process seam: what the steps need from a deployed lab. Start a
//! command in a node, read its output as it comes, signal it, read its
//! exit code.
//!
//! Each runtime implements [`Launcher`] (Docker: `docker exec`, in
//! [`super::docker`]); the step runner's unit tests use the fake in
//! `runtime::fake`, so the step logic (readiness, timeouts, waits) is
//! tested without a daemon.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// Which stream a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A piece of output, as the process wrote it.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// Signals the run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ask the process to stop (what `wait` sends).
    Interrupt,
    /// Stop it now.
    Kill,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {argv:?} in node {node}: {reason}")]
    Launch {
        node: String,
        argv: Vec<String>,
        reason: String,
    },
    #[error("signalling the process: {0}")]
    Signal(String),
    #[error("reading the exit code: {0}")]
    ExitCode(String),
    #[error("setting {node}:{interface} {state}: {reason}")]
    LinkState {
        node: String,
        interface: String,
        state: &'static str,
        reason: String,
    },
}

/// What every runtime's [`Launcher::set_link`] does once it has looked up
/// the node's namespace (`netns`: the file, or why it was not found): sets
/// `interface` up or down there, the error naming the node and interface.
pub async fn set_link_state<E: std::fmt::Display>(
    netns: Result<std::path::PathBuf, E>,
    node: &str,
    interface: &str,
    up: bool,
) -> Result<(), ProcessError> {
    let failed = |reason: String| ProcessError::LinkState {
        node: node.to_owned(),
        interface: interface.to_owned(),
        state: if up { "up" } else { "down" },
        reason,
    };
    let netns = netns.map_err(|e| failed(e.to_string()))?;
    crate::links::set_link_state(&netns, interface, up)
        .await
        .map_err(|e| failed(e.to_string()))
}

/// Controls one running process.
pub trait Control: Send + Sync {
    /// Sends `signal`; a process that already ended is not an error.
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>>;
    /// The exit code, once the output has ended.
    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>>;
}

/// A started process: its output (the channel closes when both streams
/// end) and its control.
pub struct Launched {
    pub output: mpsc::Receiver<Chunk>,
    pub control: Arc<dyn Control>,
}

/// Starts commands in the nodes of a deployed lab, and sets their
/// interfaces down or up (link-state steps).
pub trait Launcher: Send + Sync {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>>;

    /// Sets `interface` of `node` down (`up: false`) or up, from outside
    /// the node: the node needs no capability for it.
    fn set_link<'a>(
        &'a self,
        node: &'a str,
        interface: &'a str,
        up: bool,
    ) -> BoxFuture<'a, Result<(), ProcessError>>;

    /// The network namespace file of `node` (to change a link's
    /// impairment while the lab runs, `labctl::api`). A runtime that
    /// cannot name one says so.
    fn netns<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<std::path::PathBuf, ProcessError>> {
        Box::pin(async move {
            Err(ProcessError::Launch {
                node: node.to_owned(),
                argv: Vec::new(),
                reason: "this runtime cannot name the node's network namespace".into(),
            })
        })
    }
}
