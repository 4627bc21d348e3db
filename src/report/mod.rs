//! What a run reports: a summary for people, JUnit XML for CI systems,
//! JSON for scripts, one HTML page to look at. All are made from one
//! [`RunReport`], or from
//! the [`RunEnd`]s of many runs in one call; [`Format`] is the one list of
//! them, which the run directory, the copies the user asks for and the
//! CLI's flags follow.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::lab::DatalinkKind;
use crate::run::result::{Status, StepResult};

mod html;
mod junit;
pub mod plots;
pub mod schema;
mod summary;
pub mod topology;
pub mod traffic;
mod wording;

pub use html::{page, page_many, HTML_FILE};
pub use junit::{junit_xml, junit_xml_many, suite_name, NotRun};
pub use schema::{
    read_report_json, report_schema_json, runs_json, ReadError, REPORT_SCHEMA_VERSION,
};
pub use summary::{summary, summary_many};
pub use topology::Topology;
pub use traffic::SinkTraffic;

/// A report format. A new one is a module here and a variant with its
/// arms below: every run directory gets it, and its copy flag (if any)
/// is on `labctl run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For people: printed at the end, and kept as summary.txt.
    Summary,
    /// For CI systems: JUnit XML, a test suite per lab × datalink.
    Junit,
    /// For scripts: report.json, described by [`schema`].
    Json,
    /// For people who would rather look: report.html, one self-contained
    /// page (topology, timeline, plots, every step).
    Html,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[error("making the {format} report: {cause}")]
pub struct FormatError {
    pub format: &'static str,
    pub cause: String,
}

impl Format {
    /// Every format, in the order they are written.
    /// The page comes last: it links the files written before it.
    pub const ALL: [Format; 4] = [Format::Junit, Format::Json, Format::Summary, Format::Html];

    pub fn name(self) -> &'static str {
        match self {
            Format::Summary => "summary",
            Format::Junit => "JUnit",
            Format::Json => "JSON",
            Format::Html => "HTML",
        }
    }

    /// Its file in every run directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            Format::Summary => "summary.txt",
            Format::Junit => "junit.xml",
            Format::Json => "report.json",
            Format::Html => HTML_FILE,
        }
    }

    /// The `labctl run` flag that writes a copy to FILE, and its help;
    /// `None` for the summary, which is printed, and for the page, whose
    /// links to the run's files hold only inside its run directory.
    pub fn copy_flag(self) -> Option<(&'static str, &'static str)> {
        match self {
            Format::Summary | Format::Html => None,
            Format::Junit => Some((
                "junit",
                "Also write the JUnit XML report to FILE (one test suite per lab × datalink)",
            )),
            Format::Json => Some((
                "json",
                "Also write the JSON report to FILE (for many runs: {\"runs\": [...]})",
            )),
        }
    }

    /// The report of one run.
    pub fn of_run(self, report: &RunReport) -> Result<String, FormatError> {
        match self {
            Format::Summary => Ok(summary(report)),
            Format::Junit => junit_xml(report).map_err(|e| self.error(e)),
            Format::Json => Ok(report.to_json()),
            Format::Html => Ok(page(report)),
        }
    }

    /// The report of many runs in one call (`labctl run A B --datalink
    /// x,y`), in the order given.
    pub fn of_runs(self, ends: &[RunEnd]) -> Result<String, FormatError> {
        let reports: Vec<RunReport> = ends
            .iter()
            .filter_map(|end| match end {
                RunEnd::Ran(report) => Some((**report).clone()),
                _ => None,
            })
            .collect();
        let not_run: Vec<NotRun> = ends
            .iter()
            .filter_map(|end| match end {
                RunEnd::NotRun(not_run) => Some(not_run.clone()),
                _ => None,
            })
            .collect();
        match self {
            Format::Summary => Ok(summary_many(ends)),
            Format::Junit => junit_xml_many(&reports, &not_run).map_err(|e| self.error(e)),
            Format::Json => Ok(format!("{}\n", runs_json(&reports, &not_run))),
            Format::Html => Ok(page_many(ends)),
        }
    }

    fn error(self, cause: impl std::fmt::Display) -> FormatError {
        FormatError {
            format: self.name(),
            cause: cause.to_string(),
        }
    }
}

