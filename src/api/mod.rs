//! labctl as a library, for tests written in Rust (`cargo test`): load a
//! lab file or build a lab in code, bring it up, run commands in its
//! nodes, cut links and change impairments while it runs, check output
//! with the same `expect` as lab files, and have it torn down when the
//! handle goes, even when the test panics. docs/library.md is the guide.
//!
//! ```no_run
//! use std::time::Duration;
//! use labctl::api::{Expect, Lab, Link, Node};
//!
//! # async fn demo() -> Result<(), labctl::api::Error> {
//! let lab = Lab::builder("pair")
//!     .node(Node::new("a"))
//!     .node(Node::new("b"))
//!     .link(Link::new("a:eth1", "b:eth1").ipv4("198.18.0.1/24", "198.18.0.2/24"))
//!     .build()?;
//! let running = lab.up().await?;
//! let mut pong = running.node("b")?.spawn(&["lab-pong", "eth1"]).await?;
//! pong.wait_for_line("listening on eth1", Duration::from_secs(5)).await?;
//! let ping = running
//!     .node("a")?
//!     .exec(&["lab-ping", "eth1", "198.18.0.2", "--count", "3", "--interval", "100ms"])
//!     .await?;
//! ping.expect(&Expect::exit(0).stdout_contains("3 received"))?;
//! running.link_down("a:eth1").await?;
//! running.down().await?; // or let it drop
//! # Ok(()) }
//! ```
//!
//! Without root, the process first enters a user namespace of its own
//! ([`crate::rootless::enter`], while it has one thread: first thing in
//! `main`, see docs/library.md); labs then run on the netns runtime
//! there.
//!
//! Bad input and misuse (an unknown node or endpoint, an invalid lab, a
//! lab that needs root) are an [`Error`], never a panic.

mod blocking;
mod builder;
mod running;
pub mod session;

use std::path::Path;

pub use blocking::{BlockingLab, BlockingProcess};
pub use builder::{Impair, LabBuilder, Link, Node};
pub use running::{NodeHandle, Output, Process, RunningLab, DROP_TEARDOWN_LIMIT};

pub use crate::lab::{DatalinkKind, RuntimeKind};
pub use crate::runtime::process::Signal;

use crate::lab::LoadError;
use crate::run::result::FailedCheck;
use crate::runtime::names::Instance;
use crate::runtime::RuntimeError;

/// What went wrong, and while doing what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lab (a file, or what a builder made) does not validate: every
    /// problem, one per line.
    #[error("invalid lab: {0}")]
    Invalid(String),
    /// The lab file cannot be read.
    #[error("{0}")]
    Load(LoadError),
    /// This process may not build labs: not root, and not inside the user
    /// namespace of [`crate::rootless::enter`].
    #[error(
        "building a lab needs root, or a process that entered a user namespace of its own: call \
         labctl::rootless::enter() first thing in main (docs/library.md): {0}"
    )]
    NotPrivileged(RuntimeError),
    /// A lab that cannot run without root, said before anything is made.
    #[error("{0}")]
    NeedsRoot(String),
    /// Choosing, connecting or using the runtime failed.
    #[error("{doing}: {cause}")]
    Runtime { doing: String, cause: RuntimeError },
    /// The deploy failed; what it created was removed again.
    #[error("{0}")]
    Deploy(String),
    #[error("lab {lab} has no node {node}")]
    NoSuchNode { lab: String, node: String },
    #[error("lab {lab} has no endpoint {endpoint} (endpoints are node:interface)")]
    NoSuchEndpoint { lab: String, endpoint: String },
    #[error("{0}")]
    Process(String),
    #[error("{what}: not seen within {after:?}; output so far:\n{tail}")]
    Timeout {
        what: String,
        after: std::time::Duration,
        tail: String,
    },
    #[error("{what}: the process ended (exit {exit:?}) first; its output:\n{tail}")]
    Ended {
        what: String,
        exit: Option<i64>,
        tail: String,
    },
    #[error("{0}")]
    Link(String),
    /// Checks of an [`Expect`] that did not hold, one per line, and the
    /// end of the output they looked at.
    #[error("{}\n{output}", failed_checks(.failed))]
    Check {
        failed: Vec<FailedCheck>,
        output: String,
    },
    /// An argument that cannot be what it names (an empty command, a bad
    /// regex, an instance name out of `[a-z0-9-]`).
    #[error("{0}")]
    Usage(String),
    /// Teardown met errors; it removed what it could.
    #[error("tearing down {instance}: {}", .errors.join("; "))]
    Teardown {
        instance: String,
        errors: Vec<String>,
    },
}

fn failed_checks(failed: &[FailedCheck]) -> String {
    let lines: Vec<String> = failed.iter().map(|f| format!("  {f}")).collect();
    format!("failed checks:\n{}", lines.join("\n"))
}

/// A validated lab, not yet up: loaded from a file ([`Lab::load`]),
/// written as YAML ([`Lab::from_yaml`]) or built in code
/// ([`Lab::builder`]).
#[derive(Debug, Clone)]
pub struct Lab {
    lab: crate::lab::Lab,
    runtime: Option<RuntimeKind>,
    instance: Option<Instance>,
}

