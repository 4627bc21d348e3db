//! What a step gave: its status, exit code, failed checks and output.
//! Plain data, written by the step runner ([`super::steps`]) and read by
//! the reports; it knows nothing of either.

use std::time::Duration;

use crate::lab::{Action, Step};

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Not run: an earlier step failed, or the run was interrupted before.
    Skipped,
    /// Stopped by Ctrl-C.
    Interrupted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Foreground,
    Background,
    Wait,
    /// A link-state step: an interface set down or up.
    Link,
}

/// The result of one step.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepResult {
    pub name: String,
    pub kind: StepKind,
    /// The node the command ran in (for a wait: the waited step's node).
    pub node: Option<String>,
    pub argv: Vec<String>,
    pub status: Status,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub exit: Option<i64>,
    /// Checks of `expect` that failed.
    pub failures: Vec<FailedCheck>,
    /// Why the step could not do its job (launch error, timeout, not
    /// ready), apart from failed checks.
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
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
        }
    }

    pub(crate) fn fail(&mut self, error: impl Into<String>) {
        self.status = Status::Failed;
        self.error = Some(error.into());
    }
}

/// How many lines of output a failure shows.
pub const TAIL_LINES: usize = 10;

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> Vec<String> {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// One check that did not hold: which check, what it expected, what was
/// found, and the end of the stream it looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
