//! `labctl destroy LAB` and `labctl destroy --all`.

use std::process::ExitCode;

use labctl::runtime::backend::Backend;
use labctl::runtime::Runtime;
use labctl::runtime::{Removed, RuntimeError, Scope};

use super::runtimes;
use super::{block_on, lab_name, print_timings, CliError, VerbResult};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["lab", "all"])))]
pub struct Args {
    /// An instance name, or a lab file or lab name (its every instance)
    lab: Option<String>,
    /// Every lab on this host (netns) and on this Docker daemon
    #[arg(long, conflicts_with = "lab")]
    all: bool,
    /// With --all: only the instances whose names start with PREFIX (e.g. a
    /// CI job's own labs on a shared daemon)
    #[arg(long, requires = "all", value_name = "PREFIX")]
    prefix: Option<String>,
    /// Also remove labs that another labctl process is still running
    #[arg(long)]
    force: bool,
    /// Print how long the teardown took
    #[arg(long)]
    timings: bool,
}

pub fn run(args: Args) -> VerbResult {
    let scope = match &args.lab {
        Some(lab) => Scope::Named(lab_name(lab)?),
        None => Scope::All {
            prefix: args.prefix.clone().unwrap_or_default(),
        },
    };
    super::check_privileges("destroy")?;
    block_on(async move {
        let removed = destroy_everywhere(&scope, args.force).await?;
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

/// A lab whose `labctl run` still runs is that process's to tear down:
/// removing it under the run would fail the run, and it tears down anyway.
async fn refuse_if_owned<B: Backend>(backend: &B, scope: &Scope) -> Result<(), CliError> {
    let containers = backend.list(scope).await.map_err(CliError::from_runtime)?;
    let mut owned: Vec<(String, u32)> = containers
        .iter()
        .filter_map(|c| Some((c.instance.clone(), c.live_owner()?.pid)))
        .collect();
    owned.sort();
    owned.dedup();
    if owned.is_empty() {
        return Ok(());
    }
    let mut instances: Vec<&str> = owned.iter().map(|(i, _)| i.as_str()).collect();
    instances.dedup();
    let mut pids: Vec<u32> = owned.iter().map(|(_, p)| *p).collect();
    pids.sort();
    pids.dedup();
    let what = match instances.as_slice() {
        [one] => format!("lab {one}"),
        many => format!("labs {}", many.join(", ")),
    };
    Err(CliError::from_runtime(RuntimeError::Owned { what, pids }))
}

/// Removes `scope` from the netns runtime, then from Docker when a daemon
/// answers. No daemon is an error only when there was nothing of the
/// scope on the netns runtime either: the lab may be on Docker.
async fn destroy_everywhere(scope: &Scope, force: bool) -> Result<Removed, CliError> {
    let netns = runtimes::netns()?;
    let docker = runtimes::docker().await?;
    if !force {
        refuse_if_owned(netns.backend(), scope).await?;
        if let runtimes::Docker::Up(docker) = &docker {
            refuse_if_owned(docker.backend(), scope).await?;
        }
    }
    let mut removed = netns.destroy(scope).await;
    match docker {
        runtimes::Docker::Up(docker) => {
            let more = docker.destroy(scope).await;
            removed.containers.extend(more.containers);
            removed.veths.extend(more.veths);
            removed.errors.extend(more.errors);
            removed.timings.extend(more.timings);
        }
        runtimes::Docker::Down(_) if !removed.is_empty() => {}
        runtimes::Docker::Down(e) => return Err(CliError::from_runtime(e)),
    }
    Ok(removed)
}
