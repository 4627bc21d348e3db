//! The rules for the names and values a lab file holds, each returning why a
//! value breaks it (the caller says where).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use pnet::util::MacAddr;

use crate::lab::model::DockerEndpoint;

/// What lab and node names may be, in words for messages.
pub(super) const NAME_RULE: &str = "1 to 20 of a-z, 0-9 and '-', not starting with '-'";

/// Why a lab or node name breaks the rule. Empty is one of the reasons, so
/// no caller checks it apart; each words it (the lab's name, a node's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NameProblem {
    Empty,
    /// Longer than 20 characters: how many.
    TooLong(usize),
    StartsWithDash,
    /// A character outside `a-z`, `0-9` and `-`.
    Invalid(char),
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("is empty"),
            NameProblem::TooLong(n) => write!(f, "is {n} characters long"),
            NameProblem::StartsWithDash => f.write_str("starts with '-'"),
            NameProblem::Invalid(c) if c.is_ascii_uppercase() => {
                write!(f, "contains the uppercase {c:?}")
            }
            NameProblem::Invalid(c) => write!(f, "contains {c:?}"),
        }
    }
}

/// Lab and node names: `[a-z0-9][a-z0-9-]{0,19}`. They end up in container,
/// veth and label names, which is why they are this strict.
pub(super) fn name_problem(name: &str) -> Option<NameProblem> {
    let Some(first) = name.chars().next() else {
        return Some(NameProblem::Empty);
    };
    if name.len() > 20 {
        Some(NameProblem::TooLong(name.chars().count()))
    } else if first == '-' {
        Some(NameProblem::StartsWithDash)
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
            .map(NameProblem::Invalid)
    }
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

/// A route's destination: a network in CIDR form, or `default`.
pub(super) fn parse_destination(text: &str) -> Result<Ipv4Net, String> {
    let expected = "expected a network such as 198.18.2.0/24, or default";
    if text == "default" {
        return Ok(Ipv4Net::default());
    }
    match text.parse::<Ipv4Net>() {
        Ok(net) if net.addr() != net.network() => Err(format!(
            "has host bits set (expected its network, {}/{})",
            net.network(),
            net.prefix_len()
        )),
        Ok(net) => Ok(net),
        Err(_) if text.parse::<Ipv4Addr>().is_ok() => Err(format!(
            "has no prefix length ({expected}; {text}/32 for one host)"
        )),
        Err(_) => Err(format!("is not a CIDR network ({expected})")),
    }
}

/// A next hop: a plain IPv4 address.
pub(super) fn parse_next_hop(text: &str) -> Result<Ipv4Addr, String> {
    match text.parse::<Ipv4Addr>() {
        Ok(addr) => Ok(addr),
        Err(_) if text.parse::<Ipv4Net>().is_ok() => {
            Err("has a prefix length (expected a plain address, such as 198.18.1.254)".to_owned())
        }
        Err(_) => Err("is not an IPv4 address (expected one such as 198.18.1.254)".to_owned()),
    }
}

/// Splits `12.5mbit` into its number and its unit.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    number.is_finite().then_some((number, unit.trim()))
}

/// A rate in tc's units (`100mbit`, `1gbit`, `500kbps`), in bits per second.
pub(super) fn parse_rate(text: &str) -> Result<u64, String> {
    let expected = "expected a rate such as 100mbit, 1gbit or 500kbit";
    let Some((number, unit)) = number_and_unit(text) else {
        return Err(format!("is not a rate ({expected})"));
    };
    if unit.is_empty() {
        return Err(format!("has no unit ({expected})"));
    }
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "kibit" => 1024.0,
        "mibit" => 1024.0 * 1024.0,
        "gibit" => 1024.0 * 1024.0 * 1024.0,
        "tibit" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        // tc's "bps" is bytes per second.
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        "tbps" => 8e12,
        _ => {
            return Err(format!(
                "has the unknown unit {unit:?} (expected bit, kbit, mbit, gbit or tbit, or \
                 bps, kbps, mbps, gbps for bytes per second, as tc writes them)"
            ))
        }
    };
    let bits = (number * scale).round();
    if bits < 1.0 {
        Err("is zero (expected at least 1bit; remove rate for no limit)".to_owned())
    } else if bits > 1e15 {
        Err("is more than 1000tbit".to_owned())
    } else {
        Ok(bits as u64)
    }
}

