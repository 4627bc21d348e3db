//! `labctl run` end to end, the same for every runtime: deploy, steps,
//! evidence, teardown, reports.
//!
//! Once the lab is up, the steps run and the evidence is kept (each step's
//! output, each node's [`NODE_OUT_DIR`]), then the lab is *always* torn
//! down (unless the user asked to keep it), and only then is every problem
//! met on the way put in the report, as a typed list: a full run directory
//! or a failed copy never leaves a lab behind, and nothing found before
//! teardown is lost.
//!
//! Ctrl-C (or SIGTERM), first time: during the deploy, it rolls back;
//! during the steps, they stop gracefully and the rest are skipped, and
//! the evidence is still copied; during the evidence, the copy stops. The
//! second time cuts every grace period, and the evidence. Teardown always
//! runs to its end. A run that saw Ctrl-C is [`Outcome::Interrupted`]
//! unless something worse happened.
//!
//! Generic over [`Runtime`] (its [`Backend`], [`crate::links::Wiring`] and
//! [`crate::runtime::process::Launcher`]), and unit-tested with the fakes
//! of `runtime::fake`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::api::session::{self, UpError};
use crate::lab::{DatalinkKind, Lab};
use crate::report::{
    self, Format, FormatError, Outcome, RunProblem, RunProblemKind, RunReport, Timing, Topology,
};
use crate::run::output::step_files;
use crate::run::steps::{Observer, StepOptions, StepRunner};
use crate::runtime::backend::{Backend, KeptConsole};
use crate::runtime::console;
use crate::runtime::names::Instance;
use crate::runtime::{
    DeployedLab, Progress, Removed, Runtime, RuntimeError, CONSOLE_FILE, NODE_OUT_DIR,
};

pub mod many;
#[cfg(test)]
mod tests;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The instance to deploy as (`--name`); `None`: a fresh one, so runs
    /// of the same lab on one host never meet.
    pub instance: Option<Instance>,
    /// Put every interface on this datalink.
    pub datalink: Option<DatalinkKind>,
    /// Leave the lab up at the end (for debugging).
    pub keep: bool,
    pub keep_going: bool,
    /// The folder in which the run directory is made.
    pub runs_dir: PathBuf,
    /// Copies of reports the user asked for (`--junit FILE`), besides
    /// those in the run directory.
    pub copies: Vec<(Format, PathBuf)>,
}

pub use crate::runtime::Interrupts;

/// Files written in the run directory, besides the node folders (every
/// [`Format`] has its own).
pub const REPORT_JSON: &str = Format::Json.file_name();
pub const REPORT_JUNIT: &str = Format::Junit.file_name();
pub const SUMMARY: &str = Format::Summary.file_name();
pub const REPORT_HTML: &str = Format::Html.file_name();

#[derive(Debug, thiserror::Error)]
/// The cause is part of the message (not a `source()`), so a printed error
/// chain does not say it twice.
#[error("writing {path}: {cause}", path = path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

/// Runs `lab` on `runtime` and returns its report; the run directory holds
/// each step's output, each node's [`NODE_OUT_DIR`], and the reports.
///
/// Fails only when the run directory cannot be made, before anything is
/// created; every later problem is in the report.
pub async fn run_lab<R: Runtime>(
    runtime: &R,
    lab: Lab,
    options: &RunOptions,
    interrupts: &Interrupts,
    deploy_progress: &dyn Progress,
    step_observer: &dyn Observer,
) -> Result<RunReport, WriteError> {
    let started = SystemTime::now();
    let instance = options
        .instance
        .clone()
        .unwrap_or_else(|| Instance::fresh(lab.name()));
    let run_dir = make_run_dir(&options.runs_dir, instance.as_str(), started)?;
    let run = Run {
        options,
        interrupts,
        instance,
        clock: Instant::now(),
    };
    Ok(run
        .run_in(
            runtime,
            lab,
            run_dir,
            started,
            deploy_progress,
            step_observer,
        )
        .await)
}

struct Run<'a> {
    options: &'a RunOptions,
    interrupts: &'a Interrupts,
    instance: Instance,
    clock: Instant,
}