impl Lab {
    /// Loads and validates a lab file, as `labctl run` does.
    ///
    /// ```no_run
    /// let lab = labctl::api::Lab::load("labs/icmp.yaml")?;
    /// assert_eq!(lab.name(), "icmp");
    /// # Ok::<(), labctl::api::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Lab, Error> {
        match crate::lab::load(path.as_ref()) {
            Ok(lab) => Ok(Lab::new(lab)),
            Err(LoadError::Invalid(errors)) => Err(Error::Invalid(errors.to_string())),
            Err(e) => Err(Error::Load(e)),
        }
    }

    /// A lab written in the lab format; relative paths in it (binds) are
    /// taken from the working directory.
    ///
    /// ```
    /// let lab = labctl::api::Lab::from_yaml("name: one\nnodes:\n  a: {}\n")?;
    /// assert_eq!(lab.name(), "one");
    /// assert!(labctl::api::Lab::from_yaml("name: Bad_Name\n").is_err());
    /// # Ok::<(), labctl::api::Error>(())
    /// ```
    pub fn from_yaml(yaml: &str) -> Result<Lab, Error> {
        let file = std::env::current_dir()
            .unwrap_or_default()
            .join("lab-from-code.yaml");
        crate::lab::parse(yaml, &file)
            .map(Lab::new)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// A lab built in code; see [`LabBuilder`].
    pub fn builder(name: &str) -> LabBuilder {
        LabBuilder::new(name)
    }

    fn new(lab: crate::lab::Lab) -> Lab {
        Lab {
            lab,
            runtime: None,
            instance: None,
        }
    }

    pub fn name(&self) -> &str {
        self.lab.name()
    }

    /// The validated lab, as the runtimes take it.
    pub fn lab(&self) -> &crate::lab::Lab {
        &self.lab
    }

    /// Runs it on this runtime, whatever the lab says. Default: the lab's
    /// `runtime`, else netns (a lab needs no daemon), Docker when a node
    /// has an image; always netns in a rootless process.
    pub fn on(mut self, runtime: RuntimeKind) -> Lab {
        self.runtime = Some(runtime);
        self
    }

    /// Deploys as this instance (default: `<lab>-<4 hex>`, fresh each
    /// time, so tests of one lab can run at once).
    pub fn instance(mut self, name: &str) -> Result<Lab, Error> {
        self.instance = Some(Instance::new(name).map_err(|e| Error::Usage(e.to_string()))?);
        Ok(self)
    }

    /// Every interface on this datalink.
    pub fn with_datalink(mut self, kind: DatalinkKind) -> Lab {
        self.lab = self.lab.with_datalink(kind);
        self
    }

    /// Brings the lab up: removes what crashed earlier runs of this lab
    /// left, then deploys (nodes, links, addresses, routes, impairments).
    /// A failed deploy removes what it made before returning.
    pub async fn up(self) -> Result<RunningLab, Error> {
        running::up(self.lab, self.runtime, self.instance).await
    }

    /// [`Lab::up`] for code without an async runtime: the lab gets one of
    /// its own.
    pub fn up_blocking(self) -> Result<BlockingLab, Error> {
        BlockingLab::up(self)
    }
}

/// The checks of a lab file's `expect`, from Rust: an exit code and
/// checks on stdout and stderr.
///
/// ```
/// use labctl::api::{Expect, Output};
/// let out = Output { exit: Some(0), stdout: "3 packets transmitted, 3 received\n".into(), stderr: String::new() };
/// out.expect(&Expect::exit(0).stdout_contains("3 received"))?;
/// out.expect(&Expect::parse("stdout:\n  - match: '([0-9]+) received'\n    at_least: 3\n")?)?;
/// assert!(out.expect(&Expect::exit(1)).is_err());
/// # Ok::<(), labctl::api::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Expect(crate::lab::Expect);

impl Expect {
    /// Exit code `code`, nothing more.
    pub fn exit(code: i64) -> Expect {
        Expect(crate::lab::Expect {
            exit: code,
            ..Default::default()
        })
    }

    /// An `expect:` mapping in the lab format (`exit`, `stdout`, `stderr`
    /// with `contains`, `match`, `count`, `at_least`, `at_most`),
    /// validated as in a lab file.
    pub fn parse(yaml: &str) -> Result<Expect, Error> {
        let value: serde_json::Value =
            serde_saphyr::from_str(yaml).map_err(|e| Error::Invalid(format!("expect: {e}")))?;
        let lab = serde_json::json!({
            "name": "expect",
            "nodes": { "a": {} },
            "steps": [ { "name": "s", "node": "a", "exec": ["x"], "expect": value } ],
        });
        let lab = Lab::from_yaml(&lab.to_string())?;
        let step = lab.lab.steps().first();
        step.map(|s| Expect(s.expect.clone()))
            .ok_or_else(|| Error::Invalid("expect: no step to read it from".into()))
    }

    /// The whole stdout contains `text`.
    pub fn stdout_contains(self, text: &str) -> Expect {
        self.check(true, crate::lab::Pattern::Contains(text.to_owned()), None)
    }

    /// The whole stderr contains `text`.
    pub fn stderr_contains(self, text: &str) -> Expect {
        self.check(false, crate::lab::Pattern::Contains(text.to_owned()), None)
    }

    /// Some line of stdout matches `regex` (with `count`: exactly that
    /// many lines).
    pub fn stdout_matches(self, regex: &str, count: Option<usize>) -> Result<Expect, Error> {
        let regex = regex::Regex::new(regex).map_err(|e| Error::Usage(e.to_string()))?;
        Ok(self.check(true, crate::lab::Pattern::Match(regex), count))
    }

    fn check(mut self, stdout: bool, pattern: crate::lab::Pattern, count: Option<usize>) -> Expect {
        let check = crate::lab::Check {
            pattern,
            count,
            bounds: None,
        };
        if stdout {
            self.0.stdout.push(check);
        } else {
            self.0.stderr.push(check);
        }
        self
    }

    /// The checks as a lab file's step holds them.
    pub fn as_lab_expect(&self) -> &crate::lab::Expect {
        &self.0
    }
}
