//! `labctl exec LAB NODE -- CMD...`: streams the command's output and exits
//! with its exit code.

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;
use labctl::runtime::netns;
use labctl::runtime::{DockerRuntime, ExecOutput, RuntimeError, Scope};
use tokio::signal::unix::{signal, SignalKind};

use super::{block_on, lab_name, runtimes, CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// An instance name, or a lab file or lab name with one instance up
    lab: String,
    /// The node to run the command in
    node: String,
    /// The command and its arguments (no shell), after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: Args) -> VerbResult {
    let lab = lab_name(&args.lab)?;
    super::check_privileges("exec")?;
    block_on(async move {
        // Ctrl-C goes to the command and labctl reports how it ended. The
        // handler is in place before the command starts.
        let mut interrupts = signal(SignalKind::interrupt())
            .map_err(|e| CliError::runtime(anyhow::Error::new(e).context("watching for Ctrl-C")))?;
        if runtimes::netns()?
            .has(&Scope::Named(lab.clone()))
            .await
            .map_err(CliError::from_runtime)?
        {
            return exec_netns(&lab, &args.node, &args.command, interrupts).await;
        }
        let runtime = DockerRuntime::connect()
            .await
            .map_err(CliError::from_runtime)?;
        let (handle, mut output) = runtime
            .exec(&lab, &args.node, &args.command)
            .await
            .map_err(CliError::from_runtime)?;
        let forward = handle.clone();
        let forwarder = tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                let _ = forward.signal(libc::SIGINT).await;
            }
        });
        while let Some(chunk) = output.next().await {
            let written = match chunk.map_err(CliError::from_runtime)? {
                ExecOutput::Stdout(bytes) => write_all(&mut std::io::stdout(), &bytes),
                ExecOutput::Stderr(bytes) => write_all(&mut std::io::stderr(), &bytes),
            };
            // A closed stdout (`| head`) is not the command's failure.
            if written.is_err() {
                break;
            }
        }
        let code = handle.exit_code().await.map_err(CliError::from_runtime)?;
        forwarder.abort();
        Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
    })
}

/// The command as a host process in the netns node, its output straight
/// on labctl's own stdout and stderr.
async fn exec_netns(
    lab: &str,
    node: &str,
    argv: &[String],
    mut interrupts: tokio::signal::unix::Signal,
) -> VerbResult {
    let mut cmd = netns::command(lab, node, argv)
        .await
        .map_err(CliError::from_runtime)?;
    cmd.stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().map_err(|cause| {
        CliError::from_runtime(RuntimeError::Io {
            doing: format!("running {:?} in node {node} of lab {lab}", argv.join(" ")),
            cause,
        })
    })?;
    let pid = child.id().unwrap_or(0) as libc::pid_t;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = interrupts.recv() => {
                // SAFETY: kill has no memory preconditions; the child is
                // not reaped while this loop runs.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
        }
    };
    let status = status.map_err(|cause| {
        CliError::from_runtime(RuntimeError::Io {
            doing: format!("waiting for {:?}", argv.join(" ")),
            cause,
        })
    })?;
    let code = netns::process::exit_code(status);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}
