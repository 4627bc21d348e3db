//! Links: endpoints (both forms), interface names, addresses, MACs, MTU,
//! datalinks, the netmap rule, and VXLAN links across hosts.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;
use serde_saphyr::Location;

use crate::lab::typed::Spanned;

use super::values::{self, INTERFACE_RULE};
use super::{pos, unknown_hint, Problems};
use crate::lab::impairment::{Impairment, RawImpair, Syntax, Value, KEYS};
use crate::lab::model::{DatalinkKind, Endpoint, Host, Link, Node, Vxlan};
use crate::lab::raw::{RawEndpoint, RawLink, RawVxlan};

/// What the earlier endpoints claimed, to report reuse: the endpoint's
/// label and where it was written.
#[derive(Default)]
struct Claimed {
    interfaces: HashMap<(String, String), Location>,
    addresses: HashMap<Ipv4Addr, (String, Location)>,
    macs: HashMap<MacAddr, (String, Location)>,
    /// The VNIs given, with the link's number.
    vnis: HashMap<u32, (usize, Location)>,
}

/// `hosts` are the valid hosts, `None` without `hosts:`.
pub(super) fn resolve(
    raw: &[Spanned<RawLink>],
    nodes: &[Node],
    hosts: Option<&[Host]>,
    problems: &mut Problems,
) -> Vec<Link> {
    let mut claimed = Claimed::default();
    let by_name: HashMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut links = Vec::new();
    for (index, link) in raw.iter().enumerate() {
        let context = LinkContext {
            number: index + 1,
            link: &link.value,
            nodes,
            by_name: &by_name,
            hosts,
        };
        if let Some(link) = context.resolve(&mut claimed, problems) {
            links.push(link);
        }
    }
    links
}

struct LinkContext<'a> {
    number: usize,
    link: &'a RawLink,
    /// In file order, for hints.
    nodes: &'a [Node],
    by_name: &'a HashMap<&'a str, &'a Node>,
    hosts: Option<&'a [Host]>,
}

/// One endpoint as written, before its checks.
struct Written<'a> {
    node: &'a str,
    node_at: Location,
    interface: &'a str,
    interface_at: Location,
    ipv4: Option<&'a Spanned<String>>,
    mac: Option<&'a Spanned<String>>,
    datalink: Option<DatalinkKind>,
    impair: Option<&'a Spanned<RawImpair>>,
}

/// An `impair` mapping read: its impairment, and where each of its keys
/// was written (indexed as [`KEYS`]), for the problems only the
/// endpoint's whole impairment shows.
#[derive(Clone, Copy, Default)]
struct Read {
    impairment: Impairment,
    at: [Option<Location>; KEYS.len()],
}

impl Read {
    fn of(raw: &RawImpair, whose: &str, problems: &mut Problems) -> Read {
        let mut read = Read::default();
        for (n, key) in KEYS.iter().enumerate() {
            let Some(text) = (key.written)(raw) else {
                continue;
            };
            match parse(key.syntax, &text.value) {
                Ok(value) => {
                    (key.set)(&mut read.impairment, value);
                    read.at[n] = Some(pos(text));
                }
                Err(why) => problems.at(
                    pos(text),
                    format!("{} {:?} of {whose} {why}", key.name, text.value),
                ),
            }
        }
        read
    }

    /// `self`, with `over`'s keys in their place where `over` has them.
    fn under(self, over: Read) -> Read {
        Read {
            impairment: self.impairment.under(&over.impairment),
            at: std::array::from_fn(|n| over.at[n].or(self.at[n])),
        }
    }

    /// The impairment of one direction; what one key needs of another is
    /// reported once at the key, even when it applies to both ends.
    fn model(self, problems: &mut Problems) -> Option<Impairment> {
        for (name, why) in self.impairment.missing() {
            let at = KEYS
                .iter()
                .position(|k| k.name == name)
                .and_then(|n| self.at[n]);
            if let Some(at) = at {
                problems.at(at, why);
            }
        }
        (!self.impairment.is_empty()).then_some(self.impairment)
    }
}

