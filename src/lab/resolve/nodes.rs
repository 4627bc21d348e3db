//! Nodes: names, hosts, images and commands, environment, sysctls, kernel, binds,
//! limits, capabilities.
//! Routes are checked once the links are known ([`super::routes`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use crate::lab::typed::Spanned;

use super::values::{self, NAME_RULE};
use super::{pos, unknown_hint, Problems};
use crate::lab::capability::Capability;
use crate::lab::model::{Bind, DatalinkKind, Limits, Node, RuntimeKind};
use crate::lab::raw::{Entries, RawLimits, RawNode};
use crate::lab::wording;

pub(super) type RawNodes = Spanned<Entries<Spanned<String>, Option<RawNode>>>;

/// What every node is resolved against.
pub(super) struct LabWide<'a> {
    pub datalink: DatalinkKind,
    pub runtime: RuntimeKind,
    /// Where relative bind paths start: the lab file's directory.
    pub dir: &'a Path,
    /// The names of `hosts` as written; `None` without it.
    pub hosts: Option<Vec<&'a str>>,
}

/// The nodes of `raw`, each name once (the first), with the raw node it was
/// read from.
pub(super) fn entries(raw: &RawNodes) -> impl Iterator<Item = (&Spanned<String>, &RawNode)> {
    static DEFAULT: RawNode = RawNode::EMPTY;
    let mut seen = HashSet::new();
    raw.value
        .0
        .iter()
        .filter(move |(name, _)| seen.insert(name.value.as_str()))
        .map(|(name, node)| (name, node.as_ref().unwrap_or(&DEFAULT)))
}

pub(super) fn resolve(
    raw: Option<&RawNodes>,
    lab: &LabWide<'_>,
    problems: &mut Problems,
) -> Vec<Node> {
    // Without `nodes`, the structural pass reported the missing key.
    let Some(raw) = raw else {
        return Vec::new();
    };
    let entries = raw.value.0.as_slice();
    if entries.is_empty() {
        problems.at(
            pos(raw),
            "the lab has no nodes (expected at least one under `nodes:`, such as `nodes: {a: {}}`)",
        );
    }
    let mut nodes: Vec<Node> = Vec::new();
    // A name written twice was reported by the structural pass.
    for (name, node) in self::entries(raw) {
        check_name(name, problems);
        let host = host(name, node.host.as_ref(), lab.hosts.as_deref(), problems);
        if let Some(image) = &node.image {
            check_image(&name.value, image, lab.runtime, problems);
        }
        if let Some(cmd) = &node.cmd {
            check_cmd(
                &name.value,
                cmd,
                node.image.is_some(),
                lab.runtime,
                problems,
            );
        }
        nodes.push(Node {
            name: name.value.clone(),
            host,
            image: node.image.as_ref().map(|i| i.value.clone()),
            cmd: node
                .cmd
                .as_ref()
                .map(|c| c.value.iter().map(|a| a.value.clone()).collect()),
            datalink: node.datalink.as_ref().map_or(lab.datalink, |d| d.value),
            env: environment(&name.value, &node.env, problems),
            sysctls: sysctls(&name.value, &node.sysctls, problems),
            kernel: node.kernel.as_ref().map(|k| k.value).unwrap_or_default(),
            // Filled in by `routes::resolve`, which needs the links.
            routes: Vec::new(),
            binds: binds(&name.value, node.binds.as_ref(), lab.dir, problems),
            limits: limits(&name.value, node.limits.as_ref(), problems),
            privileged: node.privileged.as_ref().is_some_and(|p| p.value),
            capabilities: capabilities(&name.value, node.capabilities.as_ref(), problems),
        });
    }
    nodes
}

/// With `hosts`, the host the node names (one of them); without, none.
fn host(
    node: &Spanned<String>,
    raw: Option<&Spanned<String>>,
    hosts: Option<&[&str]>,
    problems: &mut Problems,
) -> Option<String> {
    let name = &node.value;
    match (hosts, raw) {
        (None, None) => None,
        // An empty `hosts`, or one whose every entry was of the wrong type,
        // was reported: naming no host of none would only echo it.
        (Some([]), _) => None,
        (None, Some(host)) => {
            problems.at(
                pos(host),
                format!(
                    "node {name:?} has host {:?}, but the lab has no hosts (host needs a hosts: \
                     map naming each host's docker endpoint and underlay address; without it \
                     every node runs on this host: remove host)",
                    host.value
                ),
            );
            None
        }
        (Some(hosts), None) => {
            problems.at(
                pos(node),
                format!(
                    "node {name:?} has no host (a lab with hosts runs each node on one of them: \
                     add host: NAME; {})",
                    unknown_hint("", hosts.iter().copied())
                ),
            );
            None
        }
        (Some(hosts), Some(host)) if hosts.contains(&host.value.as_str()) => {
            Some(host.value.clone())
        }
        (Some(hosts), Some(host)) => {
            problems.at(
                pos(host),
                format!(
                    "node {name:?} names unknown host {:?} ({})",
                    host.value,
                    unknown_hint(&host.value, hosts.iter().copied())
                ),
            );
            None
        }
    }
}

