//! Which runtime a verb uses: `--runtime`, else the lab's `runtime:`, else
//! Docker, with the embedded default for `labctl run` (no Docker daemon
//! answers and no node needs an image: the netns runtime, said in one
//! line). `destroy`, `inspect` and `exec` look at both runtimes.

use labctl::lab::Lab;
use labctl::runtime::netns::{self, NetnsRuntime};
use labctl::runtime::{DockerRuntime, RuntimeError};

use super::CliError;

/// `--runtime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeArg {
    /// Nodes are containers (the Docker Engine API)
    Docker,
    /// Nodes are bare network namespaces on the host (no daemon, no image)
    Netns,
}

/// One runtime, connected.
pub enum AnyRuntime {
    Docker(DockerRuntime),
    Netns(NetnsRuntime),
}

/// Whether Docker may be replaced by netns when it does not answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// `labctl run` with no runtime named: the embedded default.
    ToNetns,
    Never,
}

/// The runtime for `lab`: the flag, else the lab's own choice, else
/// Docker (or netns, see [`Fallback`]).
pub async fn for_lab(
    lab: &Lab,
    flag: Option<RuntimeArg>,
    fallback: Fallback,
) -> Result<AnyRuntime, CliError> {
    let chosen = flag.or_else(|| lab_runtime(lab));
    if chosen == Some(RuntimeArg::Netns) {
        netns::check_lab(lab).map_err(CliError::usage)?;
        return netns_runtime();
    }
    match DockerRuntime::connect().await {
        Ok(docker) => docker_runtime(docker),
        Err(RuntimeError::Unreachable { host, cause })
            if chosen.is_none()
                && fallback == Fallback::ToNetns
                && netns::check_lab(lab).is_ok() =>
        {
            eprintln!(
                "labctl: no Docker daemon answers at {host} ({cause}); running lab {} on the \
                 netns runtime (bare network namespaces on this host)",
                lab.name()
            );
            netns_runtime()
        }
        Err(e) => Err(CliError::from_runtime(e)),
    }
}

/// One runtime for several labs run in one call: netns when the flag says
/// so or every lab asks for it, else Docker, falling back to netns as for
/// one lab when no lab needs an image.
pub async fn for_labs(
    labs: &[&Lab],
    flag: Option<RuntimeArg>,
    fallback: Fallback,
) -> Result<AnyRuntime, CliError> {
    let all_netns = !labs.is_empty() && labs.iter().all(|l| lab_runtime(l).is_some());
    if flag == Some(RuntimeArg::Netns) || (flag.is_none() && all_netns) {
        return netns_runtime();
    }
    match DockerRuntime::connect().await {
        Ok(docker) => docker_runtime(docker),
        Err(RuntimeError::Unreachable { host, cause })
            if flag.is_none()
                && fallback == Fallback::ToNetns
                && labs.iter().all(|l| netns::check_lab(l).is_ok()) =>
        {
            eprintln!(
                "labctl: no Docker daemon answers at {host} ({cause}); running the labs on the \
                 netns runtime (bare network namespaces on this host)"
            );
            netns_runtime()
        }
        Err(e) => Err(CliError::from_runtime(e)),
    }
}

/// The lab file's `runtime:`, when it names netns (docker is also the
/// default, so it does not rule out the embedded default).
fn lab_runtime(lab: &Lab) -> Option<RuntimeArg> {
    match lab.runtime() {
        labctl::lab::RuntimeKind::Netns => Some(RuntimeArg::Netns),
        labctl::lab::RuntimeKind::Docker => None,
    }
}

/// Docker, once the tools it would put in the tools image are known to be
/// statically linked (exit 4 otherwise, before anything is created). Other
/// problems with the tools are the deploy's to report, as before.
fn docker_runtime(docker: DockerRuntime) -> Result<AnyRuntime, CliError> {
    match labctl::runtime::check_tools_static() {
        Err(e @ RuntimeError::ToolsNotStatic { .. }) => Err(CliError::from_runtime(e)),
        _ => Ok(AnyRuntime::Docker(docker)),
    }
}

fn netns_runtime() -> Result<AnyRuntime, CliError> {
    netns().map(AnyRuntime::Netns)
}

pub fn netns() -> Result<NetnsRuntime, CliError> {
    NetnsRuntime::new().map_err(CliError::from_runtime)
}

/// Docker as a verb that looks at both runtimes sees it.
pub enum Docker {
    Up(DockerRuntime),
    /// No daemon answers: why, for when nothing was found on netns either.
    Down(RuntimeError),
}

pub async fn docker() -> Result<Docker, CliError> {
    match DockerRuntime::connect().await {
        Ok(docker) => Ok(Docker::Up(docker)),
        Err(e @ RuntimeError::Unreachable { .. }) => Ok(Docker::Down(e)),
        Err(e) => Err(CliError::from_runtime(e)),
    }
}