/// A value of `impair` in its syntax.
fn parse(syntax: Syntax, text: &str) -> Result<Value, String> {
    match syntax {
        Syntax::Rate => values::parse_rate(text).map(Value::Rate),
        Syntax::Fraction => values::parse_loss(text).map(Value::Fraction),
        Syntax::Duration => values::parse_delay(text).map(Value::Duration),
    }
}

impl LinkContext<'_> {
    fn resolve(&self, claimed: &mut Claimed, problems: &mut Problems) -> Option<Link> {
        let n = self.number;
        self.check_address_list(problems);
        self.check_mtu(problems);
        let vxlan = self
            .link
            .vxlan
            .as_ref()
            .map(|raw| self.vxlan(&raw.value, claimed, problems));
        let impair = self
            .link
            .impair
            .as_ref()
            .map(|raw| Read::of(&raw.value, &format!("link {n}"), problems))
            .unwrap_or_default();
        // Missing endpoints were reported by the structural pass.
        let endpoints = self.link.endpoints.as_ref()?;
        if endpoints.value.len() != 2 {
            problems.at(
                pos(endpoints),
                format!(
                    "link {n} has {} endpoint{} (expected exactly 2: a veth pair has two ends)",
                    endpoints.value.len(),
                    if endpoints.value.len() == 1 { "" } else { "s" }
                ),
            );
        }

        let mut resolved = Vec::new();
        for (i, endpoint) in endpoints.value.iter().enumerate() {
            let endpoint = self
                .written(i, endpoint, problems)
                .and_then(|written| self.endpoint(written, impair, claimed, problems));
            resolved.push(endpoint);
        }
        let [Some(a), Some(b)] = <[Option<Endpoint>; 2]>::try_from(resolved).ok()? else {
            return None;
        };
        if (a.datalink == DatalinkKind::Netmap) != (b.datalink == DatalinkKind::Netmap) {
            problems.at(
                pos(endpoints),
                format!(
                    "link {n} uses netmap on one end only ({} is {}, {} is {}): a veth pair is \
                     one link, and native netmap passes frames only when both of its ends are \
                     opened in netmap mode (set datalink: netmap on both ends, or on neither)",
                    a.label(),
                    a.datalink,
                    b.label(),
                    b.datalink
                ),
            );
        }
        self.check_hosts(&a, &b, problems);
        Some(Link {
            endpoints: [a, b],
            mtu: self.link.mtu.as_ref().map(|m| m.value),
            vxlan,
        })
    }

    /// `vxlan`'s values in range, a VNI not given twice.
    fn vxlan(&self, raw: &RawVxlan, claimed: &mut Claimed, problems: &mut Problems) -> Vxlan {
        let n = self.number;
        let vni = raw.vni.as_ref().and_then(|vni| {
            if !(1..=16_777_215).contains(&vni.value) {
                problems.at(
                    pos(vni),
                    format!(
                        "invalid vni {} in link {n} (expected 1 to 16777215: VXLAN's network \
                         identifier has 24 bits)",
                        vni.value
                    ),
                );
                return None;
            }
            if let Some((other, at)) = claimed.vnis.get(&vni.value) {
                problems.at(
                    pos(vni),
                    format!(
                        "vni {} of link {n} is already used by link {other} (line {}); each \
                         VXLAN link needs its own",
                        vni.value,
                        at.line()
                    ),
                );
                return None;
            }
            claimed.vnis.insert(vni.value, (n, pos(vni)));
            Some(vni.value)
        });
        let port = raw.port.as_ref().and_then(|port| {
            let valid = u16::try_from(port.value).ok().filter(|p| *p > 0);
            if valid.is_none() {
                problems.at(
                    pos(port),
                    format!(
                        "invalid vxlan port {} in link {n} (expected 1 to 65535)",
                        port.value
                    ),
                );
            }
            valid
        });
        Vxlan { vni, port }
    }

    /// `vxlan` only on a link across two hosts, whose underlays are of one
    /// IP version.
    fn check_hosts(&self, a: &Endpoint, b: &Endpoint, problems: &mut Problems) {
        let n = self.number;
        let host_of = |end: &Endpoint| {
            let name = self.by_name.get(end.node.as_str())?.host.as_deref()?;
            Some(name)
        };
        let (host_a, host_b) = (host_of(a), host_of(b));
        if let Some(raw) = &self.link.vxlan {
            let why = match (self.hosts, host_a, host_b) {
                (None, _, _) => Some("the lab has no hosts".to_owned()),
                (Some(_), Some(x), Some(y)) if x == y => {
                    Some(format!("both its ends are on host {x:?}"))
                }
                // A node without a valid host was reported with the nodes.
                _ => None,
            };
            if let Some(why) = why {
                problems.at(
                    pos(raw),
                    format!(
                        "link {n} has vxlan, but {why} (a link on one host is a veth pair, \
                         not a VXLAN tunnel: remove vxlan)"
                    ),
                );
            }
        }
        let find = |name: Option<&str>| {
            let name = name?;
            self.hosts?.iter().find(|h| h.name == name)
        };
        if let (Some(x), Some(y)) = (find(host_a), find(host_b)) {
            if x.underlay.is_ipv4() != y.underlay.is_ipv4() {
                let endpoints = self.link.endpoints.as_ref().map_or(Location::UNKNOWN, pos);
                problems.at(
                    endpoints,
                    format!(
                        "link {n} joins host {:?} (underlay {}) and host {:?} (underlay {}): a \
                         VXLAN tunnel runs over one IP version (give both hosts underlays of one \
                         version)",
                        x.name, x.underlay, y.name, y.underlay
                    ),
                );
            }
        }
    }

    fn check_mtu(&self, problems: &mut Problems) {
        if let Some(mtu) = &self.link.mtu {
            if !(68..=65535).contains(&mtu.value) {
                problems.at(
                    pos(mtu),
                    format!(
                        "invalid mtu {} in link {} (expected 68 to 65535)",
                        mtu.value, self.number
                    ),
                );
            }
        }
    }

    /// The link-level `ipv4` list: two entries, for brief endpoints only.
    fn check_address_list(&self, problems: &mut Problems) {
        let n = self.number;
        let Some(list) = &self.link.ipv4 else {
            return;
        };
        if list.value.len() != 2 {
            problems.at(
                pos(list),
                format!(
                    "link {n} lists {} ipv4 address{} (expected 2: one per endpoint, in the same \
                     order)",
                    list.value.len(),
                    if list.value.len() == 1 { "" } else { "es" }
                ),
            );
        }
        let endpoints = self.link.endpoints.iter().flat_map(|e| e.value.iter());
        for (i, endpoint) in endpoints.enumerate() {
            if matches!(endpoint.value, RawEndpoint::Extended(_)) {
                problems.at(
                    pos(list),
                    format!(
                        "link {n} lists ipv4 addresses, but endpoint {} is a mapping (give it \
                         its own ipv4 key; the link's list is for \"node:interface\" endpoints)",
                        i + 1
                    ),
                );
            }
        }
    }

    /// Reads one endpoint in either form; `None` (reported) when its node
    /// and interface cannot be told.
    fn written<'a>(
        &'a self,
        index: usize,
        endpoint: &'a Spanned<RawEndpoint>,
        problems: &mut Problems,
    ) -> Option<Written<'a>> {
        match &endpoint.value {
            RawEndpoint::Brief(text) => {
                // Split at the first ':'; one in the interface is reported
                // by the interface name check.
                let Some((node, interface)) =
                    text.split_once(':').filter(|(node, _)| !node.is_empty())
                else {
                    problems.at(
                        pos(endpoint),
                        format!(
                            "invalid endpoint {text:?} in link {} (expected \"node:interface\", \
                             such as \"pinger:eth1\")",
                            self.number
                        ),
                    );
                    return None;
                };
                Some(Written {
                    node,
                    node_at: pos(endpoint),
                    interface,
                    interface_at: pos(endpoint),
                    ipv4: self
                        .link
                        .ipv4
                        .as_ref()
                        .and_then(|list| list.value.get(index)),
                    mac: None,
                    datalink: None,
                    impair: None,
                })
            }
            // A missing node or interface was reported by the structural
            // pass.
            RawEndpoint::Extended(map) => Some(Written {
                node: &map.node.as_ref()?.value,
                node_at: pos(map.node.as_ref()?),
                interface: &map.interface.as_ref()?.value,
                interface_at: pos(map.interface.as_ref()?),
                ipv4: map.ipv4.as_ref(),
                mac: map.mac.as_ref(),
                datalink: map.datalink.as_ref().map(|d| d.value),
                impair: map.impair.as_ref(),
            }),
        }
    }

    /// Checks one endpoint against the nodes and what earlier endpoints
    /// claimed; `None` when its node is unknown (after checking the rest).
    fn endpoint(
        &self,
        written: Written<'_>,
        link_impair: Read,
        claimed: &mut Claimed,
        problems: &mut Problems,
    ) -> Option<Endpoint> {
        let n = self.number;
        let node = self.by_name.get(written.node);
        // With no nodes at all, that one problem is reported instead.
        if node.is_none() && !self.nodes.is_empty() {
            problems.at(
                written.node_at,
                format!(
                    "link {n} names unknown node {:?} ({})",
                    written.node,
                    unknown_hint(written.node, self.nodes.iter().map(|n| n.name.as_str()))
                ),
            );
        }
        if let Some(why) = values::interface_problem(written.interface) {
            problems.at(
                written.interface_at,
                format!(
                    "invalid interface name {:?} in link {n}: {why} (expected {INTERFACE_RULE})",
                    written.interface
                ),
            );
        }
        claimed.interface(&written, problems);
        let ipv4 = written
            .ipv4
            .and_then(|text| claimed.address(&written, text, problems));
        let mac = written
            .mac
            .and_then(|text| claimed.mac(&written, text, problems));
        let label = written.label();
        let own = written
            .impair
            .map(|raw| Read::of(&raw.value, &format!("endpoint {label}"), problems))
            .unwrap_or_default();
        let impair = link_impair.under(own).model(problems);
        Some(Endpoint {
            node: written.node.to_owned(),
            interface: written.interface.to_owned(),
            ipv4,
            mac,
            datalink: written.datalink.unwrap_or(node?.datalink),
            impair,
        })
    }
}

