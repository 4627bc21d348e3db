//! How labctl names and labels what it creates, so that every resource of a
//! lab can be found again from the daemon and the kernel alone (after a
//! crash, a SIGKILL, or from another shell) and two labs never collide.
//!
//! What is deployed is an *instance* of a lab: `labctl run` makes a fresh
//! one each time (`<lab>-<4 hex>`), `labctl deploy` uses the lab's name,
//! and `--name` picks one. Two runs of the same lab file on one host are
//! two instances, with their own containers, labels, veth aliases and run
//! directories. Lab, node and instance names are `[a-z0-9-]`, so the `.`
//! of a container name (`labctl-<instance>.<node>`) and the `:` of a veth
//! alias cannot be part of any of them: no two labs' names can collide.

use std::fmt;

/// Every container of a lab carries `labctl.lab=<lab name>`.
pub const LABEL_LAB: &str = "labctl.lab";
/// The instance the container belongs to (see the module documentation);
/// containers made before instances existed lack it: their lab name is
/// their instance.
pub const LABEL_INSTANCE: &str = "labctl.instance";
/// The labctl process that deployed the instance, `<pid>:<start time>`
/// ([`Owner`]): while it lives, the instance is in use.
pub const LABEL_OWNER: &str = "labctl.owner";
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

/// The longest instance name: a lab name (20) and a `-` and 4 hex digits
/// fit, with room for a user's own scheme (`ci-1234-icmp-af-xdp`).
pub const INSTANCE_MAX: usize = 40;

/// The name of one deployed copy of a lab: `[a-z0-9][a-z0-9-]{0,39}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a valid instance name: use lowercase letters, digits and `-`, \
     starting with a letter or digit, at most {INSTANCE_MAX} characters"
)]
pub struct InvalidInstance(pub String);

impl Instance {
    /// A name the user chose (`--name`).
    pub fn new(name: &str) -> Result<Self, InvalidInstance> {
        if is_valid_instance(name) {
            Ok(Instance(name.to_owned()))
        } else {
            Err(InvalidInstance(name.to_owned()))
        }
    }

    /// A fresh instance of lab `lab` for one `labctl run`: `<lab>-<4 hex>`.
    /// Two runs drawing the same suffix is caught by the deploy, which
    /// never reuses an instance another process owns.
    pub fn fresh(lab: &str) -> Self {
        Instance(format!("{lab}-{}", random_hex(2)))
    }