fn binds(
    node: &str,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    dir: &Path,
    problems: &mut Problems,
) -> Vec<Bind> {
    let mut binds = Vec::new();
    let mut targets: HashMap<PathBuf, Location> = HashMap::new();
    for (i, text) in raw.iter().flat_map(|r| r.value.iter()).enumerate() {
        let which = format!("bind {} of node {node:?}", i + 1);
        let spec = match values::parse_bind(&text.value) {
            Ok(spec) => spec,
            Err(why) => {
                problems.at(pos(text), format!("{which} ({:?}) {why}", text.value));
                continue;
            }
        };
        let looked_for = dir.join(spec.host);
        let host = match std::fs::canonicalize(&looked_for) {
            Ok(host) => host,
            Err(e) => {
                // As the user named it (no `./`), not made absolute: the
                // message then reads the same on every machine.
                let shown: PathBuf = looked_for
                    .components()
                    .filter(|c| *c != std::path::Component::CurDir)
                    .collect();
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_owned()
                } else {
                    format!("cannot be read: {e}")
                };
                problems.at(
                    pos(text),
                    format!(
                        "{which}: the host path {:?} {why} (looked for {}; a relative HOST \
                         starts at the lab file's directory)",
                        spec.host,
                        shown.display()
                    ),
                );
                continue;
            }
        };
        let target = PathBuf::from(spec.target);
        if let Some(first) = targets.get(&target) {
            problems.at(
                pos(text),
                format!(
                    "{which} mounts onto {}, as a bind at line {} does (a path in the node \
                     takes one bind)",
                    target.display(),
                    first.line()
                ),
            );
            continue;
        }
        targets.insert(target.clone(), pos(text));
        binds.push(Bind {
            host,
            target,
            read_only: spec.read_only,
        });
    }
    binds
}

/// `capabilities`: names as in capabilities(7), without `CAP_`, each once.
/// Whether the runtime can grant them, and may without `privileged`, is
/// the runtime's preflight (the runtime can be chosen on the command line).
fn capabilities(
    node: &str,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    problems: &mut Problems,
) -> Vec<Capability> {
    let mut caps: Vec<Capability> = Vec::new();
    let mut first: HashMap<Capability, Location> = HashMap::new();
    for text in raw.iter().flat_map(|r| r.value.iter()) {
        let name = text.value.as_str();
        let Some(cap) = Capability::from_name(name) else {
            problems.at(pos(text), capability_problem(node, name));
            continue;
        };
        if let Some(at) = first.get(&cap) {
            problems.at(
                pos(text),
                format!(
                    "capability {name:?} is listed twice in node {node:?} (first at line {}, \
                     column {})",
                    at.line(),
                    at.column()
                ),
            );
            continue;
        }
        first.insert(cap, pos(text));
        caps.push(cap);
    }
    caps
}

/// Why `name` is not a capability, and what to write instead.
fn capability_problem(node: &str, name: &str) -> String {
    let names = || Capability::all().map(Capability::name);
    if name.eq_ignore_ascii_case("ALL") {
        return format!(
            "capability {name:?} in node {node:?} is refused: a node holds only the capabilities \
             it names (ALL is root on the host, which is what `privileged: true` trusts a lab \
             with; even then, name each capability the node needs, such as NET_ADMIN)"
        );
    }
    let bare = name
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("CAP_"))
        .map(|_| &name[4..]);
    if let Some(bare) = bare {
        let meant = Capability::from_name(&bare.to_ascii_uppercase())
            .map(Capability::name)
            .or_else(|| wording::nearest(bare, names()));
        if let Some(meant) = meant {
            return format!(
                "capability {name:?} in node {node:?} is written with its prefix: write \
                 {meant} (labctl names capabilities without CAP_, as Docker does)"
            );
        }
    }
    let hint = match wording::nearest(bare.unwrap_or(name), names()) {
        Some(near) => format!("did you mean {near:?}?"),
        None => "expected a name from capabilities(7) without CAP_, such as NET_ADMIN or \
                 NET_BIND_SERVICE"
            .to_owned(),
    };
    format!("unknown capability {name:?} in node {node:?} ({hint})")
}

