//! [`Wiring`] on the kernel's rtnetlink.
//!
//! Each veth is created with both ends already in their nodes' namespaces
//! and under their final names: one RTM_NEWLINK from the host whose device
//! and peer carry IFLA_NET_NS_FD. Nothing of a lab ever exists in the host
//! namespace, so a crash or SIGKILL at any point cannot leave a veth on the
//! host: every end goes away with its container's namespace. (Creating on
//! the host under temporary names and moving the ends afterwards would open
//! such a window: the kernel ignores IFLA_IFALIAS in RTM_NEWLINK, so a pair
//! is unmarked until a second request.) Both ends are then marked with the
//! deploy's alias from inside, and `destroy` still sweeps host interfaces
//! by alias as a safety net.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use futures_util::{future, TryStreamExt};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use super::impair;
use super::namespace::Netns;
use super::{sysctl, LinkError, VethEnd, VethPlan, VxlanEnd, Wiring};

/// A veth's MTU when the link sets none.
const DEFAULT_MTU: u32 = 1500;

/// How long a VXLAN end's VNI and port may stay "in use" after the lab
/// that held them is gone (the kernel's namespace cleanup runs later).
const VXLAN_IN_USE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// ENODEV: the interface is already gone.
const NO_SUCH_DEVICE: i32 = libc::ENODEV;

/// [`Wiring`] through a netlink connection in the host namespace.
#[derive(Clone)]
pub struct Netlink {
    host: Handle,
}

impl Netlink {
    /// Opens a netlink connection in labctl's own namespace. Must be called
    /// inside a tokio runtime, which drives the connection.
    pub fn connect() -> Result<Self, LinkError> {
        let (connection, host, _) =
            rtnetlink::new_connection().map_err(LinkError::io("opening a netlink socket"))?;
        tokio::spawn(connection);
        Ok(Netlink { host })
    }

    /// Creates the VXLAN end `vxlan` from this (the host's) namespace
    /// directly inside the node's namespace `netns`, then configures it
    /// from inside as a veth end: alias, address, sysctls, up. On a failure
    /// after creation the device is deleted; whatever survives goes with
    /// the node.
    pub async fn wire_vxlan(&self, vxlan: &VxlanEnd, netns: &Path) -> Result<(), LinkError> {
        let netns = Netns::open(netns)?;
        let end = &vxlan.end;
        let mut device = LinkVxlan::new(&end.interface, vxlan.vni)
            .port(vxlan.port)
            .learning(false)
            .setns_by_fd(netns.fd())
            .mtu(vxlan.mtu.unwrap_or(DEFAULT_MTU));
        device = match (vxlan.local, vxlan.remote) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => device.local(local).remote(remote),
            (IpAddr::V6(local), IpAddr::V6(remote)) => device.local6(local).remote6(remote),
            _ => {
                return Err(LinkError::io(format!(
                    "creating the VXLAN end {}: underlay {} and {} are not of one family",
                    end.label(),
                    vxlan.local,
                    vxlan.remote
                ))(std::io::Error::from(
                    std::io::ErrorKind::InvalidInput,
                )))
            }
        };
        if let Some(mac) = end.mac {
            device = device.address(mac.to_vec());
        }
        // A lab torn down a moment ago may still hold this VNI and port:
        // the kernel deletes a removed node's VXLAN end as it cleans the
        // node's namespace up, after the container is gone (seen on a
        // loaded machine, one lab right after another). So "in use" is
        // asked again for a while before it is an answer.
        let message = device.build();
        let patience = std::time::Instant::now() + VXLAN_IN_USE_PATIENCE;
        let created = loop {
            match self.host.link().add(message.clone()).execute().await {
                Err(e) if is_errno(&e, libc::EEXIST) && std::time::Instant::now() < patience => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                created => break created,
            }
        };
        created.map_err(|e| {
            let doing = format!(
                "creating the VXLAN end {} (VNI {}, port {}, {} -> {})",
                end.label(),
                vxlan.vni,
                vxlan.port,
                vxlan.local,
                vxlan.remote
            );
            if is_errno(&e, libc::EEXIST) {
                LinkError::io(doing)(std::io::Error::other(
                    "that VNI and port are in use on this host (another lab or VXLAN device); \
                         give the link another `vxlan: { vni: ... }`",
                ))
            } else {
                LinkError::netlink(doing)(e)
            }
        })?;
        let configured = configure_end(end, &vxlan.alias, &netns).await;
        if configured.is_err() {
            let _ = delete_in(&netns, &end.interface).await;
        }
        configured
    }

    /// The interface of this namespace that holds `address`, and its MTU:
    /// a host's underlay; `None` when no interface holds it.
    pub async fn holder_of(&self, address: IpAddr) -> Result<Option<(String, u32)>, LinkError> {
        let addresses: Vec<AddressMessage> = self
            .host
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(LinkError::netlink("listing this host's addresses"))?;
        let index = addresses.iter().find_map(|message| {
            message
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(ip) if *ip == address))
                .then_some(message.header.index)
        });
        let Some(index) = index else {
            return Ok(None);
        };
        let links = host_links(&self.host).await?;
        Ok(links
            .iter()
            .find(|link| link.header.index == index)
            .map(|link| {
                let mtu = link
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::Mtu(mtu) => Some(*mtu),
                        _ => None,
                    })
                    .unwrap_or(DEFAULT_MTU);
                (link_name(link).unwrap_or_default(), mtu)
            }))
    }

    async fn create_pair(&self, plan: &VethPlan, netns: &[Netns; 2]) -> Result<(), LinkError> {
        let [a, b] = &plan.ends;
        let mut peer = LinkUnspec::new_with_name(&b.interface).setns_by_fd(netns[1].fd());
        let mut device = LinkVeth::new(&a.interface, &b.interface).setns_by_fd(netns[0].fd());
        if let Some(mtu) = plan.mtu {
            peer = peer.mtu(mtu);
            device = device.mtu(mtu);
        }
        if let Some(mac) = b.mac {
            peer = peer.address(mac.to_vec());
        }
        if let Some(mac) = a.mac {
            device = device.address(mac.to_vec());
        }
        let message = device
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        self.host
            .link()
            .add(message)
            .execute()
            .await
            .map_err(LinkError::netlink(format!(
                "creating the veth pair {}",
                plan.describe()
            )))
    }
}

