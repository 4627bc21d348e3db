//! A lab that is up: its nodes, its links, its teardown.
//!
//! **Teardown on drop.** Dropping a [`RunningLab`] that was not taken down
//! with [`RunningLab::down`] (a test that returned early, or panicked and
//! unwound) removes the lab on a thread of its own, with an async runtime
//! and a runtime connection of its own, and waits for it at most
//! [`DROP_TEARDOWN_LIMIT`]. It never needs the caller's async runtime, so
//! dropping it inside one (a `#[tokio::test]`, current-thread or
//! multi-threaded) cannot deadlock: that runtime's thread is blocked only
//! for the teardown itself (about 50 ms for a netns pair). Past the limit
//! the drop returns and the teardown thread goes on; if the process then
//! ends, what is left is removed by the next [`super::Lab::up`] of that lab
//! (its owner is gone), or at once when the process was rootless.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Error, Expect, Impair, RuntimeKind};
use crate::lab::Lab as ValidLab;
use crate::run::check;
use crate::runtime::names::{Instance, Scope};
use crate::runtime::netns::{self, rootless};
use crate::runtime::process::{Chunk, Control, Launcher, Signal, Stream};
use crate::runtime::registry::AnyRuntime;
use crate::runtime::{Interrupts, NoProgress, RuntimeError};

use super::session::{self, UpError};
use crate::with_runtime;

/// The longest a drop waits for the teardown of a lab.
pub const DROP_TEARDOWN_LIMIT: Duration = Duration::from_secs(120);

/// A lab that is up. Dropping it tears it down (module documentation);
/// [`RunningLab::down`] does so and reports errors.
pub struct RunningLab {
    runtime: AnyRuntime,
    kind: RuntimeKind,
    lab: ValidLab,
    instance: Instance,
    launcher: Box<dyn Launcher>,
    down: bool,
}

fn runtime_error(doing: impl Into<String>) -> impl FnOnce(RuntimeError) -> Error {
    let doing = doing.into();
    move |cause| Error::Runtime { doing, cause }
}

/// The runtime a lab runs on: the caller's choice, else the lab's own when
/// it has images (Docker), else netns; always netns when rootless.
fn runtime_kind(lab: &ValidLab, asked: Option<RuntimeKind>) -> RuntimeKind {
    if rootless::is_active() {
        return RuntimeKind::Netns;
    }
    asked.unwrap_or(if lab.needs_image() {
        RuntimeKind::Docker
    } else {
        RuntimeKind::Netns
    })
}

pub(super) async fn up(
    lab: ValidLab,
    asked: Option<RuntimeKind>,
    instance: Option<Instance>,
) -> Result<RunningLab, Error> {
    if let Err(e) = crate::runtime::check_host_privileges("run") {
        return Err(Error::NotPrivileged(e));
    }
    if rootless::is_active() {
        if let Some(line) = rootless::needs_root(&lab) {
            return Err(Error::NeedsRoot(line));
        }
    }
    let kind = runtime_kind(&lab, asked);
    let lab = lab
        .with_runtime(kind)
        .map_err(|e| Error::Usage(e.to_string()))?;
    if kind == RuntimeKind::Netns {
        netns::check_lab(&lab).map_err(runtime_error(format!("lab {}", lab.name())))?;
    }
    let runtime = AnyRuntime::connect(kind)
        .await
        .map_err(runtime_error(format!(
            "connecting the {} runtime",
            kind.as_str()
        )))?;
    remove_leftovers(&runtime, lab.name()).await;
    let instance = instance.unwrap_or_else(|| Instance::fresh(lab.name()));
    let deployed = with_runtime!(&runtime, |r| {
        session::bring_up(r, &lab, &instance, &Interrupts::default(), &NoProgress).await
    });
    match deployed {
        Ok(_) => {}
        Err(UpError::AlreadyUp(message)) => return Err(Error::Deploy(message)),
        Err(UpError::Failed(e)) => return Err(Error::Deploy(e.to_string())),
    }
    let launcher = with_runtime!(&runtime, |r| {
        Box::new(crate::runtime::Runtime::launcher(r, instance.as_str())) as Box<dyn Launcher>
    });
    Ok(RunningLab {
        runtime,
        kind,
        lab,
        instance,
        launcher,
        down: false,
    })
}

