//! In-memory fakes of the three seams of a runtime ([`Backend`],
//! [`Wiring`], [`Launcher`]) and [`FakeRuntime`] holding them, for the
//! unit tests of deploy, teardown, the step runner and the lifecycle.
//!
//! They behave as Docker and netlink do where it matters: a container
//! exists once created even if starting it fails (then it is not
//! running), a second container of a name is refused (409), a node's own
//! image must be in the store, removing a gone one is fine, a program
//! that is not there fails as Docker's exec does (its message, exit 126),
//! signalling an ended command is fine, a command's exit code is known
//! before its output closes. Each can fail on purpose at one place, and
//! can press Ctrl-C (cancel a token) at one moment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, NodeInfo, StartedNode};
use super::error::RuntimeError;
use super::names::{self, Instance, RunId, Scope};
use super::node::{NodeImage, NodeSpec, ToolsImage};
use super::privilege::HostSupport;
use super::process::{Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream};
use super::progress::Progress;
use super::Runtime;
use crate::lab::Lab;
use crate::links::{LinkError, VethPlan, Wiring};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The three fakes together.
#[derive(Default)]
pub struct FakeRuntime {
    pub backend: FakeBackend,
    pub wiring: FakeWiring,
    pub launcher: FakeLauncher,
}

impl Runtime for FakeRuntime {
    type Backend = FakeBackend;
    type Wiring = FakeWiring;
    type Launcher = FakeLauncher;
    const NODE: &'static str = "container";
    const KIND: crate::lab::RuntimeKind = crate::lab::RuntimeKind::Docker;

    fn backend(&self) -> &FakeBackend {
        &self.backend
    }

    fn wiring(&self) -> &FakeWiring {
        &self.wiring
    }

    fn launcher(&self, _instance: &str) -> FakeLauncher {
        self.launcher.clone()
    }

    async fn inspect(&self, scope: &Scope) -> Result<Vec<super::inspect::LabStatus>, RuntimeError> {
        let nodes = self.backend.list(scope).await?;
        super::inspect::statuses(nodes, |_| async { Ok((None, None)) }).await
    }
}

/// Where the fake backend presses Ctrl-C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// When the first node starts.
    StartNode,
    /// When the first node's files are copied out.
    CopyOut,
    /// When the first container is removed.
    Remove,
}

/// Containers in memory. Fails `start_node` or `copy_out` for one node if
/// asked; records what it removed.
#[derive(Default)]
pub struct FakeBackend {
    pub containers: Mutex<Vec<NodeInfo>>,
    /// The images in the fake daemon's store, for nodes with `image:`
    /// (the tools image is always there).
    pub images: Vec<String>,
    pub fail_node: Option<String>,
    pub started: Mutex<Vec<String>>,
    /// Appear at the second listing, as creates that a killed deploy
    /// left in flight in the daemon would.
    pub late: Mutex<Vec<NodeInfo>>,
    pub listings: Mutex<usize>,
    /// Every container `remove` was called for, in order.
    pub removed: Mutex<Vec<String>>,
    /// The files of each node's copied-out directory: (node, relative
    /// path, content).
    pub files: Vec<(String, String, Vec<u8>)>,
    /// `copy_out` of this node fails as a broken download would.
    pub fail_copy: Option<String>,
    /// Cancel this token at that moment (then give the run a moment to
    /// see it, as a real Ctrl-C arrives while an operation is under way).
    pub interrupt: Option<(Moment, CancellationToken)>,
    /// What the host can grant ([`HostSupport::FULL`] by default).
    pub host: HostSupport,
    /// The daemon stops answering at that moment: from then on every call
    /// fails as a connection to a dead Docker socket does (the containers
    /// stay where they are).
    pub dies_at: Option<Moment>,
    pub dead: std::sync::atomic::AtomicBool,
    /// Every XDP attach from the host: (node, its interfaces).
    pub attached_xdp: Mutex<Vec<(String, Vec<String>)>>,
    /// The scope of every `remove_host_state`.
    pub host_state_removed: Mutex<Vec<String>>,
    /// `attach_xdp` of this node fails.
    pub fail_xdp: Option<String>,
    /// The nodes that run a command, and how it ends by itself (`None`:
    /// it runs until stopped).
    pub commands: Vec<(String, Option<crate::runtime::console::Ending>)>,
    /// Every node whose command `stop_command` stopped, in order.
    pub stopped: Mutex<Vec<String>>,
}

