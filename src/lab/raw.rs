//! The lab file as written: serde types with source positions.
//!
//! These types mirror the YAML one to one (both endpoint forms, optional
//! keys) and never leave the `lab` module: [`super::parse`] checks them and
//! turns them into the validated [`super::Lab`]. The JSON Schema that
//! `labctl schema` prints, and that the structural pass walks, is generated
//! from these same types.
//!
//! Keys the schema requires are `Option`s without `#[serde(default)]`: the
//! schema (and the structural pass) require them, while serde reads a file
//! without them, so that the semantic checks still run; the resolver skips
//! what is missing, which the structural pass reported.
//!
//! Unknown keys are refused by the schema (`#[schemars(deny_unknown_fields)]`),
//! not by serde: the structural pass reports every one of them with a hint,
//! and serde can still read the rest so that the semantic checks run too.
//! Constraints given here only for editors (`pattern`, `range`, `length`)
//! are enforced by the resolver, with messages that say more.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::impairment::RawImpair;
use super::model::{KernelMode, LinkState, RuntimeKind};
use super::typed::{Spanned, Text};
use crate::tools::datalink::DatalinkKind;

/// The rule for lab and node names, as a JSON Schema pattern.
pub(super) const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,19}$";

/// A lab file, version 1.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "labctl lab file")]
pub struct RawLab {
    /// Names every container, veth and label of the lab:
    /// `[a-z0-9][a-z0-9-]{0,19}`.
    #[schemars(with = "String", regex(pattern = NAME_PATTERN))]
    pub name: Option<Spanned<String>>,
    /// Free text, shown by `labctl validate` and in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// The lab's default datalink (default: af_packet).
    #[serde(default)]
    #[schemars(with = "Option<DatalinkKind>")]
    pub datalink: Option<Spanned<DatalinkKind>>,
    /// How nodes are made: docker (containers, the default) or netns (bare
    /// network namespaces on the host, no image).
    #[serde(default)]
    #[schemars(with = "Option<RuntimeKind>")]
    pub runtime: Option<Spanned<RuntimeKind>>,
    /// Docker hosts the lab spans, by name (`[a-z0-9][a-z0-9-]{0,19}`):
    /// each a Docker endpoint and an underlay address. With it every node
    /// names its `host`; without it every node runs on this host.
    #[serde(default)]
    #[schemars(
        with = "Option<BTreeMap<String, RawHost>>",
        extend("propertyNames" = { "pattern": NAME_PATTERN }, "minProperties" = 1)
    )]
    pub hosts: Option<Spanned<Entries<Spanned<String>, Spanned<RawHost>>>>,
    /// The lab's containers, by name (`[a-z0-9][a-z0-9-]{0,19}`), in the
    /// order they are written; at least one. `name: {}` or `name:` takes
    /// every default.
    #[schemars(
        with = "BTreeMap<String, Option<RawNode>>",
        extend("propertyNames" = { "pattern": NAME_PATTERN }, "minProperties" = 1)
    )]
    pub nodes: Option<Spanned<Entries<Spanned<String>, Option<RawNode>>>>,
    /// veth pairs between nodes.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawLink>>")]
    pub links: Option<Vec<Spanned<RawLink>>>,
    /// What to run, in order, and what its output must show.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawStep>>")]
    pub steps: Option<Vec<Spanned<RawStep>>>,
}

/// One Docker host of a lab across hosts.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawHost {
    /// The host's Docker Engine: `unix:///PATH`, `tcp://HOST:PORT` or
    /// `ssh://[USER@]HOST[:PORT]`.
    #[schemars(with = "String")]
    pub docker: Option<Spanned<String>>,
    /// The host's IPv4 or IPv6 address (not a CIDR) that VXLAN tunnels to
    /// and from its nodes run between; unique among the hosts.
    #[schemars(with = "String")]
    pub underlay: Option<Spanned<String>>,
    /// With tcp:// only: a directory holding ca.pem, cert.pem and key.pem
    /// (Docker's DOCKER_CERT_PATH layout), relative to the lab file's
    /// directory.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tls: Option<Spanned<String>>,
}