    /// The instance named like the lab itself (`labctl deploy`'s default).
    pub fn of_lab(lab: &str) -> Self {
        Instance(lab.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn is_valid_instance(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= INSTANCE_MAX
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// `labctl-<instance>.<node>`: neither name can contain `.`, so lab `a`
/// node `b-x` (`labctl-a.b-x`) and lab `a-b` node `x` (`labctl-a-b.x`)
/// never meet, and the name stays readable.
pub fn container_name(instance: &str, node: &str) -> String {
    format!("labctl-{instance}.{node}")
}

/// The tools-volume filler of one deploy: `labctl-<instance>.tools-fill.<run>`
/// (two dots: never a node's name).
pub fn tools_fill_name(instance: &str, run: &RunId) -> String {
    format!("labctl-{instance}.{ROLE_TOOLS_FILL}.{run}")
}

/// The interface alias (IFLA_IFALIAS) every veth of a deploy carries:
/// `labctl:<lab>:<instance>:<run>`. Aliases survive moves between
/// namespaces, so a veth left on the host by a crash is still recognisable.
pub fn veth_alias(lab: &str, instance: &Instance, run: &RunId) -> String {
    format!("labctl:{lab}:{instance}:{run}")
}

/// The lab, instance and run a labctl veth alias names; `None` for any
/// other alias. Aliases of before instances (`labctl:<lab>:<run>`) name the
/// lab as instance.
fn parse_alias(alias: &str) -> Option<(&str, &str, &str)> {
    let mut parts = alias.strip_prefix("labctl:")?.split(':');
    let (lab, second, third) = (parts.next()?, parts.next()?, parts.next());
    if parts.next().is_some() {
        return None;
    }
    Some(match third {
        Some(run) => (lab, second, run),
        None => (lab, lab, second),
    })
}

/// The process that owns an instance: the `labctl run` or `labctl deploy`
/// that created it. The pid alone could be reused; with the process's
/// start time (in clock ticks since boot, /proc/PID/stat field 22) it names
/// one process for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Option<Self> {
        let pid = std::process::id();
        Some(Owner {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Reads back a [`LABEL_OWNER`] value.
    pub fn parse(label: &str) -> Option<Self> {
        let (pid, start) = label.split_once(':')?;
        Some(Owner {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    /// Whether the process still runs (same pid, same start time).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    /// Whether it is this process.
    pub fn is_current(&self) -> bool {
        Owner::current().as_ref() == Some(self)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

/// Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the name: 22 is the 20th from there.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Which labs (or which deploy of one) an operation applies to. The
/// daemon is asked by label and the kernel by interface alias, never by
/// what labctl remembers, so this works after a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every resource of one instance.
    Instance(String),
    /// What one deploy created (a rollback).
    Run { instance: String, run: RunId },
    /// What a user named on the command line: the instance of that name,
    /// or else every instance of the lab of that name.
    Named(String),
    /// Every instance whose name starts with `prefix` (empty: every lab).
    All { prefix: String },
}

impl Scope {
    /// Docker `label` filters that select the scope's containers (a
    /// superset for [`Scope::Named`] and [`Scope::All`]: see
    /// [`Scope::has`]).
    pub fn label_filters(&self) -> Vec<String> {
        match self {
            Scope::Instance(instance) => vec![format!("{LABEL_INSTANCE}={instance}")],
            Scope::Run { instance, run } => vec![
                format!("{LABEL_INSTANCE}={instance}"),
                format!("{LABEL_RUN}={run}"),
            ],
            Scope::Named(_) | Scope::All { .. } => vec![LABEL_LAB.to_owned()],
        }
    }

    /// Whether a container of lab `lab`, instance `instance`, deploy `run`
    /// belongs to the scope.
    pub fn has(&self, lab: &str, instance: &str, run: &str) -> bool {
        match self {
            Scope::Instance(name) => instance == name,
            Scope::Run {
                instance: i,
                run: r,
            } => instance == i && run == r.as_str(),
            Scope::Named(name) => instance == name || lab == name,
            Scope::All { prefix } => instance.starts_with(prefix.as_str()),
        }
    }

    /// Whether a veth with this alias belongs to the scope.
    pub fn has_alias(&self, alias: &str) -> bool {
        parse_alias(alias).is_some_and(|(lab, instance, run)| self.has(lab, instance, run))
    }

    /// How messages name the scope.
    pub fn describe(&self) -> String {
        match self {
            Scope::Instance(instance) => format!("lab {instance}"),
            Scope::Run { instance, run } => format!("run {run} of lab {instance}"),
            Scope::Named(name) => format!("lab {name}"),
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
    fn names_of_different_labs_never_collide() {
        // Issue 15.3: lab `a` node `b-x` and lab `a-b` node `x`.
        assert_eq!(container_name("a", "b-x"), "labctl-a.b-x");
        assert_eq!(container_name("a-b", "x"), "labctl-a-b.x");
        assert_ne!(container_name("a", "b-x"), container_name("a-b", "x"));
        let run = RunId::from_label("0123456789ab");
        assert_eq!(
            tools_fill_name("a", &run),
            "labctl-a.tools-fill.0123456789ab"
        );
        assert_ne!(
            tools_fill_name("a", &run),
            container_name("a", "tools-fill")
        );
    }

    #[test]
    fn instances_are_checked_and_fresh_ones_differ() {
        assert!(Instance::new("icmp-1f2e").is_ok());
        assert!(Instance::new(&"a".repeat(INSTANCE_MAX)).is_ok());
        for bad in ["", "-a", "A", "a.b", "a:b", "a_b"] {
            assert!(Instance::new(bad).is_err(), "{bad:?}");
        }
        assert!(Instance::new(&"a".repeat(INSTANCE_MAX + 1)).is_err());
        let fresh = Instance::fresh("icmp");
        assert!(fresh.as_str().starts_with("icmp-") && fresh.as_str().len() == 9);
        assert!(is_valid_instance(fresh.as_str()));
        let many: std::collections::HashSet<_> = (0..50).map(|_| Instance::fresh("x")).collect();
        assert!(many.len() > 1);
    }

    #[test]
    fn aliases_name_lab_instance_and_run() {
        let run = RunId::from_label("0123456789ab");
        let alias = veth_alias("icmp", &Instance::of_lab("icmp-7a7a"), &run);
        assert_eq!(alias, "labctl:icmp:icmp-7a7a:0123456789ab");
        assert_eq!(
            parse_alias(&alias),
            Some(("icmp", "icmp-7a7a", "0123456789ab"))
        );
        assert_eq!(parse_alias("labctl:old:feed"), Some(("old", "old", "feed")));
        assert_eq!(parse_alias("someone-elses"), None);
        assert_eq!(parse_alias("labctl:a:b:c:d"), None);
    }

    #[test]
    fn scopes_select_by_label_and_alias() {
        let run = RunId::from_label("aaaaaaaaaaaa");
        let other = RunId::from_label("bbbbbbbbbbbb");
        let alias = |lab: &str, instance: &str, run: &RunId| {
            veth_alias(lab, &Instance::of_lab(instance), run)
        };
        let one = Scope::Instance("ab-1234".into());
        assert_eq!(one.label_filters(), ["labctl.instance=ab-1234"]);
        assert!(one.has_alias(&alias("ab", "ab-1234", &run)));
        assert!(!one.has_alias(&alias("ab", "ab-5678", &run)));
        assert!(!one.has_alias(&alias("ab-1234", "ab-1234x", &run)));
        let one_run = Scope::Run {
            instance: "ab".into(),
            run: run.clone(),
        };
        assert_eq!(
            one_run.label_filters(),
            ["labctl.instance=ab", "labctl.run=aaaaaaaaaaaa"]
        );
        assert!(one_run.has_alias(&alias("ab", "ab", &run)));
        assert!(!one_run.has_alias(&alias("ab", "ab", &other)));
        // A name on the command line: the instance, or every instance of
        // the lab of that name.
        let named = Scope::Named("ab".into());
        assert!(named.has("ab", "ab-1234", "r") && named.has("zz", "ab", "r"));
        assert!(!named.has("abc", "abc-1234", "r"));
        assert!(named.has_alias(&alias("ab", "ab-9999", &run)));
        assert!(named.has_alias("labctl:ab:feed"));
        assert!(!named.has_alias(&alias("abc", "abc-9999", &run)));
        let all = Scope::All { prefix: "a".into() };
        assert_eq!(all.label_filters(), ["labctl.lab"]);
        assert!(all.has("q", "abc", "r") && !all.has("abc", "bc", "r"));
        assert!(all.has_alias(&alias("x", "abc", &run)));
        assert!(!all.has_alias(&alias("a", "bc", &run)));
        let every = Scope::All { prefix: "".into() };
        assert!(every.has("x", "x", "r") && every.has_alias(&alias("x", "x", &run)));
        assert!(!every.has_alias("someone-elses-alias"));
    }

    #[test]
    fn owners_are_this_process_or_a_dead_one() {
        let me = Owner::current().expect("/proc/self/stat");
        assert_eq!(me.pid, std::process::id());
        assert!(me.is_alive() && me.is_current());
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
        // Same pid, another start time: the pid was reused.
        let reused = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(!reused.is_alive());
        assert_eq!(Owner::parse("12"), None);
        assert_eq!(Owner::parse("x:1"), None);
    }

    #[test]
    fn random_ids_differ_and_are_hex() {
        let (a, b) = (RunId::random(), RunId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 12);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
