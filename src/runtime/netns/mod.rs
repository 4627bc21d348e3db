//! The netns runtime: nodes as bare named network namespaces on the host,
//! no Docker daemon, no image.
//!
//! Behind the same seams as the Docker runtime ([`super::Runtime`]), so
//! deploy, rollback, teardown, the steps, checks, evidence and reports are
//! the same code: [`NetnsBackend`] is the node [`Backend`] (a node is a
//! namespace mounted on `/run/netns/labctl-<lab>-<node>`, found again by
//! its directory under `/run/labctl/netns`, see [`ns`]), the links are
//! wired by the same [`Netlink`], and [`NetnsLauncher`] starts steps as
//! host processes inside a node ([`process`]). [`NetnsRuntime`] gathers
//! them for the CLI.
//!
//! What a netns node does not isolate (docs/runtime.md): the filesystem
//! (steps see the host's files, only `/lab/out` and `/lab/bin` are the
//! node's), the pid space (steps see and can signal host processes, as
//! far as their capabilities allow), users, IPC and resources (no cgroup).

pub mod ns;
pub mod process;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::lab::Lab;
use crate::links::Netlink;

use super::backend::{Backend, ContainerInfo, StartedNode};
use super::deploy::{self, DeployError, DeployOptions, DeployOutcome, Removed};
use super::error::RuntimeError;
use super::inspect::{self, LabStatus};
use super::names::{self, Instance, RunId, Scope};
use super::node::{NodeImage, NodeSpec};
use super::privilege::{self, HostSupport};
use super::process::{Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream};
use super::progress::Progress;
use super::tools_dir::ToolsDir;
use super::{Runtime, NODE_OUT_DIR};

pub use ns::{NodeRecord, RecordBind};

/// What `inspect` shows as a netns node's image.
pub const IMAGE: &str = "(netns)";

/// The netns runtime: no daemon to connect to, a netlink socket for the
/// links. Create one per process, inside a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct NetnsRuntime {
    backend: NetnsBackend,
    netlink: Netlink,
}

impl NetnsRuntime {
    pub fn new() -> Result<Self, RuntimeError> {
        Ok(NetnsRuntime {
            backend: NetnsBackend,
            netlink: Netlink::connect()?,
        })
    }

    /// Builds `lab`: namespaces, then links. On failure or cancellation,
    /// removes what this deploy created before returning.
    pub async fn deploy(
        &self,
        lab: &Lab,
        options: &DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployOutcome, DeployError> {
        deploy::deploy(&self.backend, &self.netlink, lab, options, progress).await
    }

    /// Removes every node of `scope`, the processes in them included;
    /// idempotent.
    pub async fn destroy(&self, scope: &Scope) -> Removed {
        deploy::teardown(&self.backend, &self.netlink, scope).await
    }

    /// The deployed netns labs in `scope`.
    pub async fn inspect(&self, scope: &Scope) -> Result<Vec<LabStatus>, RuntimeError> {
        let nodes = self.backend.list(scope).await?;
        inspect::statuses(nodes, |c| async move {
            Ok((None, c.is_running().then(|| ns::netns_path(&c.name))))
        })
        .await
    }

    /// Whether some node of `scope` is on this runtime.
    pub async fn has(&self, scope: &Scope) -> Result<bool, RuntimeError> {
        Ok(!self.backend.list(scope).await?.is_empty())
    }
}

impl Runtime for NetnsRuntime {
    type Backend = NetnsBackend;
    type Wiring = Netlink;
    type Launcher = NetnsLauncher;

    fn backend(&self) -> &NetnsBackend {
        &self.backend
    }

    fn wiring(&self) -> &Netlink {
        &self.netlink
    }

    fn launcher(&self, lab: &str) -> NetnsLauncher {
        NetnsLauncher::new(lab)
    }
}

/// [`Backend`] on bare network namespaces.
#[derive(Clone, Debug, Default)]
pub struct NetnsBackend;

fn io_error(doing: String) -> impl FnOnce(io::Error) -> RuntimeError {
    RuntimeError::io(doing)
}

async fn blocking<T: Send + 'static>(
    doing: String,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, RuntimeError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(io_error(doing)),
        Err(e) => Err(RuntimeError::io(doing)(io::Error::other(e.to_string()))),
    }
}

