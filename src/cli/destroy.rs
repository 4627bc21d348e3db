//! `labctl destroy LAB` and `labctl destroy --all`.

use std::process::ExitCode;

use labctl::lab::RuntimeKind;
use labctl::runtime::backend::NodeInfo;
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
    /// List every node and veth removed, one per line (the summary line
    /// names a few)
    #[arg(short, long, conflicts_with = "json")]
    verbose: bool,
    /// Print what was removed as JSON: {"removed": [{"runtime", "nodes",
    /// "veths"}], "errors": [...]}
    #[arg(long)]
    json: bool,
}

/// How many names the summary line shows of each kind.
const SHOWN: usize = 3;

pub fn run(args: Args) -> VerbResult {
    let scope = match &args.lab {
        Some(lab) => Scope::Named(lab_name(lab)?),
        None => Scope::All {
            prefix: args.prefix.clone().unwrap_or_default(),
        },
    };
    super::check_privileges("destroy")?;
    block_on(async move {
        let mut removed = destroy_everywhere(&scope, args.force).await?;
        let errors: Vec<RuntimeError> = removed
            .iter_mut()
            .flat_map(|on| std::mem::take(&mut on.removed.errors))
            .collect();
        let nothing = removed.iter().all(|on| on.removed.is_empty());
        if args.json {
            println!("{}", removed_json(&removed, &errors));
        } else if nothing && errors.is_empty() {
            println!("{}: nothing to remove", scope.describe());
        } else if !nothing {
            println!("removed {}: {}", scope.describe(), removed_line(&removed));
            if args.verbose {
                for on in &removed {
                    for name in &on.removed.containers {
                        println!("  {} {name}", on.node);
                    }
                    for name in &on.removed.veths {
                        println!("  stray veth {name}");
                    }
                }
            }
        }
        if args.timings {
            for on in &removed {
                print_timings(&on.removed.timings, on.node);
            }
        }
        let mut errors = errors.into_iter();
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
fn refuse_if_owned(containers: &[NodeInfo]) -> Result<(), CliError> {
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

/// What one runtime removed, and what it calls a node.
struct RemovedOn {
    runtime: RuntimeKind,
    node: &'static str,
    removed: Removed,
}

type RemovedBy = Vec<RemovedOn>;

/// `3 containers (a, b, c)`, `1000 nodes (n1, n2, n3 and 997 more; -v or
/// --json lists them)`, then ` and 1 stray veth (x)` if any.
fn removed_line(removed: &RemovedBy) -> String {
    let mut parts = Vec::new();
    let mut cut = false;
    for on in removed {
        if !on.removed.containers.is_empty() {
            parts.push(counted(on.node, &on.removed.containers, &mut cut));
        }
    }
    let mut line = parts.join(" and ");
    if line.is_empty() {
        line = counted(removed.first().map_or("node", |on| on.node), &[], &mut cut);
    }
    let veths: Vec<String> = removed
        .iter()
        .flat_map(|on| on.removed.veths.clone())
        .collect();
    if !veths.is_empty() {
        line.push_str(" and ");
        line.push_str(&counted("stray veth", &veths, &mut cut));
    }
    if cut {
        line.push_str(" (-v or --json lists them all)");
    }
    line
}

/// `2 nodes (a, b)`; past [`SHOWN`] names, the first few and how many
/// more (`cut` is set).
fn counted(what: &str, names: &[String], cut: &mut bool) -> String {
    let plural = if names.len() == 1 { "" } else { "s" };
    let mut out = format!("{} {what}{plural}", names.len());
    if names.len() > SHOWN {
        *cut = true;
        out.push_str(&format!(
            " ({} and {} more)",
            names[..SHOWN].join(", "),
            names.len() - SHOWN
        ));
    } else if !names.is_empty() {
        out.push_str(&format!(" ({})", names.join(", ")));
    }
    out
}

/// `--json`: every runtime's removed nodes and veths, and the errors.
fn removed_json(removed: &RemovedBy, errors: &[RuntimeError]) -> String {
    let removed: Vec<serde_json::Value> = removed
        .iter()
        .map(|on| {
            serde_json::json!({
                "runtime": on.runtime.as_str(),
                "nodes": on.removed.containers,
                "veths": on.removed.veths,
            })
        })
        .collect();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let json = serde_json::json!({ "removed": removed, "errors": errors });
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// Removes `scope` from every runtime that answers. One that does not
/// answer (no Docker daemon) is an error only when nothing of the scope
/// was on the others: the lab may be on it.
async fn destroy_everywhere(scope: &Scope, force: bool) -> Result<RemovedBy, CliError> {
    let everywhere = registry::everywhere(scope)
        .await
        .map_err(CliError::from_runtime)?;
    if !force {
        for runtime in &everywhere.up {
            let containers = runtime.list(scope).await.map_err(CliError::from_runtime)?;
            refuse_if_owned(&containers)?;
        }
    }
    let mut removed = Vec::new();
    for runtime in &everywhere.up {
        removed.push(RemovedOn {
            runtime: runtime.kind(),
            node: runtime.node_noun(),
            removed: runtime.destroy(scope).await,
        });
    }
    match everywhere.unreachable() {
        Some(e) if removed.iter().all(|on| on.removed.is_empty()) => Err(CliError::from_runtime(e)),
        _ => Ok(removed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(runtime: RuntimeKind, names: &[&str]) -> RemovedOn {
        RemovedOn {
            runtime,
            node: if runtime == RuntimeKind::Docker {
                "container"
            } else {
                "node"
            },
            removed: Removed {
                containers: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            },
        }
    }
    use RuntimeKind::{Docker, Netns};

    #[test]
    fn a_large_lab_is_a_count_a_few_names_and_where_the_rest_are() {
        let names: Vec<String> = (1..=1000).map(|i| format!("labctl-hk1000.n{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let line = removed_line(&vec![removed(Netns, &[]), removed(Docker, &names)]);
        assert_eq!(
            line,
            "1000 containers (labctl-hk1000.n1, labctl-hk1000.n2, labctl-hk1000.n3 and 997 \
             more) (-v or --json lists them all)"
        );
    }

    #[test]
    fn a_small_lab_is_named_in_full_with_each_runtimes_noun() {
        let line = removed_line(&vec![
            removed(Netns, &["labctl-a.x", "labctl-a.y"]),
            removed(Docker, &[]),
        ]);
        assert_eq!(line, "2 nodes (labctl-a.x, labctl-a.y)");
        let mut docker = removed(Docker, &["labctl-b.x"]);
        docker.removed.veths = vec!["lv1234".into()];
        let line = removed_line(&vec![removed(Netns, &[]), docker]);
        assert_eq!(line, "1 container (labctl-b.x) and 1 stray veth (lv1234)");
    }
}
