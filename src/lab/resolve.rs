//! From the raw file to the validated [`Lab`]: every check, every problem
//! gathered before giving up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;
use regex::Regex;
use serde_saphyr::{Location, Spanned};

use super::error::Problem;
use super::model::*;
use super::raw::*;

/// Collects problems with their positions.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn at(&mut self, loc: Location, message: impl Into<String>) {
        self.0.push(Problem {
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
        });
    }
}

fn pos<T>(s: &Spanned<T>) -> Location {
    s.referenced
}

const NAME_RULE: &str = "[a-z0-9][a-z0-9-]{0,19}";

fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 20
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Linux's rules for interface names, plus `=` and `:` which the
/// environment variables and the brief endpoint form reserve.
fn interface_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        Some("must be 1 to 15 bytes long")
    } else if name == "." || name == ".." {
        Some("must not be \".\" or \"..\"")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '=' || c.is_whitespace())
    {
        Some("must not contain '/', ':', '=' or whitespace")
    } else {
        None
    }
}

pub(super) fn resolve(raw: RawLab, file: &Path) -> Result<Lab, Vec<Problem>> {
    let mut problems = Problems::default();

    if !is_valid_name(&raw.name.value) {
        problems.at(
            pos(&raw.name),
            format!(
                "invalid lab name {:?} (expected {NAME_RULE})",
                raw.name.value
            ),
        );
    }
    let lab_datalink = raw
        .datalink
        .as_ref()
        .map(|d| d.value)
        .unwrap_or(DatalinkKind::AfPacket);

    let nodes = resolve_nodes(&raw, lab_datalink, &mut problems);
    let links = resolve_links(&raw, &nodes, &mut problems);
    let steps = resolve_steps(&raw, &nodes, &mut problems);

    if !problems.0.is_empty() {
        problems.0.sort_by_key(|p| (p.line, p.column));
        return Err(problems.0);
    }
    Ok(Lab {
        name: raw.name.value,
        description: raw.description,
        file: file.to_owned(),
        datalink: lab_datalink,
        nodes,
        links,
        steps,
    })
}

fn resolve_nodes(raw: &RawLab, lab_datalink: DatalinkKind, problems: &mut Problems) -> Vec<Node> {
    let mut seen = HashSet::new();
    let mut nodes = Vec::new();
    for (name, node) in &raw.nodes {
        if !is_valid_name(&name.value) {
            problems.at(
                pos(name),
                format!("invalid node name {:?} (expected {NAME_RULE})", name.value),
            );
        }
        if !seen.insert(name.value.clone()) {
            problems.at(pos(name), format!("node {:?} is defined twice", name.value));
            continue;
        }
        let node = node.as_ref();
        nodes.push(Node {
            name: name.value.clone(),
            image: node.and_then(|n| n.image.as_ref()).map(|i| i.value.clone()),
            datalink: node
                .and_then(|n| n.datalink.as_ref())
                .map(|d| d.value)
                .unwrap_or(lab_datalink),
            env: node.map(|n| n.env.clone()).unwrap_or_default(),
            sysctls: node.map(|n| n.sysctls.clone()).unwrap_or_default(),
        });
    }
    nodes
}

