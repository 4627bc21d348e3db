//! The steps' [`Launcher`] on netns nodes: a step starts as a host
//! process inside its node ([`super::exec`]).

use std::io;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::runtime::error::RuntimeError;
use crate::runtime::process::{
    self, Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream,
};
use crate::runtime::tools_dir::ToolsDir;

use super::backend::{io_error, node_record};
use super::{exec, ns};

/// A command for `argv` in node `node` of the deployed netns instance `instance`;
/// stdio is the caller's to set.
pub async fn command(
    instance: &str,
    node: &str,
    argv: &[String],
) -> Result<tokio::process::Command, RuntimeError> {
    let (name, record) = node_record(instance, node).await?;
    let tools = ToolsDir::locate()?;
    exec::command(&name, node, &record, tools.path(), argv).map_err(io_error(format!(
        "preparing {:?} in node {node}",
        argv.join(" ")
    )))
}

/// Starts steps in the nodes of one deployed netns lab instance.
pub struct NetnsLauncher {
    instance: String,
}

impl NetnsLauncher {
    pub fn new(instance: &str) -> Self {
        NetnsLauncher {
            instance: instance.to_owned(),
        }
    }
}

impl Launcher for NetnsLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        async move {
            let fail = |reason: String| ProcessError::Launch {
                node: node.to_owned(),
                argv: argv.to_vec(),
                reason,
            };
            let mut cmd = command(&self.instance, node, argv)
                .await
                .map_err(|e| fail(e.to_string()))?;
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
            let pid = child.id().unwrap_or(0);
            let (tx, output) = mpsc::channel(256);
            let (exit_tx, exit) = watch::channel(None);
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            tokio::spawn(async move {
                let out = pump(stdout, Stream::Stdout, tx.clone());
                let err = pump(stderr, Stream::Stderr, tx);
                futures_util::future::join(out, err).await;
                let code = match child.wait().await {
                    Ok(status) => exec::exit_code(status),
                    Err(_) => 255,
                };
                exit_tx.send_replace(Some(code));
            });
            Ok(Launched {
                output,
                control: Arc::new(ChildControl { pid, exit }),
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
            let netns = node_record(&self.instance, node)
                .await
                .map(|(name, _)| ns::netns_path(&name));
            process::set_link_state(netns, node, interface, up).await
        }
        .boxed()
    }

    fn netns<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<std::path::PathBuf, ProcessError>> {
        async move {
            node_record(&self.instance, node)
                .await
                .map(|(name, _)| ns::netns_path(&name))
                .map_err(|e| ProcessError::Launch {
                    node: node.to_owned(),
                    argv: Vec::new(),
                    reason: e.to_string(),
                })
        }
        .boxed()
    }
}

/// Sends what `pipe` gives to `tx` as chunks of `stream`.
async fn pump(
    pipe: Option<impl tokio::io::AsyncRead + Unpin>,
    stream: Stream,
    tx: mpsc::Sender<Chunk>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = Chunk {
                    stream,
                    data: buf[..n].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

struct ChildControl {
    pid: u32,
    exit: watch::Receiver<Option<i64>>,
}

impl Control for ChildControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        let number = match signal {
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        };
        async move {
            // Once reaped, the pid may be someone else's.
            if self.exit.borrow().is_some() || self.pid == 0 {
                return Ok(());
            }
            // SAFETY: kill has no memory preconditions; the child is not
            // reaped yet, so the pid is still ours.
            if unsafe { libc::kill(self.pid as libc::pid_t, number) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(ProcessError::Signal(e.to_string()));
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(code) => Ok(code.unwrap_or(255)),
                Err(_) => Err(ProcessError::ExitCode("the process was lost".into())),
            }
        }
        .boxed()
    }
}
