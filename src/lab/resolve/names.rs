//! The rules for the names and values a lab file holds, each returning why a
//! value breaks it (the caller says where).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use pnet::util::MacAddr;

/// What lab and node names may be, in words for messages.
pub(super) const NAME_RULE: &str = "1 to 20 of a-z, 0-9 and '-', not starting with '-'";

/// Lab and node names: `[a-z0-9][a-z0-9-]{0,19}`. They end up in container,
/// veth and label names, which is why they are this strict.
pub(super) fn name_problem(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    let problem = if name.len() > 20 {
        format!("is {} characters long", name.chars().count())
    } else if first == '-' {
        "starts with '-'".to_owned()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        if c.is_ascii_uppercase() {
            format!("contains the uppercase {c:?}")
        } else {
            format!("contains {c:?}")
        }
    } else {
        return None;
    };
    Some(problem)
}

/// What interface names may be, in words for messages.
pub(super) const INTERFACE_RULE: &str =
    "1 to 15 bytes, none of '/', ':', '=', whitespace or control characters";

/// Interface names: Linux's rules (1 to 15 bytes, not `.` or `..`, no `/`
/// or whitespace), plus `:` (it separates node and interface in
/// `"node:interface"`) and `=` (tools read `LABCTL_DATALINK_<interface>`
/// from their environment, and `=` would end the variable's name).
pub(super) fn interface_problem(name: &str) -> Option<String> {
    let problem = if name.is_empty() {
        "is empty".to_owned()
    } else if name.len() > 15 {
        format!("is {} bytes long", name.len())
    } else if name == "." || name == ".." {
        format!("is {name:?}")
    } else if name == "lo" {
        "is the node's loopback interface".to_owned()
    } else if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | '=') || c.is_whitespace() || c.is_control())
    {
        match c {
            ':' => "contains ':', which separates node and interface".to_owned(),
            '=' => "contains '=', which tools cannot read back from LABCTL_DATALINK_<interface>"
                .to_owned(),
            c => format!("contains {c:?}"),
        }
    } else {
        return None;
    };
    Some(problem)
}

/// Environment variable names: the portable shell rule, and not one that
/// labctl sets itself. Returns what follows the name in a message.
pub(super) fn env_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        Some("is not a variable name (expected letters, digits and '_', not starting with a digit)")
    } else if name.starts_with("LABCTL_") {
        Some("is reserved (labctl sets the LABCTL_* variables itself)")
    } else {
        None
    }
}

/// The sysctls a container may set (Docker refuses the others): those of
/// the namespaces it owns.
const NAMESPACED_SYSCTLS: &str = "net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*";

/// Returns what follows the sysctl's name in a message.
pub(super) fn sysctl_problem(key: &str) -> Option<String> {
    let well_formed = key.split('.').count() >= 2
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !well_formed {
        return Some(
            "is not a sysctl name (expected a dotted name such as net.ipv4.ip_forward)".to_owned(),
        );
    }
    let namespaced = key.starts_with("net.")
        || key.starts_with("fs.mqueue.")
        || key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem";
    if !namespaced {
        return Some(format!(
            "is not namespaced (a container can only set {NAMESPACED_SYSCTLS})"
        ));
    }
    None
}

/// Values handed to a process (argv, environment, sysctl) are C strings.
pub(super) fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

/// An interface address, `198.18.0.1/24`.
pub(super) fn parse_ipv4(text: &str) -> Result<Ipv4Net, String> {
    let expected = "expected a CIDR address such as 198.18.0.1/24";
    let net: Ipv4Net = match text.parse() {
        Ok(net) => net,
        Err(_) if text.parse::<Ipv4Addr>().is_ok() => {
            return Err(format!("has no prefix length ({expected})"));
        }
        Err(_) => return Err(format!("is not an address ({expected})")),
    };
    let addr = net.addr();
    let problem = if addr.is_unspecified() {
        "is the unspecified address"
    } else if addr.is_loopback() {
        "is a loopback address"
    } else if addr.is_multicast() {
        "is a multicast address"
    } else if addr.is_broadcast() {
        "is the broadcast address"
    } else if net.prefix_len() < 31 && addr == net.network() {
        "is the network address of its subnet"
    } else if net.prefix_len() < 31 && addr == net.broadcast() {
        "is the broadcast address of its subnet"
    } else {
        return Ok(net);
    };
    Err(format!(
        "{problem} (expected a host address such as 198.18.0.1/24)"
    ))
}