fn resolve_links(raw: &RawLab, nodes: &[Node], problems: &mut Problems) -> Vec<Link> {
    let node_datalink: HashMap<&str, DatalinkKind> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.datalink))
        .collect();
    // (node, interface) -> where it was first used; address -> endpoint.
    let mut interfaces: HashMap<(String, String), Location> = HashMap::new();
    let mut addresses: HashMap<std::net::Ipv4Addr, String> = HashMap::new();
    let mut links = Vec::new();

    for link in &raw.links {
        let at = pos(link);
        let link = &link.value;
        if link.endpoints.len() != 2 {
            problems.at(
                at,
                format!(
                    "a link has exactly 2 endpoints, found {} (a veth pair has two ends)",
                    link.endpoints.len()
                ),
            );
            continue;
        }
        if !link.ipv4.is_empty() && link.ipv4.len() != 2 {
            problems.at(
                pos(&link.ipv4[0]),
                format!(
                    "ipv4 lists one address per endpoint: expected 2, found {}",
                    link.ipv4.len()
                ),
            );
        }
        if let Some(mtu) = &link.mtu {
            if !(68..=65535).contains(&mtu.value) {
                problems.at(
                    pos(mtu),
                    format!("invalid mtu {} (expected 68 to 65535)", mtu.value),
                );
            }
        }

        let mut endpoints = Vec::new();
        for (i, ep) in link.endpoints.iter().enumerate() {
            let ep_at = pos(ep);
            let (node, interface, ipv4, ipv4_at, mac, datalink) = match &ep.value {
                RawEndpoint::Brief(s) => {
                    let Some((node, iface)) = s.split_once(':') else {
                        problems.at(
                            ep_at,
                            format!("invalid endpoint {s:?} (expected \"node:interface\")"),
                        );
                        continue;
                    };
                    let ipv4 = link.ipv4.get(i);
                    (
                        node.to_owned(),
                        iface.to_owned(),
                        ipv4.map(|a| a.value.clone()),
                        ipv4.map(pos).unwrap_or(ep_at),
                        None,
                        None,
                    )
                }
                RawEndpoint::Extended(m) => {
                    if !link.ipv4.is_empty() {
                        problems.at(
                            ep_at,
                            "this endpoint is a mapping: give its address as its own ipv4 key, \
                             not in the link's ipv4 list",
                        );
                    }
                    (
                        m.node.clone(),
                        m.interface.clone(),
                        m.ipv4.clone(),
                        ep_at,
                        m.mac.clone(),
                        m.datalink,
                    )
                }
            };

            let Some(node_default) = node_datalink.get(node.as_str()).copied() else {
                problems.at(
                    ep_at,
                    format!("endpoint names unknown node {node:?} (not in nodes)"),
                );
                continue;
            };
            if let Some(why) = interface_name_problem(&interface) {
                problems.at(
                    ep_at,
                    format!("invalid interface name {interface:?}: {why}"),
                );
            }
            if let Some(first) = interfaces.insert((node.clone(), interface.clone()), ep_at) {
                problems.at(
                    ep_at,
                    format!(
                        "interface {node}:{interface} is used twice (first at line {})",
                        first.line()
                    ),
                );
            }
            let ipv4 = ipv4.and_then(|a| match a.parse::<Ipv4Net>() {
                Ok(net) => {
                    if let Some(other) = addresses.insert(net.addr(), format!("{node}:{interface}"))
                    {
                        problems.at(
                            ipv4_at,
                            format!("address {} is also used by {other}", net.addr()),
                        );
                    }
                    Some(net)
                }
                Err(_) => {
                    problems.at(
                        ipv4_at,
                        format!(
                            "invalid ipv4 {a:?} (expected a CIDR address such as 198.18.0.1/24)"
                        ),
                    );
                    None
                }
            });
            let mac = mac.and_then(|m| match m.parse::<MacAddr>() {
                Ok(mac) if mac.0 & 1 == 0 => Some(mac),
                Ok(_) => {
                    problems.at(ep_at, format!("mac {m} is a multicast address (expected unicast, e.g. 02:00:00:00:01:01)"));
                    None
                }
                Err(_) => {
                    problems.at(ep_at, format!("invalid mac {m:?} (expected six hex bytes, e.g. 02:00:00:00:01:01)"));
                    None
                }
            });
            endpoints.push(Endpoint {
                node,
                interface,
                ipv4,
                mac,
                datalink: datalink.unwrap_or(node_default),
            });
        }

        let Ok([a, b]) = <[Endpoint; 2]>::try_from(endpoints) else {
            continue;
        };
        if (a.datalink == DatalinkKind::Netmap) != (b.datalink == DatalinkKind::Netmap) {
            problems.at(
                at,
                format!(
                    "link {} <-> {} uses netmap on one end only ({} is {}, {} is {}): a veth pair is \
                     one link, and native netmap passes frames only when both ends are opened in \
                     netmap mode; set datalink: netmap on both ends",
                    a.label(),
                    b.label(),
                    a.label(),
                    a.datalink,
                    b.label(),
                    b.datalink
                ),
            );
        }
        links.push(Link {
            endpoints: [a, b],
            mtu: link.mtu.as_ref().map(|m| m.value),
        });
    }
    links
}