/// Whether a bind can be mounted in a netns node: its target exists on
/// the host and is of the same kind as its source (a mount point is never
/// created on the host's filesystem).
fn bind_target_fits(bind: &crate::lab::Bind) -> bool {
    match std::fs::metadata(&bind.target) {
        Ok(target) => target.is_dir() == bind.host.is_dir(),
        Err(_) => false,
    }
}

/// Refuses what a bare namespace cannot give a node, before anything is
/// created: an image, sysctls of namespaces it does not have, a bind
/// whose target is not on the host.
pub fn check_lab(lab: &Lab) -> Result<(), RuntimeError> {
    for node in lab.nodes() {
        if let Some(image) = &node.image {
            return Err(RuntimeError::NetnsUnsupported {
                node: node.name.clone(),
                what: format!("has image {image}"),
            });
        }
        if let Some(bind) = node.binds.iter().find(|b| !bind_target_fits(b)) {
            return Err(RuntimeError::NetnsUnsupported {
                node: node.name.clone(),
                what: format!(
                    "binds {} on {}, which is not a {} on this host (a netns node mounts a \
                     bind over the host's own path, for its processes only)",
                    bind.host.display(),
                    bind.target.display(),
                    if bind.host.is_dir() {
                        "directory"
                    } else {
                        "file"
                    }
                ),
            });
        }
        if let Some(key) = node.sysctls.keys().find(|k| ns::sysctl_path(k).is_none()) {
            return Err(RuntimeError::NetnsUnsupported {
                node: node.name.clone(),
                what: format!("sets sysctl {key} (only net.* is per network namespace)"),
            });
        }
    }
    Ok(())
}

impl Backend for NetnsBackend {
    async fn prepare_images(
        &self,
        lab: &Lab,
        _instance: &Instance,
        _run: &RunId,
        _progress: &dyn Progress,
    ) -> Result<HashMap<String, NodeImage>, RuntimeError> {
        check_lab(lab)?;
        // The tools must be there before any node is.
        ToolsDir::locate()?;
        Ok(lab
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), NodeImage::Host))
            .collect())
    }

    async fn host_support(&self) -> Result<HostSupport, RuntimeError> {
        // Steps are host processes: labctl gives them any capability the
        // kernel has.
        Ok(HostSupport::kernel(&privilege::running_kernel()))
    }

    async fn start_node(&self, spec: &NodeSpec) -> Result<StartedNode, RuntimeError> {
        let record = NodeRecord {
            labels: spec.labels.clone(),
            env: spec.env.clone(),
            caps: spec.cap_add.clone(),
            binds: spec
                .binds
                .iter()
                .map(|b| RecordBind {
                    host: b.host.clone(),
                    target: b.target.clone(),
                    read_only: b.read_only,
                })
                .collect(),
            bpffs: spec.cap_add.iter().any(|cap| cap == "BPF"),
        };
        let mut sysctls: Vec<(String, String)> = spec
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // `default` before `all` before the rest, as Docker writes them in
        // no particular order either; sorted for a stable order.
        sysctls.sort();
        let name = spec.container.clone();
        let doing = format!("creating node {}", spec.node);
        blocking(doing, move || ns::create(&name, &record, &sysctls)).await?;
        Ok(StartedNode {
            pid: None,
            netns: ns::netns_path(&spec.container),
        })
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let found = blocking(format!("listing {}", ns::STATE_DIR), ns::list).await?;
        Ok(found.into_iter().filter_map(|f| info(f, scope)).collect())
    }

    async fn remove(&self, container: &str) -> Result<(), RuntimeError> {
        let name = container.to_owned();
        blocking(format!("removing node namespace {container}"), move || {
            ns::remove(&name)
        })
        .await
    }

    async fn remove_many(
        &self,
        containers: &[String],
    ) -> Option<Vec<(String, Result<(), RuntimeError>)>> {
        let names = containers.to_vec();
        let removed = tokio::task::spawn_blocking(move || ns::remove_many(&names)).await;
        Some(match removed {
            Ok(results) => results
                .into_iter()
                .map(|(name, r)| {
                    let r = r.map_err(io_error(format!("removing node namespace {name}")));
                    (name, r)
                })
                .collect(),
            Err(e) => containers
                .iter()
                .map(|name| {
                    let cause = io::Error::other(e.to_string());
                    let r = Err(RuntimeError::io(format!("removing node namespace {name}"))(
                        cause,
                    ));
                    (name.clone(), r)
                })
                .collect(),
        })
    }

    async fn copy_out(
        &self,
        lab: &str,
        node: &str,
        from: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, RuntimeError> {
        if from != NODE_OUT_DIR {
            // Any other directory of a netns node is the host's own.
            return Err(RuntimeError::NetnsUnsupported {
                node: node.to_owned(),
                what: format!(
                    "asks for {from} to be copied out (only {NODE_OUT_DIR} is the node's)"
                ),
            });
        }
        copy_out(lab, node, dest).await
    }
}

