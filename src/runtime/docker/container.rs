//! A node's container: what Docker's create call is given for a
//! [`NodeSpec`].

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, Mount, MountType, MountVolumeOptions,
};

use crate::runtime::console;
use crate::runtime::node::{NodeImage, NodeSpec};
use crate::runtime::tools_dir::TOOLS_PATH;
use crate::runtime::xdp;
use crate::tools::datalink::af_xdp;

/// lab-init's arguments in a node with its own image that runs a
/// command ([`console::init_args`]).
fn init_args(spec: &NodeSpec) -> Option<Vec<String>> {
    match &spec.image {
        NodeImage::Custom { command, user, .. } if !command.is_empty() => {
            Some(console::init_args(command, user.as_deref()))
        }
        _ => None,
    }
}

/// `cap_add`, and what lab-init needs to give the command the image's
/// USER and still stop it (it runs as root with every other
/// capability dropped; signalling another user's process takes KILL).
fn capabilities(spec: &NodeSpec) -> Vec<String> {
    let mut caps = spec.cap_add.clone();
    if let NodeImage::Custom {
        user: Some(_),
        command,
        ..
    } = &spec.image
    {
        if !command.is_empty() {
            caps.extend(["KILL", "SETGID", "SETUID"].map(str::to_owned));
            caps.sort();
            caps.dedup();
        }
    }
    caps
}