impl FakeBackend {
    /// Fails when the fake daemon is dead, with what bollard says then.
    fn answer(&self, now: Option<Moment>, doing: &str) -> Result<(), RuntimeError> {
        use std::sync::atomic::Ordering;
        if now.is_some() && now == self.dies_at {
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Err(RuntimeError::Io {
                doing: doing.to_owned(),
                cause: std::io::Error::other(
                    "error trying to connect: No such file or directory (os error 2)",
                ),
            });
        }
        Ok(())
    }

    async fn trip(&self, now: Moment) {
        if let Some((moment, token)) = &self.interrupt {
            if *moment == now && !token.is_cancelled() {
                token.cancel();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Docker's create: refused (409) when a container of that name
    /// exists; a container whose start `fails` is not running.
    fn create(&self, spec: &NodeSpec, fails: bool) -> Result<(), RuntimeError> {
        let mut containers = lock(&self.containers);
        if containers.iter().any(|c| c.name == spec.container) {
            return Err(RuntimeError::Docker {
                doing: format!("creating container {}", spec.container),
                cause: super::docker::DockerError(
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        message: format!(
                            "Conflict. The container name \"/{}\" is already in use by \
                             container \"{}\". You have to remove (or rename) that container \
                             to be able to reuse that name.",
                            spec.container, spec.container
                        ),
                    },
                ),
            });
        }
        // Docker has created the container even when starting fails.
        containers.push(NodeInfo {
            id: spec.container.clone(),
            name: spec.container.clone(),
            lab: spec.labels[names::LABEL_LAB].clone(),
            instance: spec.labels[names::LABEL_INSTANCE].clone(),
            owner: spec
                .labels
                .get(names::LABEL_OWNER)
                .and_then(|o| names::Owner::parse(o)),
            node: Some(spec.node.clone()),
            run: spec.labels[names::LABEL_RUN].clone(),
            file: Some(spec.labels[names::LABEL_FILE].clone()),
            lab_nodes: spec.labels[names::LABEL_NODES].parse().ok(),
            image: String::new(),
            state: if fails { "exited" } else { "running" }.into(),
            interfaces: vec![],
        });
        Ok(())
    }

    /// The containers removed, sorted.
    pub fn removed(&self) -> Vec<String> {
        let mut removed = lock(&self.removed).clone();
        removed.sort();
        removed.dedup();
        removed
    }
}

impl Backend for FakeBackend {
    async fn prepare_images(
        &self,
        lab: &Lab,
        _instance: &Instance,
        _run: &RunId,
        _progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        let tools = ToolsImage::for_hash("000000000000");
        lab.nodes()
            .iter()
            .map(|node| {
                let image = match &node.image {
                    None => NodeImage::Tools(tools.clone()),
                    // labctl never pulls: Docker's 404 on inspecting it.
                    Some(own) if !self.images.contains(own) => {
                        return Err(RuntimeError::ImageMissing {
                            node: node.name.clone(),
                            image: own.clone(),
                        })
                    }
                    Some(own) => NodeImage::Custom {
                        image: own.clone(),
                        path: None,
                        command: node.cmd.clone().unwrap_or_default(),
                        user: None,
                        tools: tools.clone(),
                    },
                };
                Ok((node.name.clone(), image))
            })
            .collect()
    }

    async fn host_support(&self) -> Result<HostSupport, RuntimeError> {
        Ok(self.host.clone())
    }

    async fn start_node(&self, spec: &NodeSpec) -> Result<StartedNode, RuntimeError> {
        let fails = self.fail_node.as_deref() == Some(spec.node.as_str());
        self.create(spec, fails)?;
        let pid = {
            let mut started = lock(&self.started);
            started.push(spec.node.clone());
            1000 + started.len() as u32
        };
        self.trip(Moment::StartNode).await;
        if fails {
            return Err(RuntimeError::NotRunning {
                lab: "x".into(),
                node: spec.node.clone(),
                state: "broken on purpose".into(),
            });
        }
        Ok(StartedNode::of_pid(pid))
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<NodeInfo>, RuntimeError> {
        self.answer(None, "listing the lab's containers")?;
        let second = {
            let mut listings = lock(&self.listings);
            *listings += 1;
            *listings == 2
        };
        if second {
            let late = std::mem::take(&mut *lock(&self.late));
            lock(&self.containers).extend(late);
        }
        Ok(lock(&self.containers)
            .iter()
            .filter(|c| scope.has(&c.lab, &c.instance, &c.run))
            .cloned()
            .collect())
    }

    async fn attach_xdp(&self, spec: &NodeSpec, _netns: &Path) -> Result<(), RuntimeError> {
        // As the real one: the node exists (its directory was bind-mounted).
        assert!(
            lock(&self.containers)
                .iter()
                .any(|c| c.name == spec.container),
            "XDP attached before the node {} exists",
            spec.node
        );
        if self.fail_xdp.as_deref() == Some(spec.node.as_str()) {
            return Err(RuntimeError::Io {
                doing: format!("attaching XDP programs for {}", spec.node),
                cause: std::io::Error::other("broken on purpose"),
            });
        }
        lock(&self.attached_xdp).push((spec.node.clone(), spec.pinned_xdp.clone()));
        Ok(())
    }

    async fn remove_host_state(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        lock(&self.host_state_removed).push(scope.describe());
        Ok(Vec::new())
    }

    async fn remove(&self, container: &str) -> Result<(), RuntimeError> {
        self.trip(Moment::Remove).await;
        self.answer(
            Some(Moment::Remove),
            &format!("removing container {container}"),
        )?;
        lock(&self.removed).push(container.to_owned());
        lock(&self.containers).retain(|c| c.name != container);
        Ok(())
    }

    async fn stop_command(&self, _instance: &str, node: &str) -> Result<(), RuntimeError> {
        if self.commands.iter().any(|(n, _)| n == node) {
            lock(&self.stopped).push(node.to_owned());
        }
        Ok(())
    }

    async fn keep_console(
        &self,
        _instance: &str,
        node: &str,
        dest: &Path,
    ) -> Result<Option<super::backend::KeptConsole>, RuntimeError> {
        let Some((_, ended)) = self.commands.iter().find(|(n, _)| n == node) else {
            return Ok(None);
        };
        Ok(Some(super::backend::KeptConsole {
            path: dest.to_owned(),
            command: vec!["daemon".into(), "--config".into(), "a b".into()],
            ended: *ended,
        }))
    }

    async fn copy_out(
        &self,
        instance: &str,
        node: &str,
        from: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, RuntimeError> {
        self.trip(Moment::CopyOut).await;
        let container = names::container_name(instance, node);
        let doing = format!("copying {from} out of container {container}");
        self.answer(Some(Moment::CopyOut), &doing)?;
        let exists = lock(&self.containers).iter().any(|c| c.name == container);
        if !exists || self.fail_copy.as_deref() == Some(node) {
            return Err(RuntimeError::Io {
                doing,
                cause: std::io::Error::other(if exists {
                    "broken on purpose"
                } else {
                    "no such container"
                }),
            });
        }
        std::fs::create_dir_all(dest).map_err(|cause| RuntimeError::Write {
            path: dest.to_owned(),
            cause,
        })?;
        let mut written = Vec::new();
        for (_, path, data) in self.files.iter().filter(|(n, _, _)| n == node) {
            let target = dest.join(path);
            std::fs::write(&target, data).map_err(|cause| RuntimeError::Write {
                path: target.clone(),
                cause,
            })?;
            written.push(target);
        }
        Ok(written)
    }
}

/// Records wired links and host veths (by alias); fails one link if
/// asked, leaving a host veth behind as a crash would.
#[derive(Default)]
pub struct FakeWiring {
    pub host_veths: Mutex<Vec<(String, String)>>,
    pub wired: Mutex<Vec<String>>,
    pub fail_link: Option<String>,
}

impl Wiring for FakeWiring {
    async fn wire(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        assert!(netns
            .iter()
            .all(|p| p.to_string_lossy().starts_with("/proc/10")));
        if self.fail_link.as_deref() == Some(plan.describe().as_str()) {
            lock(&self.host_veths).push(("lcstray".into(), plan.alias.clone()));
            return Err(LinkError::io(format!("creating {}", plan.describe()))(
                std::io::Error::other("broken on purpose"),
            ));
        }
        lock(&self.wired).push(plan.describe());
        Ok(())
    }

    async fn add_routes(
        &self,
        node: &str,
        routes: &[crate::lab::Route],
        _netns: &Path,
    ) -> Result<(), LinkError> {
        let mut wired = lock(&self.wired);
        for r in routes {
            wired.push(format!("{node}: route {} via {}", r.to, r.via));
        }
        Ok(())
    }

    async fn impair(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        assert!(netns
            .iter()
            .all(|p| p.to_string_lossy().starts_with("/proc/10")));
        let mut wired = lock(&self.wired);
        assert!(
            wired.contains(&plan.describe()),
            "{} impaired before it was wired",
            plan.describe()
        );
        for end in &plan.ends {
            if let Some(impair) = &end.impair {
                wired.push(format!("{}: impair {impair}", end.label()));
            }
        }
        Ok(())
    }

    async fn remove_strays(
        &self,
        matches: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<String>, LinkError> {
        let mut veths = lock(&self.host_veths);
        let (gone, kept): (Vec<_>, Vec<_>) = veths.drain(..).partition(|(_, alias)| matches(alias));
        *veths = kept;
        Ok(gone.into_iter().map(|(name, _)| name).collect())
    }
}

/// What a fake program does.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Printed in order, each after its delay.
    pub lines: Vec<(Duration, Stream, String)>,
    /// Exit code when the lines are done (unless `forever`).
    pub exit: i64,
    /// Keep running after the lines until signalled.
    pub forever: bool,
    /// On SIGINT: print this, then exit with this code. `None`: ignore it.
    pub on_interrupt: Option<(String, i64)>,
    /// The launch fails with this reason, as spawning a host process does
    /// (the netns runtime: a file without its execute bit, say).
    pub launch_error: Option<String>,
}

impl Script {
    pub fn prints(lines: &[&str]) -> Script {
        Script {
            lines: lines
                .iter()
                .map(|l| (Duration::from_millis(5), Stream::Stdout, format!("{l}\n")))
                .collect(),
            ..Default::default()
        }
    }

    /// A program whose launch fails with `reason`.
    pub fn cannot_start(reason: &str) -> Script {
        Script {
            launch_error: Some(reason.to_owned()),
            ..Default::default()
        }
    }

    /// What Docker's exec does with a program that is not in the node: it
    /// starts, says so on its stdout and exits 126.
    fn not_found(program: &str) -> Script {
        Script {
            lines: vec![(
                Duration::ZERO,
                Stream::Stdout,
                format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: \
                     exec: \"{program}\": executable file not found in $PATH: unknown\n"
                ),
            )],
            exit: 126,
            ..Default::default()
        }
    }

    pub fn exits(mut self, code: i64) -> Script {
        self.exit = code;
        self
    }

    /// Runs until SIGINT, then prints `last` and exits 0.
    pub fn until_interrupt(mut self, last: &str) -> Script {
        self.forever = true;
        self.on_interrupt = Some((format!("{last}\n"), 0));
        self
    }

    /// Runs until SIGKILL.
    pub fn stubborn(mut self) -> Script {
        self.forever = true;
        self.on_interrupt = None;
        self
    }

    pub fn after(mut self, delay: Duration) -> Script {
        if let Some(first) = self.lines.first_mut() {
            first.0 = delay;
        }
        self
    }
}

/// Programs by name (argv[0]); records the signals each one received.
/// Clones share the programs and the record.
#[derive(Clone, Default)]
pub struct FakeLauncher {
    /// Each program's scripts, one per launch in turn, the last again.
    scripts: Arc<HashMap<String, Vec<Script>>>,
    /// How many times each program was launched.
    launches: Arc<Mutex<HashMap<String, usize>>>,
    pub signals: Arc<Mutex<Vec<(String, Signal)>>>,
    /// Every command started, as `node: argv[0]`.
    pub launched: Arc<Mutex<Vec<String>>>,
}

impl FakeLauncher {
    pub fn with(self, program: &str, script: Script) -> Self {
        self.with_each(program, vec![script])
    }

    /// `program` plays `scripts` in turn, one per launch, then the last
    /// one again (the tries of a step with `until`).
    pub fn with_each(mut self, program: &str, scripts: Vec<Script>) -> Self {
        Arc::make_mut(&mut self.scripts).insert(program.to_owned(), scripts);
        self
    }

    pub fn signals_to(&self, program: &str) -> Vec<Signal> {
        lock(&self.signals)
            .iter()
            .filter(|(p, _)| p == program)
            .map(|(_, s)| *s)
            .collect()
    }
}

struct FakeControl {
    program: String,
    signals: mpsc::UnboundedSender<Signal>,
    log: Arc<Mutex<Vec<(String, Signal)>>>,
    exit: watch::Receiver<Option<i64>>,
}

impl Control for FakeControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        lock(&self.log).push((self.program.clone(), signal));
        let _ = self.signals.send(signal);
        async { Ok(()) }.boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        let mut exit = self.exit.clone();
        async move {
            loop {
                if let Some(code) = *exit.borrow() {
                    return Ok(code);
                }
                exit.changed()
                    .await
                    .map_err(|_| ProcessError::ExitCode("fake process vanished".into()))?;
            }
        }
        .boxed()
    }
}

impl Launcher for FakeLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        let program = argv.first().cloned().unwrap_or_default();
        let nth = {
            let mut launches = lock(&self.launches);
            let n = launches.entry(program.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let script = self
            .scripts
            .get(&program)
            .and_then(|s| s.get(nth).or(s.last()))
            .cloned()
            .unwrap_or_else(|| Script::not_found(&program));
        lock(&self.launched).push(format!("{node}: {program}"));
        let log = Arc::clone(&self.signals);
        async move {
            if let Some(reason) = script.launch_error.clone() {
                return Err(ProcessError::Launch {
                    node: node.to_owned(),
                    argv: argv.to_vec(),
                    reason,
                });
            }
            let (out_tx, out_rx) = mpsc::channel(64);
            let (sig_tx, sig_rx) = mpsc::unbounded_channel();
            let (exit_tx, exit_rx) = watch::channel(None);
            tokio::spawn(play(script, out_tx, sig_rx, exit_tx));
            Ok(Launched {
                output: out_rx,
                control: Arc::new(FakeControl {
                    program,
                    signals: sig_tx,
                    log,
                    exit: exit_rx,
                }),
            })
        }
        .boxed()
    }

    /// Link-state steps are recorded as `node: link IFACE down|up`.
    fn set_link<'a>(
        &'a self,
        node: &'a str,
        interface: &'a str,
        up: bool,
    ) -> BoxFuture<'a, Result<(), ProcessError>> {
        let state = if up { "up" } else { "down" };
        lock(&self.launched).push(format!("{node}: link {interface} {state}"));
        async { Ok(()) }.boxed()
    }
}