/// How one of many runs in one call ended.
#[derive(Clone, Debug)]
pub enum RunEnd {
    Ran(Box<RunReport>),
    /// Its run directory could not be made: nothing was created.
    Failed {
        label: String,
        error: String,
    },
    /// It did not run, and why.
    NotRun(NotRun),
}

impl RunEnd {
    /// What the run makes of the whole call's outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            RunEnd::Ran(report) => report.outcome,
            RunEnd::Failed { .. } => Outcome::Error,
            RunEnd::NotRun(_) => Outcome::Passed,
        }
    }
}

/// How a run ended (the CLI turns it into the exit code).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step passed.
    Passed,
    /// A step failed.
    Failed,
    /// Ctrl-C (or SIGTERM).
    Interrupted,
    /// The lab could not be built or torn down, or the run's files could
    /// not be written.
    Error,
}

impl Outcome {
    /// The outcome of a run whose steps gave `steps`.
    pub fn of_steps(steps: &[StepResult]) -> Outcome {
        if steps.iter().any(|s| s.status == Status::Interrupted) {
            Outcome::Interrupted
        } else if steps.iter().any(|s| s.status == Status::Failed) {
            Outcome::Failed
        } else {
            Outcome::Passed
        }
    }

    /// The outcome of a run: the worst of its steps' and its problems'
    /// (an error outranks an interruption, which outranks a failed check).
    pub fn of(steps: &[StepResult], problems: &[RunProblem]) -> Outcome {
        problems
            .iter()
            .filter_map(|p| p.kind.outcome())
            .fold(Outcome::of_steps(steps), Outcome::max)
    }
}

/// Something that went wrong in a run apart from its steps' checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunProblem {
    pub kind: RunProblemKind,
    /// One complete line: what, where, and the cause.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunProblemKind {
    /// The lab could not be deployed (or another deploy of it is up):
    /// no step ran.
    Deploy,
    /// Ctrl-C or SIGTERM cut a phase short (deploy, evidence); a step
    /// stopped by it says so itself.
    Interrupted,
    /// A file of the run directory or a report could not be written.
    Write,
    /// A node's files could not be copied out; the steps' verdict holds.
    Evidence,
    /// Teardown could not remove everything.
    Teardown,
    /// A node's own command (its image's entrypoint and command) ended
    /// with a failure before the steps ended: the run fails as a failed
    /// check does.
    NodeCommand,
}

impl RunProblemKind {
    /// What a problem of this kind makes of the run, if anything.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            RunProblemKind::Deploy | RunProblemKind::Write | RunProblemKind::Teardown => {
                Some(Outcome::Error)
            }
            RunProblemKind::Interrupted => Some(Outcome::Interrupted),
            RunProblemKind::NodeCommand => Some(Outcome::Failed),
            RunProblemKind::Evidence => None,
        }
    }
}

