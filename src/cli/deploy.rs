//! `labctl deploy LAB`.

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::lab::RuntimeKind;
use labctl::runtime::registry::Fallback;
use labctl::runtime::{DeployOptions, DeployOutcome, RuntimeError};

use super::progress::ConsoleProgress;
use super::{
    block_on, exit, interrupts_on_signal, load_lab, print_timings, CliError, OnSignal, VerbResult,
};

#[derive(clap::Args)]
pub struct Args {
    /// The lab file
    lab: PathBuf,
    /// Deploy as this instance (default: the lab's name); `exec`, `inspect`
    /// and `destroy` take it
    #[arg(long, value_name = "NAME", value_parser = super::instance_arg)]
    name: Option<labctl::runtime::names::Instance>,
    /// If the lab is already up, destroy it and deploy it again
    /// (never one another labctl process is running)
    #[arg(long)]
    reconfigure: bool,
    /// Print how long each phase took (image, containers, links)
    #[arg(long)]
    timings: bool,
    /// Build the lab with this runtime, whatever the lab file says
    /// (default: the lab's `runtime`, else docker)
    #[arg(long, value_enum)]
    runtime: Option<RuntimeKind>,
}

pub fn run(args: Args) -> VerbResult {
    let lab = load_lab(&args.lab)?;
    super::check_privileges("deploy")?;
    block_on(async move {
        let runtime = super::runtime_for(&[&lab], args.runtime, Fallback::Never).await?;
        let options = DeployOptions {
            instance: args.name,
            reconfigure: args.reconfigure,
            interrupts: interrupts_on_signal(OnSignal::DEPLOY),
            ..Default::default()
        };
        let progress = ConsoleProgress::new();
        match runtime.deploy(&lab, &options, &progress).await {
            Ok(DeployOutcome::Deployed(deployed)) => {
                let name = if deployed.instance.as_str() == deployed.name {
                    deployed.name.clone()
                } else {
                    format!("{} as {}", deployed.name, deployed.instance)
                };
                println!(
                    "deployed lab {name} (run {}): {}, {}",
                    deployed.run,
                    count(deployed.nodes.len(), "node"),
                    count(deployed.links, "link")
                );
                if args.timings {
                    print_timings(&deployed.timings, runtime.node_noun());
                }
                Ok(ExitCode::SUCCESS)
            }
            Ok(DeployOutcome::AlreadyUp {
                instance,
                run,
                nodes,
            }) => {
                println!(
                    "lab {instance} is already deployed (run {run}, {nodes} nodes); nothing \
                     changed (--reconfigure redeploys it)"
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