async fn play(
    script: Script,
    out: mpsc::Sender<Chunk>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exit: watch::Sender<Option<i64>>,
) {
    let send = |stream, text: String| {
        let out = out.clone();
        async move {
            let _ = out
                .send(Chunk {
                    stream,
                    data: text.into_bytes(),
                })
                .await;
        }
    };
    let code = 'run: {
        for (delay, stream, line) in script.lines.clone() {
            tokio::select! {
                () = tokio::time::sleep(delay) => send(stream, line).await,
                Some(sig) = signals.recv() => {
                    if let Some(code) = react(&script, sig, &send).await { break 'run code; }
                }
            }
        }
        if !script.forever {
            break 'run script.exit;
        }
        loop {
            match signals.recv().await {
                Some(sig) => {
                    if let Some(code) = react(&script, sig, &send).await {
                        break 'run code;
                    }
                }
                None => break 'run 137,
            }
        }
    };
    // The exit code is known before the output closes, as with Docker.
    exit.send_replace(Some(code));
    drop(out);
}

async fn react<F, Fut>(script: &Script, sig: Signal, send: &F) -> Option<i64>
where
    F: Fn(Stream, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    match (sig, &script.on_interrupt) {
        (Signal::Kill, _) => Some(137),
        (Signal::Interrupt, Some((last, code))) => {
            send(Stream::Stdout, last.clone()).await;
            Some(*code)
        }
        (Signal::Interrupt, None) => None,
    }
}