impl RunProblem {
    pub fn new(kind: RunProblemKind, message: impl Into<String>) -> RunProblem {
        RunProblem {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RunProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How long a phase of the run took (image, containers, links, steps,
/// artifacts, teardown).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Timing {
    pub name: String,
    /// Seconds.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    /// Seconds after the run started (the page's timeline); absent from
    /// reports of labctl before it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "some_seconds",
        deserialize_with = "from_some_seconds"
    )]
    #[schemars(with = "Option<f64>")]
    pub start: Option<Duration>,
}

/// Everything one `labctl run` did. Its JSON (report.json) is described by
/// the schema in [`schema`] and carries [`REPORT_SCHEMA_VERSION`].
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    pub lab: String,
    /// The instance the run deployed (`<lab>-<4 hex>` unless `--name`).
    pub instance: String,
    pub file: PathBuf,
    pub run_id: String,
    /// Set when `--datalink` put every interface on one datalink.
    pub datalink: Option<DatalinkKind>,
    /// When the run started (RFC 3339, UTC, whole seconds).
    #[serde(serialize_with = "rfc3339", deserialize_with = "from_rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started: SystemTime,
    /// Seconds.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    pub outcome: Outcome,
    /// Everything that went wrong apart from the steps' checks, in the
    /// order it happened.
    pub problems: Vec<RunProblem>,
    pub steps: Vec<StepResult>,
    pub phases: Vec<Timing>,
    /// What teardown removed.
    pub removed: Vec<String>,
    pub run_dir: PathBuf,
    /// The labctl that ran it: its version and commit (`labctl --version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub labctl: String,
    /// The machine it ran on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The lab as the run built it (report.html draws it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// What each lab-sink step run with `--json` measured, interval by
    /// interval (report.html plots it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<SinkTraffic>,
}

impl RunReport {
    pub fn count(&self, status: Status) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// report.json: the report with its `schema_version` first.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(&schema::Versioned::new(self))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
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

use crate::run::result::from_seconds;

fn from_some_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    from_seconds(d).map(Some)
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

fn from_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let text = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
    humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
}

