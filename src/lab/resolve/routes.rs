//! Routes: each node's, checked against the subnets of its own links.

use std::collections::HashMap;

use ipnet::Ipv4Net;
use serde_saphyr::Location;

use super::nodes::{self, RawNodes};
use super::values;
use super::{pos, Problems};
use crate::lab::model::{Link, Node, Route};

/// Checks every node's `routes` and fills in [`Node::routes`].
pub(super) fn resolve(
    raw: Option<&RawNodes>,
    nodes: &mut [Node],
    links: &[Link],
    problems: &mut Problems,
) {
    let Some(raw) = raw else {
        return;
    };
    for (name, node) in nodes::entries(raw) {
        let Some(list) = &node.routes else {
            continue;
        };
        let name = name.value.as_str();
        // The node's interfaces and their subnets, in file order.
        let interfaces: Vec<(&str, Option<Ipv4Net>)> = links
            .iter()
            .flat_map(|l| l.endpoints.iter())
            .filter(|e| e.node == name)
            .map(|e| (e.interface.as_str(), e.ipv4))
            .collect();
        if interfaces.is_empty() && !list.value.is_empty() {
            problems.at(
                pos(list),
                format!(
                    "node {name:?} has routes but no interfaces (a route leaves through one of \
                     the node's links: add a link to it, or remove routes)"
                ),
            );
            continue;
        }
        let mut routes = Vec::new();
        let mut seen: HashMap<Ipv4Net, Location> = HashMap::new();
        for (i, route) in list.value.iter().enumerate() {
            let which = format!("route {} of node {name:?}", i + 1);
            // A missing `to` or `via` was reported by the structural pass.
            let to = route.value.to.as_ref().and_then(|to| {
                values::parse_destination(&to.value)
                    .map_err(|why| {
                        problems.at(pos(to), format!("`to` {:?} of {which} {why}", to.value))
                    })
                    .ok()
                    .map(|net| (net, pos(to)))
            });
            let via = route.value.via.as_ref().and_then(|via| {
                let addr = values::parse_next_hop(&via.value)
                    .map_err(|why| {
                        problems.at(pos(via), format!("`via` {:?} of {which} {why}", via.value))
                    })
                    .ok()?;
                next_hop_interface(&which, addr, &interfaces)
                    .map_err(|why| problems.at(pos(via), why))
                    .ok()
                    .map(|interface| (addr, interface))
            });
            if let Some((net, at)) = to {
                if let Some(first) = seen.get(&net) {
                    problems.at(
                        at,
                        format!(
                            "{which} goes to {}, as the route at line {} does (one route per \
                             destination)",
                            shown(net),
                            first.line()
                        ),
                    );
                    continue;
                }
                seen.insert(net, at);
            }
            if let (Some((to, _)), Some((via, interface))) = (to, via) {
                routes.push(Route {
                    to,
                    via,
                    interface: interface.to_owned(),
                });
            }
        }
        if let Some(model) = nodes.iter_mut().find(|n| n.name == name) {
            model.routes = routes;
        }
    }
}

/// The interface whose subnet holds `via`, or why there is none.
fn next_hop_interface<'a>(
    which: &str,
    via: std::net::Ipv4Addr,
    interfaces: &[(&'a str, Option<Ipv4Net>)],
) -> Result<&'a str, String> {
    if let Some((interface, _)) = interfaces
        .iter()
        .find(|(_, net)| net.is_some_and(|n| n.addr() == via))
    {
        return Err(format!(
            "`via` {via} of {which} is the node's own address on {interface} (expected a \
             neighbour's address, such as a router's)"
        ));
    }
    if let Some((interface, _)) = interfaces
        .iter()
        .find(|(_, net)| net.is_some_and(|n| n.contains(&via)))
    {
        return Ok(interface);
    }
    let subnets: Vec<String> = interfaces
        .iter()
        .filter_map(|(interface, net)| net.map(|n| format!("{interface} {}", n.trunc())))
        .collect();
    Err(if subnets.is_empty() {
        format!(
            "`via` {via} of {which} is on none of the node's subnets: its interfaces have no \
             ipv4 addresses (a next hop is a neighbour on one of the node's links)"
        )
    } else {
        format!(
            "`via` {via} of {which} is on none of the node's subnets ({}; a next hop is a \
             neighbour on one of the node's links)",
            subnets.join(", ")
        )
    })
}

fn shown(net: Ipv4Net) -> String {
    if net.prefix_len() == 0 {
        "default".to_owned()
    } else {
        net.to_string()
    }
}
