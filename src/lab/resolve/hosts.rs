//! Hosts: a lab across Docker hosts. Each host's name, Docker endpoint,
//! underlay address and TLS directory; the netns rule. Which host each node
//! is on is checked with the nodes, and the VXLAN links with the links.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use serde_saphyr::Location;

use crate::lab::typed::Spanned;

use super::values::{self, NAME_RULE};
use super::{pos, Problems};
use crate::lab::model::{DockerEndpoint, Host, RuntimeKind};
use crate::lab::raw::{Entries, RawHost};

pub(super) type RawHosts = Spanned<Entries<Spanned<String>, Spanned<RawHost>>>;

/// The files of a TLS directory, as Docker's DOCKER_CERT_PATH holds them.
pub(super) const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// The host names as written (the first of each), valid or not, so that a
/// node naming a host with a bad endpoint is not told the host is unknown;
/// `None` without `hosts`.
pub(super) fn names(raw: Option<&RawHosts>) -> Option<Vec<&str>> {
    let raw = raw?;
    let mut seen = HashSet::new();
    Some(
        raw.value
            .0
            .iter()
            .map(|(name, _)| name.value.as_str())
            .filter(|name| seen.insert(*name))
            .collect(),
    )
}

/// The valid hosts, in file order.
pub(super) fn resolve(
    raw: Option<&RawHosts>,
    runtime: Option<&Spanned<RuntimeKind>>,
    dir: &Path,
    problems: &mut Problems,
) -> Vec<Host> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.value.0.is_empty() {
        problems.at(
            pos(raw),
            "`hosts` is empty (expected at least one host, such as `hosts: {a: {docker: \
             \"unix:///var/run/docker.sock\", underlay: 198.19.0.1}}`; without hosts every node \
             runs on this host)",
        );
    }
    if let Some(runtime) = runtime.filter(|r| r.value == RuntimeKind::Netns) {
        problems.at(
            pos(runtime),
            "runtime: netns cannot run a lab with hosts: netns nodes are network namespaces on \
             this host (remove runtime: netns, or hosts)",
        );
    }
    let mut underlays: HashMap<IpAddr, (String, Location)> = HashMap::new();
    let mut seen = HashSet::new();
    let mut hosts = Vec::new();
    // A name written twice was reported by the structural pass.
    for (name, host) in &raw.value.0 {
        if !seen.insert(name.value.as_str()) {
            continue;
        }
        if let Some(host) = resolve_one(name, &host.value, dir, &mut underlays, problems) {
            hosts.push(host);
        }
    }
    hosts
}

/// One host; `None` when a part is missing (reported by the structural
/// pass) or wrong (reported here).
fn resolve_one(
    name: &Spanned<String>,
    raw: &RawHost,
    dir: &Path,
    underlays: &mut HashMap<IpAddr, (String, Location)>,
    problems: &mut Problems,
) -> Option<Host> {
    let host = name.value.as_str();
    let mut valid = true;
    if let Some(why) = values::name_problem(host) {
        problems.at(
            pos(name),
            format!("invalid host name {host:?}: {why} (expected {NAME_RULE})"),
        );
        valid = false;
    }
    let docker = raw.docker.as_ref().and_then(|text| {
        values::parse_docker_endpoint(&text.value)
            .map_err(|why| {
                problems.at(
                    pos(text),
                    format!("docker {:?} of host {host:?} {why}", text.value),
                );
            })
            .ok()
    });
    let underlay = raw
        .underlay
        .as_ref()
        .and_then(|text| underlay(host, text, underlays, problems));
    let tls = match &raw.tls {
        Some(text) => Some(tls(
            host,
            text,
            raw.docker.is_some().then_some(docker.as_ref()),
            dir,
            problems,
        )?),
        None => None,
    };
    Some(Host {
        name: host.to_owned(),
        docker: docker?,
        underlay: underlay?,
        tls,
    })
    .filter(|_| valid)
}

/// A valid underlay address, not another host's.
fn underlay(
    host: &str,
    text: &Spanned<String>,
    underlays: &mut HashMap<IpAddr, (String, Location)>,
    problems: &mut Problems,
) -> Option<IpAddr> {
    let address = values::parse_underlay(&text.value)
        .map_err(|why| {
            problems.at(
                pos(text),
                format!("underlay {:?} of host {host:?} {why}", text.value),
            );
        })
        .ok()?;
    // ::ffff:198.19.0.1 is 198.19.0.1.
    match underlays.get(&address.to_canonical()) {
        Some((other, at)) => {
            problems.at(
                pos(text),
                format!(
                    "underlay {address} of host {host:?} is already host {other:?}'s (line {}); \
                     each host needs its own",
                    at.line()
                ),
            );
            None
        }
        None => {
            underlays.insert(address.to_canonical(), (host.to_owned(), pos(text)));
            Some(address)
        }
    }
}

/// The TLS directory: only with tcp://, holding the three files. `docker`
/// is `None` without a docker key, `Some(None)` when it was invalid.
fn tls(
    host: &str,
    text: &Spanned<String>,
    docker: Option<Option<&DockerEndpoint>>,
    dir: &Path,
    problems: &mut Problems,
) -> Option<PathBuf> {
    let written = &text.value;
    if let Some(Some(docker)) = docker {
        if !matches!(docker, DockerEndpoint::Tcp { .. }) {
            let secured = match docker {
                DockerEndpoint::Unix(_) => "a unix socket is guarded by its file's permissions",
                _ => "ssh:// is secured by SSH itself",
            };
            problems.at(
                pos(text),
                format!(
                    "host {host:?} has tls, but its docker endpoint is {}:// (tls is for \
                     tcp:// only; {secured}: remove tls)",
                    docker.scheme()
                ),
            );
            return None;
        }
    }
    if written.is_empty() || values::has_nul(written) {
        problems.at(
            pos(text),
            format!(
                "tls {written:?} of host {host:?} is not a directory's path (expected a \
                 directory holding ca.pem, cert.pem and key.pem, such as ./certs/{host})"
            ),
        );
        return None;
    }
    let looked_for = dir.join(written);
    // As the user named it (no `./`), not made absolute: the message then
    // reads the same on every machine.
    let shown: PathBuf = looked_for
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let directory = match std::fs::canonicalize(&looked_for) {
        Ok(directory) if directory.is_dir() => directory,
        Ok(_) => {
            problems.at(
                pos(text),
                format!(
                    "tls {written:?} of host {host:?} is not a directory (looked for {}; \
                     expected a directory holding ca.pem, cert.pem and key.pem)",
                    shown.display()
                ),
            );
            return None;
        }
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be read: {e}")
            };
            problems.at(
                pos(text),
                format!(
                    "the tls directory {written:?} of host {host:?} {why} (looked for {}; a \
                     relative path starts at the lab file's directory)",
                    shown.display()
                ),
            );
            return None;
        }
    };
    let missing: Vec<&str> = TLS_FILES
        .into_iter()
        .filter(|file| !directory.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        problems.at(
            pos(text),
            format!(
                "the tls directory {written:?} of host {host:?} lacks {} (expected ca.pem, \
                 cert.pem and key.pem, as in Docker's DOCKER_CERT_PATH)",
                match missing.as_slice() {
                    [init @ .., last] if !init.is_empty() =>
                        format!("{} and {last}", init.join(", ")),
                    _ => missing.join(""),
                }
            ),
        );
        return None;
    }
    Some(directory)
}