impl Wiring for Netlink {
    async fn wire(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        let netns = [Netns::open(netns[0])?, Netns::open(netns[1])?];
        self.create_pair(plan, &netns).await?;
        let configured = future::try_join(
            configure_end(&plan.ends[0], &plan.alias, &netns[0]),
            configure_end(&plan.ends[1], &plan.alias, &netns[1]),
        )
        .await;
        if configured.is_err() {
            // Deleting one end deletes the pair. If this fails too, the
            // pair still goes with the containers.
            let _ = delete_in(&netns[0], &plan.ends[0].interface).await;
        }
        configured.map(|_| ())
    }

    async fn add_routes(
        &self,
        node: &str,
        routes: &[crate::lab::Route],
        netns: &Path,
    ) -> Result<(), LinkError> {
        if routes.is_empty() {
            return Ok(());
        }
        let netns = Netns::open(netns)?;
        let handle = netns.netlink().await?;
        for route in routes {
            let doing = format!(
                "adding the route to {} via {} on {node}:{}",
                route.to, route.via, route.interface
            );
            let index = index_of(&handle, &route.interface).await?.ok_or_else(|| {
                LinkError::io(doing.clone())(std::io::Error::from(std::io::ErrorKind::NotFound))
            })?;
            let message = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(route.to.addr(), route.to.prefix_len())
                .gateway(route.via)
                .output_interface(index)
                .build();
            handle
                .route()
                .add(message)
                .execute()
                .await
                .map_err(LinkError::netlink(doing))?;
        }
        Ok(())
    }

    async fn impair(&self, plan: &VethPlan, netns: [&Path; 2]) -> Result<(), LinkError> {
        for (end, netns) in plan.ends.iter().zip(netns) {
            impair_end(end, plan.mtu, netns).await?;
        }
        Ok(())
    }

