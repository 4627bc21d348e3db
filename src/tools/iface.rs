//! The interface a tool runs on, as the kernel knows it: index, MAC and
//! first IPv4 address. Every datalink uses a kernel interface name, so this
//! works the same under AF_PACKET, AF_XDP and netmap.

use std::net::{IpAddr, Ipv4Addr};

use pnet::datalink;
use pnet::util::MacAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: MacAddr,
    /// The first IPv4 address, if it has one.
    pub ipv4: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfaceError {
    #[error("no interface named {0:?} in this network namespace (see `ip link`)")]
    NotFound(String),
    #[error("interface {0} has no MAC address: the tools need an Ethernet interface")]
    NoMac(String),
}

/// Finds `name` among this network namespace's interfaces.
pub fn lookup(name: &str) -> Result<Interface, IfaceError> {
    let found = datalink::interfaces()
        .into_iter()
        .find(|candidate| candidate.name == name)
        .ok_or_else(|| IfaceError::NotFound(name.to_owned()))?;
    let mac = found
        .mac
        .ok_or_else(|| IfaceError::NoMac(name.to_owned()))?;
    let ipv4 = found.ips.iter().find_map(|network| match network.ip() {
        IpAddr::V4(address) => Some(address),
        IpAddr::V6(_) => None,
    });
    Ok(Interface {
        name: found.name,
        index: found.index,
        mac,
        ipv4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_interface_is_named_in_the_error() {
        let error = lookup("nosuch-if0").unwrap_err();
        assert_eq!(error, IfaceError::NotFound("nosuch-if0".into()));
        assert!(error.to_string().contains("\"nosuch-if0\""));
    }

    #[test]
    fn loopback_has_an_index_and_its_ipv4_address() {
        let lo = lookup("lo").unwrap();
        assert!(lo.index > 0);
        assert_eq!(lo.ipv4, Some(Ipv4Addr::LOCALHOST));
    }
}