/// The machine this process runs on (JUnit's `hostname`, the page's host).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// This labctl: its version and commit, as `labctl --version` says.
pub const LABCTL_VERSION: &str = env!("LABCTL_VERSION");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::run::result::{FailedCheck, StepKind};

    pub fn step(name: &str, status: Status) -> StepResult {
        StepResult {
            name: name.into(),
            kind: StepKind::Foreground,
            node: Some("pinger".into()),
            argv: vec!["lab-ping".into(), "eth1".into()],
            status,
            duration: Duration::from_millis(640),
            start: None,
            waits_for: None,
            link: None,
            exit: Some(if status == Status::Failed { 1 } else { 0 }),
            checks: Vec::new(),
            failures: if status == Status::Failed {
                vec![FailedCheck {
                    check: "stdout contains \"3 received\"".into(),
                    expected: "the text in the output".into(),
                    found: "no occurrence".into(),
                    tail: vec!["3 packets transmitted, 0 received, 100% packet loss".into()],
                }]
            } else {
                Vec::new()
            },
            error: None,
            stdout: "64 bytes from 198.18.0.2 <&>\n".into(),
            stderr: String::new(),
            stdout_truncated_bytes: 0,
            stderr_truncated_bytes: 0,
            tries: None,
            throughput: None,
        }
    }

    pub fn report(steps: Vec<StepResult>) -> RunReport {
        RunReport {
            lab: "icmp".into(),
            instance: "icmp-0a0b".into(),
            file: "labs/icmp.yaml".into(),
            run_id: "r1".into(),
            datalink: None,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(3),
            outcome: Outcome::of_steps(&steps),
            problems: Vec::new(),
            steps,
            phases: vec![Timing {
                name: "deploy".into(),
                duration: Duration::from_millis(1500),
                start: Some(Duration::ZERO),
            }],
            removed: vec!["container labctl-icmp-0a0b.pinger".into()],
            run_dir: "runs/icmp-r1".into(),
            labctl: "0.1.0 (abc1234)".into(),
            host: "ci-1".into(),
            topology: None,
            traffic: Vec::new(),
        }
    }

    #[test]
    fn outcome_follows_the_worst_step() {
        assert_eq!(
            Outcome::of_steps(&[step("a", Status::Passed)]),
            Outcome::Passed
        );
        assert_eq!(
            Outcome::of_steps(&[step("a", Status::Failed), step("b", Status::Skipped)]),
            Outcome::Failed
        );
        assert_eq!(
            Outcome::of_steps(&[step("a", Status::Failed), step("b", Status::Interrupted)]),
            Outcome::Interrupted
        );
        let teardown = RunProblem::new(RunProblemKind::Teardown, "teardown: x");
        let evidence = RunProblem::new(RunProblemKind::Evidence, "artifacts of node a: x");
        let passed = [step("a", Status::Passed)];
        assert_eq!(Outcome::of(&passed, &[evidence]), Outcome::Passed);
        let interrupted = [step("a", Status::Interrupted)];
        assert_eq!(Outcome::of(&interrupted, &[teardown]), Outcome::Error);
        let late = RunProblem::new(RunProblemKind::Interrupted, "interrupted");
        assert_eq!(
            Outcome::of(&passed, std::slice::from_ref(&late)),
            Outcome::Interrupted
        );
        let command = RunProblem::new(RunProblemKind::NodeCommand, "node a: ... status 3");
        assert_eq!(
            Outcome::of(&passed, std::slice::from_ref(&command)),
            Outcome::Failed
        );
        assert_eq!(Outcome::of(&passed, &[command, late]), Outcome::Interrupted);
    }

    #[test]
    fn json_report_has_the_steps_and_outcome() {
        let r = report(vec![step("ping", Status::Failed)]);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["outcome"], "failed");
        assert_eq!(v["steps"][0]["name"], "ping");
        assert_eq!(v["steps"][0]["status"], "failed");
        assert_eq!(v["steps"][0]["duration"], 0.64);
        assert_eq!(v["started"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn tries_are_in_the_json_only_for_a_step_with_until() {
        let mut converged = step("converged", Status::Passed);
        converged.tries = Some(5);
        let r = report(vec![converged, step("ping", Status::Passed)]);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["steps"][0]["tries"], 5);
        assert!(v["steps"][1].get("tries").is_none(), "{v}");
    }

    #[test]
    fn a_throughput_step_s_results_are_in_every_report() {
        use crate::run::result::{RateKind, RateResult, SizeSearch, ThroughputReport};
        let mut search = step("forwarder throughput", Status::Passed);
        search.kind = StepKind::Throughput;
        search.throughput = Some(Box::new(ThroughputReport {
            from: "client:eth1".into(),
            to: "server:eth1".into(),
            trial_seconds: 2.0,
            sizes: vec![SizeSearch {
                size: 64,
                ceiling: 400_000.0,
                results: vec![RateResult {
                    kind: RateKind::Ndr,
                    size: 64,
                    rate: 245_000.0,
                    mbit_per_s: 125.44,
                    loss_percent: 0.0,
                    trials: 11,
                    converged: true,
                }],
                ..SizeSearch::default()
            }],
            ..ThroughputReport::default()
        }));
        let r = report(vec![search, step("ping", Status::Passed)]);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema_version"], 3);
        assert_eq!(v["steps"][0]["kind"], "throughput");
        assert_eq!(
            v["steps"][0]["throughput"]["sizes"][0]["results"][0]["rate"],
            245_000.0
        );
        assert!(v["steps"][1].get("throughput").is_none(), "{v}");
        let xml = Format::Junit.of_run(&r).unwrap();
        for property in [
            r#"name="throughput.forwarder throughput.ndr.64.frames_per_s" value="245000""#,
            r#"name="throughput.forwarder throughput.ndr.64.mbit_per_s" value="125.4""#,
            r#"name="throughput.forwarder throughput.ndr.64.loss_percent" value="0.000""#,
            r#"name="throughput.forwarder throughput.ndr.64.trials" value="11""#,
        ] {
            assert!(xml.contains(property), "{property} in {xml}");
        }
        assert!(
            summary(&r).contains(
                "  PASS  forwarder throughput     0.64s\n        ndr 64 bytes: 245000 frames/s, \
                 125.4 Mbit/s, loss 0.000% (11 trials)\n"
            ),
            "{}",
            summary(&r)
        );
    }
}