    async fn remove_strays(
        &self,
        matches: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<String>, LinkError> {
        let links = host_links(&self.host).await?;
        let mut removed = Vec::new();
        for link in links {
            let alias = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfAlias(alias) => Some(alias.as_str()),
                _ => None,
            });
            if !alias.is_some_and(matches) {
                continue;
            }
            let name = link_name(&link).unwrap_or_default();
            match self.host.link().del(link.header.index).execute().await {
                Ok(()) => removed.push(name),
                Err(e) if is_errno(&e, NO_SUCH_DEVICE) => {}
                Err(e) => {
                    return Err(LinkError::netlink(format!("deleting stray veth {name}"))(e));
                }
            }
        }
        Ok(removed)
    }
}

/// Applies `end`'s `impair` to its interface inside the namespace `netns`
/// (a link of MTU `mtu`); nothing for an end without one.
pub async fn impair_end(end: &VethEnd, mtu: Option<u32>, netns: &Path) -> Result<(), LinkError> {
    let Some(impair) = &end.impair else {
        return Ok(());
    };
    let netns = Netns::open(netns)?;
    let handle = netns.netlink().await?;
    let index = index_of(&handle, &end.interface).await?.ok_or_else(|| {
        LinkError::io(format!("impairing {}: no such interface", end.label()))(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    impair::apply(
        &handle,
        index,
        &end.label(),
        mtu.unwrap_or(DEFAULT_MTU),
        impair,
    )
    .await
}

/// How often a dump of the host's links is taken again when the kernel
/// says it was interrupted.
const DUMP_TRIES: usize = 5;

/// Every link of the host. The kernel fails a dump with EBUSY when links
/// come and go while it runs (other labs deploying or tearing down at the
/// same time, measured under `labctl run --jobs 3`): that dump is taken
/// again rather than failing a teardown.
async fn host_links(host: &Handle) -> Result<Vec<LinkMessage>, LinkError> {
    let mut tries = 1;
    loop {
        match host.link().get().execute().try_collect().await {
            Ok(links) => return Ok(links),
            Err(e) if is_errno(&e, libc::EBUSY) && tries < DUMP_TRIES => tries += 1,
            Err(e) => return Err(LinkError::netlink("listing the host's interfaces")(e)),
        }
    }
}

/// Inside the node: alias, address, interface sysctls, then up, so the
/// interface comes up already configured.
async fn configure_end(end: &VethEnd, alias: &str, netns: &Netns) -> Result<(), LinkError> {
    let handle = netns.netlink().await?;
    let doing = |what: &str| format!("{what} on {}", end.label());
    let index = index_of(&handle, &end.interface).await?.ok_or_else(|| {
        LinkError::io(doing("finding the new interface"))(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ))
    })?;
    if let Some(net) = end.ipv4 {
        handle
            .address()
            .add(index, IpAddr::V4(net.addr()), net.prefix_len())
            .execute()
            .await
            .map_err(LinkError::netlink(doing(&format!("adding address {net}"))))?;
    }
    if !end.sysctls.is_empty() {
        write_sysctls(end, netns).await?;
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).alias(alias).up().build())
        .execute()
        .await
        .map_err(LinkError::netlink(doing("bringing the interface up")))
}

async fn write_sysctls(end: &VethEnd, netns: &Netns) -> Result<(), LinkError> {
    let iface = end.interface.clone();
    let sysctls = end.sysctls.clone();
    let doing = format!("setting the sysctls of {}", end.label());
    netns
        .run(&doing.clone(), move || {
            for (key, value) in &sysctls {
                let path = sysctl::proc_path(key, &iface).ok_or_else(|| {
                    LinkError::io(format!("{doing}: {key}"))(std::io::Error::from(
                        std::io::ErrorKind::InvalidInput,
                    ))
                })?;
                std::fs::write(&path, value)
                    .map_err(LinkError::io(format!("{doing}: writing {key}={value}")))?;
            }
            Ok(())
        })
        .await
}

async fn delete_in(netns: &Netns, name: &str) -> Result<(), LinkError> {
    let handle = netns.netlink().await?;
    if let Some(index) = index_of(&handle, name).await? {
        handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(LinkError::netlink(format!("deleting {name}")))?;
    }
    Ok(())
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>, LinkError> {
    let found = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await;
    match found {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(e) if is_errno(&e, NO_SUCH_DEVICE) => Ok(None),
        Err(e) => Err(LinkError::netlink(format!("looking up interface {name}"))(
            e,
        )),
    }
}

/// The index and MTU of interface `name` in `handle`'s namespace, `None`
/// when it is not there.
pub(crate) async fn link_of(handle: &Handle, name: &str) -> Result<Option<(u32, u32)>, LinkError> {
    let found = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await;
    match found {
        Ok(link) => Ok(link.map(|l| {
            let mtu = l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            });
            (l.header.index, mtu.unwrap_or(DEFAULT_MTU))
        })),
        Err(e) if is_errno(&e, NO_SUCH_DEVICE) => Ok(None),
        Err(e) => Err(LinkError::netlink(format!("looking up interface {name}"))(
            e,
        )),
    }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(msg) => {
            msg.raw_code().unsigned_abs() == errno.unsigned_abs()
        }
        _ => false,
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// One interface as it is inside a node right now (`inspect`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LiveInterface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// The kernel's operational state (up, down, lowerlayerdown, ...).
    pub state: String,
    /// Every address, IPv4 and IPv6, as `addr/prefix`.
    pub addresses: Vec<String>,
}

