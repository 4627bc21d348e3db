//! Every runtime, registered once, keyed by [`RuntimeKind`]: the one
//! place that names them. [`AnyRuntime`] holds one connected runtime,
//! [`with_runtime!`](crate::with_runtime) hands it to generic code as a
//! [`Runtime`], [`for_lab`] and [`for_labs`] pick the runtime of a run
//! (the flag, the lab's `runtime:`, the embedded default), and
//! [`everywhere`] connects every runtime for the verbs that look at them
//! all (`destroy`, `inspect`, `exec`).
//!
//! A new runtime is a variant of [`AnyRuntime`], an arm of
//! [`with_runtime!`](crate::with_runtime), a line in [`AnyRuntime::connect`]
//! and [`ALL`]; nothing above the runtime layer names one.

use crate::lab::{Lab, RuntimeKind};

use super::backend::{Backend, NodeInfo};
use super::deploy::{self, DeployError, DeployOptions, DeployOutcome};
use super::docker::DockerRuntime;
use super::error::RuntimeError;
use super::hosts::HostsRuntime;
use super::inspect::LabStatus;
use super::names::Scope;
use super::netns::{self, NetnsRuntime};
use super::process::{Launched, Launcher as _};
use super::progress::Progress;
use super::teardown::Removed;
use super::Runtime;

/// One runtime, connected.
pub enum AnyRuntime {
    Docker(DockerRuntime),
    Netns(NetnsRuntime),
    /// Docker over the several hosts of a lab's `hosts` (or of the
    /// recorded instances a `destroy` looks for).
    Hosts(HostsRuntime),
}

/// Evaluates `$body` with `$r` bound to the [`Runtime`] inside the
/// [`AnyRuntime`] `$any`, whichever it is: generic code (a run, a deploy)
/// is written once and instantiated for every runtime here.
#[macro_export]
macro_rules! with_runtime {
    ($any:expr, |$r:ident| $body:expr) => {
        match $any {
            $crate::runtime::registry::AnyRuntime::Docker($r) => $body,
            $crate::runtime::registry::AnyRuntime::Netns($r) => $body,
            $crate::runtime::registry::AnyRuntime::Hosts($r) => $body,
        }
    };
}

/// Every runtime, in the order the verbs that look at them all try them:
/// the one that needs no daemon first.
pub const ALL: [RuntimeKind; 2] = [RuntimeKind::Netns, RuntimeKind::Docker];

impl AnyRuntime {
    /// Connects to the runtime of `kind`.
    pub async fn connect(kind: RuntimeKind) -> Result<AnyRuntime, RuntimeError> {
        match kind {
            RuntimeKind::Docker => DockerRuntime::connect().await.map(AnyRuntime::Docker),
            RuntimeKind::Netns => NetnsRuntime::new().map(AnyRuntime::Netns),
        }
    }

    pub fn kind(&self) -> RuntimeKind {
        match self {
            AnyRuntime::Docker(_) | AnyRuntime::Hosts(_) => RuntimeKind::Docker,
            AnyRuntime::Netns(_) => RuntimeKind::Netns,
        }
    }

    /// What this runtime calls a node ([`Runtime::NODE`]).
    pub fn node_noun(&self) -> &'static str {
        fn noun<R: Runtime>(_: &R) -> &'static str {
            R::NODE
        }
        with_runtime!(self, |r| noun(r))
    }

    /// Builds `lab`; on failure or cancellation, removes what this deploy
    /// created before returning.
    pub async fn deploy(
        &self,
        lab: &Lab,
        options: &DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployOutcome, DeployError> {
        with_runtime!(self, |r| {
            deploy::deploy(r.backend(), r.wiring(), lab, options, progress).await
        })
    }

    /// Removes every node of `scope` and what it left; idempotent.
    pub async fn destroy(&self, scope: &Scope) -> Removed {
        with_runtime!(self, |r| crate::runtime::teardown::teardown(
            r.backend(),
            r.wiring(),
            scope
        )
        .await)
    }

    /// The deployed labs of `scope` on this runtime.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        with_runtime!(self, |r| r.inspect(scope).await)
    }

    /// The nodes (and helpers) of `scope` on this runtime.
    pub async fn list(&self, scope: &Scope) -> Result<Vec<NodeInfo>, RuntimeError> {
        with_runtime!(self, |r| r.backend().list(scope).await)
    }

    /// Starts `argv` in node `node` of the deployed lab `name` (an
    /// instance's name, or a lab's name when one instance of it is up),
    /// through the runtime's [`Launcher`](super::process::Launcher), as a
    /// step starts. A lab, node or instance that is not there is a typed
    /// error, said before anything starts.
    pub async fn launch(
        &self,
        name: &str,
        node: &str,
        argv: &[String],
    ) -> Result<Launched, RuntimeError> {
        let found = self.list(&Scope::Named(name.to_owned())).await?;
        let instance = running_node(name, node, &found)?;
        let launched = with_runtime!(self, |r| r.launcher(&instance).launch(node, argv).await);
        launched.map_err(|e| RuntimeError::io("labctl exec".to_owned())(std::io::Error::other(e)))
    }
}

/// The instance in which `node` of the lab `name` runs, among `found`
/// (the nodes of [`Scope::Named`]).
fn running_node(name: &str, node: &str, found: &[NodeInfo]) -> Result<String, RuntimeError> {
    super::backend::running_node(name, node, found).map(|target| target.instance.clone())
}

