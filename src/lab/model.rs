//! The validated lab: what the runtime, the links and the run accept.
//!
//! A [`Lab`] can only be obtained from [`crate::lab::load`] or
//! [`crate::lab::parse`], which run every check first, so the code after
//! validation never re-checks names, addresses or references.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;
use regex::Regex;
use serde::Deserialize;

use super::capability::{Capability, Isolation};
use super::impairment::Impairment;

pub use crate::tools::datalink::DatalinkKind;

/// A lab that passed every check.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) file: PathBuf,
    pub(super) datalink: DatalinkKind,
    pub(super) runtime: RuntimeKind,
    pub(super) hosts: Vec<Host>,
    pub(super) nodes: Vec<Node>,
    pub(super) links: Vec<Link>,
    pub(super) steps: Vec<Step>,
}

impl Lab {
    /// Names every container, veth and label of the lab.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file the lab was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The lab-wide default datalink.
    pub fn datalink(&self) -> DatalinkKind {
        self.datalink
    }

    /// How the lab's nodes are made (`runtime:`, default docker).
    pub fn runtime(&self) -> RuntimeKind {
        self.runtime
    }

    /// Whether some node names its own image, which only the Docker
    /// runtime can run (the netns runtime refuses it).
    pub fn needs_image(&self) -> bool {
        self.nodes.iter().any(|n| n.image.is_some())
    }

    /// The same lab on another runtime (`labctl run --runtime`). Under
    /// netns the lab may not span hosts and no node may have an image:
    /// validation refuses that in the file, and this refuses it for the
    /// override.
    pub fn with_runtime(mut self, kind: RuntimeKind) -> Result<Self, RuntimeMismatch> {
        if kind == RuntimeKind::Netns && !self.hosts.is_empty() {
            return Err(RuntimeMismatch::HostsUnderNetns {
                lab: self.name,
                hosts: self.hosts.into_iter().map(|h| h.name).collect(),
            });
        }
        if kind == RuntimeKind::Netns {
            let nodes: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.image.is_some())
                .map(|n| n.name.clone())
                .collect();
            if !nodes.is_empty() {
                return Err(RuntimeMismatch::ImageUnderNetns {
                    lab: self.name,
                    nodes,
                });
            }
        }
        self.runtime = kind;
        Ok(self)
    }

    /// The hosts of `hosts:`, in file order; empty without it (every node
    /// on this host, through the local Docker daemon).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The hosts of a link's two ends when they differ (a VXLAN link),
    /// else `None` (a veth pair on one host).
    pub fn link_hosts(&self, link: &Link) -> Option<[&Host; 2]> {
        let host_of = |end: &Endpoint| {
            let name = self.node(&end.node)?.host.as_deref()?;
            self.host(name)
        };
        let [a, b] = &link.endpoints;
        let (a, b) = (host_of(a)?, host_of(b)?);
        (a.name != b.name).then_some([a, b])
    }

    /// Nodes in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Links in file order.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Steps in file order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Every endpoint of every link that sits in `node`, in file order.
    pub fn interfaces_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.links
            .iter()
            .flat_map(|l| l.endpoints.iter())
            .filter(move |e| e.node == node)
    }

    /// The datalinks in use, each once, in order.
    pub fn datalinks(&self) -> Vec<DatalinkKind> {
        let mut kinds: Vec<_> = self
            .links
            .iter()
            .flat_map(|l| l.endpoints.iter().map(|e| e.datalink))
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// One line for `labctl validate`: what the lab holds.
    pub fn summary(&self) -> String {
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let datalinks: Vec<&str> = self.datalinks().iter().map(|d| d.as_str()).collect();
        let hosts: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        format!(
            "valid lab `{}`: {}, {}, {}, datalinks: {}{}",
            self.name,
            count(self.nodes.len(), "node"),
            count(self.links.len(), "link"),
            count(self.steps.len(), "step"),
            if datalinks.is_empty() {
                "none".to_owned()
            } else {
                datalinks.join(", ")
            },
            // Only labs across hosts say so: one-host summaries stay as they were.
            if hosts.is_empty() {
                String::new()
            } else {
                format!(", hosts: {}", hosts.join(", "))
            }
        )
    }

    /// The same lab with every node and interface on `kind`
    /// (`labctl run --datalink`). Putting every end on one datalink cannot
    /// break a rule that validation checked (netmap needs both ends).
    pub fn with_datalink(mut self, kind: DatalinkKind) -> Self {
        self.datalink = kind;
        for node in &mut self.nodes {
            node.datalink = kind;
        }
        for endpoint in self.links.iter_mut().flat_map(|l| l.endpoints.iter_mut()) {
            endpoint.datalink = kind;
        }
        self
    }
}