/// A loss percentage (`1%`, `0.5%`), as a fraction.
pub(super) fn parse_loss(text: &str) -> Result<f64, String> {
    let expected = "expected a percentage such as 1% or 0.5%";
    match number_and_unit(text) {
        Some((percent, "%")) if percent <= 100.0 => Ok(percent / 100.0),
        Some((_, "%")) => Err("is more than 100%".to_owned()),
        Some((_, "")) => Err(format!("has no % sign ({expected})")),
        _ => Err(format!("is not a percentage ({expected})")),
    }
}

/// The longest delay or jitter a link may have; longer is surely a typo.
const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// A delay or a jitter (`10ms`, `2ms`, `1s`).
pub(super) fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    let expected = "expected a duration such as 10ms or 1s";
    match humantime::parse_duration(text) {
        Ok(d) if d > MAX_DELAY => Err("is longer than 1m".to_owned()),
        Ok(d) => Ok(d),
        Err(_) if text.trim().chars().all(|c| c.is_ascii_digit() || c == '.') => {
            Err(format!("has no unit ({expected})"))
        }
        Err(_) => Err(format!("is not a duration ({expected})")),
    }
}

/// The smallest memory limit: below it, even the tools fail to start.
pub(super) const MIN_MEMORY: u64 = 16 * 1024 * 1024;

/// A size (`256MiB`, `2GiB`, `500MB`), in bytes.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let expected = "expected a size such as 256MiB or 2GiB";
    let Some((number, unit)) = number_and_unit(text) else {
        return Err(format!("is not a size ({expected})"));
    };
    let scale: f64 = match unit {
        "" => return Err(format!("has no unit ({expected})")),
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => {
            return Err(format!(
                "has the unknown unit {unit:?} (expected B, KiB, MiB, GiB, TiB, or kB, MB, GB, TB)"
            ))
        }
    };
    let bytes = (number * scale).round();
    if bytes < MIN_MEMORY as f64 {
        Err("is less than 16MiB (expected at least 16MiB)".to_owned())
    } else if bytes > 1e15 {
        Err("is more than 1000TB".to_owned())
    } else {
        Ok(bytes as u64)
    }
}

/// A bind mount as written: `HOST:NODE[:ro|:rw]`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BindSpec<'a> {
    pub host: &'a str,
    pub target: &'a str,
    pub read_only: bool,
}

/// Reads `HOST:NODE[:ro|:rw]` (Docker's convention); the caller checks that
/// HOST exists.
pub(super) fn parse_bind(text: &str) -> Result<BindSpec<'_>, String> {
    let expected = "expected HOST:NODE, HOST:NODE:ro or HOST:NODE:rw, such as \
                    ./build/myfwd:/usr/local/bin/myfwd";
    if has_nul(text) {
        return Err("contains a NUL character, which no path can hold".to_owned());
    }
    let Some((host, rest)) = text.split_once(':') else {
        return Err(format!("has no NODE path ({expected})"));
    };
    let (target, read_only) = match rest.rsplit_once(':') {
        Some((target, "ro")) => (target, true),
        Some((target, "rw")) => (target, false),
        Some((_, mode)) => {
            return Err(format!(
                "has the mode {mode:?} ({expected}; ro is the default)"
            ))
        }
        None => (rest, true),
    };
    if host.is_empty() {
        return Err(format!("has an empty HOST path ({expected})"));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "has the NODE path {target:?}, which is not absolute (expected a path in the node \
             such as /usr/local/bin/myfwd)"
        ));
    }
    let normal = std::path::Path::new(target);
    if normal.components().count() == 1 {
        return Err("would replace the node's root directory (expected a path below /)".to_owned());
    }
    if normal.starts_with("/lab") {
        return Err(format!(
            "has the NODE path {target:?}, under /lab, where labctl mounts the tools and \
             /lab/out (choose another path)"
        ));
    }
    Ok(BindSpec {
        host,
        target,
        read_only,
    })
}

/// The three forms of a Docker endpoint, for messages.
pub(super) const DOCKER_FORMS: &str = "unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]";

