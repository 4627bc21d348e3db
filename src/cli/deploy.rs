//! `labctl deploy LAB`.

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::runtime::{DeployOptions, DeployOutcome, DockerRuntime, RuntimeError};

use super::progress::ConsoleProgress;
use super::{block_on, cancel_on_signal, exit, load_lab, print_timings, CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// The lab file
    lab: PathBuf,
    /// If the lab is already up, destroy it and deploy it again
    #[arg(long)]
    reconfigure: bool,
    /// Print how long each phase took (image, containers, links)
    #[arg(long)]
    timings: bool,
}

pub fn run(args: Args) -> VerbResult {
    let lab = load_lab(&args.lab)?;
    block_on(async move {
        let runtime = DockerRuntime::connect()
            .await
            .map_err(CliError::from_runtime)?;
        let options = DeployOptions {
            reconfigure: args.reconfigure,
            ..Default::default()
        };
        cancel_on_signal(options.cancel.clone());
        let outcome = runtime
            .deploy(&lab, &options, &ConsoleProgress::new())
            .await;
        match outcome {
            Ok(DeployOutcome::Deployed(deployed)) => {
                println!(
                    "deployed lab {} (run {}): {}, {}",
                    deployed.name,
                    deployed.run,
                    count(deployed.nodes.len(), "node"),
                    count(deployed.links, "link")
                );
                if args.timings {
                    print_timings(&deployed.timings);
                }
                Ok(ExitCode::SUCCESS)
            }
            Ok(DeployOutcome::AlreadyUp { run, nodes }) => {
                println!(
                    "lab {} is already deployed (run {run}, {nodes} nodes); nothing changed \
                     (--reconfigure redeploys it)",
                    lab.name()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(failed) => {
                let interrupted = matches!(failed.cause, RuntimeError::Interrupted);
                let mut failure = CliError::runtime(failed);
                if interrupted {
                    failure.code = exit::INTERRUPTED;
                }
                Err(failure)
            }
        }
    })
}

/// `1 node`, `2 nodes`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
