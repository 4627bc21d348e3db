//! What a step gave: its status, exit code, failed checks and output.
//! Plain data, written by the step runner ([`super::steps`]) and read by
//! the reports; it knows nothing of either.

use std::time::Duration;

use crate::lab::{Action, Step};

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Not run: an earlier step failed, or the run was interrupted before.
    Skipped,
    /// Stopped by Ctrl-C.
    Interrupted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Foreground,
    Background,
    Wait,
    /// A link-state step: an interface set down or up.
    Link,
}

/// The result of one step.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct StepResult {
    pub name: String,
    pub kind: StepKind,
    /// The node the command ran in (for a wait: the waited step's node).
    pub node: Option<String>,
    pub argv: Vec<String>,
    pub status: Status,
    /// Seconds.
    #[serde(serialize_with = "seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    pub exit: Option<i64>,
    /// Checks of `expect` that failed.
    pub failures: Vec<FailedCheck>,
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

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl StepResult {
    pub(crate) fn new(step: &Step) -> StepResult {
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
            Action::Wait { .. } => (StepKind::Wait, None, Vec::new()),
            Action::SetLink { node, .. } => (StepKind::Link, Some(node.clone()), Vec::new()),
        };
        StepResult {
            name: step.name.clone(),
            kind,
            node,
            argv,
            status: Status::Skipped,
            duration: Duration::ZERO,
            exit: None,
            failures: Vec::new(),
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
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
