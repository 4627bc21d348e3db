//! [`NetnsBackend`]: the nodes of a lab as named network namespaces.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::lab::Lab;
use crate::runtime::backend::{running_node, Backend, NodeInfo, StartedNode};
use crate::runtime::error::RuntimeError;
use crate::runtime::names::{self, Instance, RunId, Scope};
use crate::runtime::node::{NodeImage, NodeSpec};
use crate::runtime::privilege::{self, HostSupport};
use crate::runtime::progress::Progress;
use crate::runtime::tools_dir::ToolsDir;
use crate::runtime::NODE_OUT_DIR;

use super::copy::copy_out;
use super::ns::{self, NodeRecord, RecordBind};

/// What `inspect` shows as a netns node's image.
pub const IMAGE: &str = "(netns)";

/// [`Backend`] on bare network namespaces.
#[derive(Clone, Debug, Default)]
pub struct NetnsBackend;

pub(super) fn io_error(doing: String) -> impl FnOnce(io::Error) -> RuntimeError {
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

    async fn list(&self, scope: &Scope) -> Result<Vec<NodeInfo>, RuntimeError> {
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
fn info(found: ns::Found, scope: &Scope) -> Option<NodeInfo> {
    let state = if found.live { "running" } else { "created" }.to_owned();
    let Some(record) = found.record else {
        // No record: a crash while it was written. Only the name,
        // `labctl-<instance>.<node>`, tells whose it is.
        let instance = found
            .name
            .strip_prefix("labctl-")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(instance, _)| instance.to_owned())?;
        return scope.has(&instance, &instance, "").then(|| NodeInfo {
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
    scope.has(&lab, &instance, &run).then(|| NodeInfo {
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
    let target = running_node(name, node, &found)?;
    let path = ns::state_path(&target.name).join("node.json");
    let json = std::fs::read(&path).map_err(io_error(format!("reading {}", path.display())))?;
    let record = serde_json::from_slice(&json).map_err(|e| {
        RuntimeError::io(format!("reading {}", path.display()))(io::Error::other(e))
    })?;
    Ok((target.name.clone(), record))
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