/// Removes the instances of lab `lab` whose owner process is gone: what a
/// crashed test (or `labctl run`) left. An instance named as the lab
/// itself (`labctl deploy`'s) is the user's and stays.
async fn remove_leftovers(runtime: &AnyRuntime, lab: &str) {
    let scope = Scope::All {
        prefix: format!("{lab}-"),
    };
    let Ok(nodes) = runtime.list(&scope).await else {
        return;
    };
    let dead: BTreeSet<String> = nodes
        .into_iter()
        .filter(|n| n.lab == lab && n.instance != lab)
        .filter(|n| n.owner.as_ref().is_some_and(|o| !o.is_alive()))
        .map(|n| n.instance)
        .collect();
    for instance in dead {
        let _ = runtime.destroy(&Scope::Instance(instance)).await;
    }
}

impl RunningLab {
    /// The instance: what `labctl inspect` and `labctl destroy` name.
    pub fn instance(&self) -> &str {
        self.instance.as_str()
    }

    pub fn runtime(&self) -> RuntimeKind {
        self.kind
    }

    /// The lab as validated.
    pub fn lab(&self) -> &ValidLab {
        &self.lab
    }

    /// A handle on node `name`.
    pub fn node(&self, name: &str) -> Result<NodeHandle<'_>, Error> {
        match self.lab.node(name) {
            Some(_) => Ok(NodeHandle {
                lab: self,
                node: name.to_owned(),
            }),
            None => Err(Error::NoSuchNode {
                lab: self.lab.name().to_owned(),
                node: name.to_owned(),
            }),
        }
    }

    fn endpoint(&self, endpoint: &str) -> Result<&crate::lab::Endpoint, Error> {
        self.lab
            .links()
            .iter()
            .flat_map(|l| l.endpoints.iter())
            .find(|e| e.label() == endpoint)
            .ok_or_else(|| Error::NoSuchEndpoint {
                lab: self.lab.name().to_owned(),
                endpoint: endpoint.to_owned(),
            })
    }

    /// Sets the interface of `endpoint` (`node:interface`) down: the link
    /// is cut, as a lab's link-state step cuts it.
    pub async fn link_down(&self, endpoint: &str) -> Result<(), Error> {
        self.set_link(endpoint, false).await
    }

    /// Sets it up again.
    pub async fn link_up(&self, endpoint: &str) -> Result<(), Error> {
        self.set_link(endpoint, true).await
    }

    async fn set_link(&self, endpoint: &str, up: bool) -> Result<(), Error> {
        let end = self.endpoint(endpoint)?;
        self.launcher
            .set_link(&end.node, &end.interface, up)
            .await
            .map_err(|e| Error::Link(e.to_string()))
    }

    /// Replaces what impairs the frames `endpoint` sends with `impair` (the
    /// lab format's keys, validated as in a lab file); an empty
    /// [`Impair`] makes the direction plain again.
    pub async fn impair(&self, endpoint: &str, impair: Impair) -> Result<(), Error> {
        let end = self.endpoint(endpoint)?;
        let impairment = if impair.0.is_empty() {
            crate::lab::Impairment::default()
        } else {
            let probe = json!({
                "name": "impair",
                "runtime": "netns",
                "nodes": { "a": {}, "b": {} },
                "links": [ { "endpoints": ["a:eth1", "b:eth1"], "impair": impair.0 } ],
            });
            let probe = super::Lab::from_yaml(&probe.to_string())?;
            if rootless::is_active() {
                if let Some(line) = rootless::needs_root(probe.lab()) {
                    return Err(Error::NeedsRoot(line));
                }
            }
            probe
                .lab()
                .links()
                .first()
                .and_then(|l| l.endpoints[0].impair)
                .unwrap_or_default()
        };
        let netns = self
            .launcher
            .netns(&end.node)
            .await
            .map_err(|e| Error::Link(e.to_string()))?;
        crate::links::impair::replace(&netns, &end.interface, &end.label(), &impairment)
            .await
            .map_err(|e| Error::Link(e.to_string()))
    }

    /// Tears the lab down now and says what failed; dropping the handle
    /// does the same without the errors.
    pub async fn down(mut self) -> Result<(), Error> {
        self.down = true;
        let removed = with_runtime!(&self.runtime, |r| {
            session::take_down(r, &self.instance).await
        });
        if removed.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Teardown {
                instance: self.instance.to_string(),
                errors: removed.errors.iter().map(ToString::to_string).collect(),
            })
        }
    }
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        let kind = self.kind;
        let owned = self.instance.clone();
        let instance = self.instance.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("labctl-teardown".into())
            .spawn(move || {
                let removed = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|rt| {
                        rt.block_on(async {
                            let runtime =
                                AnyRuntime::connect(kind).await.map_err(|e| e.to_string())?;
                            let removed = with_runtime!(&runtime, |r| {
                                session::take_down(r, &owned).await
                            });
                            Ok(removed
                                .errors
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>())
                        })
                    });
                let _ = tx.send(removed);
            });
        let outcome = match spawned {
            Ok(_) => rx
                .recv_timeout(DROP_TEARDOWN_LIMIT)
                .map_err(|_| format!("not done within {DROP_TEARDOWN_LIMIT:?}"))
                .and_then(|r| r),
            Err(e) => Err(format!("starting its thread: {e}")),
        };
        match outcome {
            Ok(errors) if errors.is_empty() => {}
            Ok(errors) => eprintln!("labctl: tearing down {instance}: {}", errors.join("; ")),
            Err(e) => eprintln!("labctl: tearing down {instance}: {e}"),
        }
    }
}

