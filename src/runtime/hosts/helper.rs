//! The wiring helper on one host: labctl's own static binary in a
//! FROM-scratch image (`labctl-wire:<hash>`, built on each host from the
//! binary that runs, nothing pulled), run as a short-lived container with
//! the host's PID and network namespaces and only the capabilities its
//! plan needs. It carries out a [`Plan`] (`labctl wire`) and says what
//! happened as one JSON line; the container is removed whatever happened,
//! and carries the lab's labels so a `destroy` after a crash removes it
//! too.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, LogsOptions,
    RemoveContainerOptionsBuilder, StartContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::plan::{Op, Plan, Report, PLAN_ENV};
use crate::runtime::docker::error::is_not_found;
use crate::runtime::error::RuntimeError;
use crate::runtime::names;
use crate::runtime::tools_dir::ToolsDir;

/// The helper container's role label.
pub const ROLE_WIRE: &str = "wire";

/// A plan is cut into runs of at most this many bytes of JSON: it travels
/// in one environment variable, which the kernel caps at 128 KiB.
const PLAN_BYTES: usize = 64 * 1024;

const DOCKERFILE: &str = "FROM scratch\nCOPY labctl /labctl\nENTRYPOINT [\"/labctl\", \"wire\"]\n";

/// labctl's own executable: this process when it is labctl, else the
/// `labctl` beside the tools (a program using labctl as a library).
fn labctl_binary() -> Result<PathBuf, RuntimeError> {
    let own = std::env::current_exe().map_err(RuntimeError::io("finding labctl's executable"))?;
    if own.file_name().is_some_and(|n| n == "labctl") {
        return Ok(own);
    }
    let beside = ToolsDir::locate()?.path().join("labctl");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(RuntimeError::io(format!(
            "finding labctl's executable for the wiring helper (not at {})",
            beside.display()
        ))(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        )))
    }
}

/// The binary and the tag of its image, hashed once per process.
fn wire_image() -> Result<&'static (PathBuf, String), RuntimeError> {
    static IMAGE: OnceLock<(PathBuf, String)> = OnceLock::new();
    if let Some(image) = IMAGE.get() {
        return Ok(image);
    }
    let binary = labctl_binary()?;
    let problem = super::super::linkage::linkage(&binary)
        .map_err(RuntimeError::io(format!("reading {}", binary.display())))?
        .problem();
    if let Some(problem) = problem {
        return Err(RuntimeError::ToolsNotStatic {
            tool: binary,
            problem,
        });
    }
    let mut sha = Sha256::new();
    sha.update(DOCKERFILE.as_bytes());
    let mut file = std::fs::File::open(&binary)
        .map_err(RuntimeError::io(format!("reading {}", binary.display())))?;
    std::io::copy(&mut file, &mut sha)
        .map_err(RuntimeError::io(format!("reading {}", binary.display())))?;
    let hex: String = sha.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(IMAGE.get_or_init(|| (binary, format!("labctl-wire:{hex}"))))
}

/// The helper's image on the host behind `docker`, built there if absent;
/// returns its tag.
pub async fn ensure_image(docker: &Docker, host: &str) -> Result<String, RuntimeError> {
    let (binary, tag) = tokio::task::spawn_blocking(|| wire_image().cloned())
        .await
        .map_err(|e| RuntimeError::io("hashing labctl's executable")(e.into()))??;
    match docker.inspect_image(&tag).await {
        Ok(_) => return Ok(tag),
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(RuntimeError::docker(format!(
                "looking up image {tag} on host {host}"
            ))(e))
        }
    }
    let context = {
        let binary = binary.clone();
        tokio::task::spawn_blocking(move || context_tar(&binary))
            .await
            .map_err(|e| RuntimeError::io("packing the wiring helper")(e.into()))??
    };
    let labels = HashMap::from([("labctl.tools", tag.as_str())]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&tag)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build();
    let mut output = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(info) = output.next().await {
        info.map_err(RuntimeError::docker(format!(
            "building image {tag} on host {host}"
        )))?;
    }
    Ok(tag)
}

fn context_tar(binary: &std::path::Path) -> Result<Vec<u8>, RuntimeError> {
    let doing = || format!("packing {} for the wiring helper", binary.display());
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(DOCKERFILE.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", DOCKERFILE.as_bytes())
        .map_err(RuntimeError::io(doing()))?;
    let mut file = std::fs::File::open(binary).map_err(RuntimeError::io(doing()))?;
    let len = file.metadata().map_err(RuntimeError::io(doing()))?.len();
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "labctl", &mut file)
        .map_err(RuntimeError::io(doing()))?;
    let mut out = tar.into_inner().map_err(RuntimeError::io(doing()))?;
    out.flush().map_err(RuntimeError::io(doing()))?;
    Ok(out)
}

/// Who a helper works for: its labels, so teardown finds it.
#[derive(Clone, Debug)]
pub struct Owner {
    pub lab: String,
    pub instance: String,
    pub run: String,
}

/// Carries out `plan` on the host behind `docker` (named `host` in
/// messages) with the helper image `image`: one outcome per operation, in
/// order. An error is the helper's own (it could not run, or said
/// nothing), never an operation's.
pub async fn run(
    docker: &Docker,
    host: &str,
    image: &str,
    owner: &Owner,
    plan: &Plan,
) -> Result<Report, RuntimeError> {
    let mut report = Report::default();
    for part in cut(plan) {
        let done = run_one(docker, host, image, owner, &part).await?;
        if done.outcomes.len() != part.ops.len() {
            return Err(RuntimeError::io(format!(
                "the wiring helper on host {host}"
            ))(std::io::Error::other(format!(
                "{} outcomes for {} operations",
                done.outcomes.len(),
                part.ops.len()
            ))));
        }
        report.outcomes.extend(done.outcomes);
    }
    Ok(report)
}

