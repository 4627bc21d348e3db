//! One lab node as any runtime makes it: what it is named and labelled,
//! its environment, capabilities, sysctls, devices, binds and limits.
//!
//! [`NodeSpec`] is built from the validated lab alone (pure, unit-tested);
//! a runtime's [`super::backend::Backend`] turns it into a node (Docker:
//! a container, `docker/container.rs`; netns: a named namespace and the
//! record its steps start from).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lab::{Bind, DatalinkKind, KernelMode, Lab, Limits, Node};
use crate::links::sysctl;
use crate::tools::datalink::af_xdp;

use super::names::{self, Instance, Owner, RunId};
use super::needs;
use super::privilege::HostSupport;
use super::tools_dir::TOOLS_PATH;

/// Sysctls that keep a node's kernel silent on lab interfaces, set on
/// every node before any interface exists. The `default` entries are what
/// an interface moved in later inherits. The lab's own `sysctls` come after
/// and may override them (for example to let the kernel answer ping).
pub const KERNEL_SILENCE: [(&str, &str); 5] = [
    // Answer no ARP request: lab-pong does, from user space.
    ("net.ipv4.conf.all.arp_ignore", "8"),
    ("net.ipv4.conf.default.arp_ignore", "8"),
    // Answer no ICMP echo: lab-pong does.
    ("net.ipv4.icmp_echo_ignore_all", "1"),
    // No IPv6 at all: no link-local address, router or neighbour
    // solicitations, MLD reports in captures or counts.
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
];

/// The `PATH` of an image that sets none (Docker's usual default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a node with its own image runs, as `docker run` combines them:
/// the image's ENTRYPOINT, then the lab's `cmd` if it has one, else the
/// image's CMD. `cmd: []` runs nothing at all, not even the entrypoint:
/// the lab asked for labctl's steps only.
pub fn node_command(
    entrypoint: &[String],
    image_cmd: &[String],
    lab_cmd: Option<&[String]>,
) -> Vec<String> {
    match lab_cmd {
        Some([]) => Vec::new(),
        Some(cmd) => [entrypoint, cmd].concat(),
        None => [entrypoint, image_cmd].concat(),
    }
}

/// One interface of a node as recorded in [`names::LABEL_INTERFACES`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceLabel {
    pub name: String,
    pub datalink: DatalinkKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The other end: `node:interface`.
    pub peer: String,
}

/// The repository part of the image's tag.
const REPOSITORY: &str = "labctl-tools";

/// The tools image of the current tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolsImage {
    /// `labctl-tools:<hash>`.
    pub tag: String,
    /// The named volume that carries the same tools into other images.
    pub volume: String,
}

impl ToolsImage {
    pub fn for_hash(hash: &str) -> Self {
        ToolsImage {
            tag: format!("{REPOSITORY}:{hash}"),
            volume: format!("{REPOSITORY}-{hash}"),
        }
    }
}

/// How a node's image is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeImage {
    /// The tools image itself.
    Tools(ToolsImage),
    /// The node's own image, with the tools mounted from the volume;
    /// `path` is the image's own PATH, if it sets one; `command` what
    /// lab-init runs in it ([`node_command`]), empty for nothing, as
    /// `user`, the image's USER (lab-init and the steps run as root).
    Custom {
        image: String,
        path: Option<String>,
        command: Vec<String>,
        user: Option<String>,
        tools: ToolsImage,
    },
    /// No image: a bare network namespace on the host, the tools from
    /// labctl's own directory (the netns runtime).
    Host,
}

/// Everything a runtime makes one node from.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub node: String,
    pub container: String,
    pub image: NodeImage,
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    pub cap_add: Vec<String>,
    /// Docker's `SecurityOpt`: labctl's seccomp profile for af_xdp nodes,
    /// empty (Docker's default profile) for the others.
    pub security_opt: Vec<String>,
    pub sysctls: HashMap<String, String>,
    pub devices: Vec<String>,
    /// The node's `binds`, as Docker bind mounts.
    pub binds: Vec<Bind>,
    pub limits: Limits,
    /// The af_xdp interfaces whose XDP program labctl attaches from the
    /// host once the links are up ([`needs::pinned_xdp_interfaces`]).
    pub pinned_xdp: Vec<String>,
    /// Where on the host their maps are pinned ([`super::xdp`]): created
    /// before the node, bind-mounted at `/lab/xdp`.
    pub xdp_dir: Option<PathBuf>,
}