/// One node of a running lab.
pub struct NodeHandle<'a> {
    lab: &'a RunningLab,
    node: String,
}

impl NodeHandle<'_> {
    pub fn name(&self) -> &str {
        &self.node
    }

    /// Runs `argv` (never through a shell) in the node to its end; its
    /// output and exit code.
    pub async fn exec(&self, argv: &[&str]) -> Result<Output, Error> {
        self.spawn(argv).await?.wait().await
    }

    /// Starts `argv` in the node and returns at once: wait for a line of
    /// it, signal it, wait for its end. Its output is kept in memory
    /// whole.
    pub async fn spawn(&self, argv: &[&str]) -> Result<Process, Error> {
        if argv.is_empty() {
            return Err(Error::Usage(format!(
                "an empty command for node {}",
                self.node
            )));
        }
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let launched = self
            .lab
            .launcher
            .launch(&self.node, &argv)
            .await
            .map_err(|e| Error::Process(e.to_string()))?;
        Ok(Process::start(
            format!("{:?} in node {}", argv.join(" "), self.node),
            launched.output,
            launched.control,
        ))
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `None` when the exit code could not be read.
    pub exit: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Ok when every check of `expect` holds on this output, as a step's
    /// `expect` is checked; else every failed check.
    pub fn expect(&self, expect: &Expect) -> Result<(), Error> {
        let out = check::StepOutput {
            exit: self.exit,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        };
        let failed = check::evaluate(expect.as_lab_expect(), &out);
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::Check {
            failed,
            output: format!(
                "exit {:?}\nstdout:\n{}\nstderr:\n{}",
                self.exit,
                last_lines(&self.stdout),
                last_lines(&self.stderr)
            ),
        })
    }
}

