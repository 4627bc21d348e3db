//! `labctl run`: deploy a lab, run its steps, keep the evidence, tear it
//! down, and report. Teardown happens on every path (success, failed
//! check, timeout, error, Ctrl-C) unless the user asked to keep the lab.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::docker::{download_out_dir, DockerLauncher};
use super::engine::{Engine, EngineOptions, Observer, StepResult};
use crate::lab::{DatalinkKind, Lab};
use crate::report::{junit_xml, summary, Outcome, Phase, RunReport};
use crate::runtime::{
    Cancel, DeployOptions, DeployOutcome, Progress, Runtime, RuntimeError, Scope,
};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Put every interface on this datalink.
    pub datalink: Option<DatalinkKind>,
    /// Leave the lab up at the end (for debugging).
    pub keep: bool,
    pub keep_going: bool,
    /// The folder in which the run directory is made.
    pub runs_dir: PathBuf,
    /// Also write the JUnit report here.
    pub junit: Option<PathBuf>,
    /// Also write the JSON report here.
    pub json: Option<PathBuf>,
}

/// Ctrl-C as the run sees it: the first cancels `interrupt` (stop the steps
/// gracefully, tear down), the second `force` (no grace).
#[derive(Clone, Default)]
pub struct Interrupts {
    pub interrupt: CancellationToken,
    pub force: CancellationToken,
}

/// Files written in the run directory, besides the node folders.
pub const REPORT_JSON: &str = "report.json";
pub const REPORT_JUNIT: &str = "junit.xml";
pub const SUMMARY: &str = "summary.txt";

#[derive(Debug, thiserror::Error)]
/// The cause is part of the message (not a `source()`), so a printed error
/// chain does not say it twice.
#[error("writing {path}: {cause}")]
pub struct WriteError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

/// Runs `lab` and returns its report; the run directory holds each step's
/// output, each node's `/lab/out`, and the reports.
pub async fn run_lab(
    runtime: &Runtime,
    lab: Lab,
    options: &RunOptions,
    interrupts: &Interrupts,
    deploy_progress: &dyn Progress,
    step_observer: &dyn Observer,
) -> Result<RunReport, WriteError> {
    let lab = match options.datalink {
        Some(kind) => lab.with_datalink(kind),
        None => lab,
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let run_dir = make_run_dir(&options.runs_dir, lab.name(), started)?;
    let mut report = RunReport {
        lab: lab.name().to_owned(),
        file: lab.file().to_owned(),
        run_id: String::new(),
        datalink: options.datalink,
        started,
        duration: Duration::ZERO,
        outcome: Outcome::Passed,
        error: None,
        steps: Vec::new(),
        phases: Vec::new(),
        removed: Vec::new(),
        run_dir: run_dir.clone(),
    };

    // Deploy; Ctrl-C during it rolls back.
    let cancel = Cancel::new();
    let bridge = {
        let (cancel, interrupt) = (cancel.clone(), interrupts.interrupt.clone());
        tokio::spawn(async move {
            interrupt.cancelled().await;
            cancel.cancel();
        })
    };
    let deploy_options = DeployOptions {
        cancel,
        ..Default::default()
    };
    let deployed = runtime.deploy(&lab, &deploy_options, deploy_progress).await;
    bridge.abort();
    let deployed = match deployed {
        Ok(DeployOutcome::Deployed(deployed)) => deployed,
        Ok(DeployOutcome::AlreadyUp { run, .. }) => {
            // A run needs a lab of its own: a lab left up by `deploy` or
            // `--keep` is not reused silently.
            report.outcome = Outcome::Error;
            report.error = Some(format!(
                "lab {} is already deployed (run {run}); remove it with `labctl destroy {}` first",
                lab.name(),
                lab.name()
            ));
            return finish(report, clock, options);
        }
        Err(failed) => {
            report.outcome = if matches!(failed.cause, RuntimeError::Interrupted) {
                Outcome::Interrupted
            } else {
                Outcome::Error
            };
            report.error = Some(failed.to_string());
            if let Some(rollback) = &failed.rollback {
                report.removed = removed_list(rollback);
            }
            return finish(report, clock, options);
        }
    };
    report.run_id = deployed.run.as_str().to_owned();
    report
        .phases
        .extend(deployed.timings.iter().map(|(phase, took)| Phase {
            name: phase.as_str().to_owned(),
            duration: *took,
        }));

    // Steps.
    let steps_clock = Instant::now();
    let launcher = DockerLauncher::new(runtime.clone(), lab.name());
    let engine = Engine::new(
        &launcher,
        step_observer,
        EngineOptions {
            keep_going: options.keep_going,
            ..Default::default()
        },
        interrupts.interrupt.clone(),
        interrupts.force.clone(),
    );
    report.steps = engine.run(lab.steps()).await;
    report.phases.push(Phase {
        name: "steps".into(),
        duration: steps_clock.elapsed(),
    });
    report.outcome = Outcome::of_steps(&report.steps);
    write_step_outputs(&run_dir, &report.steps)?;

    // Evidence, then teardown.
    let artifacts_clock = Instant::now();
    for node in lab.nodes() {
        let dest = run_dir.join("nodes").join(&node.name);
        if let Err(e) = download_out_dir(runtime, lab.name(), &node.name, &dest).await {
            // Missing evidence does not fail the steps, but the user hears
            // of it in the report.
            let note = format!("artifacts of node {}: {e}", node.name);
            report.error = Some(match report.error.take() {
                Some(prev) => format!("{prev}; {note}"),
                None => note,
            });
        }
    }
    report.phases.push(Phase {
        name: "artifacts".into(),
        duration: artifacts_clock.elapsed(),
    });

    if !options.keep {
        let removed = runtime.destroy(&Scope::Lab(lab.name().to_owned())).await;
        report.phases.push(Phase {
            name: "teardown".into(),
            duration: removed.timings.iter().map(|(_, d)| *d).sum::<Duration>(),
        });
        report.removed = removed_list(&removed);
        if !removed.errors.is_empty() {
            let errors: Vec<String> = removed.errors.iter().map(|e| e.to_string()).collect();
            report.error = Some(format!("teardown: {}", errors.join("; ")));
            report.outcome = Outcome::Error;
        }
    }
    finish(report, clock, options)
}

fn removed_list(removed: &crate::runtime::Removed) -> Vec<String> {
    let containers = removed.containers.iter().map(|c| format!("container {c}"));
    let veths = removed.veths.iter().map(|v| format!("veth {v}"));
    containers.chain(veths).collect()
}

/// Stamps the duration and writes the reports.
fn finish(
    mut report: RunReport,
    clock: Instant,
    options: &RunOptions,
) -> Result<RunReport, WriteError> {
    report.duration = clock.elapsed();
    let junit = junit_xml(&report).map_err(|e| WriteError {
        path: report.run_dir.join(REPORT_JUNIT),
        cause: std::io::Error::other(e.to_string()),
    })?;
    let json = report.to_json();
    let dir = report.run_dir.clone();
    write(&dir.join(REPORT_JUNIT), junit.as_bytes())?;
    write(&dir.join(REPORT_JSON), json.as_bytes())?;
    write(&dir.join(SUMMARY), summary(&report).as_bytes())?;
    if let Some(path) = &options.junit {
        write(path, junit.as_bytes())?;
    }
    if let Some(path) = &options.json {
        write(path, json.as_bytes())?;
    }
    Ok(report)
}

fn write(path: &Path, data: &[u8]) -> Result<(), WriteError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|cause| WriteError {
            path: parent.to_owned(),
            cause,
        })?;
    }
    std::fs::write(path, data).map_err(|cause| WriteError {
        path: path.to_owned(),
        cause,
    })
}

