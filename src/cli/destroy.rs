//! `labctl destroy LAB` and `labctl destroy --all`.

use std::process::ExitCode;

use labctl::runtime::{DockerRuntime, Scope};

use super::{block_on, lab_name, print_timings, CliError, VerbResult};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["lab", "all"])))]
pub struct Args {
    /// A lab file or a lab name
    lab: Option<String>,
    /// Every lab on this Docker daemon
    #[arg(long, conflicts_with = "lab")]
    all: bool,
    /// With --all: only the labs whose names start with PREFIX (e.g. a CI
    /// job's own labs on a shared daemon)
    #[arg(long, requires = "all", value_name = "PREFIX")]
    prefix: Option<String>,
    /// Print how long the teardown took
    #[arg(long)]
    timings: bool,
}

pub fn run(args: Args) -> VerbResult {
    let scope = match &args.lab {
        Some(lab) => Scope::Lab(lab_name(lab)?),
        None => Scope::All {
            prefix: args.prefix.clone().unwrap_or_default(),
        },
    };
    block_on(async move {
        let runtime = DockerRuntime::connect()
            .await
            .map_err(CliError::from_runtime)?;
        let removed = runtime.destroy(&scope).await;
        if removed.is_empty() && removed.errors.is_empty() {
            println!("{}: nothing to remove", scope.describe());
        } else if !removed.is_empty() {
            println!("removed {}: {removed}", scope.describe());
        }
        if args.timings {
            print_timings(&removed.timings);
        }
        let mut errors = removed.errors.into_iter();
        match errors.next() {
            None => Ok(ExitCode::SUCCESS),
            Some(first) => {
                // Teardown went on after each error; show them all.
                for other in errors {
                    eprintln!("labctl: {other}");
                }
                Err(CliError::runtime(
                    anyhow::Error::new(first).context(format!("destroying {}", scope.describe())),
                ))
            }
        }
    })
}
