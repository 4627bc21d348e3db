//! What each datalink needs from a node: Linux capabilities, devices, and
//! what the host must provide before anything is created.
//!
//! Nodes run with `CapDrop: ALL` and get back only the union of what their
//! interfaces' datalinks need (docs/runtime.md explains each one). This is
//! the one table to change when a datalink's needs change.

use std::path::Path;

use crate::lab::{DatalinkKind, Lab, Node, Reach};
use crate::tools::datalink::netmap;

use super::error::RuntimeError;
use super::privilege::{AfXdpGrant, HostSupport};

/// The netmap control device, passed into nodes that use netmap.
pub const NETMAP_DEVICE: &str = crate::tools::datalink::netmap::DEVICE;

/// Capabilities (Docker's names, without `CAP_`) one datalink needs, with
/// af_xdp given as `grant` ([`HostSupport::af_xdp_grant`]).
pub fn capabilities(kind: DatalinkKind, grant: AfXdpGrant) -> &'static [&'static str] {
    use crate::tools::datalink::af_xdp;
    match kind {
        // AF_PACKET sockets.
        DatalinkKind::AfPacket => &["NET_RAW"],
        // labctl attached the program from the host: NET_RAW for the
        // socket, IPC_LOCK for the UMEM's locked memory, nothing for BPF
        // (the pinned map's file permissions decide).
        DatalinkKind::AfXdp => match grant {
            AfXdpGrant::Pinned => af_xdp::PINNED_CAPABILITIES,
            // The af_xdp datalink's own list, measured by its tests (see
            // docs/af_xdp.md): BPF to load the program and create the
            // map, NET_ADMIN for the XSKMAP and to attach to the
            // interface, NET_RAW, IPC_LOCK.
            AfXdpGrant::CapBpf => af_xdp::CAPABILITIES,
            // Without CAP_BPF only SYS_ADMIN covers the kernel's checks:
            // granted only to a `privileged: true` node
            // ([`privilege_preflight`] refuses the others).
            AfXdpGrant::SysAdmin | AfXdpGrant::Refused => af_xdp::SYS_ADMIN_CAPABILITIES,
        },
        // None: netmap makes no capability check (upstream netmap has no
        // capable() call; registering, the rings, poll and the monitors
        // need only a descriptor of /dev/netmap), and the device is
        // root-owned 0600 while the node runs as root, so no DAC
        // capability either. Measured: the tools pass with no capability
        // on a real netmap kernel (docs/netmap.md#privileges).
        DatalinkKind::Netmap => &[],
    }
}

/// The seccomp profile a Docker node runs under: labctl's own
/// ([`super::seccomp`], which allows bpf()) for a node using af_xdp,
/// Docker's default (`None`) for every other node.
pub fn security_opt(lab: &Lab, node: &Node, host: &HostSupport) -> Option<String> {
    let grant = host.af_xdp_grant(node.privileged);
    node_datalinks(lab, node)
        .contains(&DatalinkKind::AfXdp)
        .then(|| super::seccomp::security_opt(grant))
}

/// The af_xdp interfaces of a node whose XDP program labctl attaches from
/// the host (and whose maps it pins in the node's `/lab/xdp`), sorted;
/// empty unless the node gets [`AfXdpGrant::Pinned`].
pub fn pinned_xdp_interfaces(lab: &Lab, node: &Node, host: &HostSupport) -> Vec<String> {
    if host.af_xdp_grant(node.privileged) != AfXdpGrant::Pinned {
        return Vec::new();
    }
    let mut ifaces: Vec<String> = lab
        .interfaces_of(&node.name)
        .filter(|e| e.datalink == DatalinkKind::AfXdp)
        .map(|e| e.interface.clone())
        .collect();
    ifaces.sort();
    ifaces.dedup();
    ifaces
}

/// Refuses a lab with an af_xdp node on a host that cannot give it
/// CAP_BPF, unless the node says `privileged: true`: only CAP_SYS_ADMIN
/// would do there, and it makes the node root on the host. Then the
/// capabilities nodes name ([`capability_preflight`]).
pub fn privilege_preflight(lab: &Lab, host: &HostSupport) -> Result<(), RuntimeError> {
    af_xdp_preflight(lab, host)?;
    capability_preflight(lab, host)
}