/// One container of the lab.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawNode {
    /// The host the node runs on, one of `hosts`; required with `hosts`,
    /// refused without.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = NAME_PATTERN))]
    pub host: Option<Spanned<String>>,
    /// A local image; without it the node runs the tools image that labctl
    /// builds. The tools are available in the node either way.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// The command of the node's own image, as Docker's CMD: a list of
    /// strings (argv) run after the image's ENTRYPOINT; `[]` runs nothing
    /// of the image. Only with `image`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub cmd: Option<Spanned<Vec<Spanned<String>>>>,
    /// Overrides the lab's datalink for this node's interfaces.
    #[serde(default)]
    #[schemars(with = "Option<DatalinkKind>")]
    pub datalink: Option<Spanned<DatalinkKind>>,
    /// Environment variables of the node's commands (`NAME: value`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Text>")]
    pub env: Entries<Spanned<String>, Spanned<String>>,
    /// Namespaced sysctls set in the node, e.g. `net.ipv4.ip_forward: 1`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Text>")]
    pub sysctls: Entries<Spanned<String>, Spanned<String>>,
    /// quiet (the default) silences the node's kernel on lab interfaces;
    /// normal leaves it to answer ARP and ICMP, and to forward.
    #[serde(default)]
    #[schemars(with = "Option<KernelMode>")]
    pub kernel: Option<Spanned<KernelMode>>,
    /// IPv4 routes, applied before any step runs: `{to: CIDR|default, via:
    /// ADDRESS}`, the next hop on one of the node's own link subnets.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawRoute>>")]
    pub routes: Option<Spanned<Vec<Spanned<RawRoute>>>>,
    /// Bind mounts, `HOST:NODE[:ro|:rw]` (read-only by default; HOST is
    /// relative to the lab file's directory and must exist).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub binds: Option<Spanned<Vec<Spanned<String>>>>,
    /// Resource limits (default: pids 1024, memory 512MiB).
    #[serde(default)]
    #[schemars(with = "Option<RawLimits>")]
    pub limits: Option<Spanned<RawLimits>>,
    /// Trust this lab like root: the node may get capabilities that a
    /// datalink would otherwise be refused, and hold those of its
    /// `capabilities` that reach the host (default false).
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub privileged: Option<Spanned<bool>>,
    /// Linux capabilities the node's steps hold on top of its datalinks'
    /// own, named as in capabilities(7) without `CAP_`, such as
    /// `[NET_ADMIN, NET_BIND_SERVICE]`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub capabilities: Option<Spanned<Vec<Spanned<String>>>>,
}

impl RawNode {
    /// `name:` or `name: {}`: every default.
    pub const EMPTY: RawNode = RawNode {
        host: None,
        image: None,
        cmd: None,
        datalink: None,
        env: Entries(Vec::new()),
        sysctls: Entries(Vec::new()),
        kernel: None,
        routes: None,
        binds: None,
        limits: None,
        privileged: None,
        capabilities: None,
    };
}

/// One IPv4 route of a node.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawRoute {
    /// The destination: a CIDR such as `198.18.2.0/24`, or `default`.
    #[schemars(with = "String")]
    pub to: Option<Spanned<String>>,
    /// The next hop, an address on one of the node's own link subnets.
    #[schemars(with = "String")]
    pub via: Option<Spanned<String>>,
}

/// Resource limits of a node.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawLimits {
    /// Most processes and threads at once (default 1024).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 16, max = 4194304))]
    pub pids: Option<Spanned<u32>>,
    /// Most memory, such as `256MiB` or `2GiB` (default 512MiB).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub memory: Option<Spanned<String>>,
}