/// The interfaces in the namespace at `netns` (see [`Netns::open`]), but
/// `lo`, sorted by name.
pub async fn interfaces_in(netns: &Path) -> Result<Vec<LiveInterface>, LinkError> {
    let doing = format!("listing the interfaces in {}", netns.display());
    let netns = Netns::open(netns)?;
    let handle = netns.netlink().await?;
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(LinkError::netlink(doing.clone()))?;
    let addresses: Vec<AddressMessage> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(LinkError::netlink(doing))?;
    Ok(live_interfaces(links, addresses))
}

/// The interfaces a link dump and an address dump describe, but `lo`,
/// sorted by name. The dumps come from a node's namespace, where whoever
/// runs in the node chose the names and addresses: any messages give an
/// answer (the fuzz target `netlink` feeds it any).
pub fn live_interfaces(
    links: Vec<LinkMessage>,
    addresses: Vec<AddressMessage>,
) -> Vec<LiveInterface> {
    let mut by_index: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for address in addresses {
        let ip = address.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        if let Some(ip) = ip {
            by_index
                .entry(address.header.index)
                .or_default()
                .push(format!("{ip}/{}", address.header.prefix_len));
        }
    }
    let mut found: Vec<LiveInterface> = links
        .into_iter()
        .filter_map(|link| {
            let name = link_name(&link)?;
            (name != "lo").then(|| live_interface(link, name, &mut by_index))
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn live_interface(
    link: LinkMessage,
    name: String,
    addresses: &mut BTreeMap<u32, Vec<String>>,
) -> LiveInterface {
    let mut live = LiveInterface {
        name,
        mac: None,
        mtu: None,
        up: link.header.flags.contains(LinkFlags::Up),
        state: "unknown".into(),
        addresses: addresses.remove(&link.header.index).unwrap_or_default(),
    };
    for attribute in link.attributes {
        match attribute {
            LinkAttribute::Address(mac) => {
                live.mac = Some(
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                )
            }
            LinkAttribute::Mtu(mtu) => live.mtu = Some(mtu),
            LinkAttribute::OperState(state) => live.state = state.to_string().to_lowercase(),
            _ => {}
        }
    }
    live
}

/// Sets `interface` in the namespace `netns` down or up: a link fault
/// injected mid-run (a link-state step). Setting one end of a veth down
/// takes the carrier of the other end with it, as unplugging a cable would.
pub async fn set_link_state(netns: &Path, interface: &str, up: bool) -> Result<(), LinkError> {
    let netns = Netns::open(netns)?;
    let handle = netns.netlink().await?;
    let state = if up { "up" } else { "down" };
    let index = index_of(&handle, interface).await?.ok_or_else(|| {
        LinkError::io(format!("setting {interface} {state}: no such interface"))(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    let message = LinkUnspec::new_with_index(index);
    let message = if up { message.up() } else { message.down() };
    handle
        .link()
        .set(message.build())
        .execute()
        .await
        .map_err(LinkError::netlink(format!("setting {interface} {state}")))
}
