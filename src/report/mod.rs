//! What a run reports: a summary for people, JUnit XML for CI systems,
//! JSON for scripts. All three are made from one [`RunReport`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::run::engine::{Status, StepResult};
use crate::tools::datalink::DatalinkKind;

mod junit;
mod summary;

pub use junit::junit_xml;
pub use summary::summary;

/// How a run ended, and the exit code that says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step passed: exit 0.
    Passed,
    /// A step failed: exit 1.
    Failed,
    /// The lab could not be built or torn down: exit 3.
    Error,
    /// Ctrl-C: exit 130.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Error => 3,
            Outcome::Interrupted => 130,
        }
    }

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
}

/// A timed phase of the run (image, deploy, steps, teardown).
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

/// Everything one `labctl run` did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub lab: String,
    pub file: PathBuf,
    pub run_id: String,
    /// Set when `--datalink` put every interface on one datalink.
    pub datalink: Option<DatalinkKind>,
    #[serde(serialize_with = "rfc3339")]
    pub started: SystemTime,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub outcome: Outcome,
    /// Why the lab could not be built or torn down, when it could not.
    pub error: Option<String>,
    pub steps: Vec<StepResult>,
    pub phases: Vec<Phase>,
    /// What teardown removed.
    pub removed: Vec<String>,
    pub run_dir: PathBuf,
}

impl RunReport {
    pub fn count(&self, status: Status) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::run::check::Failure;
    use crate::run::engine::StepKind;

    pub fn step(name: &str, status: Status) -> StepResult {
        StepResult {
            name: name.into(),
            kind: StepKind::Foreground,
            node: Some("pinger".into()),
            argv: vec!["lab-ping".into(), "eth1".into()],
            status,
            duration: Duration::from_millis(640),
            exit: Some(if status == Status::Failed { 1 } else { 0 }),
            failures: if status == Status::Failed {
                vec![Failure {
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
        }
    }

    pub fn report(steps: Vec<StepResult>) -> RunReport {
        RunReport {
            lab: "icmp".into(),
            file: "labs/icmp.yaml".into(),
            run_id: "r1".into(),
            datalink: None,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(3),
            outcome: Outcome::of_steps(&steps),
            error: None,
            steps,
            phases: vec![Phase {
                name: "deploy".into(),
                duration: Duration::from_millis(1500),
            }],
            removed: vec!["container labctl-icmp-pinger".into()],
            run_dir: "runs/icmp-r1".into(),
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
        assert_eq!(Outcome::Failed.exit_code(), 1);
        assert_eq!(Outcome::Error.exit_code(), 3);
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
}