/// A found node as a container would be listed, if it is in `scope`.
fn info(found: ns::Found, scope: &Scope) -> Option<ContainerInfo> {
    let state = if found.live { "running" } else { "created" }.to_owned();
    let Some(record) = found.record else {
        // No record: a crash while it was written. Only the name,
        // `labctl-<instance>.<node>`, tells whose it is.
        let instance = found
            .name
            .strip_prefix("labctl-")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(instance, _)| instance.to_owned())?;
        return scope.has(&instance, &instance, "").then(|| ContainerInfo {
            id: found.name.clone(),
            name: found.name,
            lab: instance.clone(),
            instance,
            owner: None,
            node: None,
            run: String::new(),
            file: None,
            lab_nodes: None,
            image: IMAGE.into(),
            state,
            interfaces: vec![],
        });
    };
    let labels = record.labels;
    let lab = labels.get(names::LABEL_LAB)?.clone();
    let instance = labels
        .get(names::LABEL_INSTANCE)
        .cloned()
        .unwrap_or_else(|| lab.clone());
    let run = labels.get(names::LABEL_RUN).cloned().unwrap_or_default();
    scope.has(&lab, &instance, &run).then(|| ContainerInfo {
        id: found.name.clone(),
        name: found.name,
        lab,
        instance,
        owner: labels
            .get(names::LABEL_OWNER)
            .and_then(|o| names::Owner::parse(o)),
        node: labels.get(names::LABEL_NODE).cloned(),
        run,
        file: labels.get(names::LABEL_FILE).cloned(),
        lab_nodes: labels.get(names::LABEL_NODES).and_then(|n| n.parse().ok()),
        image: IMAGE.into(),
        state,
        interfaces: labels
            .get(names::LABEL_INTERFACES)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
    })
}

/// The record of node `node` of the deployed netns instance (or lab) named
/// `name`, with the node's namespace name, or why there is none.
pub async fn node_record(name: &str, node: &str) -> Result<(String, NodeRecord), RuntimeError> {
    let found = NetnsBackend.list(&Scope::Named(name.to_owned())).await?;
    let instance = super::backend::one_instance(name, &found)?;
    let nodes: Vec<&ContainerInfo> = found
        .iter()
        .filter(|c| c.node.is_some() && c.instance == instance)
        .collect();
    let Some(target) = nodes.iter().find(|c| c.node.as_deref() == Some(node)) else {
        return Err(RuntimeError::NoSuchNode {
            lab: instance,
            node: node.to_owned(),
            nodes: nodes.iter().filter_map(|c| c.node.clone()).collect(),
        });
    };
    if !target.is_running() {
        return Err(RuntimeError::NotRunning {
            lab: instance,
            node: node.to_owned(),
            state: target.state.clone(),
        });
    }
    let path = ns::state_path(&target.name).join("node.json");
    let json = std::fs::read(&path).map_err(io_error(format!("reading {}", path.display())))?;
    let record = serde_json::from_slice(&json).map_err(|e| {
        RuntimeError::io(format!("reading {}", path.display()))(io::Error::other(e))
    })?;
    Ok((target.name.clone(), record))
}

