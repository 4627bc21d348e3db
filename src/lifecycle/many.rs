//! Many runs in one call (`labctl run A B --datalink x,y --jobs N`): every
//! lab on every datalink, `jobs` at a time, each group of them on its
//! runtime ([`by_runtime`]); then one
//! summary, one copy of each report the user asked for, and the worst
//! outcome.
//!
//! A run that cannot run on this host (a netmap lab where netmap is
//! missing) is skipped, never reported as passed; once Ctrl-C came, no
//! further run starts.

use std::path::PathBuf;

use futures_util::{stream, StreamExt};

use crate::lab::{DatalinkKind, Lab, RuntimeKind};
use crate::report::{suite_name, Format, NotRun, Outcome, RunEnd};
use crate::run::steps::{NoObserver, Observer};
use crate::runtime::{NoProgress, Progress, Runtime};

use super::{make_run_dir, run_lab, write_report, Interrupts, RunOptions, WriteError};

/// One lab on one datalink (`None`: as its file says).
#[derive(Clone, Debug)]
pub struct Planned {
    pub lab: Lab,
    pub datalink: Option<DatalinkKind>,
}

impl Planned {
    /// `icmp`, `icmp[af_xdp]`: unique per lab × datalink.
    pub fn label(&self) -> String {
        suite_name(self.lab.name(), self.datalink)
    }
}

/// Every lab on every datalink of `datalinks` (`None`: as written), lab
/// by lab; no datalink named is the labs as written, and a datalink named
/// twice runs once.
pub fn plan(labs: &[Lab], datalinks: &[Option<DatalinkKind>]) -> Vec<Planned> {
    let mut chosen: Vec<Option<DatalinkKind>> = Vec::new();
    for datalink in datalinks {
        if !chosen.contains(datalink) {
            chosen.push(*datalink);
        }
    }
    if chosen.is_empty() {
        chosen.push(None);
    }
    labs.iter()
        .flat_map(|lab| {
            chosen.iter().map(|datalink| Planned {
                lab: lab.clone(),
                datalink: *datalink,
            })
        })
        .collect()
}

/// The plan split by the runtime each run goes on, groups in the order
/// their first run comes in `plan`: `flag` (`--runtime`) for every run,
/// else each lab's own `runtime:`. One call may mix labs that name netns
/// with labs on Docker; each must run where its file says.
pub fn by_runtime(
    plan: Vec<Planned>,
    flag: Option<RuntimeKind>,
) -> Vec<(RuntimeKind, Vec<Planned>)> {
    let mut groups: Vec<(RuntimeKind, Vec<Planned>)> = Vec::new();
    for planned in plan {
        let kind = flag.unwrap_or(planned.lab.runtime());
        match groups.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, group)) => group.push(planned),
            None => groups.push((kind, vec![planned])),
        }
    }
    groups
}

/// An observer of one group of a call's runs, numbering them among all
/// the call's runs: the group starts after `before` runs of `total`.
pub struct Numbered<'a> {
    pub inner: &'a dyn ManyObserver,
    pub before: usize,
    pub total: usize,
}

impl ManyObserver for Numbered<'_> {
    fn starting(&self, index: usize, _total: usize, label: &str) {
        self.inner.starting(self.before + index, self.total, label);
    }
    fn skipped(&self, index: usize, _total: usize, label: &str, reason: &str) {
        self.inner
            .skipped(self.before + index, self.total, label, reason);
    }
    fn ended(&self, label: &str, end: &RunEnd) {
        self.inner.ended(label, end);
    }
    fn one_at_a_time(&self, lab: &Lab) -> (Box<dyn Progress>, Box<dyn Observer>) {
        self.inner.one_at_a_time(lab)
    }
}

/// Told about many runs as they go (the CLI prints it).
pub trait ManyObserver: Sync {
    /// Run `index` (from 1) of `total` starts.
    fn starting(&self, _index: usize, _total: usize, _label: &str) {}
    /// Run `index` of `total` is skipped: `reason`.
    fn skipped(&self, _index: usize, _total: usize, _label: &str, _reason: &str) {}
    /// A run ended: its report, or why it has none.
    fn ended(&self, _label: &str, _end: &RunEnd) {}
    /// What shows a run's progress when the runs go one at a time; side
    /// by side their lines would interleave, and nothing is shown.
    fn one_at_a_time(&self, _lab: &Lab) -> (Box<dyn Progress>, Box<dyn Observer>) {
        (Box::new(NoProgress), Box::new(NoObserver))
    }
}

/// Every planned run on `runtime`, `jobs` at a time, each as
/// [`run_lab`] runs one with `options` (its datalink set, without the
/// copies: those are of every run at once, [`finish_many`]).
pub async fn run_many<R: Runtime>(
    runtime: &R,
    plan: Vec<Planned>,
    options: &RunOptions,
    jobs: usize,
    interrupts: &Interrupts,
    observer: &dyn ManyObserver,
) -> Vec<RunEnd> {
    run_many_with(
        runtime,
        plan,
        options,
        jobs,
        interrupts,
        observer,
        netmap_missing,
    )
    .await
}