fn limits(node: &str, raw: Option<&Spanned<RawLimits>>, problems: &mut Problems) -> Limits {
    let mut limits = Limits::DEFAULT;
    let Some(raw) = raw else {
        return limits;
    };
    if let Some(pids) = &raw.value.pids {
        if (16..=4_194_304).contains(&pids.value) {
            limits.pids = pids.value;
        } else {
            problems.at(
                pos(pids),
                format!(
                    "pids limit {} of node {node:?} is out of range (expected 16 to 4194304: \
                     a node needs a few processes, and Linux has at most 4194304)",
                    pids.value
                ),
            );
        }
    }
    if let Some(memory) = &raw.value.memory {
        match values::parse_size(&memory.value) {
            Ok(bytes) => limits.memory = bytes,
            Err(why) => problems.at(
                pos(memory),
                format!("memory limit {:?} of node {node:?} {why}", memory.value),
            ),
        }
    }
    limits
}

fn check_name(name: &Spanned<String>, problems: &mut Problems) {
    if let Some(why) = values::name_problem(&name.value) {
        problems.at(
            pos(name),
            format!(
                "invalid node name {:?}: {why} (expected {NAME_RULE})",
                name.value
            ),
        );
    }
}

fn check_image(node: &str, image: &Spanned<String>, runtime: RuntimeKind, problems: &mut Problems) {
    let text = &image.value;
    if runtime == RuntimeKind::Netns {
        problems.at(
            pos(image),
            format!(
                "node {node:?} has an image, but runtime: netns makes nodes as network \
                 namespaces on the host, which run no image (remove image, or use runtime: \
                 docker)"
            ),
        );
        return;
    }
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.at(
            pos(image),
            format!(
                "invalid image {text:?} for node {node:?} (expected a local image such as \
                 alpine:3, or no image for the tools image)"
            ),
        );
    }
}

/// `cmd` replaces the CMD of the node's own image: a node without one (the
/// tools image has no entrypoint to give it to) or without any image
/// (netns) cannot have it.
fn check_cmd(
    node: &str,
    cmd: &Spanned<Vec<Spanned<String>>>,
    has_image: bool,
    runtime: RuntimeKind,
    problems: &mut Problems,
) {
    if runtime == RuntimeKind::Netns {
        problems.at(
            pos(cmd),
            format!(
                "node {node:?} has a cmd, but runtime: netns makes nodes as network namespaces \
                 on the host, which run no image (remove cmd, or use runtime: docker)"
            ),
        );
        return;
    }
    if !has_image {
        problems.at(
            pos(cmd),
            format!(
                "node {node:?} has a cmd but no image (cmd replaces the CMD of the node's own \
                 image; the tools image runs only labctl's steps: add an image, or remove cmd)"
            ),
        );
        return;
    }
    if let Some(first) = cmd.value.first().filter(|a| a.value.is_empty()) {
        problems.at(
            pos(first),
            format!(
                "the cmd of node {node:?} starts with an empty program name (expected the \
                 program first, such as [my-lb, --config, /etc/lb.conf])"
            ),
        );
    }
    for (i, arg) in cmd.value.iter().enumerate() {
        if values::has_nul(&arg.value) {
            problems.at(
                pos(arg),
                format!(
                    "argument {} of the cmd of node {node:?} contains a NUL character",
                    i + 1
                ),
            );
        }
    }
}

fn environment(
    node: &str,
    raw: &Entries<Spanned<String>, Spanned<String>>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in &raw.0 {
        if let Some(why) = values::env_name_problem(&key.value) {
            problems.at(
                pos(key),
                format!(
                    "environment variable {:?} in node {node:?} {why}",
                    key.value
                ),
            );
        }
        if values::has_nul(&value.value) {
            problems.at(
                pos(value),
                format!(
                    "the value of {:?} in node {node:?} contains a NUL character",
                    key.value
                ),
            );
        }
        env.entry(key.value.clone())
            .or_insert_with(|| value.value.clone());
    }
    env
}

fn sysctls(
    node: &str,
    raw: &Entries<Spanned<String>, Spanned<String>>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut sysctls = BTreeMap::new();
    for (key, value) in &raw.0 {
        if let Some(why) = values::sysctl_problem(&key.value) {
            problems.at(
                pos(key),
                format!("sysctl {:?} in node {node:?} {why}", key.value),
            );
        }
        let text = &value.value;
        if text.trim().is_empty() || text.contains(['\n', '\r']) || values::has_nul(text) {
            problems.at(
                pos(value),
                format!(
                    "invalid value {text:?} for sysctl {:?} in node {node:?} (expected one line, \
                     such as 1)",
                    key.value
                ),
            );
        }
        sysctls
            .entry(key.value.clone())
            .or_insert_with(|| text.clone());
    }
    sysctls
}
