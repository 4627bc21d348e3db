//! The steps' [`Launcher`] on Docker: a step starts as `docker exec` in
//! its node's container.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::backend::DockerBackend;
use super::exec::{ExecHandle, ExecOutput};
use crate::runtime::process::{
    self, Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream,
};

/// Starts steps in the nodes of one deployed lab.
pub struct DockerLauncher {
    backend: DockerBackend,
    lab: String,
}

impl DockerLauncher {
    pub(crate) fn new(backend: DockerBackend, lab: &str) -> Self {
        DockerLauncher {
            backend,
            lab: lab.to_owned(),
        }
    }
}

impl Launcher for DockerLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        async move {
            let (handle, stream) = self
                .backend
                .exec(&self.lab, node, argv)
                .await
                .map_err(|e| ProcessError::Launch {
                    node: node.to_owned(),
                    argv: argv.to_vec(),
                    reason: e.to_string(),
                })?;
            let output = forward(stream);
            Ok(Launched {
                output,
                control: Arc::new(ExecControl(handle)),
            })
        }
        .boxed()
    }

    fn set_link<'a>(
        &'a self,
        node: &'a str,
        interface: &'a str,
        up: bool,
    ) -> BoxFuture<'a, Result<(), ProcessError>> {
        async move {
            let netns = self.backend.node_netns(&self.lab, node).await;
            process::set_link_state(netns, node, interface, up).await
        }
        .boxed()
    }

    fn netns<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<std::path::PathBuf, ProcessError>> {
        async move {
            self.backend
                .node_netns(&self.lab, node)
                .await
                .map_err(|e| ProcessError::Launch {
                    node: node.to_owned(),
                    argv: Vec::new(),
                    reason: e.to_string(),
                })
        }
        .boxed()
    }
}

/// The output of a `docker exec` as the step runner reads it: a channel
/// that closes when the stream ends; a broken stream says so on stderr.
pub(crate) fn forward(mut stream: super::exec::ExecStream) -> mpsc::Receiver<Chunk> {
    let (tx, output) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            let chunk = match item {
                Ok(ExecOutput::Stdout(data)) => Chunk {
                    stream: Stream::Stdout,
                    data: data.to_vec(),
                },
                Ok(ExecOutput::Stderr(data)) => Chunk {
                    stream: Stream::Stderr,
                    data: data.to_vec(),
                },
                // The stream broke: say so where the step's output
                // is read, and end it.
                Err(e) => Chunk {
                    stream: Stream::Stderr,
                    data: format!("labctl: output stream lost: {e}\n").into_bytes(),
                },
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    output
}

struct ExecControl(ExecHandle);

impl Control for ExecControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        let number = match signal {
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        };
        async move {
            self.0
                .signal(number)
                .await
                .map_err(|e| ProcessError::Signal(e.to_string()))
        }
        .boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        async move {
            self.0
                .exit_code()
                .await
                .map_err(|e| ProcessError::ExitCode(e.to_string()))
        }
        .boxed()
    }
}