impl Written<'_> {
    /// `node:interface`, the way messages name an endpoint.
    fn label(&self) -> String {
        format!("{}:{}", self.node, self.interface)
    }
}

impl Claimed {
    /// An interface is one end of one link.
    fn interface(&mut self, written: &Written<'_>, problems: &mut Problems) {
        let key = (written.node.to_owned(), written.interface.to_owned());
        match self.interfaces.get(&key) {
            Some(first) => problems.at(
                written.interface_at,
                format!(
                    "interface {} is used twice (first at line {}, column {}; an interface is \
                     one end of one link)",
                    written.label(),
                    first.line(),
                    first.column()
                ),
            ),
            None => {
                self.interfaces.insert(key, written.interface_at);
            }
        }
    }

    /// A valid host address, not used by an earlier endpoint.
    fn address(
        &mut self,
        written: &Written<'_>,
        text: &Spanned<String>,
        problems: &mut Problems,
    ) -> Option<Ipv4Net> {
        let label = written.label();
        let net = values::parse_ipv4(&text.value)
            .map_err(|why| {
                problems.at(pos(text), format!("ipv4 {:?} of {label} {why}", text.value))
            })
            .ok()?;
        match self.addresses.get(&net.addr()) {
            Some((other, at)) => problems.at(
                pos(text),
                format!(
                    "address {} of {label} is already used by {other} (line {}); each \
                     interface needs its own",
                    net.addr(),
                    at.line()
                ),
            ),
            None => {
                self.addresses.insert(net.addr(), (label, pos(text)));
            }
        }
        Some(net)
    }

    /// A valid unicast MAC, not used by an earlier endpoint.
    fn mac(
        &mut self,
        written: &Written<'_>,
        text: &Spanned<String>,
        problems: &mut Problems,
    ) -> Option<MacAddr> {
        let label = written.label();
        let mac = values::parse_mac(&text.value)
            .map_err(|why| problems.at(pos(text), format!("mac {:?} of {label} {why}", text.value)))
            .ok()?;
        match self.macs.get(&mac) {
            Some((other, at)) => problems.at(
                pos(text),
                format!(
                    "mac {mac} of {label} is already used by {other} (line {}); each interface \
                     needs its own",
                    at.line()
                ),
            ),
            None => {
                self.macs.insert(mac, (label, pos(text)));
            }
        }
        Some(mac)
    }
}