/// Whether netmap is missing on this host, and why.
fn netmap_missing() -> Option<String> {
    crate::tools::datalink::netmap::preflight()
        .err()
        .map(|e| e.to_string())
}

/// [`run_many`], with the host's netmap check given.
async fn run_many_with<R: Runtime>(
    runtime: &R,
    plan: Vec<Planned>,
    options: &RunOptions,
    jobs: usize,
    interrupts: &Interrupts,
    observer: &dyn ManyObserver,
    netmap_missing: fn() -> Option<String>,
) -> Vec<RunEnd> {
    let jobs = jobs.max(1);
    let total = plan.len();
    stream::iter(plan.into_iter().enumerate())
        .map(|(i, planned)| async move {
            let label = planned.label();
            let not_run = |reason: String| {
                RunEnd::NotRun(NotRun {
                    lab: planned.lab.name().to_owned(),
                    datalink: planned.datalink,
                    reason,
                })
            };
            if let Some(reason) = cannot_run(&planned, netmap_missing) {
                observer.skipped(i + 1, total, &label, &reason);
                return not_run(reason);
            }
            if interrupts.interrupt.is_cancelled() {
                return not_run("not started: interrupted".into());
            }
            observer.starting(i + 1, total, &label);
            let options = RunOptions {
                datalink: planned.datalink,
                instance: None,
                copies: Vec::new(),
                ..options.clone()
            };
            let (progress, steps) = if jobs == 1 {
                observer.one_at_a_time(&planned.lab)
            } else {
                (Box::new(NoProgress) as _, Box::new(NoObserver) as _)
            };
            let end = match run_lab(
                runtime,
                planned.lab,
                &options,
                interrupts,
                &*progress,
                &*steps,
            )
            .await
            {
                Ok(report) => RunEnd::Ran(Box::new(report)),
                Err(e) => RunEnd::Failed {
                    label: label.clone(),
                    error: e.to_string(),
                },
            };
            observer.ended(&label, &end);
            end
        })
        .buffered(jobs)
        .collect()
        .await
}

/// Why a planned run cannot run on this host, if it cannot: a lab on
/// netmap where netmap is missing is skipped.
fn cannot_run(planned: &Planned, netmap_missing: fn() -> Option<String>) -> Option<String> {
    let datalinks = match planned.datalink {
        Some(d) => vec![d],
        None => planned.lab.datalinks(),
    };
    if !datalinks.contains(&DatalinkKind::Netmap) {
        return None;
    }
    netmap_missing().map(|e| format!("it uses netmap, and {e}"))
}

/// The end of many runs.
#[derive(Debug)]
pub struct ManyEnd {
    /// The worst run's; interrupted when Ctrl-C came (even between
    /// runs); an error when a copy could not be written.
    pub outcome: Outcome,
    /// The summary of every run (a line per lab × datalink).
    pub summary: String,
    /// The copies that could not be written.
    pub write_errors: Vec<WriteError>,
}

/// Writes the copies of the reports of every run the user asked for
/// (`copies`: one JUnit file with a suite per lab × datalink, one JSON
/// file with every report.json), and says how the call ended.
pub fn finish_many(ends: &[RunEnd], interrupted: bool, copies: &[(Format, PathBuf)]) -> ManyEnd {
    let mut outcome = ends
        .iter()
        .map(RunEnd::outcome)
        .fold(Outcome::Passed, Outcome::max);
    if interrupted {
        outcome = outcome.max(Outcome::Interrupted);
    }
    let write_errors: Vec<WriteError> = copies
        .iter()
        .filter_map(|(format, path)| write_report(format.of_runs(ends), path).err())
        .collect();
    if !write_errors.is_empty() {
        outcome = outcome.max(Outcome::Error);
    }
    ManyEnd {
        outcome,
        summary: Format::Summary
            .of_runs(ends)
            .unwrap_or_else(|e| e.to_string()),
        write_errors,
    }
}

/// The page of the whole call (a matrix of labs × datalinks, each cell
/// linking to its run's report.html), in a directory of its own beside
/// the run directories: `RUNS/many-<UTC time>/report.html`. Returns its
/// path.
pub fn write_page(ends: &[RunEnd], runs_dir: &std::path::Path) -> Result<PathBuf, WriteError> {
    let dir = make_run_dir(runs_dir, "many", std::time::SystemTime::now())?;
    let page = dir.join(Format::Html.file_name());
    write_report(Format::Html.of_runs(ends), &page)?;
    Ok(page)
}

#[cfg(test)]
mod tests;
