//! What each datalink needs from a node: Linux capabilities, devices, and
//! what the host must provide before anything is created.
//!
//! Nodes run with `CapDrop: ALL` and get back only the union of what their
//! interfaces' datalinks need (docs/runtime.md explains each one). This is
//! the one table to change when a datalink's needs change.

use crate::lab::{DatalinkKind, Lab, Node};

use super::error::RuntimeError;

/// The netmap control device, passed into nodes that use netmap.
pub const NETMAP_DEVICE: &str = crate::tools::datalink::netmap::DEVICE;

/// Capabilities (Docker's names, without `CAP_`) one datalink needs.
pub fn capabilities(kind: DatalinkKind) -> &'static [&'static str] {
    match kind {
        // AF_PACKET sockets.
        DatalinkKind::AfPacket => &["NET_RAW"],
        // The af_xdp datalink's own list, measured by its tests (see
        // docs/af_xdp.md): NET_RAW for the socket, SYS_ADMIN for bpf()
        // (Docker's seccomp profile; it also covers the kernel's BPF and
        // NET_ADMIN checks), IPC_LOCK for the UMEM's locked memory.
        DatalinkKind::AfXdp => crate::tools::datalink::af_xdp::CAPABILITIES,
        // /dev/netmap is root-owned 0600 and the node runs as root, so no
        // DAC capability is needed to open it; NET_ADMIN covers the module
        // switching the interface into netmap mode. Not measured: there is
        // no netmap module on the machines labctl is tested on.
        DatalinkKind::Netmap => &["NET_ADMIN"],
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

/// The union of [`capabilities`] over a node's datalinks, sorted.
pub fn node_capabilities(lab: &Lab, node: &Node) -> Vec<String> {
    let mut caps: Vec<String> = node_datalinks(lab, node)
        .into_iter()
        .flat_map(|k| capabilities(k).iter().map(|c| c.to_string()))
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

/// Checks what the host must provide before anything is created: a lab
/// using netmap needs a working /dev/netmap (the netmap datalink's own
/// check, so labctl and the tools say the same).
pub fn preflight(lab: &Lab) -> Result<(), RuntimeError> {
    preflight_with(lab, crate::tools::datalink::netmap::preflight)
}

fn preflight_with(
    lab: &Lab,
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
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
    fn a_node_gets_the_union_of_its_interfaces_needs() {
        let lab = lab(MIXED);
        let caps = |n: &str| node_capabilities(&lab, lab.node(n).unwrap());
        assert_eq!(caps("a"), ["NET_RAW"]);
        assert_eq!(caps("b"), ["IPC_LOCK", "NET_RAW", "SYS_ADMIN"]);
        // No interfaces: the node's own datalink decides.
        assert_eq!(caps("c"), ["NET_ADMIN"]);
        assert_eq!(caps("d"), ["NET_RAW"]);
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
        let err = preflight_with(&lab, missing).unwrap_err().to_string();
        assert_eq!(
            err,
            "nodes c use netmap, but /dev/netmap does not exist: the netmap kernel module is not loaded"
        );
        assert!(preflight_with(&lab, || Ok(())).is_ok());
        let plain = lab_without_netmap();
        assert!(preflight_with(&plain, missing).is_ok());
    }

    fn lab_without_netmap() -> Lab {
        lab("name: plain\nnodes:\n  a: {}\n")
    }
}
