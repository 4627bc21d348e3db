//! Deploy: the order of things, concurrency, and rollback.
//!
//! A deploy checks everything it can before creating anything (host,
//! images, a lab already up), then creates and starts the containers
//! concurrently, then wires the links concurrently. If any step fails or
//! the deploy is cancelled, every in-flight operation is allowed to finish
//! (so nothing is created behind the rollback's back) and then everything
//! this deploy created is removed, found by its run label and alias, by
//! the same [`teardown`] as `labctl destroy`'s.
//!
//! Generic over [`Backend`] and [`Wiring`], so every runtime shares it and
//! the rollback logic is tested with the fakes of `runtime::fake`.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::lab::Lab;
use crate::links::{self, VethPlan, Wiring};

use super::backend::{Backend, NodeInfo, StartedNode};
use super::error::RuntimeError;
use super::fan_out::{fan_out, DEFAULT_CONCURRENCY};
use super::names::{self, Instance, RunId, Scope};
use super::needs;
use super::node::{self, NodeSpec};
use super::privilege::HostSupport;
use super::progress::{Phase, Progress, Timings};
use super::teardown::{teardown, Removed};

/// Ctrl-C (or SIGTERM), the one cancellation of labctl: the first
/// cancels `interrupt` (a deploy stops between operations and rolls back;
/// a run stops its steps gracefully and tears down), the second `force`
/// (no more grace). Cloning shares the tokens.
#[derive(Clone, Debug, Default)]
pub struct Interrupts {
    pub interrupt: CancellationToken,
    pub force: CancellationToken,
}