/// A command for `argv` in node `node` of the deployed netns lab `lab`;
/// stdio is the caller's to set.
pub async fn command(
    lab: &str,
    node: &str,
    argv: &[String],
) -> Result<tokio::process::Command, RuntimeError> {
    let (name, record) = node_record(lab, node).await?;
    let tools = ToolsDir::locate()?;
    process::command(&name, node, &record, tools.path(), argv).map_err(io_error(format!(
        "preparing {:?} in node {node}",
        argv.join(" ")
    )))
}

/// Starts steps in the nodes of one deployed netns lab.
pub struct NetnsLauncher {
    lab: String,
}

impl NetnsLauncher {
    pub fn new(lab: &str) -> Self {
        NetnsLauncher {
            lab: lab.to_owned(),
        }
    }
}

impl Launcher for NetnsLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        async move {
            let fail = |reason: String| ProcessError::Launch {
                node: node.to_owned(),
                argv: argv.to_vec(),
                reason,
            };
            let mut cmd = command(&self.lab, node, argv)
                .await
                .map_err(|e| fail(e.to_string()))?;
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
            let pid = child.id().unwrap_or(0);
            let (tx, output) = mpsc::channel(256);
            let (exit_tx, exit) = watch::channel(None);
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            tokio::spawn(async move {
                let out = pump(stdout, Stream::Stdout, tx.clone());
                let err = pump(stderr, Stream::Stderr, tx);
                futures_util::future::join(out, err).await;
                let code = match child.wait().await {
                    Ok(status) => process::exit_code(status),
                    Err(_) => 255,
                };
                exit_tx.send_replace(Some(code));
            });
            Ok(Launched {
                output,
                control: Arc::new(ChildControl { pid, exit }),
            })
        }
        .boxed()
    }

    fn set_link<'a>(
        &'a self,
        node: &'a str,
        interface: &'a str,
        up: bool,
    ) -> BoxFuture<'a, Result<(), ProcessError>> {
        async move {
            let netns = node_record(&self.lab, node)
                .await
                .map(|(name, _)| ns::netns_path(&name));
            super::process::set_link_state(netns, node, interface, up).await
        }
        .boxed()
    }
}

/// Sends what `pipe` gives to `tx` as chunks of `stream`.
async fn pump(
    pipe: Option<impl tokio::io::AsyncRead + Unpin>,
    stream: Stream,
    tx: mpsc::Sender<Chunk>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = Chunk {
                    stream,
                    data: buf[..n].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

struct ChildControl {
    pid: u32,
    exit: watch::Receiver<Option<i64>>,
}

impl Control for ChildControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        let number = match signal {
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        };
        async move {
            // Once reaped, the pid may be someone else's.
            if self.exit.borrow().is_some() || self.pid == 0 {
                return Ok(());
            }
            // SAFETY: kill has no memory preconditions; the child is not
            // reaped yet, so the pid is still ours.
            if unsafe { libc::kill(self.pid as libc::pid_t, number) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(ProcessError::Signal(e.to_string()));
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(code) => Ok(code.unwrap_or(255)),
                Err(_) => Err(ProcessError::ExitCode("the process was lost".into())),
            }
        }
        .boxed()
    }
}

/// Copies the files of node `node`'s `/lab/out` into `dest` (created if
/// needed); returns the files written. Only regular files and
/// directories are copied: a link a step made may point anywhere.
pub async fn copy_out(lab: &str, node: &str, dest: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let source = ns::out_path(&names::container_name(lab, node));
    let dest = dest.to_owned();
    let failed = format!("copying {NODE_OUT_DIR} of node {node}");
    let copied = tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        copy_tree(&source, &dest, &mut written).map(|()| written)
    })
    .await;
    match copied {
        Ok(Ok(written)) => Ok(written),
        Ok(Err(Copy::Read(cause))) => Err(RuntimeError::io(failed)(cause)),
        Ok(Err(Copy::Write(path, cause))) => Err(RuntimeError::Write { path, cause }),
        Err(e) => Err(RuntimeError::io(failed)(io::Error::other(e.to_string()))),
    }
}