impl NodeSpec {
    /// `host` says what this host can grant (CAP_BPF or not); the lab has
    /// passed [`needs::privilege_preflight`] for it.
    pub fn new(
        lab: &Lab,
        instance: &Instance,
        node: &Node,
        image: NodeImage,
        run: &RunId,
        host: &HostSupport,
    ) -> Self {
        let interfaces = interface_labels(lab, node);
        let mut env: Vec<String> = interfaces
            .iter()
            .map(|i| format!("{}={}", DatalinkKind::env_var(&i.name), i.datalink))
            .collect();
        if let NodeImage::Custom { path, .. } = &image {
            let path = path.as_deref().unwrap_or(DEFAULT_PATH);
            env.push(format!("PATH={TOOLS_PATH}:{path}"));
        }
        let pinned_xdp = needs::pinned_xdp_interfaces(lab, node, host);
        let xdp_dir = (!pinned_xdp.is_empty()).then(|| {
            let alias = names::veth_alias(lab.name(), instance, run);
            super::xdp::node_dir(Path::new(super::xdp::BPF_ROOT), &alias, &node.name)
        });
        if xdp_dir.is_some() {
            env.push(format!("{}={}", af_xdp::PIN_DIR_ENV, af_xdp::PIN_DIR));
        }
        env.extend(node.env.iter().map(|(k, v)| format!("{k}={v}")));

        let iface_names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        // `kernel: normal` leaves the kernel as it is: a kernel-stack
        // device under test answers ARP and ICMP and forwards.
        let silence: &[(&str, &str)] = match node.kernel {
            KernelMode::Quiet => &KERNEL_SILENCE,
            KernelMode::Normal => &[],
        };
        let mut sysctls: HashMap<String, String> = silence
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // Sysctls of a lab interface cannot be set before it exists: the
        // links module applies them once the interface is in the node.
        sysctls.extend(
            node.sysctls
                .iter()
                .filter(|(k, _)| sysctl::interface_of(k, &iface_names).is_none())
                .map(|(k, v)| (k.clone(), v.clone())),
        );

        let devices = needs::node_datalinks(lab, node)
            .into_iter()
            .flat_map(|k| needs::devices(k).iter().map(|d| d.to_string()))
            .collect();

        let mut labels = HashMap::from([
            (names::LABEL_LAB.to_owned(), lab.name().to_owned()),
            (names::LABEL_INSTANCE.to_owned(), instance.to_string()),
            (names::LABEL_FILE.to_owned(), absolute(lab.file())),
            (names::LABEL_RUN.to_owned(), run.to_string()),
            (names::LABEL_NODE.to_owned(), node.name.clone()),
            (names::LABEL_NODES.to_owned(), lab.nodes().len().to_string()),
            (names::LABEL_ROLE.to_owned(), names::ROLE_NODE.to_owned()),
            (
                names::LABEL_INTERFACES.to_owned(),
                serde_json::to_string(&interfaces).unwrap_or_else(|_| "[]".into()),
            ),
        ]);

        if let Some(owner) = Owner::current() {
            labels.insert(names::LABEL_OWNER.to_owned(), owner.to_string());
        }

        NodeSpec {
            node: node.name.clone(),
            container: names::container_name(instance.as_str(), &node.name),
            image,
            labels,
            env,
            cap_add: needs::node_capabilities(lab, node, host),
            security_opt: needs::security_opt(lab, node, host).into_iter().collect(),
            sysctls,
            devices,
            binds: node.binds.clone(),
            limits: node.limits,
            pinned_xdp,
            xdp_dir,
        }
    }
}

/// A node's interfaces, in file order, as recorded in its labels.
pub fn interface_labels(lab: &Lab, node: &Node) -> Vec<InterfaceLabel> {
    lab.links()
        .iter()
        .flat_map(|link| {
            let [a, b] = &link.endpoints;
            [(a, b), (b, a)]
        })
        .filter(|(end, _)| end.node == node.name)
        .map(|(end, peer)| InterfaceLabel {
            name: end.interface.clone(),
            datalink: end.datalink,
            ipv4: end.ipv4.map(|a| a.to_string()),
            mac: end.mac.map(|m| m.to_string()),
            peer: peer.label(),
        })
        .collect()
}

/// The lab file as recorded in the `labctl.file` label.
pub(crate) fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;

    const LAB: &str = r#"
name: spec
nodes:
  a:
    env: { GREETING: hello }
    sysctls: { net.ipv4.ip_forward: "1", net.ipv4.conf.eth1.rp_filter: "2", net.ipv4.icmp_echo_ignore_all: "0" }
  b: { image: "busybox:local", datalink: af_xdp }