/// The body of Docker's container-create call for `spec`.
pub fn create_body(spec: &NodeSpec) -> ContainerCreateBody {
    let (image, entrypoint, mounts) = match &spec.image {
        NodeImage::Tools(tools) => (tools.tag.clone(), None, None),
        // Never given to Docker: the netns runtime makes no container.
        NodeImage::Host => (String::new(), None, None),
        NodeImage::Custom { image, tools, .. } => (
            image.clone(),
            Some(vec![format!("{TOOLS_PATH}/lab-init")]),
            Some(vec![Mount {
                target: Some(TOOLS_PATH.into()),
                source: Some(tools.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(true),
                // The volume is filled from the tools image only.
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
        ),
    };
    let mut mounts = mounts.unwrap_or_default();
    mounts.extend(spec.binds.iter().map(|b| Mount {
        target: Some(b.target.to_string_lossy().into_owned()),
        source: Some(b.host.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(b.read_only),
        ..Default::default()
    }));
    // Only this node's pins, read-write: BPF_OBJ_GET for writing
    // checks write access to the pin.
    mounts.extend(spec.xdp_dir.iter().map(|dir| Mount {
        target: Some(af_xdp::PIN_DIR.into()),
        source: Some(xdp::map_dir(dir).to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(false),
        ..Default::default()
    }));
    let mounts = (!mounts.is_empty()).then_some(mounts);
    let devices = spec
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: Some(d.clone()),
            path_in_container: Some(d.clone()),
            cgroup_permissions: Some("rwm".into()),
        })
        .collect::<Vec<_>>();
    ContainerCreateBody {
        image: Some(image),
        hostname: Some(spec.node.clone()),
        entrypoint,
        // An overridden entrypoint drops the image's CMD as well:
        // lab-init gets the image's command as its arguments.
        cmd: init_args(spec),
        // lab-init's stop signal, whatever STOPSIGNAL the image sets:
        // PID 1 ignores signals it has no handler for.
        stop_signal: matches!(spec.image, NodeImage::Custom { .. }).then(|| "SIGTERM".to_owned()),
        // lab-init and the steps as root, whatever USER the image
        // sets: the tools need the node's capabilities, which a
        // non-root user loses at exec; lab-init gives the command the
        // image's USER.
        user: matches!(spec.image, NodeImage::Custom { .. }).then(|| "0:0".to_owned()),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone()),
        network_disabled: None,
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(capabilities(spec)),
            security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
            sysctls: Some(spec.sysctls.clone()),
            devices: (!devices.is_empty()).then_some(devices),
            mounts,
            init: Some(false),
            // A fork bomb or a leak in one node stays in it; no swap
            // beyond the memory limit.
            pids_limit: Some(i64::from(spec.limits.pids)),
            memory: i64::try_from(spec.limits.memory).ok(),
            memory_swap: i64::try_from(spec.limits.memory).ok(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::lab::Limits;
    use crate::runtime::names::{Instance, RunId};
    use crate::runtime::node::tests::{spec, spec_of};
    use crate::runtime::privilege::HostSupport;

    #[test]
    fn an_af_xdp_node_gets_its_own_pin_directory_where_labctl_attaches() {
        let b = spec("b");
        assert_eq!(b.pinned_xdp, ["eth1"]);
        let dir = b.xdp_dir.clone().unwrap();
        assert_eq!(
            dir,
            Path::new("/run/labctl/bpf/labctl:spec:spec-1:feedbeef0000:b")
        );
        let mounts = create_body(&b).host_config.unwrap().mounts.unwrap();
        let pins = mounts.last().unwrap();
        assert_eq!(pins.target.as_deref(), Some("/lab/xdp"));
        assert_eq!(
            pins.source.as_deref(),
            Some("/run/labctl/bpf/labctl:spec:spec-1:feedbeef0000:b/xdp"),
            "the maps only, not the links"
        );
        assert_eq!(pins.read_only, Some(false));
        assert_eq!(spec("a").xdp_dir, None);
        assert!(spec("a").pinned_xdp.is_empty());
    }

    #[test]
    fn binds_are_bind_mounts_read_only_unless_rw_and_limits_are_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myfwd"), b"").unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        let yaml = "name: k\nnodes:\n  d:\n    binds:\n      - ./myfwd:/usr/local/bin/myfwd\n      - ./conf:/etc/myfwd:rw\n";
        let body = create_body(&spec_of(yaml, dir.path(), "d"));
        let host = body.host_config.unwrap();
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(mounts[0].target.as_deref(), Some("/usr/local/bin/myfwd"));
        let source = std::fs::canonicalize(dir.path().join("myfwd")).unwrap();
        assert_eq!(mounts[0].source.as_deref(), source.to_str());
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[1].read_only, Some(false));
        assert_eq!(host.pids_limit, Some(i64::from(Limits::DEFAULT.pids)));
        assert_eq!(host.memory, Some(Limits::DEFAULT.memory as i64));
        assert_eq!(host.memory_swap, host.memory);
    }

    #[test]
    fn every_capability_is_dropped_but_what_the_datalinks_need() {
        let body = create_body(&spec("b"));
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        // labctl attaches the XDP program: no BPF, NET_ADMIN, SYS_ADMIN.
        assert_eq!(host.cap_add.unwrap(), ["IPC_LOCK", "NET_RAW"]);
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        let opts = host.security_opt.unwrap();
        assert_eq!(opts.len(), 1);
        let profile = opts[0].strip_prefix("seccomp=").expect("a seccomp option");
        let profile: serde_json::Value = serde_json::from_str(profile).expect("JSON text");
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
        // Other nodes keep Docker's default profile.
        assert_eq!(
            create_body(&spec("a")).host_config.unwrap().security_opt,
            None
        );
    }

    #[test]
    fn a_nodes_own_capabilities_are_added_to_its_datalinks() {
        let lab = crate::lab::parse(
            "name: r\nnodes:\n  r1: {capabilities: [NET_BIND_SERVICE, NET_ADMIN]}\n  r2: {}\n\
             links:\n  - endpoints: [r1:eth1, r2:eth1]\n",
            Path::new("/labs/r.yaml"),
        )
        .unwrap();
        let cap_add = |node: &str| {
            let spec = NodeSpec::new(
                &lab,
                &Instance::of_lab("r"),
                lab.node(node).unwrap(),
                NodeImage::Host,
                &RunId::from_label("feedbeef0000"),
                &HostSupport::FULL,
            );
            create_body(&spec).host_config.unwrap().cap_add.unwrap()
        };
        assert_eq!(cap_add("r1"), ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"]);
        assert_eq!(cap_add("r2"), ["NET_RAW"]);
    }

    #[test]
    fn a_custom_image_gets_the_tools_volume_and_lab_init() {
        let body = create_body(&spec("b"));
        assert_eq!(body.image.as_deref(), Some("busybox:local"));
        assert_eq!(body.entrypoint.unwrap(), ["/lab/bin/lab-init"]);
        assert_eq!(
            body.cmd.unwrap(),
            ["--", "my-lb", "--config", "/etc/lb.conf"]
        );
        assert_eq!(body.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(body.user.as_deref(), Some("0:0"));
        let mounts = body.host_config.unwrap().mounts.unwrap();
        assert_eq!(
            mounts[0].source.as_deref(),
            Some("labctl-tools-0123456789ab")
        );
        assert_eq!(mounts[0].target.as_deref(), Some("/lab/bin"));
        assert_eq!(mounts[0].read_only, Some(true));

        let tools_node = create_body(&spec("a"));
        assert_eq!(
            tools_node.image.as_deref(),
            Some("labctl-tools:0123456789ab")
        );
        assert!(tools_node.entrypoint.is_none());
        assert!(tools_node.cmd.is_none());
        assert!(tools_node.stop_signal.is_none());
        assert!(tools_node.user.is_none());
        assert!(tools_node.host_config.unwrap().mounts.is_none());
    }

    #[test]
    fn the_images_user_goes_to_lab_init_with_the_capabilities_to_switch_to_it() {
        let mut b = spec("b");
        if let NodeImage::Custom { user, .. } = &mut b.image {
            *user = Some("frr".into());
        }
        let body = create_body(&b);
        assert_eq!(
            body.cmd.unwrap(),
            ["--user", "frr", "--", "my-lb", "--config", "/etc/lb.conf"]
        );
        assert_eq!(
            body.host_config.unwrap().cap_add.unwrap(),
            ["IPC_LOCK", "KILL", "NET_RAW", "SETGID", "SETUID"]
        );
        // No command, nothing to switch.
        if let NodeImage::Custom { command, .. } = &mut b.image {
            command.clear();
        }
        let caps = create_body(&b).host_config.unwrap().cap_add.unwrap();
        assert_eq!(caps, ["IPC_LOCK", "NET_RAW"]);
    }

    #[test]
    fn a_custom_image_without_a_command_gives_lab_init_no_arguments() {
        let mut b = spec("b");
        if let NodeImage::Custom { command, .. } = &mut b.image {
            command.clear();
        }
        assert_eq!(create_body(&b).cmd, None);
    }
}