/// The fakes answer as the real backends do (runtime/docker/,
/// runtime/netns/), where tests could otherwise pass on a leniency.
#[cfg(test)]
mod tests {
    use super::*;

    fn spec(node: &str) -> NodeSpec {
        let lab = crate::lab::parse(
            "name: fk\nnodes: { a: {}, b: {} }\n",
            Path::new("/labs/fk.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let node = lab.nodes().iter().find(|n| n.name == node).unwrap().clone();
        NodeSpec::new(
            &lab,
            &Instance::of_lab("fk"),
            &node,
            NodeImage::Tools(ToolsImage::for_hash("000000000000")),
            &RunId::random(),
            &HostSupport::FULL,
        )
    }

    #[tokio::test]
    async fn a_second_container_of_a_name_is_refused_with_409() {
        let backend = FakeBackend::default();
        backend.start_node(&spec("a")).await.unwrap();
        let err = backend.start_node(&spec("a")).await.unwrap_err();
        assert!(
            matches!(
                &err,
                RuntimeError::Docker {
                    cause: super::super::docker::DockerError(
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 409,
                            ..
                        }
                    ),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("creating container labctl-fk.a: "),
            "{err}"
        );
        assert_eq!(lock(&backend.containers).len(), 1);
    }

    #[tokio::test]
    async fn a_node_that_failed_to_start_is_listed_but_not_running() {
        let backend = FakeBackend {
            fail_node: Some("b".into()),
            ..Default::default()
        };
        backend.start_node(&spec("a")).await.unwrap();
        backend.start_node(&spec("b")).await.unwrap_err();
        let listed = backend.list(&Scope::Instance("fk".into())).await.unwrap();
        let running: Vec<(&str, bool)> = listed
            .iter()
            .map(|c| (c.node.as_deref().unwrap(), c.is_running()))
            .collect();
        assert_eq!(running, [("a", true), ("b", false)]);
    }

    #[tokio::test]
    async fn removing_a_container_that_never_existed_is_fine() {
        // Docker's 404 on remove is success, as netns's missing record.
        let backend = FakeBackend::default();
        backend.remove("labctl-fk.never").await.unwrap();
    }

    #[tokio::test]
    async fn a_program_the_launcher_does_not_know_exits_126_and_an_ended_one_takes_signals() {
        let argv = ["nope".to_owned()];
        let mut launched = FakeLauncher::default().launch("a", &argv).await.unwrap();
        let mut said = Vec::new();
        while let Some(chunk) = launched.output.recv().await {
            said.extend(chunk.data);
        }
        let said = String::from_utf8(said).unwrap();
        assert!(
            said.contains("exec: \"nope\": executable file not found in $PATH"),
            "{said}"
        );
        assert_eq!(launched.control.exit_code().await.unwrap(), 126);
        // Both real launchers take ESRCH (it has ended) as done.
        launched.control.signal(Signal::Kill).await.unwrap();
        launched.control.signal(Signal::Interrupt).await.unwrap();
    }
}
