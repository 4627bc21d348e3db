//! `labctl destroy LAB` and `labctl destroy --all`.

use std::process::ExitCode;

use labctl::runtime::backend::ContainerInfo;
use labctl::runtime::registry;
use labctl::runtime::{Removed, RuntimeError, Scope};

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
fn refuse_if_owned(containers: &[ContainerInfo]) -> Result<(), CliError> {
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

/// Removes `scope` from every runtime that answers. One that does not
/// answer (no Docker daemon) is an error only when nothing of the scope
/// was on the others: the lab may be on it.
async fn destroy_everywhere(scope: &Scope, force: bool) -> Result<Removed, CliError> {
    let everywhere = registry::everywhere()
        .await
        .map_err(CliError::from_runtime)?;
    if !force {
        for runtime in &everywhere.up {
            let containers = runtime.list(scope).await.map_err(CliError::from_runtime)?;
            refuse_if_owned(&containers)?;
        }
    }
    let mut removed = Removed::default();
    for runtime in &everywhere.up {
        let more = runtime.destroy(scope).await;
        removed.containers.extend(more.containers);
        removed.veths.extend(more.veths);
        removed.errors.extend(more.errors);
        removed.timings.extend(more.timings);
    }
    match everywhere.unreachable() {
        Some(e) if removed.is_empty() => Err(CliError::from_runtime(e)),
        _ => Ok(removed),
    }
}