impl Lab {
    /// The same lab with every node `privileged: true` (`labctl run
    /// --privileged`): trusted like root.
    pub fn trusted_like_root(mut self) -> Self {
        for node in &mut self.nodes {
            node.privileged = true;
        }
        self
    }
}

/// `labctl run --runtime netns` on a lab that needs images or spans hosts.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeMismatch {
    #[error(
        "lab `{lab}` cannot run on the netns runtime: it spans host{} {}, and netns nodes are \
         network namespaces on this host (use --runtime docker)",
        if hosts.len() == 1 { "" } else { "s" },
        hosts.join(", ")
    )]
    HostsUnderNetns { lab: String, hosts: Vec<String> },
    #[error(
        "lab `{lab}` cannot run on the netns runtime: node{} {} name{} an image, and netns nodes \
         are network namespaces on the host, without images (use --runtime docker)",
        if nodes.len() == 1 { "" } else { "s" },
        nodes.join(", "),
        if nodes.len() == 1 { "s" } else { "" }
    )]
    ImageUnderNetns { lab: String, nodes: Vec<String> },
}

/// How a lab's nodes are made: `runtime:` in the file, `--runtime` on the
/// command line.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// Nodes are containers, made through the Docker Engine API.
    #[default]
    Docker,
    /// Nodes are bare network namespaces on the host: no daemon, no image.
    Netns,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Netns => "netns",
        }
    }

    /// What a node of this runtime is, which decides how far a capability
    /// held in it reaches ([`super::Capability::reach`]).
    pub fn isolation(self) -> Isolation {
        match self {
            Self::Docker => Isolation::Container,
            Self::Netns => Isolation::HostProcess,
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a node's kernel does on the lab's interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KernelMode {
    /// Silenced (no ARP, no ICMP, no forwarding): the tools answer alone.
    #[default]
    Quiet,
    /// Left as it is: it answers ARP and ICMP, and forwards with
    /// `net.ipv4.ip_forward: 1`.
    Normal,
}

impl KernelMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quiet => "quiet",
            Self::Normal => "normal",
        }
    }
}

/// One Docker host of a lab across hosts (`hosts:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// A lab or node name's rule: `[a-z0-9][a-z0-9-]{0,19}`.
    pub name: String,
    /// How labctl reaches the host's Docker Engine.
    pub docker: DockerEndpoint,
    /// The host's own address that VXLAN tunnels run between; unique among
    /// the lab's hosts, unicast.
    pub underlay: IpAddr,
    /// `tls:` a directory with ca.pem, cert.pem, key.pem (Docker's
    /// DOCKER_CERT_PATH layout), absolute and canonical (made so against
    /// the lab file's directory); only with tcp://. The three files
    /// existed when the lab was validated.
    pub tls: Option<PathBuf>,
}

/// A Docker Engine endpoint, as the Docker CLI writes it in `DOCKER_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    /// `unix:///path/to/docker.sock`: an absolute path.
    Unix(PathBuf),
    /// `tcp://HOST:PORT`: the port is required (Docker's are 2376 with TLS,
    /// 2375 without). `host` is a name or an address, an IPv6 one without
    /// its brackets.
    Tcp { host: String, port: u16 },
    /// `ssh://[USER@]HOST[:PORT]`, as the Docker CLI understands it (it runs
    /// `docker system dial-stdio` on the host).
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
}

impl DockerEndpoint {
    /// `unix`, `tcp` or `ssh`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Unix(_) => "unix",
            Self::Tcp { .. } => "tcp",
            Self::Ssh { .. } => "ssh",
        }
    }
}

impl fmt::Display for DockerEndpoint {
    /// Back to the URL form: `unix:///var/run/docker.sock`,
    /// `tcp://198.19.0.2:2376`, `tcp://[fd00::2]:2376`, `ssh://lab@b:22`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An IPv6 address takes brackets in a URL, so its colons are not
        // read as the port's.
        let bracketed = |host: &str| {
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            }
        };
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracketed(host)),
            Self::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                f.write_str(&bracketed(host))?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}