/// Every runtime as a verb that looks at them all sees it.
pub struct Everywhere {
    /// The runtimes that answer, in the order of [`ALL`].
    pub up: Vec<AnyRuntime>,
    /// Why the others do not answer (a Docker daemon that is down): an
    /// error only when nothing was found on those that answer, as the lab
    /// may be on them.
    pub down: Vec<RuntimeError>,
}

/// Connects every runtime; one that does not answer is put aside
/// ([`Everywhere::down`]), any other failure is returned. The hosts of
/// the recorded instances in `scope` that span several hosts come first
/// (a node there is found on its own host); a host among them that does
/// not answer is named by what fails on it.
pub async fn everywhere(scope: &super::names::Scope) -> Result<Everywhere, RuntimeError> {
    let mut all = Everywhere {
        up: Vec::new(),
        down: Vec::new(),
    };
    if let Some(hosts) = HostsRuntime::recorded(scope).await {
        all.up.push(AnyRuntime::Hosts(hosts));
    }
    for kind in ALL {
        match AnyRuntime::connect(kind).await {
            Ok(runtime) => all.up.push(runtime),
            Err(e @ RuntimeError::Unreachable { .. }) => all.down.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

impl Everywhere {
    /// The error to give when nothing was found on the runtimes that
    /// answer: why the first of the others does not, if any.
    pub fn unreachable(self) -> Option<RuntimeError> {
        self.down.into_iter().next()
    }
}

/// Whether Docker may be replaced by netns when it does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// `labctl run` with no runtime named: the embedded default.
    ToNetns,
    Never,
}

/// The runtime a run is on, and why when it is not the one asked for.
pub struct Chosen {
    pub runtime: AnyRuntime,
    /// One line for the user when the embedded default chose netns.
    pub note: Option<String>,
}

/// The runtime for `lab`: the flag, else the lab's own choice, else
/// Docker; with [`Fallback::ToNetns`], netns when no Docker daemon answers
/// and the lab fits netns.
pub async fn for_lab(
    lab: &Lab,
    flag: Option<RuntimeKind>,
    fallback: Fallback,
) -> Result<Chosen, RuntimeError> {
    let chosen = flag.or_else(|| named_by(lab));
    if chosen == Some(RuntimeKind::Netns) {
        netns::check_lab(lab)?;
    }
    if !lab.hosts().is_empty() {
        // Docker on every host; the tools go into an image on each.
        super::check_tools_static()?;
        return Ok(Chosen {
            runtime: AnyRuntime::Hosts(HostsRuntime::connect(lab).await?),
            note: None,
        });
    }
    choose(chosen, fallback, &[lab], &format!("lab {}", lab.name())).await
}

/// One runtime for several labs run in one call: netns when the flag says
/// so or every lab asks for it, else Docker, falling back to netns as for
/// one lab when every lab fits netns.
pub async fn for_labs(
    labs: &[&Lab],
    flag: Option<RuntimeKind>,
    fallback: Fallback,
) -> Result<Chosen, RuntimeError> {
    if let Some(lab) = labs.iter().find(|l| !l.hosts().is_empty()) {
        return Err(RuntimeError::HostUnfit {
            host: lab.hosts()[0].name.clone(),
            endpoint: lab.hosts()[0].docker.to_string(),
            problem: format!(
                "lab {} spans hosts, so it runs alone: `labctl run {}` without the other labs",
                lab.name(),
                lab.file().display()
            ),
        });
    }
    let all_netns = !labs.is_empty() && labs.iter().all(|l| named_by(l).is_some());
    let chosen = flag.or(all_netns.then_some(RuntimeKind::Netns));
    choose(chosen, fallback, labs, "the labs").await
}

/// The lab file's `runtime:` when it rules out the embedded default:
/// docker is the default too, so it does not.
fn named_by(lab: &Lab) -> Option<RuntimeKind> {
    Some(lab.runtime()).filter(|&kind| kind != RuntimeKind::Docker)
}

async fn choose(
    chosen: Option<RuntimeKind>,
    fallback: Fallback,
    labs: &[&Lab],
    what: &str,
) -> Result<Chosen, RuntimeError> {
    let kind = chosen.unwrap_or(RuntimeKind::Docker);
    match (AnyRuntime::connect(kind).await, kind) {
        (Ok(runtime), RuntimeKind::Docker) => {
            // The tools Docker would put in its image are statically
            // linked, or nothing is created (exit 4); other problems with
            // the tools are the deploy's to report.
            match super::check_tools_static() {
                Err(e @ RuntimeError::ToolsNotStatic { .. }) => Err(e),
                _ => Ok(Chosen {
                    runtime,
                    note: None,
                }),
            }
        }
        (Ok(runtime), _) => Ok(Chosen {
            runtime,
            note: None,
        }),
        (Err(RuntimeError::Unreachable { host, cause }), RuntimeKind::Docker)
            if chosen.is_none()
                && fallback == Fallback::ToNetns
                && labs.iter().all(|l| netns::check_lab(l).is_ok()) =>
        {
            Ok(Chosen {
                runtime: AnyRuntime::connect(RuntimeKind::Netns).await?,
                note: Some(format!(
                    "no Docker daemon answers at {host} ({cause}); running {what} on the netns \
                     runtime (bare network namespaces on this host)"
                )),
            })
        }
        (Err(e), _) => Err(e),
    }
}