/// A Docker endpoint as the Docker CLI takes it in `DOCKER_HOST`, of the
/// three forms labctl reaches a host by.
pub(super) fn parse_docker_endpoint(text: &str) -> Result<DockerEndpoint, String> {
    let expected = format!("expected {DOCKER_FORMS}, such as unix:///var/run/docker.sock");
    if text.is_empty() {
        return Err(format!("is empty ({expected})"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "contains whitespace or a control character ({expected})"
        ));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("is not a URL ({expected})"));
    };
    match scheme {
        "unix" => {
            if !rest.starts_with('/') {
                return Err(format!(
                    "has the socket path {rest:?}, which is not absolute (expected \
                     unix:///PATH, with three slashes, such as unix:///var/run/docker.sock)"
                ));
            }
            if Path::new(rest).components().count() == 1 {
                return Err("has no socket path (expected unix:///PATH, such as \
                     unix:///var/run/docker.sock)"
                    .to_owned());
            }
            Ok(DockerEndpoint::Unix(PathBuf::from(rest)))
        }
        "tcp" => {
            let example = "tcp://198.19.0.2:2376";
            let (host, port) = host_and_port(rest, example)?;
            let Some(port) = port else {
                return Err(format!(
                    "has no port (expected tcp://HOST:PORT, such as {example}: Docker listens \
                     on 2376 with TLS, 2375 without)"
                ));
            };
            Ok(DockerEndpoint::Tcp { host, port })
        }
        "ssh" => {
            let example = "ssh://lab@198.19.0.3";
            let (user, rest) = match rest.split_once('@') {
                Some((user, rest)) => (Some(user), rest),
                None => (None, rest),
            };
            if let Some(user) = user {
                if user.is_empty() || user.contains([':', '/', '@', '[', ']']) {
                    return Err(format!(
                        "has the user {user:?} (expected ssh://[USER@]HOST[:PORT], such as \
                         {example}; a password has no place in it: use an SSH key)"
                    ));
                }
            }
            let (host, port) = host_and_port(rest, example)?;
            Ok(DockerEndpoint::Ssh {
                user: user.map(str::to_owned),
                host,
                port,
            })
        }
        "" => Err(format!("has no scheme ({expected})")),
        other => Err(format!("has the scheme {other}:// ({expected})")),
    }
}

/// `HOST[:PORT]` of a tcp:// or ssh:// endpoint; an IPv6 address in
/// brackets, returned without them.
fn host_and_port(text: &str, example: &str) -> Result<(String, Option<u16>), String> {
    if text.contains(['/', '?', '#']) {
        return Err(format!(
            "has something after the host (expected only HOST[:PORT], such as {example})"
        ));
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(
                "has a '[' without its ']' (an IPv6 address is written [fd00::2])".to_owned(),
            );
        };
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "has {address:?} in brackets, which is not an IPv6 address"
            ));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(format!(
                        "has {after:?} after the address (expected [ADDRESS]:PORT)"
                    ))
                }
            },
        };
        (address, port)
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(
                    "has an IPv6 address without brackets (write it in brackets, such as \
                     [fd00::2], so that its colons are not read as the port's)"
                        .to_owned(),
                )
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("has no host (expected such as {example})"));
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if !host.chars().all(is_name) || host.starts_with(['-', '.']) {
        return Err(format!(
            "has the host {host:?}, which is neither a host name nor an address"
        ));
    }
    let port = match port {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => {
                return Err(format!(
                    "has the port {text:?} (expected a number from 1 to 65535)"
                ))
            }
        },
    };
    Ok((host.to_owned(), port))
}