/// A link's `vxlan:`, as written: what labctl picks is the runtime's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan {
    /// The VXLAN network identifier, 1 to 16777215, unique among the lab's
    /// links that give one.
    pub vni: Option<u32>,
    /// The tunnel's UDP port, 1 to 65535.
    pub port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The host the node runs on: `Some` for every node when the lab has
    /// `hosts` (naming one of them), `None` for every node otherwise.
    pub host: Option<String>,
    /// A local image; `None` runs the tools image that labctl builds.
    pub image: Option<String>,
    /// `cmd`: replaces the CMD of the node's own image (its ENTRYPOINT
    /// stays); `Some([])` runs nothing of the image, `None` its own CMD.
    /// Only on a node with `image`.
    pub cmd: Option<Vec<String>>,
    /// The node's default datalink (already resolved against the lab's).
    pub datalink: DatalinkKind,
    pub env: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
    /// Default [`KernelMode::Quiet`]; `sysctls` still override it.
    pub kernel: KernelMode,
    /// IPv4 routes, in file order; each `via` lies on one of the node's
    /// own link subnets (validated).
    pub routes: Vec<Route>,
    /// Bind mounts, host paths absolute and existing at validation.
    pub binds: Vec<Bind>,
    /// Resource limits, defaults already applied.
    pub limits: Limits,
    /// `privileged: true`: the lab is trusted like root (capabilities a
    /// datalink would otherwise be refused may be granted, and those of
    /// `capabilities` that reach the host: [`super::Reach::Host`]).
    pub privileged: bool,
    /// `capabilities`: held on top of the datalinks' own, in file order,
    /// each once.
    pub capabilities: Vec<Capability>,
}

/// One IPv4 route of a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// The destination; `default` is 0.0.0.0/0. Host bits are zero.
    pub to: Ipv4Net,
    /// The next hop, on the subnet of `interface`.
    pub via: Ipv4Addr,
    /// The node's interface whose subnet holds `via`.
    pub interface: String,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.to.prefix_len() == 0
    }
}

/// One bind mount: `HOST:NODE[:ro|:rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Absolute and canonical (symlinks resolved); it existed when the lab
    /// was validated.
    pub host: PathBuf,
    /// Absolute path in the node, never `/` nor under `/lab`.
    pub target: PathBuf,
    /// Read-only unless written `:rw`.
    pub read_only: bool,
}

/// Resource limits of a node, so that a fork bomb or a leak in one node
/// cannot take the host down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most processes (and threads) at once in the node.
    pub pids: u32,
    /// Most memory the node may use, in bytes (swap included: none extra).
    pub memory: u64,
}

impl Limits {
    /// The defaults, enough for the tools and a device under test.
    pub const DEFAULT: Limits = Limits {
        pids: 1024,
        memory: 512 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, Clone)]
pub struct Link {
    pub endpoints: [Endpoint; 2],
    pub mtu: Option<u32>,
    /// `vxlan:` as written; only on a link whose ends are on two hosts
    /// ([`Lab::link_hosts`]), which is a VXLAN tunnel with or without it.
    pub vxlan: Option<Vxlan>,
}

impl Link {
    /// Whether either direction is impaired.
    pub fn is_impaired(&self) -> bool {
        self.endpoints.iter().any(|e| e.impair.is_some())
    }
}

/// One end of a veth pair, as it appears inside its node.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub node: String,
    pub interface: String,
    pub ipv4: Option<Ipv4Net>,
    pub mac: Option<MacAddr>,
    /// Resolved: the endpoint's own, else its node's, else the lab's.
    pub datalink: DatalinkKind,
    /// What happens to the frames this end sends (the egress of this veth
    /// end); `None` for a plain link.
    pub impair: Option<Impairment>,
}