/// `plan` in pieces small enough for one environment variable.
fn cut(plan: &Plan) -> Vec<Plan> {
    let mut parts = vec![Plan::default()];
    let mut bytes = 0;
    for op in &plan.ops {
        let len = serde_json::to_string(op).map(|s| s.len()).unwrap_or(0);
        if bytes + len > PLAN_BYTES && !parts.last().is_some_and(|p| p.ops.is_empty()) {
            parts.push(Plan::default());
            bytes = 0;
        }
        bytes += len;
        parts.last_mut().expect("one part").ops.push(op.clone());
    }
    parts
}

/// The capabilities `plan` needs: netlink in other namespaces (NET_ADMIN),
/// entering them (SYS_ADMIN for setns, SYS_PTRACE to open another
/// process's namespace file whatever that process holds), and nothing else.
fn capabilities(plan: &Plan) -> Vec<String> {
    // Signalling a root process needs no capability at all.
    if plan.ops.iter().all(|op| matches!(op, Op::Signal { .. })) {
        return Vec::new();
    }
    let mut caps = vec!["NET_ADMIN".to_owned()];
    if plan.ops.iter().any(|op| !matches!(op, Op::Probe { .. })) {
        caps.extend(["SYS_ADMIN".to_owned(), "SYS_PTRACE".to_owned()]);
    }
    caps
}

async fn run_one(
    docker: &Docker,
    host: &str,
    image: &str,
    owner: &Owner,
    plan: &Plan,
) -> Result<Report, RuntimeError> {
    let json = serde_json::to_string(plan)
        .map_err(|e| RuntimeError::io("writing the wiring plan")(e.into()))?;
    let name = format!("labctl-{}-wire-{}", owner.instance, names::random_hex(4));
    let labels = HashMap::from([
        (names::LABEL_LAB.to_owned(), owner.lab.clone()),
        (names::LABEL_INSTANCE.to_owned(), owner.instance.clone()),
        (names::LABEL_RUN.to_owned(), owner.run.clone()),
        (names::LABEL_ROLE.to_owned(), ROLE_WIRE.to_owned()),
    ]);
    // Docker mounts /proc/sys read-only in a container; a plan that writes
    // a node's interface sysctls (inside the node's namespace) needs it
    // writable, nothing else does.
    let sysctls = plan.ops.iter().any(Op::writes_sysctls);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(vec![format!("{PLAN_ENV}={json}")]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            pid_mode: Some("host".into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(capabilities(plan)),
            readonly_rootfs: Some(true),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_paths: sysctls.then(Vec::new),
            ..Default::default()
        }),
        ..Default::default()
    };
    let on = |what: &str| format!("{what} the wiring helper on host {host}");
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(RuntimeError::docker(on("creating")))?;
    let ran = start_and_read(docker, &name, &on).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let removed = docker.remove_container(&name, Some(remove)).await;
    let (code, stdout, stderr) = ran?;
    if let Err(e) = removed {
        if !is_not_found(&e) {
            return Err(RuntimeError::docker(on("removing"))(e));
        }
    }
    let report = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Report>(line).ok());
    match report {
        Some(report) => Ok(report),
        None => Err(RuntimeError::io(on("running"))(std::io::Error::other(
            format!(
                "it exited {code} without a report: {}",
                stderr.trim().lines().last().unwrap_or("no output")
            ),
        ))),
    }
}

async fn start_and_read(
    docker: &Docker,
    name: &str,
    on: &(dyn Fn(&str) -> String + Sync),
) -> Result<(i64, String, String), RuntimeError> {
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .map_err(RuntimeError::docker(on("starting")))?;
    let mut waited = docker.wait_container(name, None::<WaitContainerOptions>);
    let mut code = 0;
    while let Some(item) = waited.next().await {
        match item {
            Ok(response) => code = response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
            Err(e) => return Err(RuntimeError::docker(on("waiting for"))(e)),
        }
    }
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = logs.next().await {
        match chunk.map_err(RuntimeError::docker(on("reading the output of")))? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                stdout.extend_from_slice(&message)
            }
            LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok((
        code,
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_plan_is_cut_to_fit_an_environment_variable() {
        let op = Op::LinkState {
            pid: 1,
            interface: "x".repeat(1000),
            up: true,
        };
        let plan = Plan { ops: vec![op; 200] };
        let parts = cut(&plan);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert_eq!(parts.iter().map(|p| p.ops.len()).sum::<usize>(), 200);
        for part in &parts {
            assert!(serde_json::to_string(part).unwrap().len() < 128 * 1024);
        }
        assert_eq!(cut(&Plan::default()).len(), 1);
    }

    #[test]
    fn a_probe_needs_only_net_admin() {
        let probe = Plan {
            ops: vec![Op::Probe {
                underlay: "198.19.0.1".parse().unwrap(),
            }],
        };
        assert_eq!(capabilities(&probe), ["NET_ADMIN"]);
        let state = Plan {
            ops: vec![Op::LinkState {
                pid: 1,
                interface: "eth1".into(),
                up: false,
            }],
        };
        assert_eq!(
            capabilities(&state),
            ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"]
        );
    }
}
