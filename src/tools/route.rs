//! Where a tool sends a frame for a destination: the next hop, as the
//! node's kernel would choose it.
//!
//! The tools build their own frames, so they also do the host's part of
//! routing: read the node's IPv4 routing table (its main table, over
//! netlink, so a lab declares its routes once and every tool and the
//! kernel agree), take the longest prefix that leaves through the tool's
//! interface, and ARP for the route's gateway, or for the destination
//! itself when the route has none (a connected subnet).
//!
//! - [`next_hop`]: the whole thing for one interface and destination;
//!   `--gateway` overrides the table.
//! - [`lookup`]: the pure longest-prefix match over a dumped table.
//! - [`read_table`]: the dump.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;

use crate::tools::iface::Interface;

mod netlink;

pub use netlink::{parse_reply, read_table};

/// What a route does with what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// Sent on, directly or through a gateway.
    Unicast,
    /// Refused: `blackhole`, `unreachable` or `prohibit` routes. A longer
    /// refusing prefix wins over a shorter route out of any interface, as
    /// in the kernel.
    Reject(&'static str),
}

/// One next hop of an IPv4 route of the main table (a multipath route gives
/// one per hop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    pub kind: RouteKind,
    /// `None` for a connected (on-link) route.
    pub gateway: Option<Ipv4Addr>,
    /// The interface index the route leaves by.
    pub oif: Option<u32>,
    /// The route's metric: lower wins among equal prefixes.
    pub metric: u32,
    /// The preferred source address (`src` in `ip route`).
    pub prefsrc: Option<Ipv4Addr>,
}

impl fmt::Display for Route {
    /// As `ip route` shows it, without the interface name: "default via
    /// 198.18.0.1", "198.18.0.0/24", "unreachable 198.18.9.0/24".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let RouteKind::Reject(kind) = self.kind {
            write!(f, "{kind} ")?;
        }
        if self.destination.prefix_len() == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        Ok(())
    }
}

/// Why there is no next hop.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(
        "no route to {destination} out of {iface}{elsewhere}: add a route for it \
         (the node's `routes` in the lab) or pass --gateway"
    )]
    NoRoute {
        destination: Ipv4Addr,
        iface: String,
        /// " (the best route, default via ..., leaves by another interface)"
        /// when there is one.
        elsewhere: String,
    },
    #[error("{destination} is refused by the route {route} on this node")]
    Rejected {
        destination: Ipv4Addr,
        route: String,
    },
    #[error("reading the routing table over netlink: {0}")]
    Netlink(#[source] std::io::Error),
}

/// Where to send frames for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// The final destination (the IPv4 destination of the frames).
    pub destination: Ipv4Addr,
    /// The address to ARP for: the gateway, or the destination itself when
    /// it is on the interface's link.
    pub address: Ipv4Addr,
    /// The gateway, when the destination is behind one.
    pub gateway: Option<Ipv4Addr>,
    /// The source address: the route's preferred source, else the
    /// interface's first IPv4 address; `None` when it has none (the tool's
    /// `--source` must then give one).
    pub source: Option<Ipv4Addr>,
    /// The interface's MAC, the Ethernet source of the frames.
    pub source_mac: MacAddr,
}

/// The next hop for `destination` out of `iface`: the gateway given
/// (`--gateway`, the table is then not read), else the node's routing
/// table's choice.
pub fn next_hop(
    iface: &Interface,
    destination: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) -> Result<NextHop, RouteError> {
    let (address, gateway, prefsrc) = match gateway {
        Some(gateway) => (gateway, Some(gateway), None),
        None => {
            let table = read_table()?;
            let route = lookup(&table, iface.index, destination)
                .map_err(|miss| miss.into_error(destination, &iface.name))?;
            let address = route.gateway.unwrap_or(destination);
            (address, route.gateway, route.prefsrc)
        }
    };
    Ok(NextHop {
        destination,
        address,
        gateway,
        source: prefsrc.or(iface.ipv4),
        source_mac: iface.mac,
    })
}

/// Why [`lookup`] found nothing to send by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No route out of the interface covers the destination; the best
    /// route out of another interface, if any.
    NoRoute { elsewhere: Option<Route> },
    /// The best match is a reject route.
    Rejected(Route),
}

impl Miss {
    fn into_error(self, destination: Ipv4Addr, iface: &str) -> RouteError {
        match self {
            Miss::NoRoute { elsewhere } => RouteError::NoRoute {
                destination,
                iface: iface.to_owned(),
                elsewhere: elsewhere
                    .map(|route| format!(" (the best route, {route}, leaves by another interface)"))
                    .unwrap_or_default(),
            },
            Miss::Rejected(route) => RouteError::Rejected {
                destination,
                route: route.to_string(),
            },
        }
    }
}

/// The route the kernel takes for `destination` from a socket bound to
/// interface `oif`: the longest prefix that covers it among the routes out
/// of `oif` (and reject routes, which bind no interface), the lowest
/// metric among equal prefixes, the first in table order after that.
pub fn lookup(routes: &[Route], oif: u32, destination: Ipv4Addr) -> Result<&Route, Miss> {
    let covering = || {
        routes
            .iter()
            .filter(|r| r.destination.contains(&destination))
    };
    let usable =
        covering().filter(|r| matches!(r.kind, RouteKind::Reject(_)) || r.oif == Some(oif));
    match best(usable) {
        Some(route) if route.kind == RouteKind::Unicast => Ok(route),
        Some(route) => Err(Miss::Rejected(route.clone())),
        None => Err(Miss::NoRoute {
            elsewhere: best(covering()).cloned(),
        }),
    }
}

/// The longest prefix, then the lowest metric, then the first.
fn best<'r>(candidates: impl Iterator<Item = &'r Route>) -> Option<&'r Route> {
    candidates.fold(None, |best, route| match best {
        Some(kept) if !wins_over(route, kept) => Some(kept),
        _ => Some(route),
    })
}

fn wins_over(route: &Route, other: &Route) -> bool {
    let (len, other_len) = (
        route.destination.prefix_len(),
        other.destination.prefix_len(),
    );
    len > other_len || (len == other_len && route.metric < other.metric)
}

#[cfg(test)]
mod tests;