fn resolve_steps(raw: &RawLab, nodes: &[Node], problems: &mut Problems) -> Vec<Step> {
    let node_names: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    // name -> is background
    let mut earlier: BTreeMap<String, bool> = BTreeMap::new();
    let mut steps = Vec::new();

    for step in &raw.steps {
        let at = pos(step);
        let s = &step.value;
        let name = s.name.value.clone();
        if earlier.contains_key(&name) {
            problems.at(pos(&s.name), format!("step name {name:?} is used twice"));
        }

        let timeout = match &s.timeout {
            None => DEFAULT_STEP_TIMEOUT,
            Some(t) => match humantime::parse_duration(&t.value) {
                Ok(d) if d > Duration::ZERO => d,
                _ => {
                    problems.at(
                        pos(t),
                        format!(
                            "invalid timeout {:?} (expected a duration such as 200ms, 10s, 2m)",
                            t.value
                        ),
                    );
                    DEFAULT_STEP_TIMEOUT
                }
            },
        };

        let action = match (&s.exec, &s.wait) {
            (Some(_), Some(_)) | (None, None) => {
                problems.at(
                    at,
                    format!("step {name:?} needs exactly one of exec or wait"),
                );
                None
            }
            (Some(argv), None) => {
                match &s.node {
                    None => {
                        problems.at(at, format!("step {name:?} runs a command: it needs a node"))
                    }
                    Some(n) if !node_names.contains(n.value.as_str()) => problems.at(
                        pos(n),
                        format!(
                            "step {name:?} names unknown node {:?} (not in nodes)",
                            n.value
                        ),
                    ),
                    Some(_) => {}
                }
                if argv.is_empty() {
                    problems.at(
                        at,
                        format!("step {name:?} has an empty exec (expected [program, args...])"),
                    );
                }
                let ready = s.ready.as_ref().and_then(|r| {
                    if !s.background {
                        problems.at(
                            pos(r),
                            "ready applies to background steps only (add background: true)",
                        );
                    }
                    compile(r, problems)
                });
                s.node.as_ref().map(|n| Action::Exec {
                    node: n.value.clone(),
                    argv: argv.clone(),
                    background: s.background,
                    ready,
                })
            }
            (None, Some(target)) => {
                match earlier.get(&target.value) {
                    None => problems.at(
                        pos(target),
                        format!(
                            "wait names {:?}, which is not an earlier step",
                            target.value
                        ),
                    ),
                    Some(false) => problems.at(
                        pos(target),
                        format!(
                            "wait names {:?}, which is not a background step",
                            target.value
                        ),
                    ),
                    Some(true) => {}
                }
                Some(Action::Wait {
                    step: target.value.clone(),
                })
            }
        };

        let expect = s
            .expect
            .as_ref()
            .map(|e| Expect {
                exit: e.exit.unwrap_or(0),
                stdout: checks(&e.stdout, problems),
                stderr: checks(&e.stderr, problems),
            })
            .unwrap_or_default();

        earlier.insert(name.clone(), s.background);
        if let Some(action) = action {
            steps.push(Step {
                name,
                action,
                timeout,
                expect,
            });
        }
    }
    steps
}

fn compile(pattern: &Spanned<String>, problems: &mut Problems) -> Option<Regex> {
    match Regex::new(&pattern.value) {
        Ok(re) => Some(re),
        Err(e) => {
            let why = e.to_string();
            let last = why.lines().last().unwrap_or("invalid").trim().to_owned();
            problems.at(
                pos(pattern),
                format!("invalid regex {:?}: {last}", pattern.value),
            );
            None
        }
    }
}

fn checks(raw: &[Spanned<RawCheck>], problems: &mut Problems) -> Vec<Check> {
    let mut out = Vec::new();
    for check in raw {
        let at = pos(check);
        let c = &check.value;
        let pattern = match (&c.matches, &c.contains) {
            (Some(re), None) => {
                let spanned = Spanned::new(re.clone(), at, at);
                compile(&spanned, problems).map(Pattern::Match)
            }
            (None, Some(s)) => {
                if c.count.is_some() {
                    problems.at(
                        at,
                        "count applies to match checks only (contains is a substring of the whole \
                         output; to count lines, use match with an escaped regex)",
                    );
                }
                Some(Pattern::Contains(s.clone()))
            }
            _ => {
                problems.at(at, "a check has exactly one of match or contains");
                None
            }
        };
        if let Some(pattern) = pattern {
            out.push(Check {
                pattern,
                count: c.count,
            });
        }
    }
    out
}