/// A host's underlay: one unicast IPv4 or IPv6 address, not a CIDR.
pub(super) fn parse_underlay(text: &str) -> Result<IpAddr, String> {
    let expected = "expected the host's own address, such as 198.19.0.2 or fd00::2";
    let address = match text.parse::<IpAddr>() {
        Ok(address) => address,
        Err(_) => {
            let cidr = text
                .split_once('/')
                .is_some_and(|(address, _)| address.parse::<IpAddr>().is_ok());
            return Err(if cidr {
                format!("is a CIDR ({expected}, without a prefix length)")
            } else {
                format!("is not an IPv4 or IPv6 address ({expected})")
            });
        }
    };
    let broadcast = matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
    if address.is_unspecified() || address.is_multicast() || broadcast {
        return Err(format!(
            "is not a unicast address: VXLAN tunnels run between two hosts' own addresses \
             ({expected})"
        ));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_endpoints_of_the_three_forms_and_back() {
        let cases = [
            (
                "unix:///var/run/docker.sock",
                DockerEndpoint::Unix(PathBuf::from("/var/run/docker.sock")),
            ),
            (
                "tcp://198.19.0.2:2376",
                DockerEndpoint::Tcp {
                    host: "198.19.0.2".to_owned(),
                    port: 2376,
                },
            ),
            (
                "tcp://[fd00::2]:2375",
                DockerEndpoint::Tcp {
                    host: "fd00::2".to_owned(),
                    port: 2375,
                },
            ),
            (
                "ssh://lab@198.19.0.3",
                DockerEndpoint::Ssh {
                    user: Some("lab".to_owned()),
                    host: "198.19.0.3".to_owned(),
                    port: None,
                },
            ),
            (
                "ssh://docker-b.example:2222",
                DockerEndpoint::Ssh {
                    user: None,
                    host: "docker-b.example".to_owned(),
                    port: Some(2222),
                },
            ),
            (
                "ssh://[fd00::3]",
                DockerEndpoint::Ssh {
                    user: None,
                    host: "fd00::3".to_owned(),
                    port: None,
                },
            ),
        ];
        for (text, endpoint) in cases {
            assert_eq!(
                parse_docker_endpoint(text).as_ref(),
                Ok(&endpoint),
                "{text}"
            );
            assert_eq!(endpoint.to_string(), text);
        }
    }

    #[test]
    fn docker_endpoints_refused() {
        let why = |text: &str| parse_docker_endpoint(text).unwrap_err();
        for text in [
            "",
            "docker.sock",
            "http://h:2375",
            "https://h:2376",
            "npipe:////./pipe/docker_engine",
            "fd://",
            "://h",
            "TCP://h:2376",
        ] {
            assert!(why(text).contains(DOCKER_FORMS), "{text}: {}", why(text));
        }
        for (text, says) in [
            ("unix://var/run/docker.sock", "which is not absolute"),
            ("unix:///", "has no socket path"),
            ("unix:// /x", "whitespace"),
            ("tcp://h", "has no port"),
            ("tcp://h:", "has the port \"\""),
            ("tcp://h:0", "has the port \"0\""),
            ("tcp://h:65536", "has the port \"65536\""),
            ("tcp://h:http", "has the port \"http\""),
            ("tcp://:2376", "has no host"),
            ("tcp://h:2376/v1.45", "something after the host"),
            ("tcp://fd00::2:2376", "IPv6 address without brackets"),
            ("tcp://[fd00::2:2376", "without its ']'"),
            ("tcp://[h]:2376", "not an IPv6 address"),
            ("tcp://[fd00::2]2376", "after the address"),
            ("tcp://h*st:2376", "neither a host name nor an address"),
            ("ssh://@h", "has the user \"\""),
            ("ssh://lab:secret@h", "has the user \"lab:secret\""),
            ("ssh://", "has no host"),
            ("ssh://h:0", "has the port \"0\""),
        ] {
            assert!(why(text).contains(says), "{text}: {}", why(text));
        }
    }

    #[test]
    fn underlay_addresses() {
        assert_eq!(
            parse_underlay("198.19.0.1"),
            Ok(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1)))
        );
        assert_eq!(parse_underlay("fd00::1"), Ok("fd00::1".parse().unwrap()));
        for (text, says) in [
            ("198.19.0.1/24", "is a CIDR"),
            ("fd00::1/64", "is a CIDR"),
            ("host-b", "is not an IPv4 or IPv6 address"),
            ("", "is not an IPv4 or IPv6 address"),
            ("0.0.0.0", "not a unicast address"),
            ("::", "not a unicast address"),
            ("239.1.1.1", "not a unicast address"),
            ("255.255.255.255", "not a unicast address"),
        ] {
            let why = parse_underlay(text).unwrap_err();
            assert!(why.contains(says), "{text}: {why}");
        }
    }

    #[test]
    fn destinations_and_next_hops() {
        assert_eq!(
            parse_destination("default").unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            parse_destination("198.18.2.0/24").unwrap().to_string(),
            "198.18.2.0/24"
        );
        for (bad, why) in [
            (
                "198.18.2.1/24",
                "host bits set (expected its network, 198.18.2.0/24)",
            ),
            ("198.18.2.1", "no prefix length"),
            ("198.18.2.0/33", "not a CIDR"),
            ("defualt", "not a CIDR"),
        ] {
            let problem = parse_destination(bad).unwrap_err();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        assert!(parse_next_hop("198.18.1.254").is_ok());
        assert!(parse_next_hop("198.18.1.254/24")
            .unwrap_err()
            .contains("prefix length"));
        assert!(parse_next_hop("router")
            .unwrap_err()
            .contains("not an IPv4"));
    }

    #[test]
    fn rates_in_tc_units() {
        for (text, bits) in [
            ("100mbit", 100_000_000),
            ("1.5Mbit", 1_500_000),
            ("1gbit", 1_000_000_000),
            ("500kbit", 500_000),
            ("1kibit", 1024),
            ("1mbps", 8_000_000),
            ("7bit", 7),
        ] {
            assert_eq!(parse_rate(text), Ok(bits), "{text}");
        }
        for (bad, why) in [
            ("100", "no unit"),
            ("100mb", "unknown unit \"mb\""),
            ("fast", "not a rate"),
            ("0mbit", "is zero"),
            ("-1mbit", "not a rate"),
            ("9999999tbit", "more than"),
        ] {
            let problem = parse_rate(bad).unwrap_err();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }

    #[test]
    fn loss_percentages() {
        assert_eq!(parse_loss("1%"), Ok(0.01));
        assert_eq!(parse_loss("0.5%"), Ok(0.005));
        assert_eq!(parse_loss("100%"), Ok(1.0));
        assert_eq!(parse_loss("0%"), Ok(0.0));
        assert!(parse_loss("1").unwrap_err().contains("no % sign"));
        assert!(parse_loss("0.01").unwrap_err().contains("no % sign"));
        assert!(parse_loss("101%").unwrap_err().contains("more than 100%"));
        assert!(parse_loss("-1%").unwrap_err().contains("not a percentage"));
        assert!(parse_loss("lots").unwrap_err().contains("not a percentage"));
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("10ms").unwrap().as_millis(), 10);
        assert!(parse_delay("10").unwrap_err().contains("no unit"));
        assert!(parse_delay("2m").unwrap_err().contains("longer than 1m"));
        assert!(parse_delay("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert!(parse_size("256").unwrap_err().contains("no unit"));
        assert!(parse_size("256mb").unwrap_err().contains("unknown unit"));
        assert!(parse_size("1MiB").unwrap_err().contains("less than 16MiB"));
        assert!(parse_size("big").unwrap_err().contains("not a size"));
    }

    #[test]
    fn binds() {
        assert_eq!(
            parse_bind("./build/myfwd:/usr/local/bin/myfwd"),
            Ok(BindSpec {
                host: "./build/myfwd",
                target: "/usr/local/bin/myfwd",
                read_only: true
            })
        );
        assert!(!parse_bind("/srv/config:/etc/myfwd:rw").unwrap().read_only);
        assert!(parse_bind("/srv/config:/etc/myfwd:ro").unwrap().read_only);
        for (bad, why) in [
            ("/srv/config", "no NODE path"),
            (":/etc/x", "empty HOST"),
            ("/srv:etc/x", "not absolute"),
            ("/srv:/etc/x:wr", "the mode \"wr\""),
            ("/srv:/", "root directory"),
            ("/srv:/lab/bin", "under /lab"),
            ("/srv:/lab", "under /lab"),
            ("/srv:/x\0", "NUL"),
        ] {
            let problem = parse_bind(bad).unwrap_err();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        // A path that merely starts with the letters of /lab is fine.
        assert!(parse_bind("/srv:/labs/x").is_ok());
    }

    #[test]
    fn names() {
        assert_eq!(name_problem("icmp"), None);
        assert_eq!(name_problem("a-1"), None);
        assert_eq!(name_problem(&"a".repeat(20)), None);
        assert_eq!(name_problem(""), Some(NameProblem::Empty));
        let why = |name: &str| {
            name_problem(name)
                .map(|p| p.to_string())
                .unwrap_or_default()
        };
        assert_eq!(why(""), "is empty");
        assert_eq!(why(&"a".repeat(21)), "is 21 characters long");
        assert_eq!(why("-a"), "starts with '-'");
        assert_eq!(why("Bad"), "contains the uppercase 'B'");
        assert_eq!(why("a_b"), "contains '_'");
        assert_eq!(why("é"), "contains 'é'");
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
