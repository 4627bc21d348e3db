//! Teardown: every node and stray veth of a scope removed, in rounds,
//! going on after errors (`labctl destroy`, the end of every run, and a
//! failed deploy's rollback).
//!
//! Generic over [`Backend`] and [`Wiring`], as the deploy is, and tested
//! with the same fakes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::links::Wiring;

use super::backend::{Backend, NodeInfo};
use super::error::RuntimeError;
use super::fan_out::{fan_out, DEFAULT_CONCURRENCY};
use super::names::Scope;
use super::progress::{Phase, Timings};

/// What a teardown removed, and every error it met on the way (it goes on
/// after an error, so it removes as much as it can).
#[derive(Debug, Default)]
pub struct Removed {
    pub containers: Vec<String>,
    pub veths: Vec<String>,
    pub errors: Vec<RuntimeError>,
    pub timings: Timings,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.veths.is_empty()
    }
}

impl fmt::Display for Removed {
    /// `2 containers (a, b) and 1 stray veth (x)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, what: &str, names: &[String]) -> fmt::Result {
            let plural = if names.len() == 1 { "" } else { "s" };
            write!(f, "{} {what}{plural}", names.len())?;
            if !names.is_empty() {
                write!(f, " ({})", names.join(", "))?;
            }
            Ok(())
        }
        list(f, "container", &self.containers)?;
        if !self.veths.is_empty() {
            f.write_str(" and ")?;
            list(f, "stray veth", &self.veths)?;
        }
        Ok(())
    }
}

/// A failed deploy: why, and what its rollback did.
/// How long a teardown keeps watching for containers that requests of an
/// interrupted deploy may still create: the daemon finishes a create even
/// when the client that sent it was killed.
pub const SETTLE: Duration = Duration::from_secs(1);
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// Rounds of list-and-remove before a container that keeps coming back is
/// reported as an error.
const MAX_ROUNDS: usize = 8;

/// Removes every container and stray veth in `scope`, going on after
/// errors, concurrently.
///
/// Lists and removes in rounds until a listing comes back empty: a
/// container still being created when it was removed can survive the
/// removal, and a deploy that was killed may still have creates in flight
/// in the daemon (it finishes them even though the client is gone), so
/// after an interrupted deploy the teardown watches for [`SETTLE`] more.
pub async fn teardown<E: Backend, W: Wiring>(engine: &E, wiring: &W, scope: &Scope) -> Removed {
    let started = Instant::now();
    let mut removed = Removed::default();
    let mut gone = BTreeSet::new();
    let mut failures: HashMap<String, RuntimeError> = HashMap::new();
    // A rollback has waited for its own operations: nothing is in flight.
    let may_have_creates_in_flight = !matches!(scope, Scope::Run { .. });
    let mut settle_until: Option<Instant> = None;
    let mut rounds = 0;
    loop {
        let found = match engine.list(scope).await {
            Ok(found) => found,
            Err(e) => {
                removed.errors.push(e);
                break;
            }
        };
        if found.is_empty() {
            match settle_until {
                Some(until) if Instant::now() < until => {
                    tokio::time::sleep(SETTLE_POLL).await;
                    continue;
                }
                _ => break,
            }
        }
        if rounds == MAX_ROUNDS {
            for c in found {
                failures
                    .entry(c.name.clone())
                    .or_insert_with(|| RuntimeError::StillThere {
                        container: c.name.clone(),
                        rounds: MAX_ROUNDS,
                    });
            }
            break;
        }
        if rounds > 0 {
            tokio::time::sleep(SETTLE_POLL).await;
        }
        rounds += 1;
        if may_have_creates_in_flight && interrupted_deploy(&found) {
            settle_until = Some(Instant::now() + SETTLE);
        }
        for (name, result) in remove_all(engine, &found).await {
            match result {
                Ok(()) => {
                    failures.remove(&name);
                    gone.insert(name);
                }
                Err(e) => {
                    failures.insert(name, e);
                }
            }
        }
    }
    removed.containers = gone.into_iter().collect();
    removed.errors.extend(failures.into_values());
    // After the containers: their namespaces, and the veths in them, are
    // gone; what is left on the host with our alias is a stray.
    match wiring.remove_strays(&|alias| scope.has_alias(alias)).await {
        Ok(veths) => removed.veths = veths,
        Err(e) => removed.errors.push(e.into()),
    }
    // The XDP pins of the nodes, found by their deploy as the veths are.
    if let Err(e) = engine.remove_host_state(scope).await {
        removed.errors.push(e);
    }
    removed.timings.push((Phase::Teardown, started.elapsed()));
    removed
}

async fn remove_all<E: Backend>(
    engine: &E,
    containers: &[NodeInfo],
) -> Vec<(String, Result<(), RuntimeError>)> {
    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    if let Some(removed) = engine.remove_many(&names).await {
        return removed;
    }
    fan_out(containers, DEFAULT_CONCURRENCY, |c| async move {
        (c.name.clone(), engine.remove(&c.name).await)
    })
    .await
}

/// Whether some deploy among `found` has fewer nodes than its lab.
fn interrupted_deploy(found: &[NodeInfo]) -> bool {
    let mut nodes_per_run: HashMap<(&str, &str), (usize, Option<usize>)> = HashMap::new();
    for c in found.iter().filter(|c| c.node.is_some()) {
        let entry = nodes_per_run
            .entry((c.lab.as_str(), c.run.as_str()))
            .or_insert((0, c.lab_nodes));
        entry.0 += 1;
    }
    nodes_per_run
        .values()
        .any(|(count, expected)| expected.is_some_and(|n| *count < n))
}