/// Refuses the capabilities nodes name that this runtime cannot grant
/// here (Docker would refuse the container, the kernel the capset, only
/// once the first nodes exist), then those that reach the host on this
/// runtime, named by a node without `privileged: true`.
fn capability_preflight(lab: &Lab, host: &HostSupport) -> Result<(), RuntimeError> {
    let refusals: Vec<String> = lab
        .nodes()
        .iter()
        .flat_map(|n| {
            n.capabilities.iter().filter_map(|&cap| {
                let why = host.cannot_grant(cap)?;
                Some(format!("node {} asks for {cap}, but {why}", n.name))
            })
        })
        .collect();
    if !refusals.is_empty() {
        return Err(RuntimeError::CapabilityUnavailable { refusals });
    }
    let nodes: Vec<String> = lab
        .nodes()
        .iter()
        .filter(|n| !n.privileged)
        .filter_map(|n| {
            let reaching: Vec<&str> = n
                .capabilities
                .iter()
                .filter(|c| c.reach(host.runtime.isolation()) == Reach::Host)
                .map(|c| c.name())
                .collect();
            (!reaching.is_empty()).then(|| format!("{} ({})", n.name, reaching.join(", ")))
        })
        .collect();
    if nodes.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::CapabilityNeedsPrivilege {
            nodes,
            runtime: host.runtime,
        })
    }
}

fn af_xdp_preflight(lab: &Lab, host: &HostSupport) -> Result<(), RuntimeError> {
    let (Some(no_cap_bpf), Some(no_pinned)) = (&host.no_cap_bpf, &host.no_pinned_xdp) else {
        return Ok(());
    };
    let reason = format!("{no_cap_bpf}, {no_pinned}");
    let nodes: Vec<String> = lab
        .nodes()
        .iter()
        .filter(|n| !n.privileged && node_datalinks(lab, n).contains(&DatalinkKind::AfXdp))
        .map(|n| n.name.clone())
        .collect();
    if nodes.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::AfXdpNeedsPrivilege { nodes, reason })
    }
}

/// Host devices one datalink needs inside the node.
pub fn devices(kind: DatalinkKind) -> &'static [&'static str] {
    match kind {
        DatalinkKind::Netmap => &[NETMAP_DEVICE],
        DatalinkKind::AfPacket | DatalinkKind::AfXdp => &[],
    }
}

/// The datalinks a node's tools may use: those of its interfaces, or its
/// own default when it has none (so a tool run by hand still works).
pub fn node_datalinks(lab: &Lab, node: &Node) -> Vec<DatalinkKind> {
    let mut kinds: Vec<_> = lab.interfaces_of(&node.name).map(|e| e.datalink).collect();
    if kinds.is_empty() {
        kinds.push(node.datalink);
    }
    kinds.sort();
    kinds.dedup();
    kinds
}

