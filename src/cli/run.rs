//! `labctl run LAB...`: one lab, or many labs × datalinks in one call
//! (files, directories, globs; `--datalink a,b`; `--jobs N`), with one
//! summary, one JUnit file and the worst exit code at the end.

use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::{stream, StreamExt};
use labctl::lab::{DatalinkKind, Lab, RuntimeKind};
use labctl::lifecycle::{run_lab, Interrupts, RunOptions};
use labctl::report::{junit_xml_many, runs_json, suite_name, summary, NotRun, Outcome, RunReport};
use labctl::run::steps::NoObserver;
use labctl::runtime::names::Instance;
use labctl::runtime::registry::Fallback;
use labctl::runtime::{NoProgress, Runtime};
use labctl::with_runtime;

use super::progress::ConsoleProgress;
use super::steps::StepProgress;
use super::{block_on, exit, files, load_lab, CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// Lab files, directories (their *.yaml) or globs (quoted)
    #[arg(required = true, value_name = "LAB")]
    labs: Vec<String>,
    /// Deploy as this instance (default: `<lab>-<4 hex>`, new for each run,
    /// so runs of one lab on one host never meet); one run only
    #[arg(long, value_name = "NAME", value_parser = super::instance_arg)]
    name: Option<Instance>,
    /// Run each lab once per datalink of this comma-separated list, every
    /// interface on it; `as-written` is the lab as its file says (the
    /// default): af_packet, af_xdp, netmap, as-written
    #[arg(long, value_delimiter = ',', value_name = "D[,D...]", value_parser = datalink_arg)]
    datalink: Vec<DatalinkChoice>,
    /// How many labs run at the same time
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Leave the lab up at the end, for debugging (`labctl destroy` removes it)
    #[arg(long)]
    keep: bool,
    /// Run the remaining steps after a failed one (default: skip them)
    #[arg(long)]
    keep_going: bool,
    /// Also write the JUnit XML report to FILE (one test suite per lab ×
    /// datalink)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the JSON report to FILE (for many runs: {"runs": [...]})
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where run directories are made
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Build the lab with this runtime, whatever the lab file says (default:
    /// the lab's `runtime`, else docker, else netns when no Docker daemon
    /// answers and no node has an image)
    #[arg(long, value_enum)]
    runtime: Option<RuntimeKind>,
    /// Trust these labs like root: as if every node said `privileged:
    /// true` (an af_xdp node may then get CAP_SYS_ADMIN where the host
    /// cannot grant CAP_BPF, and a node the capabilities it names that
    /// reach the host; nothing a node does not name)
    #[arg(long)]
    privileged: bool,
}

/// A `--datalink` value: a datalink, or `None` for the lab as written.
#[derive(Clone, Copy, Debug)]
pub struct DatalinkChoice(Option<DatalinkKind>);

fn datalink_arg(value: &str) -> Result<DatalinkChoice, String> {
    use clap::ValueEnum as _;
    if value == "as-written" {
        return Ok(DatalinkChoice(None));
    }
    DatalinkKind::from_str(value, false)
        .map(|d| DatalinkChoice(Some(d)))
        .map_err(|_| {
            format!("{value:?} is not a datalink: af_packet, af_xdp, netmap or as-written")
        })
}

/// One lab on one datalink (`None`: as written).
struct Planned {
    lab: Lab,
    datalink: Option<DatalinkKind>,
}

impl Planned {
    fn label(&self) -> String {
        suite_name(self.lab.name(), self.datalink)
    }
}

/// How one planned run ended.
enum Ended {
    Ran(Box<RunReport>),
    /// The run directory could not be made: nothing was created.
    Failed {
        label: String,
        error: String,
    },
    NotRun(NotRun),
}

pub fn run(args: Args) -> VerbResult {
    // Every file is validated before anything runs.
    let mut labs = Vec::new();
    let mut invalid = false;
    for file in files::expand(&args.labs)? {
        match load_lab(&file) {
            Ok(lab) if args.privileged => labs.push(lab.trusted_like_root()),
            Ok(lab) => labs.push(lab),
            Err(failure) => {
                failure.print();
                invalid = true;
            }
        }
    }
    if invalid {
        return Err(CliError::reported(exit::USAGE));
    }
    super::check_privileges("run")?;
    let datalinks: Vec<Option<DatalinkKind>> = if args.datalink.is_empty() {
        vec![None]
    } else {
        let mut seen = Vec::new();
        for choice in &args.datalink {
            if !seen.contains(&choice.0) {
                seen.push(choice.0);
            }
        }
        seen
    };
    let plan: Vec<Planned> = labs
        .iter()
        .flat_map(|lab| {
            datalinks.iter().map(|d| Planned {
                lab: lab.clone(),
                datalink: *d,
            })
        })
        .collect();
    if plan.len() == 1 {
        let only = plan.into_iter().next().expect("one run");
        return run_one(&args, only);
    }
    if args.name.is_some() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--name names one run, and these are {} (labs × datalinks); drop --name",
            plan.len()
        )));
    }
    run_many(&args, plan)
}

