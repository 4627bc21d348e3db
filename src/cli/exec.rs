//! `labctl exec LAB NODE -- CMD...`: streams the command's output and exits
//! with its exit code.

use std::io::Write;
use std::process::ExitCode;

use labctl::runtime::process::{Signal, Stream};
use labctl::runtime::registry;
use labctl::runtime::{RuntimeError, Scope};
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
    super::check_privileges("exec")?;
    block_on(async move {
        // Ctrl-C goes to the command and labctl reports how it ended. The
        // handler is in place before the command starts.
        let mut interrupts = signal(SignalKind::interrupt())
            .map_err(|e| CliError::runtime(anyhow::Error::new(e).context("watching for Ctrl-C")))?;
        // The first runtime that has the lab runs the command, as a step
        // starts (its `Launcher`).
        let scope = Scope::Named(lab.clone());
        let everywhere = registry::everywhere(&scope)
            .await
            .map_err(CliError::from_runtime)?;
        let mut runtime = None;
        for candidate in &everywhere.up {
            if !candidate
                .list(&scope)
                .await
                .map_err(CliError::from_runtime)?
                .is_empty()
            {
                runtime = Some(candidate);
                break;
            }
        }
        let Some(runtime) = runtime else {
            return Err(CliError::from_runtime(
                everywhere
                    .unreachable()
                    .unwrap_or(RuntimeError::NotDeployed { lab }),
            ));
        };
        let launched = runtime
            .launch(&lab, &args.node, &args.command)
            .await
            .map_err(CliError::from_runtime)?;
        let control = launched.control.clone();
        let forwarder = tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                let _ = control.signal(Signal::Interrupt).await;
            }
        });
        let mut output = launched.output;
        while let Some(chunk) = output.recv().await {
            let written = match chunk.stream {
                Stream::Stdout => write_all(&mut std::io::stdout(), &chunk.data),
                Stream::Stderr => write_all(&mut std::io::stderr(), &chunk.data),
            };
            // A closed stdout (`| head`) is not the command's failure.
            if written.is_err() {
                break;
            }
        }
        // Unread output no longer holds the command up: its next write
        // fails, as it would on a closed pipe.
        drop(output);
        let code = launched
            .control
            .exit_code()
            .await
            .map_err(CliError::runtime)?;
        forwarder.abort();
        Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
    })
}

fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}
