//! Sysctls of one interface (`net.ipv4.conf.eth1.rp_filter`), which can
//! only be set once the interface is in its node: Docker applies a
//! container's sysctls before labctl moves any veth in.

use std::path::PathBuf;

/// The per-interface sysctl families.
const FAMILIES: [&str; 4] = [
    "net.ipv4.conf.",
    "net.ipv6.conf.",
    "net.ipv4.neigh.",
    "net.ipv6.neigh.",
];

/// The interface among `interfaces` that `key` is about, if any. Matching
/// against the known names keeps dots inside interface names (`eth1.100`)
/// unambiguous.
pub fn interface_of<'a>(key: &str, interfaces: &[&'a str]) -> Option<&'a str> {
    let rest = FAMILIES.iter().find_map(|f| key.strip_prefix(f))?;
    interfaces
        .iter()
        .copied()
        .filter(|iface| {
            rest.strip_prefix(iface)
                .is_some_and(|tail| tail.len() > 1 && tail.starts_with('.'))
        })
        // eth1 and eth1.100 both prefix "eth1.100.rp_filter": the longer wins.
        .max_by_key(|iface| iface.len())
}

/// The file under /proc/sys for `key` about `iface`: dots separate path
/// parts, except inside the interface's own name.
pub fn proc_path(key: &str, iface: &str) -> Option<PathBuf> {
    let family = FAMILIES.iter().find(|f| key.starts_with(*f))?;
    let setting = key[family.len()..].strip_prefix(iface)?.strip_prefix('.')?;
    let mut path = PathBuf::from("/proc/sys");
    path.extend(family.trim_end_matches('.').split('.'));
    path.push(iface);
    path.extend(setting.split('.'));
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_sysctls_are_recognised_by_the_nodes_interface_names() {
        let ifaces = ["eth1", "eth1.100"];
        assert_eq!(
            interface_of("net.ipv4.conf.eth1.rp_filter", &ifaces),
            Some("eth1")
        );
        assert_eq!(
            interface_of("net.ipv4.conf.eth1.100.rp_filter", &ifaces),
            Some("eth1.100")
        );
        assert_eq!(
            interface_of("net.ipv6.neigh.eth1.retrans_time_ms", &ifaces),
            Some("eth1")
        );
        assert_eq!(interface_of("net.ipv4.conf.all.rp_filter", &ifaces), None);
        assert_eq!(interface_of("net.ipv4.ip_forward", &ifaces), None);
        assert_eq!(interface_of("net.ipv4.conf.eth1", &ifaces), None);
    }

    #[test]
    fn paths_keep_dots_inside_interface_names() {
        assert_eq!(
            proc_path("net.ipv4.conf.eth1.100.rp_filter", "eth1.100").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth1.100/rp_filter")
        );
        assert_eq!(
            proc_path("net.ipv6.conf.eth1.disable_ipv6", "eth1").unwrap(),
            PathBuf::from("/proc/sys/net/ipv6/conf/eth1/disable_ipv6")
        );
        assert!(proc_path("net.ipv4.conf.eth2.x", "eth1").is_none());
    }
}