fn options(args: &Args, datalink: Option<DatalinkKind>, single: bool) -> RunOptions {
    RunOptions {
        instance: args.name.clone(),
        datalink,
        keep: args.keep,
        keep_going: args.keep_going,
        runs_dir: args.runs_dir.clone(),
        junit: args.junit.clone().filter(|_| single),
        json: args.json.clone().filter(|_| single),
    }
}

/// One lab: progress as it goes, its summary, its exit code. A netmap lab
/// without /dev/netmap fails here (exit 3), as the user asked for it.
fn run_one(args: &Args, planned: Planned) -> VerbResult {
    let options = options(args, planned.datalink, true);
    block_on(async move {
        let runtime = super::runtime_for(&[&planned.lab], args.runtime, Fallback::ToNetns).await?;
        let interrupts = Interrupts::default();
        forward_interrupts(interrupts.clone());
        let steps = StepProgress::new(planned.lab.steps().len());
        let progress = ConsoleProgress::new();
        let lab = planned.lab;
        let report = with_runtime!(&runtime, |r| {
            run_lab(r, lab, &options, &interrupts, &progress, &steps).await
        })
        .map_err(CliError::runtime)?;
        print!("{}", summary(&report));
        print_kept(&options, &report);
        Ok(ExitCode::from(exit::of_run(report.outcome)))
    })
}

fn print_kept(options: &RunOptions, report: &RunReport) {
    if options.keep && report.outcome != Outcome::Error {
        println!(
            "the lab is still up (--keep): remove it with `labctl destroy {}`",
            report.instance
        );
    }
}

/// Why a planned run cannot run on this host, if it cannot: a lab on
/// netmap where netmap is missing is skipped, never reported as passed.
fn cannot_run(planned: &Planned) -> Option<String> {
    let datalinks = match planned.datalink {
        Some(d) => vec![d],
        None => planned.lab.datalinks(),
    };
    if !datalinks.contains(&DatalinkKind::Netmap) {
        return None;
    }
    labctl::tools::datalink::netmap::preflight()
        .err()
        .map(|e| format!("it uses netmap, and {e}"))
}

fn run_many(args: &Args, plan: Vec<Planned>) -> VerbResult {
    block_on(async move {
        let labs: Vec<&Lab> = plan.iter().map(|p| &p.lab).collect();
        let runtime = super::runtime_for(&labs, args.runtime, Fallback::ToNetns).await?;
        let interrupts = Interrupts::default();
        forward_interrupts(interrupts.clone());
        let ended = with_runtime!(&runtime, |r| run_all(r, args, plan, &interrupts).await);
        finish_many(args, &ended, &interrupts)
    })
}