/// A veth pair between two nodes.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawLink {
    /// The two ends: `"node:interface"` strings, or one mapping each.
    #[schemars(with = "Vec<RawEndpoint>", length(min = 2, max = 2))]
    pub endpoints: Option<Spanned<Vec<Spanned<RawEndpoint>>>>,
    /// One CIDR address per `"node:interface"` endpoint, in the same order.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 2, max = 2))]
    pub ipv4: Option<Spanned<Vec<Spanned<String>>>>,
    /// The MTU of both ends (68 to 65535).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<u32>>,
    /// Impairs the frames of both directions; an endpoint's own `impair`
    /// overrides it, key by key, for the frames that endpoint sends.
    #[serde(default)]
    #[schemars(with = "Option<RawImpair>")]
    pub impair: Option<Spanned<RawImpair>>,
    /// For a link whose ends are on two hosts (a VXLAN tunnel): its VNI
    /// and UDP port; labctl picks what is not given.
    #[serde(default)]
    #[schemars(with = "Option<RawVxlan>")]
    pub vxlan: Option<Spanned<RawVxlan>>,
}

/// The VXLAN tunnel of a link across hosts.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawVxlan {
    /// The VXLAN network identifier, 1 to 16777215, unique among the
    /// lab's links; labctl picks one without collisions otherwise.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 16777215))]
    pub vni: Option<Spanned<u32>>,
    /// The tunnel's UDP port, 1 to 65535; labctl picks it otherwise.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 65535))]
    pub port: Option<Spanned<u32>>,
}

/// One end of a link: `"node:interface"`, or a mapping.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum RawEndpoint {
    /// `"node:interface"`.
    Brief(String),
    Extended(Box<RawEndpointMap>),
}

/// One end of a link, with its own settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawEndpointMap {
    /// The node this end is in.
    #[schemars(with = "String", regex(pattern = NAME_PATTERN))]
    pub node: Option<Spanned<String>>,
    /// The interface's name inside the node: 1 to 15 bytes, none of
    /// `/ : =`, no whitespace.
    #[schemars(with = "String")]
    pub interface: Option<Spanned<String>>,
    /// A CIDR address, e.g. `198.19.0.1/24`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ipv4: Option<Spanned<String>>,
    /// A unicast MAC address, e.g. `"02:00:00:00:01:01"`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub mac: Option<Spanned<String>>,
    /// Overrides the node's datalink for this interface.
    #[serde(default)]
    #[schemars(with = "Option<DatalinkKind>")]
    pub datalink: Option<Spanned<DatalinkKind>>,
    /// Impairs the frames this end sends, over the link's `impair`.
    #[serde(default)]
    #[schemars(with = "Option<RawImpair>")]
    pub impair: Option<Spanned<RawImpair>>,
}

/// One step: run a command in a node (`exec`), end a background step and
/// check its output (`wait`), set a link down or up (`link`), or search the
/// throughput of a path (`throughput`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStep {
    /// Unique among the steps; `wait` refers to it.
    #[schemars(with = "String")]
    pub name: Option<Spanned<String>>,
    /// The node an `exec` step runs in.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub node: Option<Spanned<String>>,
    /// The command as an argv list, never a shell string.
    #[serde(default)]
    #[schemars(with = "Option<Vec<Text>>")]
    pub exec: Option<Spanned<Vec<String>>>,
    /// Keep running while later steps run (default false).
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub background: Option<Spanned<bool>>,
    /// A regex on a background step's stdout and stderr; the next step
    /// starts once it matches.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ready: Option<Spanned<String>>,
    /// `200ms`, `10s`, `2m` (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// A foreground exec step is run again until it passes, for at most
    /// this long (`30s`, `2m`); each try is bounded by `timeout`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub until: Option<Spanned<String>>,
    /// With `until`: the pause between tries (default 1s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    /// Ends the background step of that name and checks its output.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub wait: Option<Spanned<String>>,
    /// What the result must show (default: exit 0).
    #[serde(default)]
    #[schemars(with = "Option<RawExpect>")]
    pub expect: Option<Spanned<RawExpect>>,
    /// A link-state step: the endpoint `"node:interface"` to set.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub link: Option<Spanned<String>>,
    /// With `link`: down or up.
    #[serde(default)]
    #[schemars(with = "Option<LinkState>")]
    pub state: Option<Spanned<LinkState>>,
    /// A throughput step: labctl's own generator and sink find the
    /// highest rate a path carries (RFC 2544 NDR, and PDR).
    #[serde(default)]
    #[schemars(with = "Option<RawThroughput>")]
    pub throughput: Option<Spanned<RawThroughput>>,
}

