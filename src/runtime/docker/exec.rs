//! Running a command in a node, the way `labctl exec` and the steps of
//! `labctl run` need it: output as it arrives, stdout and stderr apart, the
//! command's host pid (to send it SIGINT), and its real exit code from
//! Docker's exec inspect, never an assumed 0.

use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::runtime::error::RuntimeError;

/// One chunk of a command's output, as the command wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// A command's output, ending when the command closes both streams
/// (normally when it exits).
pub type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecOutput, RuntimeError>> + Send>>;

/// A command started in a container. Cheap to clone: a step runner can
/// keep one to signal the command while another task reads its output.
#[derive(Clone, Debug)]
pub struct ExecHandle {
    docker: Docker,
    id: String,
    container: String,
}

/// Longest time `host_pid` waits for Docker to report the process.
const PID_WAIT: Duration = Duration::from_secs(5);

impl ExecHandle {
    /// Docker's exec id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The command's pid in the host's pid namespace, once Docker has
    /// started it; `None` if it has already exited.
    pub async fn host_pid(&self) -> Result<Option<u32>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + PID_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let (running, pid, exit) = self.state().await?;
            if let Some(pid) = pid.filter(|_| running) {
                return Ok(Some(pid));
            }
            if exit.is_some() || tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. `libc::SIGINT`) to the command. A command that
    /// has already exited is not an error. Needs a daemon on this host.
    pub async fn signal(&self, signal: i32) -> Result<(), RuntimeError> {
        let Some(pid) = self.host_pid().await? else {
            return Ok(());
        };
        let pid = libc::pid_t::try_from(pid).map_err(|_| {
            RuntimeError::io(format!("signalling pid {pid}"))(std::io::Error::from(
                std::io::ErrorKind::InvalidInput,
            ))
        })?;
        // SAFETY: kill has no memory-safety preconditions; pid is the
        // command's host pid as Docker reports it.
        if unsafe { libc::kill(pid, signal) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        Err(RuntimeError::io(format!(
            "sending signal {signal} to pid {pid} in {}",
            self.container
        ))(error))
    }

    /// Waits for the command to end and returns its exit code. Call it
    /// once the output stream has ended; it polls until Docker has
    /// recorded the end.
    pub async fn exit_code(&self) -> Result<i64, RuntimeError> {
        let mut pause = Duration::from_millis(2);
        loop {
            let (running, _, exit) = self.state().await?;
            if !running {
                if let Some(code) = exit {
                    return Ok(code);
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// (running, host pid, exit code) as Docker sees them now.
    async fn state(&self) -> Result<(bool, Option<u32>, Option<i64>), RuntimeError> {
        let inspect = self
            .docker
            .inspect_exec(&self.id)
            .await
            .map_err(RuntimeError::docker(format!(
                "inspecting a command in {}",
                self.container
            )))?;
        let pid = inspect
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0);
        Ok((inspect.running.unwrap_or(false), pid, inspect.exit_code))
    }
}

/// Starts `argv` (never through a shell) in `container`, without stdin or
/// a terminal.
pub async fn start(
    docker: &Docker,
    container: &str,
    argv: &[String],
) -> Result<(ExecHandle, ExecStream), RuntimeError> {
    let doing = || format!("running {:?} in {container}", argv.join(" "));
    let options = CreateExecOptions {
        cmd: Some(argv.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, options)
        .await
        .map_err(RuntimeError::docker(doing()))?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        // A long line arrives whole rather than in 8 KiB pieces.
        output_capacity: Some(64 * 1024),
    };
    let started = docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(RuntimeError::docker(doing()))?;
    let StartExecResults::Attached { output, .. } = started else {
        return Err(RuntimeError::Detached { doing: doing() });
    };
    let context = doing();
    let stream = output.filter_map(move |chunk| {
        let item = match chunk {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                Some(Ok(ExecOutput::Stdout(message)))
            }
            Ok(LogOutput::StdErr { message }) => Some(Ok(ExecOutput::Stderr(message))),
            Ok(LogOutput::StdIn { .. }) => None,
            Err(e) => Some(Err(RuntimeError::docker(context.clone())(e))),
        };
        std::future::ready(item)
    });
    let handle = ExecHandle {
        docker: docker.clone(),
        id: created.id,
        container: container.to_owned(),
    };
    Ok((handle, Box::pin(stream)))
}