impl Run<'_> {
    async fn run_in<R: Runtime>(
        &self,
        runtime: &R,
        lab: Lab,
        run_dir: PathBuf,
        started: SystemTime,
        deploy_progress: &dyn Progress,
        step_observer: &dyn Observer,
    ) -> RunReport {
        let lab = match self.options.datalink {
            Some(kind) => lab.with_datalink(kind),
            None => lab,
        };
        let mut report = RunReport {
            lab: lab.name().to_owned(),
            instance: self.instance.to_string(),
            file: lab.file().to_owned(),
            run_id: String::new(),
            datalink: self.options.datalink,
            started,
            duration: Duration::ZERO,
            outcome: Outcome::Passed,
            problems: Vec::new(),
            steps: Vec::new(),
            phases: Vec::new(),
            removed: Vec::new(),
            run_dir,
            labctl: report::LABCTL_VERSION.to_owned(),
            host: report::hostname(),
            topology: Some(Topology::of(&lab, R::KIND)),
            traffic: Vec::new(),
        };

        let deployed = match self
            .deploy(runtime, &lab, deploy_progress, &mut report)
            .await
        {
            Some(deployed) => deployed,
            // Nothing of the lab is up (a failed deploy rolled back).
            None => return self.finish(report),
        };
        report.run_id = deployed.run.as_str().to_owned();
        // The deploy's phases follow one another from the run's start.
        let mut at = Duration::ZERO;
        report
            .phases
            .extend(deployed.timings.iter().map(|(phase, took)| {
                let start = at;
                at += *took;
                Timing {
                    name: phase.name(R::NODE),
                    duration: *took,
                    start: Some(start),
                }
            }));

        // From here the lab is up: nothing below returns early, so
        // teardown always runs.
        self.steps(runtime, &lab, step_observer, &mut report).await;
        deploy_progress.copying_evidence();
        self.evidence(runtime, &lab, &mut report).await;
        if !self.options.keep {
            deploy_progress.tearing_down();
            self.teardown(runtime, &mut report).await;
        }
        self.finish(report)
    }

    /// Deploys; on failure the problem is in `report` and `None` returned.
    async fn deploy<R: Runtime>(
        &self,
        runtime: &R,
        lab: &Lab,
        progress: &dyn Progress,
        report: &mut RunReport,
    ) -> Option<DeployedLab> {
        // Ctrl-C during the deploy rolls it back. The same deploy as a
        // lab brought up through `labctl::api`.
        let deployed =
            session::bring_up(runtime, lab, &self.instance, self.interrupts, progress).await;
        match deployed {
            Ok(deployed) => Some(deployed),
            Err(UpError::AlreadyUp(message)) => {
                // A run needs a lab of its own: a lab left up by `deploy` or
                // `--keep` is not reused silently.
                report
                    .problems
                    .push(RunProblem::new(RunProblemKind::Deploy, message));
                None
            }
            Err(UpError::Failed(failed)) => {
                let kind = if matches!(failed.cause, RuntimeError::Interrupted) {
                    RunProblemKind::Interrupted
                } else {
                    RunProblemKind::Deploy
                };
                report
                    .problems
                    .push(RunProblem::new(kind, failed.to_string()));
                if let Some(rollback) = &failed.rollback {
                    report.removed = removed_list(rollback, R::NODE);
                    if !rollback.errors.is_empty() {
                        report.problems.push(RunProblem::new(
                            RunProblemKind::Teardown,
                            still_up(&self.instance),
                        ));
                    }
                }
                None
            }
        }
    }

    async fn steps<R: Runtime>(
        &self,
        runtime: &R,
        lab: &Lab,
        observer: &dyn Observer,
        report: &mut RunReport,
    ) {
        let clock = Instant::now();
        let start = self.clock.elapsed();
        let launcher = runtime.launcher(self.instance.as_str());
        let runner = StepRunner::new(
            &launcher,
            observer,
            StepOptions {
                keep_going: self.options.keep_going,
                ..Default::default()
            },
            self.interrupts.interrupt.clone(),
            self.interrupts.force.clone(),
            &report.run_dir.join("steps"),
        );
        report.steps = runner.run(lab.steps()).await;
        if let Some(error) = runner.write_errors() {
            report
                .problems
                .push(RunProblem::new(RunProblemKind::Write, error));
        }
        report.phases.push(Timing {
            name: "steps".into(),
            duration: clock.elapsed(),
            start: Some(start),
        });
        report.traffic = sink_traffic(report);
    }

    /// Stops the nodes' own commands (unless the lab is kept), then copies
    /// each node's [`NODE_OUT_DIR`] into `nodes/<node>` of the run
    /// directory, and its console into `nodes/<node>/`[`CONSOLE_FILE`]. A
    /// Ctrl-C that stopped the steps still lets it run (the files of an
    /// interrupted run are worth keeping); one that arrives now, or a
    /// second one, stops it.
    async fn evidence<R: Runtime>(&self, runtime: &R, lab: &Lab, report: &mut RunReport) {
        let clock = Instant::now();
        let start = self.clock.elapsed();
        let stop = if self.interrupts.interrupt.is_cancelled() {
            &self.interrupts.force
        } else {
            &self.interrupts.interrupt
        };
        let mut cut_at = None;
        if !self.options.keep {
            tokio::select! {
                () = self.stop_commands(runtime, lab, report) => {}
                () = stop.cancelled() => cut_at = lab.nodes().first().map(|n| n.name.as_str()),
            }
        }
        for node in lab.nodes() {
            if cut_at.is_some() {
                break;
            }
            if stop.is_cancelled() {
                cut_at = Some(node.name.as_str());
                break;
            }
            let dest = report.run_dir.join("nodes").join(&node.name);
            let copy =
                runtime
                    .backend()
                    .copy_out(self.instance.as_str(), &node.name, NODE_OUT_DIR, &dest);
            let copied = tokio::select! {
                copied = copy => copied,
                () = stop.cancelled() => {
                    cut_at = Some(node.name.as_str());
                    break;
                }
            };
            if let Err(e) = copied {
                report.problems.push(evidence_problem(
                    format!("artifacts of node {}", node.name),
                    e,
                ));
            }
            let console_file = dest.join(CONSOLE_FILE);
            let console =
                runtime
                    .backend()
                    .keep_console(self.instance.as_str(), &node.name, &console_file);
            let kept = tokio::select! {
                kept = console => kept,
                () = stop.cancelled() => {
                    cut_at = Some(node.name.as_str());
                    break;
                }
            };
            match kept {
                Ok(Some(KeptConsole {
                    path,
                    command,
                    ended: Some(ending),
                })) if !ending.is_success() => {
                    report.problems.push(RunProblem::new(
                        RunProblemKind::NodeCommand,
                        format!(
                            "node {}: its command `{}` {ending} before the steps ended; its \
                             output is in {}",
                            node.name,
                            console::shown(&command),
                            path.display()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(e) => report.problems.push(evidence_problem(
                    format!("console of node {}", node.name),
                    e,
                )),
            }
        }
        if let Some(node) = cut_at {
            report.problems.push(RunProblem::new(
                RunProblemKind::Interrupted,
                format!(
                    "interrupted while copying the nodes' {NODE_OUT_DIR}: the files of node {node} \
                     and of the nodes after it were not kept"
                ),
            ));
        }
        report.phases.push(Timing {
            name: "artifacts".into(),
            duration: clock.elapsed(),
            start: Some(start),
        });
    }

    /// Stops every node's own command at once (each within its grace), so
    /// what they print and write on their way out is kept too; stopped
    /// here, a command's end is not its failure.
    async fn stop_commands<R: Runtime>(&self, runtime: &R, lab: &Lab, report: &mut RunReport) {
        let stops = lab.nodes().iter().map(|node| async move {
            let stopped = runtime
                .backend()
                .stop_command(self.instance.as_str(), &node.name)
                .await;
            (node, stopped)
        });
        for (node, stopped) in futures_util::future::join_all(stops).await {
            if let Err(e) = stopped {
                report.problems.push(evidence_problem(
                    format!("stopping the command of node {}", node.name),
                    e,
                ));
            }
        }
    }

    /// Removes the lab; runs to its end whatever happens meanwhile.
    async fn teardown<R: Runtime>(&self, runtime: &R, report: &mut RunReport) {
        let interrupted_before = self.interrupts.interrupt.is_cancelled();
        let start = self.clock.elapsed();
        let removed = session::take_down(runtime, &self.instance).await;
        report.phases.push(Timing {
            name: "teardown".into(),
            duration: removed.timings.iter().map(|(_, d)| *d).sum::<Duration>(),
            start: Some(start),
        });
        report.removed = removed_list(&removed, R::NODE);
        report.problems.extend(
            removed
                .errors
                .iter()
                .map(|e| RunProblem::new(RunProblemKind::Teardown, format!("teardown: {e}"))),
        );
        if !removed.errors.is_empty() {
            report.problems.push(RunProblem::new(
                RunProblemKind::Teardown,
                still_up(&self.instance),
            ));
        }
        if !interrupted_before && self.interrupts.interrupt.is_cancelled() {
            report.problems.push(RunProblem::new(
                RunProblemKind::Interrupted,
                "interrupted during teardown, which ran to its end",
            ));
        }
    }

    /// Stamps the duration and outcome and writes the reports; a report
    /// that cannot be written is one more problem of the returned report.
    fn finish(&self, mut report: RunReport) -> RunReport {
        report.duration = self.clock.elapsed();
        report.outcome = Outcome::of(&report.steps, &report.problems);
        // A signal that came in a gap the phases do not watch (the last
        // node's copy finishing first, between copy and teardown) still
        // makes the run interrupted: a cancelled CI job never reads as green.
        if self.interrupts.interrupt.is_cancelled() && report.outcome < Outcome::Interrupted {
            report.problems.push(RunProblem::new(
                RunProblemKind::Interrupted,
                "interrupted (Ctrl-C or SIGTERM) after the steps; the lab was torn down",
            ));
            report.outcome = Outcome::of(&report.steps, &report.problems);
        }
        let dir = report.run_dir.clone();
        let failed: Vec<WriteError> = Format::ALL
            .into_iter()
            .filter_map(|format| {
                write_report(format.of_run(&report), &dir.join(format.file_name())).err()
            })
            .collect();
        add_write_problems(&mut report, failed);
        // The copies the user asked for come last, so they say what went
        // wrong in the run directory too.
        let failed: Vec<WriteError> = self
            .options
            .copies
            .iter()
            .filter_map(|(format, path)| write_report(format.of_run(&report), path).err())
            .collect();
        add_write_problems(&mut report, failed);
        report
    }
}

/// What the lab-sink `--json` steps measured, from their files in the
/// run directory (the whole output, which memory may not have kept).
fn sink_traffic(report: &RunReport) -> Vec<report::SinkTraffic> {
    let dir = report.run_dir.join("steps");
    report::traffic::of_steps(&report.steps, |index| {
        let [stdout, _] = step_files(&dir, index, &report.steps.get(index)?.name);
        Some(stdout)
    })
}

/// Why `labctl report` could not render a run directory's page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("reading {path}: {cause}", path = path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {cause}", path = path.display())]
    Invalid {
        path: PathBuf,
        cause: report::ReadError,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The largest report.json read back: far above what a run writes (its
/// outputs are tails of 64 KiB), far below what would hurt.
const MAX_REPORT_JSON: u64 = 256 * 1024 * 1024;

/// `labctl report RUN_DIR`: report.html again, from the run directory's
/// report.json and step files (an old run seen with a newer labctl).
/// Returns the page's path.
pub fn render_page(run_dir: &Path) -> Result<PathBuf, PageError> {
    use std::io::Read as _;
    let path = run_dir.join(REPORT_JSON);
    let read = |cause| PageError::Read {
        path: path.clone(),
        cause,
    };
    let file = std::fs::File::open(&path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_REPORT_JSON)
        .read_to_string(&mut text)
        .map_err(read)?;
    let mut run = report::read_report_json(&text).map_err(|cause| PageError::Invalid {
        path: path.clone(),
        cause,
    })?;
    // The directory may have moved since (a CI artifact, downloaded).
    run.run_dir = run_dir.to_owned();
    if run.traffic.is_empty() {
        run.traffic = sink_traffic(&run);
    }
    let page = run_dir.join(REPORT_HTML);
    write_report(Format::Html.of_run(&run), &page)?;
    Ok(page)
}

/// A node's evidence that could not be kept: a full run directory is the
/// run's own failure; a node whose files cannot be read leaves the steps'
/// verdict as it is, but the user hears of it.
fn evidence_problem(what: String, e: RuntimeError) -> RunProblem {
    let kind = match e {
        RuntimeError::Write { .. } => RunProblemKind::Write,
        _ => RunProblemKind::Evidence,
    };
    RunProblem::new(kind, format!("{what}: {e}"))
}

/// What to do when teardown could not finish (Docker stopped answering,
/// most often): the lab may still be up, and the exact command that
/// removes it once the runtime is back.
fn still_up(instance: &Instance) -> String {
    format!(
        "lab {instance} may still be up (teardown could not finish): once the runtime answers \
         again (for Docker: the daemon is back), remove it with `labctl destroy {instance}`"
    )
}

fn add_write_problems(report: &mut RunReport, failed: Vec<WriteError>) {
    if failed.is_empty() {
        return;
    }
    report.problems.extend(
        failed
            .into_iter()
            .map(|e| RunProblem::new(RunProblemKind::Write, e.to_string())),
    );
    report.outcome = Outcome::of(&report.steps, &report.problems);
}

/// Writes a report (or says why it could not be made) to `path`.
pub(crate) fn write_report(
    text: Result<String, FormatError>,
    path: &Path,
) -> Result<(), WriteError> {
    let text = text.map_err(|e| WriteError {
        path: path.to_owned(),
        cause: std::io::Error::other(e.to_string()),
    })?;
    write(path, text.as_bytes())
}

/// What teardown removed, each with what the runtime calls it.
fn removed_list(removed: &Removed, node: &str) -> Vec<String> {
    let containers = removed.containers.iter().map(|c| format!("{node} {c}"));
    let veths = removed.veths.iter().map(|v| format!("veth {v}"));
    containers.chain(veths).collect()
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

/// `RUNS/<instance>-<UTC date>T<time>`, with a counter if that exists already
/// (two runs in the same second).
fn make_run_dir(runs: &Path, instance: &str, started: SystemTime) -> Result<PathBuf, WriteError> {
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
            0 => format!("{instance}-{stamp}"),
            n => format!("{instance}-{stamp}-{n}"),
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