/// The union of [`capabilities`] over a node's datalinks and the node's
/// own `capabilities`, sorted.
pub fn node_capabilities(lab: &Lab, node: &Node, host: &HostSupport) -> Vec<String> {
    let grant = host.af_xdp_grant(node.privileged);
    let mut caps: Vec<String> = node_datalinks(lab, node)
        .into_iter()
        .flat_map(|k| capabilities(k, grant).iter().map(|c| c.to_string()))
        .chain(node.capabilities.iter().map(|c| c.name().to_owned()))
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

/// The MTU of a veth whose link sets none.
const DEFAULT_MTU: u32 = 1500;

/// Checks what the host must provide before anything is created: a lab
/// using netmap needs a working /dev/netmap (the netmap datalink's own
/// check, so labctl and the tools say the same), and netmap buffers that
/// hold the largest frame of each netmap link (the module's `buf_size`,
/// and `priv_buf_size` for captures, read under /sys).
pub fn preflight(lab: &Lab) -> Result<(), RuntimeError> {
    netem_preflight(lab, netem_missing)?;
    impairment_preflight(lab)?;
    preflight_with(lab, Path::new(netmap::SYSFS), netmap::preflight)
}

/// Refuses a lab whose impairments need netem ([`crate::lab::Impairment::needs_netem`],
/// from the keys' table) when `missing` says the kernel has none: tc would refuse the qdisc only
/// after the nodes exist.
fn netem_preflight(
    lab: &Lab,
    missing: impl FnOnce() -> Option<String>,
) -> Result<(), RuntimeError> {
    let links: Vec<String> = lab
        .links()
        .iter()
        .filter(|l| {
            l.endpoints
                .iter()
                .any(|e| e.impair.is_some_and(|i| i.needs_netem()))
        })
        .map(|l| format!("{} - {}", l.endpoints[0].label(), l.endpoints[1].label()))
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    match missing() {
        Some(reason) => Err(RuntimeError::NetemUnavailable { links, reason }),
        None => Ok(()),
    }
}

/// Refuses a lab with an impairment (any key) on a netmap endpoint:
/// labctl applies them to the interface's qdiscs, which netmap's transmit
/// skips (a native veth adapter hands frames straight to the peer's
/// rings), so the lab would run unimpaired while its file says it is
/// impaired.
fn impairment_preflight(lab: &Lab) -> Result<(), RuntimeError> {
    let endpoints: Vec<String> = lab
        .links()
        .iter()
        .flat_map(|l| l.endpoints.iter())
        .filter(|e| e.datalink == DatalinkKind::Netmap && e.impair.is_some())
        .map(|e| e.label())
        .collect();
    if endpoints.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::ImpairmentUnsupported { endpoints })
    }
}

/// Why this kernel has no netem, or `None` if it has: the module is
/// loaded (or built in) when `/sys/module/sch_netem` exists, and loadable
/// when the kernel's module lists name it.
fn netem_missing() -> Option<String> {
    netem_missing_in(Path::new("/sys/module"), Path::new("/lib/modules"))
}

