//! What can go wrong while building, inspecting or tearing down a lab.
//! Every variant says what labctl was doing and, where it can, what the
//! user should do.
//!
//! Messages are complete: each includes the underlying error's text, and
//! the underlying error is kept as a field rather than as `source()`, so
//! printing the chain (`{:#}`) does not say it twice.

use std::path::PathBuf;

use super::docker::DockerError;
use crate::links::LinkError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot reach Docker at {host}: {cause}; start the daemon (`sudo systemctl start docker`, \
         or `sudo dockerd &`) or set DOCKER_HOST to one that runs"
    )]
    Unreachable { host: String, cause: DockerError },

    #[error("{doing}: {cause}")]
    Docker { doing: String, cause: DockerError },

    #[error(
        "cannot reach host {host}'s Docker at {endpoint}: {cause}; start its daemon, or correct \
         `hosts: {host}: docker:` in the lab file"
    )]
    HostUnreachable {
        host: String,
        endpoint: String,
        cause: String,
    },

    /// Something about a host that the lab cannot work with, known before
    /// anything is created: its API version, its underlay, a VNI in use,
    /// an MTU the underlay cannot carry.
    #[error("host {host} ({endpoint}): {problem}")]
    HostUnfit {
        host: String,
        endpoint: String,
        problem: String,
    },

    /// Another lab holds on a host what this one asks for (a VNI): a
    /// conflict, as a lab already deployed is.
    #[error("host {host} ({endpoint}): {problem}")]
    HostConflict {
        host: String,
        endpoint: String,
        problem: String,
    },

    /// `host`: its name and endpoint, `c (unix:///...)`.
    #[error(
        "host {host} did not answer ({cause}): what the lab has there is left; run `{retry}` \
         once it is back"
    )]
    HostLeft {
        host: String,
        cause: String,
        retry: String,
    },

    #[error(
        "the packet tools {} are missing from {}; build them with `cargo build --release` \
         (labctl looks next to its own executable, or in LABCTL_TOOLS_DIR)",
        missing.join(", "), dir.display()
    )]
    ToolsMissing { dir: PathBuf, missing: Vec<String> },

    /// A tool that needs a program interpreter or shared libraries: it
    /// could not run in the FROM-scratch tools image nor in other images.
    #[error(
        "the packet tool {} is {problem}, so it cannot run in the lab's nodes: build the tools \
         statically (`cargo build --release` in the labctl repository, whose .cargo/config.toml \
         does it, or `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target \
         x86_64-unknown-linux-gnu`)",
        tool.display()
    )]
    ToolsNotStatic { tool: PathBuf, problem: String },

    /// This process lacks what building a lab needs.
    #[error(
        "`labctl {verb}` needs root (network namespaces, veths, netlink: CAP_NET_ADMIN and \
         CAP_SYS_ADMIN), and this process (uid {uid}) lacks {}: run it with sudo (in a \
         container: --privileged, or --cap-add for those)",
        missing.join(" and ")
    )]
    NotPrivileged {
        verb: &'static str,
        uid: u32,
        missing: Vec<String>,
    },

    /// A lab that an ordinary user cannot run (rootless netns): what
    /// needs root, in one line. Nothing was created.
    #[error("{0}")]
    NeedsRoot(String),

    /// The user namespace of a rootless run could not be made.
    #[error(transparent)]
    Rootless(#[from] super::netns::rootless::RootlessError),

    #[error("{doing}: {cause}")]
    Io {
        doing: String,
        cause: std::io::Error,
    },

    #[error(
        "image {image} of node {node} is not in the local Docker image store; labctl never pulls: \
         build or load it first (`docker build`, `docker load`)"
    )]
    ImageMissing { node: String, image: String },

    /// `reason` is the datalink's own one line, naming /dev/netmap and the
    /// netmap kernel module (the same words the tools print).
    #[error("nodes {} use netmap, but {reason}", nodes.join(", "))]
    NetmapUnavailable { nodes: Vec<String>, reason: String },

    /// An af_xdp node on a host that cannot grant CAP_BPF, without
    /// `privileged: true`.
    #[error(
        "nodes {} use af_xdp, but {reason}, and without it af_xdp needs CAP_SYS_ADMIN, which \
         makes a node root on the host: add `privileged: true` to these nodes only if you trust \
         this lab like root, or run it on Linux 6.5 or later or a host that grants CAP_BPF",
        nodes.join(", ")
    )]
    AfXdpNeedsPrivilege { nodes: Vec<String>, reason: String },

    /// Capabilities a lab names that this runtime cannot grant on this
    /// host; `refusals` are `node NAME asks for CAP, but WHY`.
    #[error(
        "{}: remove {} from `capabilities`, or run the lab where {} granted",
        refusals.join("; "),
        if refusals.len() == 1 { "it" } else { "them" },
        if refusals.len() == 1 { "it can be" } else { "they can be" }
    )]
    CapabilityUnavailable { refusals: Vec<String> },

    /// Capabilities that reach the host on this runtime
    /// ([`crate::lab::Reach::Host`]), named by nodes without
    /// `privileged: true`; `nodes` are `NAME (CAP, CAP)`.
    #[error(
        "node{} {} ask{} for capabilities that reach beyond the node to the host on the {runtime} \
         runtime{}: add `privileged: true` to {} only if you trust this lab like root \
         (docs/runtime.md#security-model)",
        if nodes.len() == 1 { "" } else { "s" },
        nodes.join(", "),
        if nodes.len() == 1 { "s" } else { "" },
        if *runtime == crate::lab::RuntimeKind::Netns {
            " (a netns step is a host process: they make it root on the host)"
        } else {
            ""
        },
        if nodes.len() == 1 { "the node" } else { "these nodes" }
    )]
    CapabilityNeedsPrivilege {
        nodes: Vec<String>,
        runtime: crate::lab::RuntimeKind,
    },

    /// Impairments on netmap endpoints: netmap's transmit skips the
    /// qdiscs that apply them, so refused rather than run unimpaired.
    #[error(
        "endpoints {} impair what they send through netmap, whose transmit skips the qdiscs that \
         apply impairments: put those endpoints on af_packet or af_xdp (`datalink:`), or remove \
         their `impair`",
        endpoints.join(", ")
    )]
    ImpairmentUnsupported { endpoints: Vec<String> },

    /// Impairments with a key netem applies need the netem qdisc.
    #[error(
        "links {} need netem for {}, but {reason}",
        links.join(", "),
        crate::lab::impairment::netem_key_names("or")
    )]
    NetemUnavailable { links: Vec<String>, reason: String },

    /// A netmap link's largest frame exceeds netmap's buffers; `reason`
    /// names the module parameter to raise and to what.
    #[error("link {link}: {reason}")]
    NetmapBuffers {
        link: String,
        reason: crate::tools::datalink::netmap::BufferTooSmall,
    },

    /// An instance of this name is up and no live process owns it.
    #[error(
        "lab {lab} is already deployed {detail}; remove it with `labctl destroy {lab}`, \
         redeploy with `labctl deploy --reconfigure`, or pick another name with `--name`"
    )]
    Conflict { lab: String, detail: String },

    /// An instance of this name is up and the labctl process that made it
    /// still runs: it must not be touched.
    #[error(
        "lab {lab} is in use by another labctl process (pid {pid}); pick another name with \
         `--name`, or wait for it to end"
    )]
    InUse { lab: String, pid: u32 },

    /// `destroy` of instances whose owners still run, without `--force`.
    #[error(
        "{what} is in use by labctl (pid {}), which is still running it; let it end (or stop it \
         with Ctrl-C), or pass --force to remove it anyway",
        pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )]
    Owned { what: String, pids: Vec<u32> },

    #[error(
        "lab {lab} has {} instances up ({}): name one of them (`labctl inspect` lists them)",
        instances.len(), instances.join(", ")
    )]
    Ambiguous { lab: String, instances: Vec<String> },

    #[error("lab {lab} is not deployed (see `labctl inspect`)")]
    NotDeployed { lab: String },

    #[error("lab {lab} has no node {node} (its nodes: {})", nodes.join(", "))]
    NoSuchNode {
        lab: String,
        node: String,
        nodes: Vec<String>,
    },

    #[error("node {node} of lab {lab} is not running (state: {state})")]
    NotRunning {
        lab: String,
        node: String,
        state: String,
    },

    /// A lab the netns runtime cannot build as written.
    #[error("node {node} {what}, which the netns runtime cannot provide; use `--runtime docker`")]
    NetnsUnsupported { node: String, what: String },

    #[error("{0}")]
    Link(LinkError),

    /// Writing on the host (a node's files copied out) failed.
    #[error("writing {path}: {cause}", path = path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("removing container {container}: it is still there after {rounds} rounds of removal")]
    StillThere { container: String, rounds: usize },

    #[error("{doing}: Docker started the command detached, so its output cannot be read")]
    Detached { doing: String },

    #[error("interrupted")]
    Interrupted,
}

impl From<LinkError> for RuntimeError {
    fn from(e: LinkError) -> Self {
        RuntimeError::Link(e)
    }
}

impl RuntimeError {
    pub(crate) fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let doing = doing.into();
        move |cause| RuntimeError::Io { doing, cause }
    }
}