impl Endpoint {
    /// `node:interface`, as written in the brief form.
    pub fn label(&self) -> String {
        format!("{}:{}", self.node, self.interface)
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// Foreground: the longest the command may run. Background: how long
    /// `ready` may take to match. Wait: how long the stopped step may take
    /// to exit.
    pub timeout: Duration,
    pub expect: Expect,
    /// `until`: run again until the step passes (foreground exec steps
    /// only).
    pub until: Option<Until>,
}

/// How a step that waits for a condition tries again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Until {
    /// The longest the tries may take together (`until`); a try still
    /// running then is stopped.
    pub within: Duration,
    /// The pause after a try that did not pass (`every`), at most `within`.
    pub every: Duration,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Run `argv` in `node` (never through a shell).
    Exec {
        node: String,
        argv: Vec<String>,
        background: bool,
        /// Must match the step's output (stdout and stderr) before the next
        /// step starts; background steps only.
        ready: Option<Regex>,
    },
    /// End the background step named `step` and check what it printed.
    Wait { step: String },
    /// Set the lab's endpoint `node:interface` down or up (a fault injected
    /// mid-run). The endpoint exists in the lab (validated).
    SetLink {
        node: String,
        interface: String,
        state: LinkState,
    },
    /// Search the highest rate the path from one endpoint to another
    /// carries (RFC 2544 section 26.1), with labctl's own generator and
    /// sink.
    Throughput(Throughput),
}

/// A throughput step, validated: both ends are endpoints of the lab with
/// an address, on a path that can carry frames between them (linked, and
/// routed where the destination is on another subnet), and every size
/// fits the MTU of both ends' links.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// The node and interface the generator sends from.
    pub from: (String, String),
    /// The node and interface the sink counts on.
    pub to: (String, String),
    /// The sink's address: the generator's destination.
    pub destination: Ipv4Addr,
    /// Frame bytes, Ethernet header included, no FCS; each once.
    pub sizes: Vec<u32>,
    /// The length of one trial.
    pub trial: Duration,
    /// NDR: the most a passing trial may lose, as a fraction (0 to 1).
    pub loss: f64,
    /// PDR, when asked: the most a passing trial may lose, more than
    /// `loss`.
    pub partial: Option<f64>,
}

impl Throughput {
    /// `client:eth1`, the generator's end.
    pub fn from_label(&self) -> String {
        format!("{}:{}", self.from.0, self.from.1)
    }

    /// `server:eth1`, the sink's end.
    pub fn to_label(&self) -> String {
        format!("{}:{}", self.to.0, self.to.1)
    }
}

/// The default length of a throughput trial.
pub const DEFAULT_TRIAL: Duration = Duration::from_secs(2);

/// The state a link-state step sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// The interface is set down: nothing passes.
    Down,
    /// The interface is set up again.
    Up,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Up => "up",
        }
    }
}

/// What a step's result must show. A step without `expect` gets the
/// default: exit 0, no output checks.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub exit: i64,
    pub stdout: Vec<Check>,
    pub stderr: Vec<Check>,
}

/// One check on an output stream.
#[derive(Debug, Clone)]
pub struct Check {
    pub pattern: Pattern,
    /// `Some(n)`: exactly `n` lines match (regex checks only). `None`: at
    /// least one line matches, or the substring occurs.
    pub count: Option<usize>,
    /// `at_least` / `at_most` (regex checks with a capture group only):
    /// every matching line's first capture group parses as a number within
    /// them, and at least one line matches.
    pub bounds: Option<Bounds>,
}

/// Numeric bounds on a check's first capture group; at least one is set,
/// both finite, `at_least <= at_most`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

impl Bounds {
    /// Whether `value` is within the bounds (inclusive).
    pub fn admits(&self, value: f64) -> bool {
        self.at_least.is_none_or(|low| value >= low)
            && self.at_most.is_none_or(|high| value <= high)
    }
}

impl fmt::Display for Bounds {
    /// `at least 150000`, `at most 0.5`, `from 1 to 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.at_least, self.at_most) {
            (Some(low), Some(high)) => write!(f, "from {low} to {high}"),
            (Some(low), None) => write!(f, "at least {low}"),
            (None, Some(high)) => write!(f, "at most {high}"),
            (None, None) => f.write_str("any number"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Pattern {
    /// A regex applied to each line.
    Match(Regex),
    /// A substring of the whole output.
    Contains(String),
}

/// The default step timeout of the lab format.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The default pause between the tries of a step with `until`.
pub const DEFAULT_UNTIL_EVERY: Duration = Duration::from_secs(1);