links:
  - endpoints: ["a:eth1", "b:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
"#;

    pub(crate) fn spec(node: &str) -> NodeSpec {
        let lab = crate::lab::parse(LAB, Path::new("/labs/spec.yaml")).unwrap();
        let tools = ToolsImage::for_hash("0123456789ab");
        let node = lab.node(node).unwrap();
        let image = match &node.image {
            None => NodeImage::Tools(tools),
            Some(image) => NodeImage::Custom {
                image: image.clone(),
                path: Some("/bin".into()),
                command: vec!["my-lb".into(), "--config".into(), "/etc/lb.conf".into()],
                user: None,
                tools,
            },
        };
        NodeSpec::new(
            &lab,
            &Instance::of_lab("spec-1"),
            node,
            image,
            &RunId::from_label("feedbeef0000"),
            &HostSupport::FULL,
        )
    }

    #[test]
    fn labels_name_the_lab_file_run_node_and_interfaces() {
        let a = spec("a");
        assert_eq!(a.container, "labctl-spec-1.a");
        assert_eq!(a.labels[names::LABEL_INSTANCE], "spec-1");
        let owner = names::Owner::parse(&a.labels[names::LABEL_OWNER]).unwrap();
        assert!(owner.is_current());
        assert_eq!(a.labels[names::LABEL_LAB], "spec");
        assert_eq!(a.labels[names::LABEL_FILE], "/labs/spec.yaml");
        assert_eq!(a.labels[names::LABEL_RUN], "feedbeef0000");
        assert_eq!(a.labels[names::LABEL_NODE], "a");
        let interfaces: Vec<InterfaceLabel> =
            serde_json::from_str(&a.labels[names::LABEL_INTERFACES]).unwrap();
        assert_eq!(interfaces[0].name, "eth1");
        assert_eq!(interfaces[0].ipv4.as_deref(), Some("198.18.0.1/24"));
        assert_eq!(interfaces[0].peer, "b:eth1");
    }

    #[test]
    fn env_names_each_interfaces_datalink_then_the_nodes_env() {
        let a = spec("a");
        assert_eq!(a.env, ["LABCTL_DATALINK_eth1=af_packet", "GREETING=hello"]);
        let b = spec("b");
        assert_eq!(
            b.env,
            [
                "LABCTL_DATALINK_eth1=af_xdp",
                "PATH=/lab/bin:/bin",
                "LABCTL_XDP_DIR=/lab/xdp"
            ]
        );
    }

    #[test]
    fn the_kernel_is_silenced_unless_the_lab_says_otherwise() {
        let a = spec("a");
        assert_eq!(a.sysctls["net.ipv4.conf.all.arp_ignore"], "8");
        assert_eq!(a.sysctls["net.ipv6.conf.default.disable_ipv6"], "1");
        assert_eq!(a.sysctls["net.ipv4.icmp_echo_ignore_all"], "0");
        assert_eq!(a.sysctls["net.ipv4.ip_forward"], "1");
        // Interface sysctls wait for the interface.
        assert!(!a.sysctls.contains_key("net.ipv4.conf.eth1.rp_filter"));
    }

    pub(crate) fn spec_of(yaml: &str, dir: &Path, node: &str) -> NodeSpec {
        let file = dir.join("lab.yaml");
        let lab = crate::lab::parse(yaml, &file).unwrap();
        let node = lab.node(node).unwrap();
        NodeSpec::new(
            &lab,
            &Instance::of_lab("k-1"),
            node,
            NodeImage::Tools(ToolsImage::for_hash("0123456789ab")),
            &RunId::from_label("feedbeef0000"),
            &HostSupport::FULL,
        )
    }

    #[test]
    fn a_normal_kernel_keeps_its_defaults_but_the_labs_sysctls() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "name: k\nnodes:\n  r:\n    kernel: normal\n    sysctls: { net.ipv4.ip_forward: 1 }\n  q: {}\nlinks:\n  - endpoints: [\"r:eth1\", \"q:eth1\"]\n";
        let r = spec_of(yaml, dir.path(), "r");
        assert!(!r.sysctls.contains_key("net.ipv4.conf.all.arp_ignore"));
        assert!(!r.sysctls.contains_key("net.ipv4.icmp_echo_ignore_all"));
        assert_eq!(r.sysctls["net.ipv4.ip_forward"], "1");
        let q = spec_of(yaml, dir.path(), "q");
        assert_eq!(q.sysctls["net.ipv4.conf.all.arp_ignore"], "8");
    }

    #[test]
    fn the_command_is_the_entrypoint_then_the_labs_cmd_or_the_images() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let entrypoint = words(&["/docker-entrypoint.sh"]);
        let image_cmd = words(&["nginx", "-g", "daemon off;"]);
        assert_eq!(
            node_command(&entrypoint, &image_cmd, None),
            words(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])
        );
        let lab_cmd = words(&["nginx", "-T"]);
        assert_eq!(
            node_command(&entrypoint, &image_cmd, Some(&lab_cmd)),
            words(&["/docker-entrypoint.sh", "nginx", "-T"])
        );
        assert_eq!(node_command(&[], &image_cmd, Some(&lab_cmd)), lab_cmd);
        assert_eq!(node_command(&[], &image_cmd, None), image_cmd);
        assert!(node_command(&entrypoint, &image_cmd, Some(&[])).is_empty());
        assert!(node_command(&[], &[], None).is_empty());
        // An entrypoint alone runs, as under `docker run`.
        assert_eq!(node_command(&entrypoint, &[], None), entrypoint);
    }
}