/// Every planned run on `runtime`, `--jobs` at a time.
async fn run_all<R: Runtime>(
    runtime: &R,
    args: &Args,
    plan: Vec<Planned>,
    interrupts: &Interrupts,
) -> Vec<Ended> {
    let jobs = usize::from(args.jobs);
    let total = plan.len();
    {
        stream::iter(plan.into_iter().enumerate())
            .map(|(i, planned)| {
                async move {
                    let label = planned.label();
                    if let Some(reason) = cannot_run(&planned) {
                        println!("=== [{}/{total}] {label}: SKIPPED: {reason}", i + 1);
                        return Ended::NotRun(NotRun {
                            lab: planned.lab.name().to_owned(),
                            datalink: planned.datalink,
                            reason,
                        });
                    }
                    if interrupts.interrupt.is_cancelled() {
                        return Ended::NotRun(NotRun {
                            lab: planned.lab.name().to_owned(),
                            datalink: planned.datalink,
                            reason: "not started: interrupted".into(),
                        });
                    }
                    println!("=== [{}/{total}] {label}", i + 1);
                    let options = options(args, planned.datalink, false);
                    // Progress lines of labs running side by side would
                    // interleave: one at a time shows them, more do not.
                    let report = if jobs == 1 {
                        let steps = StepProgress::new(planned.lab.steps().len());
                        let progress = ConsoleProgress::new();
                        run_lab(
                            runtime,
                            planned.lab,
                            &options,
                            interrupts,
                            &progress,
                            &steps,
                        )
                        .await
                    } else {
                        run_lab(
                            runtime,
                            planned.lab,
                            &options,
                            interrupts,
                            &NoProgress,
                            &NoObserver,
                        )
                        .await
                    };
                    match report {
                        Ok(report) => {
                            // One write, so summaries of parallel runs do
                            // not interleave.
                            print!("=== {label}\n{}", summary(&report));
                            print_kept(&options, &report);
                            Ended::Ran(Box::new(report))
                        }
                        Err(e) => {
                            eprintln!("labctl: {label}: {e}");
                            Ended::Failed {
                                label,
                                error: e.to_string(),
                            }
                        }
                    }
                }
            })
            .buffered(jobs)
            .collect()
            .await
    }
}

/// The summary of every run (a line per lab × datalink), the JUnit and
/// JSON files, and the worst exit code.
fn finish_many(args: &Args, ended: &[Ended], interrupts: &Interrupts) -> VerbResult {
    let mut reports: Vec<RunReport> = Vec::new();
    let mut not_run: Vec<NotRun> = Vec::new();
    let mut worst = exit::SUCCESS;
    let mut outcome = Outcome::Passed;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut lines = Vec::new();
    for end in ended {
        match end {
            Ended::Ran(report) => {
                let tag = match report.outcome {
                    Outcome::Passed => "PASS",
                    Outcome::Failed => "FAIL",
                    Outcome::Interrupted => "INTR",
                    Outcome::Error => "ERROR",
                };
                if report.outcome == Outcome::Passed {
                    passed += 1;
                } else {
                    failed += 1;
                }
                outcome = outcome.max(report.outcome);
                lines.push(format!(
                    "  {tag:<5} {}  {:.2}s  {}",
                    suite_name(&report.lab, report.datalink),
                    report.duration.as_secs_f64(),
                    report.run_dir.display()
                ));
                reports.push((**report).clone());
            }
            Ended::Failed { label, error } => {
                failed += 1;
                outcome = Outcome::Error;
                lines.push(format!("  ERROR {label}  {error}"));
            }
            Ended::NotRun(n) => {
                skipped += 1;
                lines.push(format!(
                    "  SKIP  {}  {}",
                    suite_name(&n.lab, n.datalink),
                    n.reason
                ));
                not_run.push(n.clone());
            }
        }
    }
    if interrupts.interrupt.is_cancelled() {
        outcome = outcome.max(Outcome::Interrupted);
    }
    worst = worst.max(exit::of_run(outcome));
    println!(
        "labs: {} runs, {passed} passed, {failed} failed, {skipped} skipped",
        ended.len()
    );
    for line in lines {
        println!("{line}");
    }
    let mut write_failed = false;
    if let Some(path) = &args.junit {
        let xml = junit_xml_many(&reports, &not_run)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|xml| write(path, &xml));
        if let Err(e) = xml {
            eprintln!("labctl: {e:#}");
            write_failed = true;
        }
    }
    if let Some(path) = &args.json {
        let json = runs_json(&reports, &not_run);
        if let Err(e) = write(path, &format!("{json}\n")) {
            eprintln!("labctl: {e:#}");
            write_failed = true;
        }
    }
    if write_failed {
        outcome = outcome.max(Outcome::Error);
        worst = exit::of_run(outcome);
    }
    Ok(ExitCode::from(worst))
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// First SIGINT/SIGTERM: stop the steps and tear down (no further lab
/// starts). Second: no more grace. Teardown itself always runs to its end.
fn forward_interrupts(interrupts: Interrupts) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                eprintln!(
                    "labctl: interrupted; stopping the steps and tearing the lab down \
                     (Ctrl-C again to stop without grace)"
                );
                interrupts.interrupt.cancel();
            } else {
                eprintln!("labctl: stopping now; tearing the lab down");
                interrupts.force.cancel();
            }
        }
    });
}
