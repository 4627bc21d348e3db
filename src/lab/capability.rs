//! Linux capabilities as a lab names them (`capabilities: [NET_ADMIN]`):
//! the one table of names and numbers that validation, the Docker runtime
//! (`CapAdd`) and the netns runtime (`capset`) share, and how far a
//! hostile program holding each one reaches on each runtime
//! (docs/runtime.md#security-model).

use std::fmt;

/// One Linux capability, by its number in linux/capability.h; its name is
/// capabilities(7)'s without `CAP_` (Docker's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

/// What a runtime's node is, as far as its processes' reach goes
/// ([`super::RuntimeKind::isolation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Processes in namespaces of their own (PID, mount, IPC, UTS), under
    /// a device cgroup and a seccomp profile.
    Container,
    /// Host processes with a network namespace of their own: the host's
    /// files, processes and IPC.
    HostProcess,
}

/// How far a hostile program holding a capability reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its own node: its processes, files, interfaces (or, for the
    /// harmless ones, nothing anyone else relies on).
    Node,
    /// The host: root on it, or its kernel, clock, files or processes.
    /// Granted only to a `privileged: true` node.
    Host,
}

struct Entry {
    name: &'static str,
    /// In a container ([`Isolation::Container`]; Docker's: its own PID,
    /// mount, IPC and UTS namespaces, Docker's device cgroup and seccomp
    /// profile).
    container: Reach,
    /// In a host process ([`Isolation::HostProcess`]; a netns step: the
    /// host's files, processes and IPC, the node's network namespace).
    host_process: Reach,
}

const fn entry(name: &'static str, container: Reach, host_process: Reach) -> Entry {
    Entry {
        name,
        container,
        host_process,
    }
}

use Reach::{Host, Node};

/// By number; docs/runtime.md says why each reach is what it is.
const TABLE: [Entry; 41] = [
    entry("CHOWN", Node, Host),
    entry("DAC_OVERRIDE", Node, Host),
    // open_by_handle_at(2) reads any file of a mounted filesystem, the
    // host's too ("shocker"): Docker's profile allows it with this.
    entry("DAC_READ_SEARCH", Host, Host),
    entry("FOWNER", Node, Host),
    entry("FSETID", Node, Host),
    entry("KILL", Node, Host),
    entry("SETGID", Node, Host),
    entry("SETUID", Node, Host),
    // Only its own bounding and inheritable sets, within what it holds.
    entry("SETPCAP", Node, Node),
    entry("LINUX_IMMUTABLE", Node, Host),
    entry("NET_BIND_SERVICE", Node, Node),
    entry("NET_BROADCAST", Node, Node),
    // A netns step sees the host's processes, so it can name the host's
    // namespace by pid (measured: `ip link set X netns 1` works); af_xdp
    // steps get it there already, so it is not refused (see the docs).
    entry("NET_ADMIN", Node, Node),
    entry("NET_RAW", Node, Node),
    entry("IPC_LOCK", Node, Node),
    entry("IPC_OWNER", Node, Host),
    entry("SYS_MODULE", Host, Host),
    entry("SYS_RAWIO", Host, Host),
    entry("SYS_CHROOT", Node, Node),
    entry("SYS_PTRACE", Node, Host),
    entry("SYS_PACCT", Host, Host),
    entry("SYS_ADMIN", Host, Host),
    // kexec_load(2) checks it in the initial user namespace, which a
    // container is in.
    entry("SYS_BOOT", Host, Host),
    entry("SYS_NICE", Node, Host),
    entry("SYS_RESOURCE", Node, Host),
    // The clock is not namespaced.
    entry("SYS_TIME", Host, Host),
    entry("SYS_TTY_CONFIG", Node, Host),
    // Docker's device cgroup allows only the node's devices.
    entry("MKNOD", Node, Host),
    entry("LEASE", Node, Node),
    entry("AUDIT_WRITE", Node, Node),
    entry("AUDIT_CONTROL", Host, Host),
    entry("SETFCAP", Node, Host),
    entry("MAC_OVERRIDE", Host, Host),
    entry("MAC_ADMIN", Host, Host),
    entry("SYSLOG", Host, Host),
    entry("WAKE_ALARM", Node, Node),
    entry("BLOCK_SUSPEND", Node, Node),
    entry("AUDIT_READ", Host, Host),
    entry("PERFMON", Host, Host),
    // Networking programs only: tracing needs PERFMON as well.
    entry("BPF", Node, Node),
    entry("CHECKPOINT_RESTORE", Node, Host),
];