fn netem_missing_in(sys_module: &Path, lib_modules: &Path) -> Option<String> {
    if sys_module.join("sch_netem").exists() {
        return None;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = lib_modules.join(release.trim());
    let listed = ["modules.builtin", "modules.dep"]
        .iter()
        .any(|f| std::fs::read_to_string(dir.join(f)).is_ok_and(|text| text.contains("sch_netem")));
    if listed {
        return None;
    }
    Some(format!(
        "this kernel has no netem (no {}, and {} lists no sch_netem): remove {}, or run on a \
         kernel with CONFIG_NET_SCH_NETEM",
        sys_module.join("sch_netem").display(),
        dir.display(),
        crate::lab::impairment::netem_key_names("and")
    ))
}

fn preflight_with(
    lab: &Lab,
    sysfs: &Path,
    netmap_check: impl FnOnce() -> Result<(), crate::tools::datalink::DatalinkError>,
) -> Result<(), RuntimeError> {
    let netmap_nodes: Vec<String> = lab
        .nodes()
        .iter()
        .filter(|n| node_datalinks(lab, n).contains(&DatalinkKind::Netmap))
        .map(|n| n.name.clone())
        .collect();
    if netmap_nodes.is_empty() {
        return Ok(());
    }
    netmap_check().map_err(|e| RuntimeError::NetmapUnavailable {
        nodes: netmap_nodes,
        reason: match e {
            crate::tools::datalink::DatalinkError::Unavailable { missing, .. } => missing,
            other => other.to_string(),
        },
    })?;
    // A netmap without these parameters is not one labctl knows: the
    // tools then report what the kernel says.
    let Ok(sizes) = netmap::BufferSizes::read(sysfs) else {
        return Ok(());
    };
    for link in lab.links() {
        if link
            .endpoints
            .iter()
            .all(|e| e.datalink != DatalinkKind::Netmap)
        {
            continue;
        }
        let [a, b] = &link.endpoints;
        sizes
            .check(link.mtu.unwrap_or(DEFAULT_MTU))
            .map_err(|reason| RuntimeError::NetmapBuffers {
                link: format!("{} - {}", a.label(), b.label()),
                reason,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::datalink::DatalinkError;

    fn lab(src: &str) -> Lab {
        crate::lab::parse(src, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    const MIXED: &str = r#"
name: mixed
nodes:
  a: {}
  b: { datalink: af_xdp }
  c: { datalink: netmap }
  d: {}
links:
  - endpoints: ["a:eth1", "b:eth1"]
  - endpoints: ["a:eth2", "b:eth2"]
"#;

    #[test]
    fn delay_without_netem_is_refused_naming_netem_and_the_link() {
        let delayed = lab(
            "name: d\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints: [a:eth1, b:eth1]\n    impair: {delay: 10ms}\n",
        );
        let err = netem_preflight(&delayed, || Some("this kernel has no netem".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("netem") && err.contains("a:eth1 - b:eth1"),
            "{err}"
        );
        assert!(netem_preflight(&delayed, || None).is_ok());
        // rate and loss do not need netem: the probe is not even asked.
        let lossy = lab(
            "name: l\nnodes: {a: {}, b: {}}\nlinks:\n  - endpoints: [a:eth1, b:eth1]\n    impair: {loss: 10%, rate: 10mbit}\n",
        );
        assert!(netem_preflight(&lossy, || panic!("asked")).is_ok());
        // ... and they are applied on af_packet and af_xdp.
        assert!(impairment_preflight(&lossy).is_ok());
        assert!(impairment_preflight(&lab(MIXED)).is_ok());
    }

    #[test]
    fn every_netem_key_without_netem_is_refused() {
        for (key, other_end) in [
            ("delay: 10ms", "b:eth1"),
            ("delay: 10ms, jitter: 2ms", "b:eth1"),
            ("duplicate: 1%", "b:eth1"),
            ("delay: 10ms, reorder: 25%", "b:eth1"),
            ("corrupt: 0.1%", "b:eth1"),
            // On one endpoint only.
            (
                "corrupt: 0.1%",
                "{node: b, interface: eth1, impair: {rate: 1mbit}}",
            ),
        ] {
            let src = format!(
                "name: n\nnodes: {{a: {{}}, b: {{}}}}\nlinks:\n  - endpoints: \
                 [{{node: a, interface: eth1, impair: {{{key}}}}}, {other_end}]\n  - endpoints: \
                 [a:eth2, b:eth2]\n    impair: {{rate: 1mbit, loss: 1%}}\n"
            );
            let err = netem_preflight(&lab(&src), netem_missing_in_empty)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "links a:eth1 - b:eth1 need netem for delay, jitter, duplicate, reorder or \
                     corrupt, but this kernel has no netem"
                ) && err.contains("remove delay, jitter, duplicate, reorder and corrupt"),
                "{key}: {err}"
            );
        }
    }

    /// The probe on a system with no module files at all.
    fn netem_missing_in_empty() -> Option<String> {
        let empty = tempfile::tempdir().unwrap();
        netem_missing_in(empty.path(), empty.path())
    }

    #[test]
    fn rate_or_loss_on_netmap_is_refused_naming_the_endpoints() {
        let netmap = lab(
            "name: n\nnodes: {a: {datalink: netmap}, b: {datalink: netmap}}\nlinks:\n  - endpoints:\n      - {node: a, interface: eth1, impair: {loss: 1%}}\n      - b:eth1\n  - endpoints: [a:eth2, b:eth2]\n  - endpoints:\n      - {node: a, interface: eth3, impair: {duplicate: 1%}}\n      - b:eth3\n",
        );
        let err = impairment_preflight(&netmap).unwrap_err().to_string();
        assert!(
            err.contains("a:eth1")
                && err.contains("a:eth3")
                && !err.contains("b:eth1")
                && !err.contains("eth2")
                && err.contains("netmap")
                && err.contains("af_packet or af_xdp"),
            "{err}"
        );
    }

    #[test]
    fn netem_probe_reads_sys_module() {
        let empty = tempfile::tempdir().unwrap();
        let reason = netem_missing_in(empty.path(), empty.path()).unwrap();
        assert!(reason.contains("netem"), "{reason}");
        std::fs::create_dir(empty.path().join("sch_netem")).unwrap();
        assert_eq!(netem_missing_in(empty.path(), empty.path()), None);
    }

    #[test]
    fn a_node_gets_the_union_of_its_interfaces_needs() {
        let lab = lab(MIXED);
        let caps =
            |n: &str, host: &HostSupport| node_capabilities(&lab, lab.node(n).unwrap(), host);
        let full = HostSupport::FULL;
        assert_eq!(caps("a", &full), ["NET_RAW"]);
        // labctl attaches the program: no BPF, no NET_ADMIN.
        assert_eq!(caps("b", &full), ["IPC_LOCK", "NET_RAW"]);
        let cap_bpf_only = HostSupport::docker_with("27.0.1", "6.1.0", Some(2));
        assert_eq!(
            caps("b", &cap_bpf_only),
            ["BPF", "IPC_LOCK", "NET_ADMIN", "NET_RAW"]
        );
        // No interfaces: the node's own datalink decides.
        assert!(caps("c", &full).is_empty(), "netmap needs only /dev/netmap");
        assert_eq!(caps("d", &full), ["NET_RAW"]);
        assert_eq!(
            pinned_xdp_interfaces(&lab, lab.node("b").unwrap(), &full),
            ["eth1", "eth2"]
        );
        assert!(pinned_xdp_interfaces(&lab, lab.node("b").unwrap(), &cap_bpf_only).is_empty());
        assert!(pinned_xdp_interfaces(&lab, lab.node("a").unwrap(), &full).is_empty());
    }

    #[test]
    fn without_cap_bpf_or_pinned_maps_an_af_xdp_node_is_refused_unless_privileged() {
        let old = HostSupport::docker_with("20.10.24+dfsg1", "6.1.0", Some(2));
        let mixed = lab(MIXED);
        let err = privilege_preflight(&mixed, &old).unwrap_err().to_string();
        assert_eq!(
            err,
            "nodes b use af_xdp, but Docker 20.10.24+dfsg1 cannot grant CAP_BPF (Docker 23.0 \
             or later can), Linux 6.1.0 lets a process without CAP_BPF use a BPF map only with \
             kernel.unprivileged_bpf_disabled = 0 (Linux 6.5 or later does), and without it \
             af_xdp needs CAP_SYS_ADMIN, which makes a node root on the host: add `privileged: \
             true` to these nodes only if you trust this lab like root, or run it on Linux 6.5 \
             or later or a host that grants CAP_BPF"
        );
        assert!(privilege_preflight(&mixed, &HostSupport::FULL).is_ok());
        // This machine: Docker 20.10 on Linux 6.18, labctl attaches.
        let here = HostSupport::docker_with("20.10.24+dfsg1", "6.18.44", Some(2));
        assert!(privilege_preflight(&mixed, &here).is_ok());
        // privileged nodes get SYS_ADMIN there; the others are not asked.
        let trusted = lab(
            "name: t\ndatalink: af_xdp\nnodes:\n  a: {privileged: true}\n  b: {privileged: true}\n  \
             c: {datalink: af_packet}\nlinks:\n  - endpoints: [a:eth1, b:eth1]\n",
        );
        assert!(privilege_preflight(&trusted, &old).is_ok());
        let caps = |n: &str, host| node_capabilities(&trusted, trusted.node(n).unwrap(), host);
        assert_eq!(caps("a", &old), ["IPC_LOCK", "NET_RAW", "SYS_ADMIN"]);
        assert_eq!(caps("a", &here), ["IPC_LOCK", "NET_RAW", "SYS_ADMIN"]);
        // privileged asks for nothing more where CAP_BPF can be granted.
        let full = HostSupport::FULL;
        assert_eq!(
            caps("a", &full),
            ["BPF", "IPC_LOCK", "NET_ADMIN", "NET_RAW"]
        );
        assert_eq!(caps("c", &old), ["NET_RAW"]);
    }

    const ROUTERS: &str =
        "name: r\nnodes:\n  r1: {capabilities: [NET_ADMIN, NET_BIND_SERVICE]}\n  \
                           r2: {capabilities: [NET_RAW]}\n  plain: {}\nlinks:\n  \
                           - endpoints: [r1:eth1, r2:eth1]\n  - endpoints: [r2:eth2, plain:eth1]\n";

    #[test]
    fn a_nodes_capabilities_come_on_top_of_its_datalinks_and_nothing_else_changes() {
        let lab = lab(ROUTERS);
        let full = HostSupport::FULL;
        let caps = |n: &str| node_capabilities(&lab, lab.node(n).unwrap(), &full);
        assert_eq!(caps("r1"), ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"]);
        // Already af_packet's: once.
        assert_eq!(caps("r2"), ["NET_RAW"]);
        // Least privilege stays the default.
        assert_eq!(caps("plain"), ["NET_RAW"]);
        let netns = HostSupport::kernel_with("6.18.44", Some(40));
        assert!(privilege_preflight(&lab, &netns).is_ok());
        let docker = HostSupport::docker_with("20.10.24+dfsg1", "6.18.44", Some(2));
        assert!(privilege_preflight(&lab, &docker).is_ok());
    }

    #[test]
    fn a_capability_the_runtime_cannot_grant_is_refused_naming_node_and_reason() {
        // Privileged: PERFMON reaches the host, which is not the point here.
        let lab = lab(
            "name: b\nnodes:\n  a: {capabilities: [NET_ADMIN, BPF, PERFMON], privileged: true}\n  \
                       b: {capabilities: [CHECKPOINT_RESTORE], privileged: true}\n",
        );
        let old = HostSupport::docker_with("20.10.24+dfsg1", "6.18.44", Some(2));
        assert_eq!(
            privilege_preflight(&lab, &old).unwrap_err().to_string(),
            "node a asks for BPF, but Docker 20.10.24+dfsg1 does not know CAP_BPF (Docker 23.0 \
             or later does); node a asks for PERFMON, but Docker 20.10.24+dfsg1 does not know \
             CAP_PERFMON (Docker 23.0 or later does); node b asks for CHECKPOINT_RESTORE, but \
             Docker 20.10.24+dfsg1 does not know CAP_CHECKPOINT_RESTORE (Docker 23.0 or later \
             does): remove them from `capabilities`, or run the lab where they can be granted"
        );
        // A newer Docker on an older kernel: the kernel decides.
        let old_kernel = HostSupport::docker_with("27.0.1", "5.8.0", Some(2));
        assert_eq!(
            privilege_preflight(&lab, &old_kernel)
                .unwrap_err()
                .to_string(),
            "node b asks for CHECKPOINT_RESTORE, but Linux 5.8.0 has no CAP_CHECKPOINT_RESTORE \
             (its last is CAP_BPF): remove it from `capabilities`, or run the lab where it can \
             be granted"
        );
        // The netns runtime: the kernel's cap_last_cap.
        let netns = |last| HostSupport::kernel_with("6.18.44", Some(last));
        let err = privilege_preflight(&lab, &netns(39))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("node b asks for CHECKPOINT_RESTORE, but Linux 6.18.44 has no"),
            "{err}"
        );
        assert!(privilege_preflight(&lab, &netns(40)).is_ok());
        let new = HostSupport::docker_with("27.0.1", "6.18.44", Some(2));
        assert!(privilege_preflight(&lab, &new).is_ok());
        // Only what a lab names is refused, not a datalink's own.
        assert!(privilege_preflight(&self::lab(ROUTERS), &old).is_ok());
    }

    #[test]
    fn capabilities_that_reach_the_host_need_privileged_on_the_runtime_where_they_do() {
        let lab = lab("name: h\nnodes:\n  a: {capabilities: [NET_ADMIN, DAC_OVERRIDE, SYS_PTRACE]}\n  \
                       b: {capabilities: [SYS_ADMIN]}\n  c: {capabilities: [SYS_MODULE], privileged: true}\n");
        let netns = HostSupport::kernel_with("6.18.44", Some(40));
        assert_eq!(
            privilege_preflight(&lab, &netns).unwrap_err().to_string(),
            "nodes a (DAC_OVERRIDE, SYS_PTRACE), b (SYS_ADMIN) ask for capabilities that reach \
             beyond the node to the host on the netns runtime (a netns step is a host process: \
             they make it root on the host): add `privileged: true` to these nodes only if you \
             trust this lab like root (docs/runtime.md#security-model)"
        );
        // In a container, DAC_OVERRIDE and SYS_PTRACE stay in the node.
        let docker = HostSupport::docker_with("27.0.1", "6.18.44", Some(2));
        assert_eq!(
            privilege_preflight(&lab, &docker).unwrap_err().to_string(),
            "node b (SYS_ADMIN) asks for capabilities that reach beyond the node to the host on \
             the docker runtime: add `privileged: true` to the node only if you trust this lab \
             like root (docs/runtime.md#security-model)"
        );
        // `labctl run --privileged`: trusted, and granted what they name.
        let trusted = lab.trusted_like_root();
        assert!(privilege_preflight(&trusted, &netns).is_ok());
        assert!(privilege_preflight(&trusted, &docker).is_ok());
        let caps = node_capabilities(&trusted, trusted.node("b").unwrap(), &docker);
        assert_eq!(caps, ["NET_RAW", "SYS_ADMIN"]);
    }

    #[test]
    fn only_af_xdp_nodes_get_labctls_seccomp_profile() {
        let mixed = lab(MIXED);
        let full = HostSupport::FULL;
        let opt = |n: &str| security_opt(&mixed, mixed.node(n).unwrap(), &full);
        assert!(opt("b").unwrap().starts_with("seccomp={"));
        assert_eq!(
            opt("b").unwrap(),
            super::super::seccomp::security_opt(AfXdpGrant::Pinned)
        );
        assert_eq!(opt("a"), None, "a's end of the link is af_packet");
        assert_eq!(opt("c"), None);
        assert_eq!(opt("d"), None);
    }

    #[test]
    fn netmap_without_the_device_is_refused_naming_the_nodes() {
        let missing = || {
            Err(DatalinkError::Unavailable {
                kind: DatalinkKind::Netmap,
                missing: "/dev/netmap does not exist: the netmap kernel module is not loaded"
                    .into(),
            })
        };
        let lab = lab(MIXED);
        let no_sysfs = tempfile::tempdir().unwrap();
        let sysfs = no_sysfs.path();
        let err = preflight_with(&lab, sysfs, missing)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "nodes c use netmap, but /dev/netmap does not exist: the netmap kernel module is not loaded"
        );
        assert!(preflight_with(&lab, sysfs, || Ok(())).is_ok());
        let plain = lab_without_netmap();
        assert!(preflight_with(&plain, sysfs, missing).is_ok());
    }

    /// A sysfs tree with the netmap module's buffer parameters.
    fn sysfs(buf_size: u32, priv_buf_size: u32) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("module/netmap/parameters");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("buf_size"), format!("{buf_size}\n")).unwrap();
        std::fs::write(dir.join("priv_buf_size"), format!("{priv_buf_size}\n")).unwrap();
        root
    }

    fn mtu_lab(datalink: &str, mtu: Option<u32>) -> Lab {
        let mtu = mtu.map_or(String::new(), |m| format!(", mtu: {m}"));
        lab(&format!(
            "name: big\ndatalink: {datalink}\nnodes:\n  a: {{}}\n  b: {{}}\nlinks:\n  \
             - {{ endpoints: [\"a:eth1\", \"b:eth1\"]{mtu} }}\n"
        ))
    }

    #[test]
    fn a_netmap_link_whose_frames_exceed_the_buffers_is_refused_naming_the_parameter() {
        let small = sysfs(2048, 2048);
        let err =
            preflight_with(&mtu_lab("netmap", Some(3000)), small.path(), || Ok(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "link a:eth1 - b:eth1: MTU 3000 needs netmap buffers of 3014 bytes, but buf_size is \
             2048: set /sys/module/netmap/parameters/buf_size to 3014 or more (before netmap is \
             in use)"
        );
        // The default MTU fits the default buffers.
        assert!(preflight_with(&mtu_lab("netmap", None), small.path(), || Ok(())).is_ok());
        // Captures use the private buffers.
        let small_private = sysfs(4096, 2048);
        let err = preflight_with(&mtu_lab("netmap", Some(3000)), small_private.path(), || {
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("priv_buf_size is 2048") && err.contains("to 3014 or more"),
            "{err}"
        );
        let large = sysfs(4096, 4096);
        assert!(preflight_with(&mtu_lab("netmap", Some(3000)), large.path(), || Ok(())).is_ok());
        // Other datalinks do not care about netmap's buffers.
        assert!(preflight_with(&mtu_lab("af_packet", Some(3000)), small.path(), || Ok(())).is_ok());
    }

    fn lab_without_netmap() -> Lab {
        lab("name: plain\nnodes:\n  a: {}\n")
    }
}
