//! How labctl names and labels what it creates, so that every resource of a
//! lab can be found again from the daemon and the kernel alone (after a
//! crash, a SIGKILL, or from another shell) and two labs never collide.

use std::fmt;

/// Every container of a lab carries `labctl.lab=<lab name>`.
pub const LABEL_LAB: &str = "labctl.lab";
/// The absolute path of the lab file the container was deployed from.
pub const LABEL_FILE: &str = "labctl.file";
/// The deploy that created the container: one random id per `deploy`.
pub const LABEL_RUN: &str = "labctl.run";
/// The node the container is.
pub const LABEL_NODE: &str = "labctl.node";
/// The node's interfaces as JSON ([`crate::runtime::node::InterfaceLabel`]),
/// for `inspect`.
pub const LABEL_INTERFACES: &str = "labctl.interfaces";
/// How many nodes the lab has: a deploy interrupted before creating them
/// all is recognisable from its containers alone.
pub const LABEL_NODES: &str = "labctl.nodes";
/// What the container is for: [`ROLE_NODE`] or [`ROLE_TOOLS_FILL`].
pub const LABEL_ROLE: &str = "labctl.role";
pub const ROLE_NODE: &str = "node";
/// A short-lived container that fills the tools volume (never started).
pub const ROLE_TOOLS_FILL: &str = "tools-fill";

/// `labctl-<lab>-<node>`: lab and node names are both `[a-z0-9-]`, so the
/// name is a valid container name and unique per lab.
pub fn container_name(lab: &str, node: &str) -> String {
    format!("labctl-{lab}-{node}")
}

/// The interface alias (IFLA_IFALIAS) every veth of a deploy carries:
/// `labctl:<lab>:<run>`. Aliases survive moves between namespaces, so a
/// veth left on the host by a crash is still recognisable.
pub fn veth_alias(lab: &str, run: &RunId) -> String {
    format!("labctl:{lab}:{run}")
}

/// The alias prefix of every veth of lab `lab`, whatever the run. The
/// trailing colon keeps lab `ab` from matching lab `abc`.
pub fn veth_alias_prefix(lab: &str) -> String {
    format!("labctl:{lab}:")
}

/// The alias prefix of the veths of every lab whose name starts with
/// `name_prefix` (empty: every lab).
pub fn veth_alias_prefix_all(name_prefix: &str) -> String {
    format!("labctl:{name_prefix}")
}

/// Which labs (or which deploy of one lab) an operation applies to. The
/// daemon is asked by label and the kernel by interface alias, never by
/// what labctl remembers, so this works after a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every resource of one lab.
    Lab(String),
    /// What one deploy created (a rollback).
    Run { lab: String, run: RunId },
    /// Every lab whose name starts with `prefix` (empty: every lab).
    All { prefix: String },
}

impl Scope {
    /// Docker `label` filters that select the scope's containers (a
    /// superset for [`Scope::All`] with a prefix: see [`Scope::has_lab`]).
    pub fn label_filters(&self) -> Vec<String> {
        match self {
            Scope::Lab(lab) => vec![format!("{LABEL_LAB}={lab}")],
            Scope::Run { lab, run } => {
                vec![format!("{LABEL_LAB}={lab}"), format!("{LABEL_RUN}={run}")]
            }
            Scope::All { .. } => vec![LABEL_LAB.to_owned()],
        }
    }

    /// Whether a container of lab `lab` belongs to the scope.
    pub fn has_lab(&self, lab: &str) -> bool {
        match self {
            Scope::Lab(name) | Scope::Run { lab: name, .. } => lab == name,
            Scope::All { prefix } => lab.starts_with(prefix.as_str()),
        }
    }

    /// Whether a veth with this alias belongs to the scope.
    pub fn has_alias(&self, alias: &str) -> bool {
        match self {
            Scope::Lab(lab) => alias.starts_with(&veth_alias_prefix(lab)),
            Scope::Run { lab, run } => alias == veth_alias(lab, run),
            Scope::All { prefix } => alias.starts_with(&veth_alias_prefix_all(prefix)),
        }
    }

    /// How messages name the scope.
    pub fn describe(&self) -> String {
        match self {
            Scope::Lab(lab) => format!("lab {lab}"),
            Scope::Run { lab, run } => format!("run {run} of lab {lab}"),
            Scope::All { prefix } if prefix.is_empty() => "every lab".to_owned(),
            Scope::All { prefix } => format!("every lab named {prefix}*"),
        }
    }
}

/// One deploy of a lab: lets a rollback remove exactly what that deploy
/// created, and tells two deploys of the same lab apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn random() -> Self {
        RunId(random_hex(6))
    }

    /// A run id read back from a label.
    pub fn from_label(value: &str) -> Self {
        RunId(value.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `bytes` random bytes as lowercase hex, from the kernel's generator.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable `rest` slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom cannot fail on Linux ≥ 3.17 except on EINTR; fall
            // back to something unique per process and moment.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let seed = (nanos ^ std::process::id().rotate_left(16)).to_le_bytes();
            for (i, b) in rest.iter_mut().enumerate() {
                *b = seed[i % seed.len()].wrapping_add(i as u8);
            }
            filled = buf.len();
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_lab_and_node() {
        assert_eq!(container_name("icmp", "pinger"), "labctl-icmp-pinger");
        let run = RunId::from_label("0123456789ab");
        assert_eq!(veth_alias("icmp", &run), "labctl:icmp:0123456789ab");
        assert!(veth_alias("icmp", &run).starts_with(&veth_alias_prefix("icmp")));
        assert!(!veth_alias("icmpx", &run).starts_with(&veth_alias_prefix("icmp")));
        assert!(veth_alias("icmpx", &run).starts_with(&veth_alias_prefix_all("icmp")));
    }

    #[test]
    fn scopes_select_by_label_and_alias() {
        let run = RunId::from_label("aaaaaaaaaaaa");
        let other = RunId::from_label("bbbbbbbbbbbb");
        let lab = Scope::Lab("ab".into());
        assert_eq!(lab.label_filters(), ["labctl.lab=ab"]);
        assert!(lab.has_alias(&veth_alias("ab", &run)));
        assert!(!lab.has_alias(&veth_alias("abc", &run)));
        let one_run = Scope::Run {
            lab: "ab".into(),
            run: run.clone(),
        };
        assert_eq!(
            one_run.label_filters(),
            ["labctl.lab=ab", "labctl.run=aaaaaaaaaaaa"]
        );
        assert!(one_run.has_alias(&veth_alias("ab", &run)));
        assert!(!one_run.has_alias(&veth_alias("ab", &other)));
        let all = Scope::All { prefix: "a".into() };
        assert_eq!(all.label_filters(), ["labctl.lab"]);
        assert!(all.has_lab("abc") && !all.has_lab("bc"));
        assert!(all.has_alias(&veth_alias("abc", &run)));
        assert!(!all.has_alias(&veth_alias("bc", &run)));
        let every = Scope::All { prefix: "".into() };
        assert!(every.has_lab("x") && every.has_alias(&veth_alias("x", &run)));
        assert!(!every.has_alias("someone-elses-alias"));
    }

    #[test]
    fn random_ids_differ_and_are_hex() {
        let (a, b) = (RunId::random(), RunId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 12);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