impl Capability {
    pub const NET_ADMIN: Capability = Capability(12);
    pub const NET_RAW: Capability = Capability(13);
    pub const SYS_ADMIN: Capability = Capability(21);
    pub const AUDIT_READ: Capability = Capability(37);
    pub const PERFMON: Capability = Capability(38);
    pub const BPF: Capability = Capability(39);
    pub const CHECKPOINT_RESTORE: Capability = Capability(40);

    /// The capability named `name` (`NET_ADMIN`: exact, without `CAP_`).
    pub fn from_name(name: &str) -> Option<Capability> {
        TABLE
            .iter()
            .position(|e| e.name == name)
            .map(|i| Capability(i as u8))
    }

    /// The capability numbered `number`, if labctl knows it.
    pub fn from_number(number: u32) -> Option<Capability> {
        (number < TABLE.len() as u32).then_some(Capability(number as u8))
    }

    /// Every capability labctl knows, by number.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..TABLE.len() as u8).map(Capability)
    }

    /// Without `CAP_`: `NET_ADMIN`.
    pub fn name(self) -> &'static str {
        TABLE[usize::from(self.0)].name
    }

    /// Its number (bit) in linux/capability.h.
    pub fn number(self) -> u32 {
        u32::from(self.0)
    }

    /// How far a hostile program holding it reaches in a node that is
    /// `isolation` (a runtime's: [`super::RuntimeKind::isolation`]).
    pub fn reach(self, isolation: Isolation) -> Reach {
        let entry = &TABLE[usize::from(self.0)];
        match isolation {
            Isolation::Container => entry.container,
            Isolation::HostProcess => entry.host_process,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_those_of_linux() {
        // A few from linux/capability.h, both ends included.
        for (name, number) in [
            ("CHOWN", 0),
            ("NET_BIND_SERVICE", 10),
            ("NET_ADMIN", 12),
            ("NET_RAW", 13),
            ("IPC_LOCK", 14),
            ("SYS_ADMIN", 21),
            ("AUDIT_READ", 37),
            ("PERFMON", 38),
            ("BPF", 39),
            ("CHECKPOINT_RESTORE", 40),
        ] {
            let cap = Capability::from_name(name).unwrap();
            assert_eq!(cap.number(), number, "{name}");
            assert_eq!(cap.name(), name);
            assert_eq!(Capability::from_number(number), Some(cap));
        }
        for (constant, name) in [
            (Capability::NET_ADMIN, "NET_ADMIN"),
            (Capability::NET_RAW, "NET_RAW"),
            (Capability::SYS_ADMIN, "SYS_ADMIN"),
            (Capability::AUDIT_READ, "AUDIT_READ"),
            (Capability::PERFMON, "PERFMON"),
            (Capability::BPF, "BPF"),
            (Capability::CHECKPOINT_RESTORE, "CHECKPOINT_RESTORE"),
        ] {
            assert_eq!(constant.name(), name);
        }
        assert_eq!(Capability::from_name("CAP_NET_ADMIN"), None);
        assert_eq!(Capability::from_name("net_admin"), None);
        assert_eq!(Capability::from_number(41), None);
        assert_eq!(Capability::all().count(), 41);
    }

    #[test]
    fn a_netns_step_reaches_the_host_with_more_than_a_container_does() {
        let host = |isolation| {
            Capability::all()
                .filter(|c| c.reach(isolation) == Reach::Host)
                .collect::<Vec<_>>()
        };
        let docker = host(Isolation::Container);
        let netns = host(Isolation::HostProcess);
        // What reaches the host from a container reaches it from the host.
        assert!(docker.iter().all(|c| netns.contains(c)));
        assert!(netns.len() > docker.len());
        let name = |c: &str| Capability::from_name(c).unwrap();
        assert!(docker.contains(&name("SYS_ADMIN")));
        assert!(!docker.contains(&name("DAC_OVERRIDE")));
        assert!(netns.contains(&name("DAC_OVERRIDE")));
        assert!(netns.contains(&name("SYS_PTRACE")));
        // What a router or an af_xdp node needs stays grantable.
        for c in [
            "NET_ADMIN",
            "NET_RAW",
            "NET_BIND_SERVICE",
            "IPC_LOCK",
            "BPF",
        ] {
            assert!(!netns.contains(&name(c)), "{c}");
        }
    }
}