/// What a throughput step measures, and how.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawThroughput {
    /// The endpoint `"node:interface"` the generator sends from.
    #[schemars(with = "String")]
    pub from: Option<Spanned<String>>,
    /// The endpoint `"node:interface"` the sink counts on; its address is
    /// the destination.
    #[schemars(with = "String")]
    pub to: Option<Spanned<String>>,
    /// Frame sizes in bytes, Ethernet header included (no FCS), each
    /// searched on its own, in this order.
    #[schemars(with = "Vec<u32>", extend("minItems" = 1))]
    pub sizes: Option<Spanned<Vec<Spanned<u32>>>>,
    /// The length of one trial (default 2s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub trial: Option<Spanned<String>>,
    /// NDR: the highest rate whose trial lost at most this (default 0%).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub loss: Option<Spanned<String>>,
    /// PDR too: the highest rate whose trial lost at most this; more than
    /// `loss`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub partial: Option<Spanned<String>>,
}

/// What a step's result must show.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawExpect {
    /// The exit code (default 0).
    #[serde(default)]
    #[schemars(with = "Option<i64>", range(min = 0, max = 255))]
    pub exit: Option<Spanned<i64>>,
    /// Checks on the standard output.
    #[serde(default)]
    #[schemars(with = "Vec<RawCheck>")]
    pub stdout: Vec<Spanned<RawCheck>>,
    /// Checks on the standard error.
    #[serde(default)]
    #[schemars(with = "Vec<RawCheck>")]
    pub stderr: Vec<Spanned<RawCheck>>,
}

/// One check on an output stream: `match` or `contains`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawCheck {
    /// A regex applied to each line.
    #[serde(rename = "match", default)]
    #[schemars(with = "Option<String>")]
    pub matches: Option<Spanned<String>>,
    /// A substring of the whole output.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub contains: Option<Spanned<String>>,
    /// With `match`: exactly this many lines match.
    #[serde(default)]
    #[schemars(with = "Option<usize>")]
    pub count: Option<Spanned<usize>>,
    /// With `match`: the first capture group of every matching line is a
    /// number at least this.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub at_least: Option<Spanned<f64>>,
    /// With `match`: the first capture group of every matching line is a
    /// number at most this.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub at_most: Option<Spanned<f64>>,
}

/// A YAML mapping as a list of entries, keeping the file's order (and each
/// key's position) where a map type would sort them. Duplicate keys are
/// reported by the structural pass; serde sees only the first.
#[derive(Debug)]
pub struct Entries<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// By hand rather than `#[serde(untagged)]`: untagged enums buffer their
/// input, and buffered values lose their positions. Dispatching on what
/// the deserializer sees keeps the mapping's fields spanned.
impl<'de> Deserialize<'de> for RawEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;

        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = RawEndpoint;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"node:interface\" or a mapping with node and interface")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawEndpoint, E> {
                Ok(RawEndpoint::Brief(s.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEndpoint, A::Error> {
                RawEndpointMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|map| RawEndpoint::Extended(Box::new(map)))
            }
        }

        deserializer.deserialize_any(EndpointVisitor)
    }
}
