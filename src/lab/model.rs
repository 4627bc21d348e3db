//! The validated lab: what the runtime, the links and the run accept.
//!
//! A [`Lab`] can only be obtained from [`crate::lab::load`] or
//! [`crate::lab::parse`], which run every check first, so the code after
//! validation never re-checks names, addresses or references.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;
use regex::Regex;

pub use crate::tools::datalink::DatalinkKind;

/// A lab that passed every check.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) file: PathBuf,
    pub(super) datalink: DatalinkKind,
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
        format!(
            "valid lab `{}`: {}, {}, {}, datalinks: {}",
            self.name,
            count(self.nodes.len(), "node"),
            count(self.links.len(), "link"),
            count(self.steps.len(), "step"),
            if datalinks.is_empty() {
                "none".to_owned()
            } else {
                datalinks.join(", ")
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

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// A local image; `None` runs the tools image that labctl builds.
    pub image: Option<String>,
    /// The node's default datalink (already resolved against the lab's).
    pub datalink: DatalinkKind,
    pub env: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub endpoints: [Endpoint; 2],
    pub mtu: Option<u32>,
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
