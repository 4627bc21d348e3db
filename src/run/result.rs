//! What a step gave: its status, exit code, failed checks and output.
//! Plain data, written by the step runner ([`super::steps`]) and read by
//! the reports; it knows nothing of either.

use std::time::Duration;

use crate::lab::{Action, Step};

/// How a step ended.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Not run: an earlier step failed, or the run was interrupted before.
    Skipped,
    /// Stopped by Ctrl-C.
    Interrupted,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Foreground,
    Background,
    Wait,
    /// A link-state step: an interface set down or up.
    Link,
}

/// The result of one step.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StepResult {
    pub name: String,
    pub kind: StepKind,
    /// The node the command ran in (for a wait: the waited step's node).
    pub node: Option<String>,
    pub argv: Vec<String>,
    pub status: Status,
    /// Seconds.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    /// Seconds after the first step started, for a step that ran (the
    /// page's timeline); absent from reports of labctl before it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "some_seconds",
        deserialize_with = "from_some_seconds"
    )]
    #[schemars(with = "Option<f64>")]
    pub start: Option<Duration>,
    /// A wait step: the background step it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
    /// A link-state step: the interface (of `node`) and the state it set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkChange>,
    pub exit: Option<i64>,
    /// Checks of `expect` that failed.
    pub failures: Vec<FailedCheck>,
    /// Every check of `expect` (exec and wait steps), failed or not, with
    /// what it expects: the page lists them; absent from reports of
    /// labctl before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ExpectedCheck>,
    /// Why the step could not do its job (launch error, timeout, not
    /// ready), apart from failed checks.
    pub error: Option<String>,
    /// What memory kept of stdout: all of it, or its end when
    /// `stdout_truncated_bytes` says how much of the beginning is only in
    /// the step's file in the run directory.
    pub stdout: String,
    pub stderr: String,
    /// Bytes of the output's beginning that `stdout` (`stderr`) lacks;
    /// absent from report.json when 0 (`default`: optional in its schema).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stdout_truncated_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stderr_truncated_bytes: u64,
    /// How many times a step with `until` ran its command (its output and
    /// checks are the last try's); absent for the other steps, which run
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One check of a step's `expect`: its name, as a failure names it, and
/// what it expects.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ExpectedCheck {
    pub check: String,
    pub expected: String,
}

/// What a link-state step does: `interface` of the step's node set
/// `state` (`down`, `up`).
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct LinkChange {
    pub interface: String,
    pub state: String,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn some_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Seconds as report.json writes them, back to the nanosecond they were
/// (rounded, not truncated: a report read back renders the same page); a
/// negative, non-finite or huge number is refused, never a panic.
pub(crate) fn from_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = <f64 as serde::Deserialize>::deserialize(d)?;
    // Beyond a year of seconds f64 no longer holds nanoseconds exactly.
    if !(0.0..=3.2e7).contains(&secs) {
        return Err(serde::de::Error::custom(format!(
            "{secs} is not a duration in seconds"
        )));
    }
    Ok(Duration::from_nanos((secs * 1e9).round() as u64))
}

fn from_some_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    from_seconds(d).map(Some)
}

impl StepResult {
    pub(crate) fn new(step: &Step) -> StepResult {
        let mut waits_for = None;
        let mut link = None;
        let checks = match &step.action {
            Action::SetLink { .. } => Vec::new(),
            _ => super::check::expected_checks(&step.expect),
        };
        let (kind, node, argv) = match &step.action {
            Action::Exec {
                node,
                argv,
                background,
                ..
            } => (
                if *background {
                    StepKind::Background
                } else {
                    StepKind::Foreground
                },
                Some(node.clone()),
                argv.clone(),
            ),
            Action::Wait { step } => {
                waits_for = Some(step.clone());
                (StepKind::Wait, None, Vec::new())
            }
            Action::SetLink {
                node,
                interface,
                state,
            } => {
                link = Some(LinkChange {
                    interface: interface.clone(),
                    state: state.as_str().to_owned(),
                });
                (StepKind::Link, Some(node.clone()), Vec::new())
            }
        };
        StepResult {
            name: step.name.clone(),
            kind,
            node,
            argv,
            status: Status::Skipped,
            duration: Duration::ZERO,
            start: None,
            waits_for,
            link,
            exit: None,
            failures: Vec::new(),
            checks,
            error: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated_bytes: 0,
            stderr_truncated_bytes: 0,
            tries: None,
        }
    }

    /// `5 tries`, `1 try`: how many times a step with `until` ran.
    pub fn tries_text(&self) -> Option<String> {
        self.tries
            .map(|n| format!("{n} {}", if n == 1 { "try" } else { "tries" }))
    }

    /// Whether memory lacks part of the output (the tail shown is the end
    /// of it; the whole is in the run directory).
    pub fn truncated(&self) -> bool {
        self.stdout_truncated_bytes > 0 || self.stderr_truncated_bytes > 0
    }

    pub(crate) fn fail(&mut self, error: impl Into<String>) {
        self.status = Status::Failed;
        self.error = Some(error.into());
    }
}

/// How many lines of output a failure shows.
pub const TAIL_LINES: usize = 10;

/// How many characters of one line a failure shows: a step printing one
/// 100 MB line must not put it in the terminal, summary.txt or junit.xml.
pub const TAIL_LINE_CHARS: usize = 512;

/// The last `n` lines of `text`, each cut to [`TAIL_LINE_CHARS`]
/// characters with a marker saying how much was left out.
pub fn tail(text: &str, n: usize) -> Vec<String> {
    // From the end: only the lines shown are looked at.
    let mut lines: Vec<String> = text.lines().rev().take(n).map(cap_line).collect();
    lines.reverse();
    lines
}

/// `line` cut on a char boundary after [`TAIL_LINE_CHARS`] characters.
pub fn cap_line(line: &str) -> String {
    match line.char_indices().nth(TAIL_LINE_CHARS) {
        None => line.to_owned(),
        Some((cut, _)) => format!("{}… [{} more bytes cut]", &line[..cut], line.len() - cut),
    }
}

/// One check that did not hold: which check, what it expected, what was
/// found, and the end of the stream it looked at.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct FailedCheck {
    pub check: String,
    pub expected: String,
    pub found: String,
    /// The last lines of the output the check read (empty for `exit`).
    pub tail: Vec<String>,
}

impl std::fmt::Display for FailedCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.check, self.expected, self.found
        )
    }
}