/// A MAC address that an interface can have: six two-digit hex bytes,
/// unicast, not all zeros.
pub(super) fn parse_mac(text: &str) -> Result<MacAddr, String> {
    let expected = "expected six hex bytes such as 02:00:00:00:01:01";
    let groups: Vec<&str> = text.split(':').collect();
    let well_formed = groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()));
    let mac = match text.parse::<MacAddr>() {
        Ok(mac) if well_formed => mac,
        _ => return Err(format!("is not a MAC address ({expected})")),
    };
    if mac.0 & 1 == 1 {
        Err("is a multicast address (expected a unicast one: an even first byte, such as 02:00:00:00:01:01)".to_owned())
    } else if mac == MacAddr::zero() {
        Err(format!("is all zeros ({expected})"))
    } else {
        Ok(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_problem("icmp"), None);
        assert_eq!(name_problem("a-1"), None);
        assert_eq!(name_problem(&"a".repeat(20)), None);
        assert!(
            name_problem("").is_none(),
            "empty is reported by the caller"
        );
        assert_eq!(
            name_problem(&"a".repeat(21)).unwrap(),
            "is 21 characters long"
        );
        assert_eq!(name_problem("-a").unwrap(), "starts with '-'");
        assert_eq!(name_problem("Bad").unwrap(), "contains the uppercase 'B'");
        assert_eq!(name_problem("a_b").unwrap(), "contains '_'");
        assert_eq!(name_problem("é").unwrap(), "contains 'é'");
    }

    #[test]
    fn interfaces() {
        for good in ["eth1", "e", "veth-0.1", "abcdefghijklmno"] {
            assert_eq!(interface_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("", "is empty"),
            ("abcdefghijklmnop", "is 16 bytes long"),
            ("..", "is \"..\""),
            ("lo", "loopback"),
            ("a/b", "'/'"),
            ("a b", "' '"),
            ("a:b", "separates node and interface"),
            ("a=b", "LABCTL_DATALINK_"),
            ("a\tb", "'\\t'"),
        ] {
            let problem = interface_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn environment_names() {
        assert_eq!(env_name_problem("RUST_LOG"), None);
        assert_eq!(env_name_problem("_x1"), None);
        assert!(env_name_problem("1X").is_some());
        assert!(env_name_problem("A-B").is_some());
        assert!(env_name_problem("").is_some());
        assert!(env_name_problem("LABCTL_DATALINK_eth1")
            .unwrap()
            .contains("reserved"));
    }

    #[test]
    fn sysctls() {
        assert_eq!(sysctl_problem("net.ipv4.ip_forward"), None);
        assert_eq!(sysctl_problem("net.ipv4.conf.eth1.rp_filter"), None);
        assert_eq!(sysctl_problem("kernel.shmmax"), None);
        assert_eq!(sysctl_problem("fs.mqueue.msg_max"), None);
        assert!(sysctl_problem("vm.swappiness")
            .unwrap()
            .contains("not namespaced"));
        assert!(sysctl_problem("net").unwrap().contains("not a sysctl name"));
        assert!(sysctl_problem("net..x")
            .unwrap()
            .contains("not a sysctl name"));
        assert!(sysctl_problem("net.ipv4 .x")
            .unwrap()
            .contains("not a sysctl name"));
    }

    #[test]
    fn ipv4_addresses() {
        assert_eq!(
            parse_ipv4("198.18.0.1/24").unwrap().to_string(),
            "198.18.0.1/24"
        );
        assert!(parse_ipv4("198.18.0.1/31").is_ok());
        assert!(parse_ipv4("198.18.0.0/31").is_ok());
        assert!(parse_ipv4("198.18.0.1/32").is_ok());
        for (bad, why) in [
            ("198.18.0.1", "no prefix length"),
            ("198.18.0.300/24", "not an address"),
            ("198.18.0.1/33", "not an address"),
            ("fe80::1/64", "not an address"),
            ("198.18.0.0/24", "network address"),
            ("198.18.0.255/24", "broadcast address of its subnet"),
            ("0.0.0.0/0", "unspecified"),
            ("127.0.0.2/8", "loopback"),
            ("224.0.0.1/24", "multicast"),
        ] {
            let problem = parse_ipv4(bad).unwrap_err();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }

    #[test]
    fn macs() {
        assert!(parse_mac("02:00:00:00:01:01").is_ok());
        assert!(parse_mac("0A:bc:00:00:01:01").is_ok());
        for (bad, why) in [
            ("01:00:5e:00:00:01", "multicast"),
            ("ff:ff:ff:ff:ff:ff", "multicast"),
            ("00:00:00:00:00:00", "all zeros"),
            ("2:0:0:0:1:1", "not a MAC"),
            ("02:00:00:00:01", "not a MAC"),
            ("02-00-00-00-01-01", "not a MAC"),
            ("+2:00:00:00:01:01", "not a MAC"),
            ("", "not a MAC"),
        ] {
            let problem = parse_mac(bad).unwrap_err();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }
}
