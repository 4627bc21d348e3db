//! `labctl exec LAB NODE -- CMD...`: streams the command's output and exits
//! with its exit code.

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;
use labctl::runtime::{DockerRuntime, ExecOutput};
use tokio::signal::unix::{signal, SignalKind};

use super::{block_on, lab_name, CliError, VerbResult};

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
    block_on(async move {
        // Ctrl-C goes to the command and labctl reports how it ended. The
        // handler is in place before the command starts.
        let mut interrupts = signal(SignalKind::interrupt())
            .map_err(|e| CliError::runtime(anyhow::Error::new(e).context("watching for Ctrl-C")))?;
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

fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}