enum Copy {
    Read(io::Error),
    Write(PathBuf, io::Error),
}

fn copy_tree(source: &Path, dest: &Path, written: &mut Vec<PathBuf>) -> Result<(), Copy> {
    std::fs::create_dir_all(dest).map_err(|e| Copy::Write(dest.to_owned(), e))?;
    let entries = match std::fs::read_dir(source) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Copy::Read(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Copy::Read)?;
        let kind = entry.file_type().map_err(Copy::Read)?;
        let target = dest.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, written)?;
        } else if kind.is_file() {
            let mut from = std::fs::File::open(entry.path()).map_err(Copy::Read)?;
            let mut to =
                std::fs::File::create(&target).map_err(|e| Copy::Write(target.clone(), e))?;
            io::copy(&mut from, &mut to).map_err(|e| Copy::Write(target.clone(), e))?;
            written.push(target);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(src: &str) -> Lab {
        crate::lab::parse(src, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_node_with_an_image_or_a_non_net_sysctl_is_refused() {
        let err = check_lab(&lab("name: x\nnodes:\n  a: { image: busybox:1 }\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node a has image busybox:1, which the netns runtime cannot provide; use `--runtime docker`"
        );
        let err = check_lab(&lab(
            "name: x\nnodes:\n  a: { sysctls: { kernel.shmmax: \"1\" } }\n",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("sysctl kernel.shmmax"), "{err}");
        assert!(check_lab(&lab(
            "name: x\nnodes:\n  a: { sysctls: { net.ipv4.ip_forward: \"1\" } }\n"
        ))
        .is_ok());
    }

    #[test]
    fn a_bind_needs_a_host_target_of_its_own_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conf"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let with_bind = |bind: &str| {
            let src = format!("name: x\nnodes:\n  a: {{ binds: [\"{bind}\"] }}\n");
            crate::lab::parse(&src, &dir.path().join("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
        };
        // A file over an existing file, a directory over a directory.
        assert!(check_lab(&with_bind("./conf:/etc/hostname")).is_ok());
        assert!(check_lab(&with_bind("./sub:/etc")).is_ok());
        for (bind, kind) in [
            ("./conf:/nonexistent-labctl/conf", "file"),
            ("./sub:/etc/hostname", "directory"),
            ("./conf:/etc", "file"),
        ] {
            let err = check_lab(&with_bind(bind)).unwrap_err().to_string();
            assert!(
                err.starts_with("node a binds ")
                    && err.contains(&format!("not a {kind} on this host")),
                "{bind}: {err}"
            );
        }
    }

    #[test]
    fn found_nodes_are_listed_by_scope() {
        let record = NodeRecord {
            labels: HashMap::from([
                (names::LABEL_LAB.to_owned(), "ab".to_owned()),
                (names::LABEL_RUN.to_owned(), "r1".to_owned()),
                (names::LABEL_NODE.to_owned(), "n".to_owned()),
                (names::LABEL_NODES.to_owned(), "2".to_owned()),
            ]),
            env: vec![],
            caps: vec![],
            binds: vec![],
            bpffs: false,
        };
        let found = |record: Option<NodeRecord>| ns::Found {
            name: "labctl-ab.n".into(),
            record,
            live: true,
        };
        let c = info(found(Some(record.clone())), &Scope::Instance("ab".into())).unwrap();
        assert_eq!((c.lab.as_str(), c.node.as_deref()), ("ab", Some("n")));
        assert_eq!((c.lab_nodes, c.is_running()), (Some(2), true));
        assert!(info(found(Some(record.clone())), &Scope::Instance("abc".into())).is_none());
        let other_run = Scope::Run {
            instance: "ab".into(),
            run: RunId::from_label("r2"),
        };
        assert!(info(found(Some(record)), &other_run).is_none());
        // Without a record, the name decides.
        assert!(info(found(None), &Scope::Instance("ab".into())).is_some());
        assert!(info(found(None), &Scope::All { prefix: "a".into() }).is_some());
        assert!(info(found(None), &Scope::Instance("a".into())).is_none());
    }
}