/// The end of an output, for messages.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// A command running in a node.
pub struct Process {
    what: String,
    control: Arc<dyn Control>,
    collected: Arc<Mutex<Collected>>,
    /// Changes with each piece of output; closed when the output ends.
    changes: watch::Receiver<u64>,
    /// Lines of stdout and stderr already looked at by
    /// [`Process::wait_for_line`].
    seen: [usize; 2],
}

impl Process {
    fn start(
        what: String,
        mut output: mpsc::Receiver<Chunk>,
        control: Arc<dyn Control>,
    ) -> Process {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let (tx, changes) = watch::channel(0u64);
        let sink = collected.clone();
        tokio::spawn(async move {
            while let Some(chunk) = output.recv().await {
                if let Ok(mut c) = sink.lock() {
                    match chunk.stream {
                        Stream::Stdout => c.stdout.extend_from_slice(&chunk.data),
                        Stream::Stderr => c.stderr.extend_from_slice(&chunk.data),
                    }
                }
                tx.send_modify(|n| *n += 1);
            }
            // Dropping `tx` tells the waiters the output ended.
        });
        Process {
            what,
            control,
            collected,
            changes,
            seen: [0, 0],
        }
    }

    fn text(&self) -> (String, String) {
        match self.collected.lock() {
            Ok(c) => (
                String::from_utf8_lossy(&c.stdout).into_owned(),
                String::from_utf8_lossy(&c.stderr).into_owned(),
            ),
            Err(_) => Default::default(),
        }
    }

    fn tail(&self) -> String {
        let (out, err) = self.text();
        format!(
            "stdout:\n{}\nstderr:\n{}",
            last_lines(&out),
            last_lines(&err)
        )
    }

    /// Waits until a whole line of stdout or stderr matches `regex` (as a
    /// background step's `ready`), and returns it. Lines matched or passed
    /// by an earlier call are not looked at again.
    pub async fn wait_for_line(&mut self, regex: &str, timeout: Duration) -> Result<String, Error> {
        let pattern = regex::Regex::new(regex).map_err(|e| Error::Usage(e.to_string()))?;
        let what = format!("{}: a line matching {regex:?}", self.what);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.find_line(&pattern) {
                return Ok(line);
            }
            let changed = tokio::time::timeout_at(deadline, self.changes.changed()).await;
            match changed {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // The output ended: one last look, then say so.
                    if let Some(line) = self.find_line(&pattern) {
                        return Ok(line);
                    }
                    let exit = self.control.exit_code().await.ok();
                    return Err(Error::Ended {
                        what,
                        exit,
                        tail: self.tail(),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        what,
                        after: timeout,
                        tail: self.tail(),
                    })
                }
            }
        }
    }

    fn find_line(&mut self, pattern: &regex::Regex) -> Option<String> {
        let (out, err) = self.text();
        for (i, text) in [out, err].iter().enumerate() {
            // Only whole lines: a line still being written may match later.
            let complete = match text.rfind('\n') {
                Some(end) => &text[..end],
                None => continue,
            };
            for (n, line) in complete.lines().enumerate().skip(self.seen[i]) {
                self.seen[i] = n + 1;
                if pattern.is_match(line) {
                    return Some(line.to_owned());
                }
            }
        }
        None
    }

    /// Sends `signal`; a process that ended already is not an error.
    pub async fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.control
            .signal(signal)
            .await
            .map_err(|e| Error::Process(e.to_string()))
    }

    /// Waits for its end: all it printed, and its exit code.
    pub async fn wait(mut self) -> Result<Output, Error> {
        while self.changes.changed().await.is_ok() {}
        let exit = self.control.exit_code().await.ok();
        let (stdout, stderr) = self.text();
        Ok(Output {
            exit,
            stdout,
            stderr,
        })
    }

    /// Interrupts it (SIGINT, as a lab's `wait` step does) and waits for
    /// its end.
    pub async fn stop(self) -> Result<Output, Error> {
        self.signal(Signal::Interrupt).await?;
        self.wait().await
    }
}