/// `RUNS/<lab>-<UTC date>T<time>`, with a counter if that exists already
/// (two runs in the same second).
fn make_run_dir(runs: &Path, lab: &str, started: SystemTime) -> Result<PathBuf, WriteError> {
    let stamp = humantime::format_rfc3339_seconds(started)
        .to_string()
        .replace(['-', ':'], "")
        .trim_end_matches('Z')
        .to_owned();
    std::fs::create_dir_all(runs).map_err(|cause| WriteError {
        path: runs.to_owned(),
        cause,
    })?;
    for n in 0u32.. {
        let name = match n {
            0 => format!("{lab}-{stamp}"),
            n => format!("{lab}-{stamp}-{n}"),
        };
        let dir = runs.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(cause) => return Err(WriteError { path: dir, cause }),
        }
    }
    unreachable!("u32 counter exhausted")
}

/// Each step's output in `steps/NN-name.{stdout,stderr}`.
fn write_step_outputs(run_dir: &Path, steps: &[StepResult]) -> Result<(), WriteError> {
    for (i, step) in steps.iter().enumerate() {
        let slug: String = step
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = run_dir.join("steps").join(format!("{:02}-{slug}", i + 1));
        write(&base.with_extension("stdout"), step.stdout.as_bytes())?;
        write(&base.with_extension("stderr"), step.stderr.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_named_by_lab_and_time_and_never_reused() {
        let runs = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let a = make_run_dir(runs.path(), "icmp", t).unwrap();
        let b = make_run_dir(runs.path(), "icmp", t).unwrap();
        assert_eq!(a.file_name().unwrap(), "icmp-20261118T110640");
        assert_eq!(b.file_name().unwrap(), "icmp-20261118T110640-1");
    }

    #[test]
    fn step_outputs_are_numbered_files() {
        let runs = tempfile::tempdir().unwrap();
        let step = crate::report::tests::step("pong answered", crate::run::engine::Status::Passed);
        write_step_outputs(runs.path(), &[step]).unwrap();
        let out =
            std::fs::read_to_string(runs.path().join("steps/01-pong_answered.stdout")).unwrap();
        assert!(out.starts_with("64 bytes"));
        assert!(runs.path().join("steps/01-pong_answered.stderr").exists());
    }
}