impl Interrupts {
    fn check(&self) -> Result<(), RuntimeError> {
        if self.interrupt.is_cancelled() {
            Err(RuntimeError::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeployOptions {
    /// The instance to deploy as; `None`: the lab's own name.
    pub instance: Option<Instance>,
    /// Tear down a deployed instance of the same name first (unless
    /// another live labctl process owns it).
    pub reconfigure: bool,
    pub concurrency: usize,
    pub interrupts: Interrupts,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            instance: None,
            reconfigure: false,
            concurrency: DEFAULT_CONCURRENCY,
            interrupts: Interrupts::default(),
        }
    }
}

/// A node that is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedNode {
    pub name: String,
    pub container: String,
    /// The host pid of the node's init (lab-init); `None` for a bare
    /// network namespace.
    pub pid: Option<u32>,
    /// The node's network namespace file.
    pub netns: PathBuf,
}

/// A lab that is up: every node running, every link configured.
#[derive(Clone, Debug)]
pub struct DeployedLab {
    pub name: String,
    pub instance: Instance,
    pub run: RunId,
    /// In the lab file's order.
    pub nodes: Vec<DeployedNode>,
    pub links: usize,
    pub timings: Timings,
}

impl DeployedLab {
    pub fn node(&self, name: &str) -> Option<&DeployedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[derive(Clone, Debug)]
pub enum DeployOutcome {
    /// The lab was created.
    Deployed(DeployedLab),
    /// The same lab (same file, every node running) was already up; nothing
    /// was changed.
    AlreadyUp {
        instance: Instance,
        run: String,
        nodes: usize,
    },
}

#[derive(Debug)]
pub struct DeployError {
    pub lab: String,
    pub cause: RuntimeError,
    /// `None` when the deploy failed before creating anything.
    pub rollback: Option<Removed>,
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deploying lab {}: {}", self.lab, self.cause)?;
        if let Some(rollback) = &self.rollback {
            write!(f, " (rolled back: removed {rollback}")?;
            for e in &rollback.errors {
                write!(f, "; rollback failed: {e}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The cause is part of the message, not a `source()` (see the errors
/// module).
impl std::error::Error for DeployError {}

/// Deploys `lab`; see the module documentation.
pub async fn deploy<E: Backend, W: Wiring>(
    engine: &E,
    wiring: &W,
    lab: &Lab,
    options: &DeployOptions,
    progress: &dyn Progress,
) -> Result<DeployOutcome, DeployError> {
    let fail = |cause| DeployError {
        lab: lab.name().to_owned(),
        cause,
        rollback: None,
    };
    needs::preflight(lab).map_err(fail)?;
    let host = engine.host_support().await.map_err(fail)?;
    needs::privilege_preflight(lab, &host).map_err(fail)?;
    let instance = options
        .instance
        .clone()
        .unwrap_or_else(|| Instance::of_lab(lab.name()));
    let scope = Scope::Instance(instance.to_string());
    let mut timings = Timings::new();
    let existing = engine.list(&scope).await.map_err(fail)?;
    if !existing.is_empty() {
        // Never touch an instance another live labctl process is running.
        if let Some(owner) = existing.iter().find_map(NodeInfo::live_owner) {
            return Err(fail(RuntimeError::InUse {
                lab: instance.to_string(),
                pid: owner.pid,
            }));
        }
        if options.reconfigure {
            let started = Instant::now();
            let removed = teardown(engine, wiring, &scope).await;
            if let Some(first) = removed.errors.into_iter().next() {
                return Err(fail(first));
            }
            timings.push((Phase::Teardown, started.elapsed()));
        } else {
            return already_up(lab, &instance, &existing).map_err(fail);
        }
    }
    options.interrupts.check().map_err(fail)?;

    let run = RunId::random();
    match build(
        engine,
        wiring,
        lab,
        &instance,
        &run,
        &host,
        options,
        progress,
        &mut timings,
    )
    .await
    {
        Ok(nodes) => Ok(DeployOutcome::Deployed(DeployedLab {
            name: lab.name().to_owned(),
            instance,
            run,
            nodes,
            links: lab.links().len(),
            timings,
        })),
        Err(cause) => {
            let scope = Scope::Run {
                instance: instance.to_string(),
                run,
            };
            let rollback = teardown(engine, wiring, &scope).await;
            Err(DeployError {
                lab: lab.name().to_owned(),
                cause,
                rollback: Some(rollback),
            })
        }
    }
}

/// A lab of this name is up: fine if it is this lab, complete; a conflict
/// otherwise.
fn already_up(
    lab: &Lab,
    instance: &Instance,
    existing: &[NodeInfo],
) -> Result<DeployOutcome, RuntimeError> {
    let file = node::absolute(lab.file());
    let conflict = |detail: String| RuntimeError::Conflict {
        lab: instance.to_string(),
        detail,
    };
    let nodes: Vec<&NodeInfo> = existing.iter().filter(|c| c.node.is_some()).collect();
    if let Some(other) = nodes
        .iter()
        .find(|c| c.file.as_deref() != Some(file.as_str()))
    {
        return Err(conflict(format!(
            "from another file ({})",
            other.file.as_deref().unwrap_or("unknown")
        )));
    }
    let complete = lab.nodes().iter().all(|n| {
        nodes
            .iter()
            .any(|c| c.node.as_deref() == Some(n.name.as_str()) && c.is_running())
    });
    if !complete || nodes.len() != lab.nodes().len() {
        return Err(conflict("but not complete or not running".into()));
    }
    Ok(DeployOutcome::AlreadyUp {
        instance: instance.clone(),
        run: nodes.first().map(|c| c.run.clone()).unwrap_or_default(),
        nodes: nodes.len(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn build<E: Backend, W: Wiring>(
    engine: &E,
    wiring: &W,
    lab: &Lab,
    instance: &Instance,
    run: &RunId,
    host: &HostSupport,
    options: &DeployOptions,
    progress: &dyn Progress,
    timings: &mut Timings,
) -> Result<Vec<DeployedNode>, RuntimeError> {
    let started = Instant::now();
    let images = engine.prepare_images(lab, instance, run, progress).await?;
    timings.push((Phase::Image, started.elapsed()));

    let started = Instant::now();
    let specs: Vec<NodeSpec> = lab
        .nodes()
        .iter()
        .filter_map(|node| {
            let image = images.get(&node.name)?.clone();
            Some(NodeSpec::new(lab, instance, node, image, run, host))
        })
        .collect();
    let nodes = start_nodes(engine, &specs, options).await?;
    timings.push((Phase::Containers, started.elapsed()));

    let started = Instant::now();
    let plans = links::plan(lab, &names::veth_alias(lab.name(), instance, run));
    on_links(wiring, &plans, &nodes, options, LinkWork::Wire).await?;
    add_routes(wiring, lab, &nodes, options).await?;
    on_links(wiring, &plans, &nodes, options, LinkWork::Impair).await?;
    attach_xdp(engine, &specs, &nodes, options).await?;
    timings.push((Phase::Links, started.elapsed()));
    Ok(nodes)
}

/// The XDP programs labctl attaches from the host, once the veths they
/// attach to exist (the nodes were created with their pin directory
/// bind-mounted, so this comes last).
async fn attach_xdp<E: Backend>(
    engine: &E,
    specs: &[NodeSpec],
    nodes: &[DeployedNode],
    options: &DeployOptions,
) -> Result<(), RuntimeError> {
    let pinned = specs.iter().filter_map(|spec| {
        let node = nodes.iter().find(|n| n.name == spec.node)?;
        (!spec.pinned_xdp.is_empty()).then_some((spec, node))
    });
    let results = fan_out(pinned, options.concurrency, |(spec, node)| async move {
        options.interrupts.check()?;
        engine.attach_xdp(spec, &node.netns).await
    })
    .await;
    first_error(results).map(|_| ())
}

/// Starts every node, at most `concurrency` at a time. Every started
/// operation runs to its end before an error is returned.
async fn start_nodes<E: Backend>(
    engine: &E,
    specs: &[NodeSpec],
    options: &DeployOptions,
) -> Result<Vec<DeployedNode>, RuntimeError> {
    let results = fan_out(specs, options.concurrency, |spec| async move {
        options.interrupts.check()?;
        let StartedNode { pid, netns } = engine.start_node(spec).await?;
        Ok(DeployedNode {
            name: spec.node.clone(),
            container: spec.container.clone(),
            pid,
            netns,
        })
    })
    .await;
    first_error(results)
}

/// What [`on_links`] does to each link.
#[derive(Clone, Copy)]
enum LinkWork {
    /// Create the veth pair in its two namespaces.
    Wire,
    /// Its impairments, once the links are wired and routed,
    /// before any step runs (only links with an impaired end).
    Impair,
}

async fn on_links<W: Wiring>(
    wiring: &W,
    plans: &[VethPlan],
    nodes: &[DeployedNode],
    options: &DeployOptions,
    work: LinkWork,
) -> Result<(), RuntimeError> {
    let netns_of = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.netns.as_path())
    };
    let plans = plans.iter().filter(|plan| match work {
        LinkWork::Wire => true,
        LinkWork::Impair => plan.ends.iter().any(|e| e.impair.is_some()),
    });
    let results = fan_out(plans, options.concurrency, |plan| async move {
        options.interrupts.check()?;
        let [a, b] = &plan.ends;
        // Validation guarantees every endpoint names a node.
        let (Some(na), Some(nb)) = (netns_of(&a.node), netns_of(&b.node)) else {
            return Ok(());
        };
        match work {
            LinkWork::Wire => wiring.wire(plan, [na, nb]).await?,
            LinkWork::Impair => wiring.impair(plan, [na, nb]).await?,
        }
        Ok(())
    })
    .await;
    first_error(results).map(|_| ())
}

/// Every node's `routes`, once its links are up (a route needs its
/// interface), before any step runs.
async fn add_routes<W: Wiring>(
    wiring: &W,
    lab: &Lab,
    nodes: &[DeployedNode],
    options: &DeployOptions,
) -> Result<(), RuntimeError> {
    let routed = nodes.iter().filter_map(|deployed| {
        let node = lab.nodes().iter().find(|n| n.name == deployed.name)?;
        (!node.routes.is_empty()).then_some((node, deployed))
    });
    let results = fan_out(routed, options.concurrency, |(node, deployed)| async move {
        options.interrupts.check()?;
        wiring
            .add_routes(&node.name, &node.routes, &deployed.netns)
            .await?;
        Ok(())
    })
    .await;
    first_error(results).map(|_| ())
}

/// All the values, or the first error. An interruption is only reported
/// when nothing else went wrong: the real failure is more useful.
fn first_error<T>(results: Vec<Result<T, RuntimeError>>) -> Result<Vec<T>, RuntimeError> {
    let mut values = Vec::with_capacity(results.len());
    let mut interrupted = false;
    let mut failure = None;
    for result in results {
        match result {
            Ok(v) => values.push(v),
            Err(RuntimeError::Interrupted) => interrupted = true,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match (failure, interrupted) {
        (Some(e), _) => Err(e),
        (None, true) => Err(RuntimeError::Interrupted),
        (None, false) => Ok(values),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::runtime::fake::{FakeBackend, FakeWiring};
    use crate::runtime::progress::NoProgress;
    use crate::runtime::teardown::SETTLE;

    const LAB: &str = r#"
name: three
nodes: { a: {}, b: {}, c: {} }
links:
  - endpoints: ["a:eth1", "b:eth1"]
  - endpoints: ["b:eth2", "c:eth1"]
"#;

    fn lab() -> Lab {
        crate::lab::parse(LAB, Path::new("/labs/three.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn run(
        engine: &FakeBackend,
        wiring: &FakeWiring,
        options: &DeployOptions,
    ) -> Result<DeployOutcome, DeployError> {
        deploy(engine, wiring, &lab(), options, &NoProgress).await
    }

    #[tokio::test]
    async fn a_deploy_starts_every_node_then_wires_every_link() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        let DeployOutcome::Deployed(lab) = run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap()
        else {
            panic!("expected a fresh deploy");
        };
        assert_eq!(
            lab.nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(lab.node("b").unwrap().container, "labctl-three.b");
        let mut wired = wiring.wired.lock().unwrap().clone();
        wired.sort();
        assert_eq!(wired, ["a:eth1 <-> b:eth1", "b:eth2 <-> c:eth1"]);
        let phases: Vec<Phase> = lab.timings.iter().map(|(p, _)| *p).collect();
        assert_eq!(phases, [Phase::Image, Phase::Containers, Phase::Links]);
    }

    #[tokio::test]
    async fn impairments_are_applied_once_their_links_are_wired() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        let lab = crate::lab::parse(
            "name: slow\nnodes: { a: {}, b: {} }\nlinks:\n  - endpoints:\n      - { node: a, interface: eth1, impair: { rate: 10mbit } }\n      - b:eth1\n  - endpoints: [a:eth2, b:eth2]\n",
            Path::new("/labs/slow.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        deploy(
            &engine,
            &wiring,
            &lab,
            &DeployOptions::default(),
            &NoProgress,
        )
        .await
        .unwrap();
        // The fake asserts the link was wired first; only the shaped end of
        // the impaired link is touched.
        let wired = wiring.wired.lock().unwrap().clone();
        let impaired: Vec<&String> = wired.iter().filter(|w| w.contains("impair")).collect();
        assert_eq!(impaired, ["a:eth1: impair rate 10mbit"]);
        assert_eq!(wired.last(), impaired.last().copied());
    }

    #[tokio::test]
    async fn a_failed_container_rolls_back_every_container_of_the_run() {
        let engine = FakeBackend {
            fail_node: Some("b".into()),
            ..Default::default()
        };
        let wiring = FakeWiring::default();
        let err = run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("deploying lab three: node b"), "{text}");
        // Every container was started (none abandoned in flight), and all
        // of them, the failed one included, were removed.
        assert_eq!(engine.started.lock().unwrap().len(), 3);
        assert!(engine.containers.lock().unwrap().is_empty());
        assert_eq!(err.rollback.unwrap().containers.len(), 3);
        assert!(wiring.wired.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_link_rolls_back_containers_and_host_veths_of_the_run_only() {
        let engine = FakeBackend::default();
        let wiring = FakeWiring {
            fail_link: Some("b:eth2 <-> c:eth1".into()),
            ..Default::default()
        };
        // Another lab's veth must survive the rollback.
        wiring
            .host_veths
            .lock()
            .unwrap()
            .push(("other".into(), "labctl:threex:123".into()));
        let err = run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("creating b:eth2 <-> c:eth1: broken on purpose"));
        let rollback = err.rollback.unwrap();
        assert_eq!(rollback.veths, ["lcstray"]);
        assert!(engine.containers.lock().unwrap().is_empty());
        assert_eq!(wiring.host_veths.lock().unwrap().len(), 1);
    }

    const XDP_LAB: &str = r#"
name: xdp
datalink: af_xdp
nodes: { a: {}, b: {}, c: { privileged: true }, d: { datalink: af_packet } }
links:
  - endpoints: ["a:eth1", "b:eth1"]
  - endpoints: ["a:eth2", "c:eth1"]
  - endpoints: ["c:eth2", "d:eth1"]
"#;

    #[tokio::test]
    async fn xdp_programs_are_attached_from_the_host_after_wiring_and_their_pins_go_at_teardown() {
        let lab = crate::lab::parse(XDP_LAB, Path::new("/labs/xdp.yaml")).unwrap();
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        let outcome = deploy(
            &engine,
            &wiring,
            &lab,
            &DeployOptions::default(),
            &NoProgress,
        )
        .await
        .unwrap();
        assert!(matches!(outcome, DeployOutcome::Deployed(_)));
        let mut attached = engine.attached_xdp.lock().unwrap().clone();
        attached.sort();
        // Not c (privileged: loads its own), not d's af_packet end; c's
        // eth2 is af_xdp but c is privileged.
        assert_eq!(
            attached,
            [
                ("a".to_owned(), vec!["eth1".to_owned(), "eth2".to_owned()]),
                ("b".to_owned(), vec!["eth1".to_owned()])
            ]
        );
        // After the links (the fake wiring saw all of them).
        assert_eq!(wiring.wired.lock().unwrap().len(), 3);
        let removed = teardown(&engine, &wiring, &Scope::Instance("xdp".into())).await;
        assert!(removed.errors.is_empty(), "{:?}", removed.errors);
        assert_eq!(
            *engine.host_state_removed.lock().unwrap(),
            [Scope::Instance("xdp".into()).describe()]
        );
    }

    #[tokio::test]
    async fn a_failed_xdp_attach_rolls_back_the_run_and_its_pins() {
        let lab = crate::lab::parse(XDP_LAB, Path::new("/labs/xdp.yaml")).unwrap();
        let engine = FakeBackend {
            fail_xdp: Some("b".into()),
            ..Default::default()
        };
        let wiring = FakeWiring::default();
        let err = deploy(
            &engine,
            &wiring,
            &lab,
            &DeployOptions::default(),
            &NoProgress,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("attaching XDP programs for b: broken on purpose"),
            "{err}"
        );
        assert!(engine.containers.lock().unwrap().is_empty());
        assert_eq!(engine.host_state_removed.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_deploy_creates_nothing_more_and_rolls_back() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        let options = DeployOptions {
            concurrency: 1,
            ..Default::default()
        };
        options.interrupts.interrupt.cancel();
        let err = run(&engine, &wiring, &options).await.unwrap_err();
        assert!(matches!(err.cause, RuntimeError::Interrupted));
        assert!(engine.started.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_lab_already_up_is_reported_or_redeployed() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        let DeployOutcome::Deployed(first) = run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap()
        else {
            panic!("expected a fresh deploy");
        };
        match run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap()
        {
            DeployOutcome::AlreadyUp { run, nodes, .. } => {
                assert_eq!(run, first.run.as_str());
                assert_eq!(nodes, 3);
            }
            other => panic!("expected AlreadyUp, got {other:?}"),
        }
        let options = DeployOptions {
            reconfigure: true,
            ..Default::default()
        };
        let DeployOutcome::Deployed(second) = run(&engine, &wiring, &options).await.unwrap() else {
            panic!("expected a redeploy");
        };
        assert_ne!(second.run, first.run);
        assert_eq!(engine.containers.lock().unwrap().len(), 3);
        assert_eq!(second.timings[0].0, Phase::Teardown);
    }

    #[tokio::test]
    async fn teardown_after_an_interrupted_deploy_waits_for_late_containers() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap();
        // As if the deploy had died with one create still in flight.
        let late = engine.containers.lock().unwrap().pop().unwrap();
        *engine.late.lock().unwrap() = vec![late];
        *engine.listings.lock().unwrap() = 0;
        let removed = teardown(&engine, &wiring, &Scope::Named("three".into())).await;
        assert!(removed.errors.is_empty());
        assert_eq!(removed.containers.len(), 3);
        assert!(engine.containers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn teardown_of_a_complete_lab_does_not_wait() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap();
        let started = Instant::now();
        let removed = teardown(&engine, &wiring, &Scope::All { prefix: "".into() }).await;
        assert_eq!(removed.containers.len(), 3);
        assert!(started.elapsed() < SETTLE / 2);
    }

    #[tokio::test]
    async fn a_lab_of_the_same_name_from_another_file_is_a_conflict() {
        let (engine, wiring) = (FakeBackend::default(), FakeWiring::default());
        run(&engine, &wiring, &DeployOptions::default())
            .await
            .unwrap();
        let other = crate::lab::parse(LAB, Path::new("/elsewhere/three.yaml")).unwrap();
        let err = deploy(
            &engine,
            &wiring,
            &other,
            &DeployOptions::default(),
            &NoProgress,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("already deployed from another file (/labs/three.yaml)"),
            "{err}"
        );
        assert!(err.contains("--reconfigure"), "{err}");
    }
}
