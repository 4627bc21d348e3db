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
    /// A throughput search: labctl's generator and sink, trial after
    /// trial.
    Throughput,
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
    /// A throughput step's results and every trial it ran (absent for the
    /// other steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Box<ThroughputReport>>,
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
            Action::Throughput(t) => (StepKind::Throughput, Some(t.from.0.clone()), Vec::new()),
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
            throughput: None,
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

/// What a throughput step found: per frame size, its results (NDR, and
/// PDR when asked), the latency at fractions of the NDR, and every trial
/// in the order run. Plain data for report.json and for plots (rate
/// against loss, trial by trial).
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ThroughputReport {
    /// `node:interface` of the generator.
    pub from: String,
    /// `node:interface` of the sink.
    pub to: String,
    /// The length of each trial, in seconds.
    pub trial_seconds: f64,
    /// NDR's loss allowance, in percent.
    pub loss_percent: f64,
    /// PDR's loss allowance, in percent, when asked.
    pub partial_percent: Option<f64>,
    /// One per size, in the step's order (those searched so far).
    pub sizes: Vec<SizeSearch>,
}

/// The search at one frame size.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SizeSearch {
    /// Frame bytes, Ethernet header included, no FCS.
    pub size: u32,
    /// The highest rate the generator reached on this path (its unpaced
    /// trial), where the search started; frames per second.
    pub ceiling: f64,
    /// NDR, then PDR.
    pub results: Vec<RateResult>,
    /// At 10, 50 and 90 % of the NDR.
    pub latency: Vec<LatencyPoint>,
    /// Every trial at this size, in order.
    pub trials: Vec<Trial>,
}

/// Which result a search gave.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// No drop rate: the highest rate with at most `loss`.
    Ndr,
    /// Partial drop rate: the highest rate with at most `partial`.
    Pdr,
}

impl RateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Ndr => "ndr",
            RateKind::Pdr => "pdr",
        }
    }
}

/// One result of a search: the highest rate that passed, as its final
/// trial confirmed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RateResult {
    pub kind: RateKind,
    /// Frame bytes.
    pub size: u32,
    /// Frames per second (0: not even the lowest rate tried passed).
    pub rate: f64,
    /// `rate` × size × 8, in Mbit/s (frame bytes, no FCS nor preamble).
    pub mbit_per_s: f64,
    /// The loss of the final trial at `rate`, in percent.
    pub loss_percent: f64,
    /// The trials the result rests on: for NDR those of its search and
    /// the unpaced one, for PDR the NDR's paced trials (it starts from
    /// them) and its own.
    pub trials: u32,
    /// Whether the search narrowed the rate to its resolution (1 %) within
    /// its most trials; when not, `rate` is the highest that passed.
    pub converged: bool,
}

impl RateResult {
    /// `ndr 64 bytes: 245000 frames/s, 125.4 Mbit/s, loss 0.000% (11
    /// trials)`, as the step prints it.
    pub fn line(&self) -> String {
        crate::run::throughput::result_line(self)
    }
}

/// The one-way latency of the frames of one trial, in milliseconds
/// (lab-sink's histogram).
#[derive(
    Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Absent from an older lab-sink that did not report it.
    pub p99_9_ms: Option<f64>,
    pub max_ms: f64,
}

/// The latency at a fraction of the NDR.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LatencyPoint {
    /// 10, 50 or 90.
    pub percent_of_ndr: u32,
    /// Frames per second.
    pub rate: f64,
    /// `None` when no frame arrived.
    pub latency: Option<Latency>,
}

/// Why a trial was run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TrialPurpose {
    /// Unpaced: how fast the generator goes on this path (the ceiling).
    Ceiling,
    /// A step of the NDR search (its final trial included).
    Ndr,
    /// A step of the PDR search.
    Pdr,
    /// A latency measurement at a fraction of the NDR.
    Latency,
}

/// One trial: a fixed rate for the trial's length, then the settle time,
/// then the sink's count.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Trial {
    pub purpose: TrialPurpose,
    /// Frames per second asked of the generator; `None`: unpaced.
    pub offered_rate: Option<f64>,
    /// Frames per second that left the generator over its run.
    pub achieved_rate: f64,
    /// Frames that left the generator.
    pub sent: u64,
    /// Frames the generator's own link refused (a full queue, a link
    /// down): not offered to the path, so not lost by it; they make the
    /// trial fall short of its rate.
    pub refused: u64,
    /// Distinct frames of this trial's generator the sink counted.
    pub received: u64,
    /// `sent` less `received`: never arrived (reordered frames are not
    /// lost).
    pub lost: u64,
    pub loss_percent: f64,
    /// Frames that arrived after a higher number of their flow.
    pub reordered: u64,
    /// Frames that arrived more than once.
    pub duplicated: u64,
    pub latency: Option<Latency>,
    /// `false`: the generator did not reach the offered rate, so the
    /// trial says nothing of the path's loss and is not counted.
    pub valid: bool,
    /// Whether it passed the search's loss allowance (invalid: `false`).
    pub passed: bool,
    /// Why the trial is invalid, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
