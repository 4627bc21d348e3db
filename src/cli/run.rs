//! `labctl run LAB...`: one lab, or many labs × datalinks in one call
//! (files, directories, globs; `--datalink a,b`; `--jobs N`), with one
//! summary, one copy of each report asked for and the worst exit code at
//! the end (the runs themselves: [`labctl::lifecycle::many`]).

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::lab::{DatalinkKind, Lab, RuntimeKind};
use labctl::lifecycle::many::{self, ManyObserver, Planned};
use labctl::lifecycle::{run_lab, RunOptions};
use labctl::report::{summary, Format, Outcome, RunEnd, RunReport};
use labctl::run::steps::Observer;
use labctl::runtime::names::Instance;
use labctl::runtime::netns::{self, rootless};
use labctl::runtime::registry::Fallback;
use labctl::runtime::Progress;
use labctl::runtime::RuntimeError;
use labctl::with_runtime;

use super::progress::ConsoleProgress;
use super::steps::StepProgress;
use super::{block_on, exit, files, load_lab, CliError, OnSignal, VerbResult};

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
    /// `--junit FILE`, `--json FILE`: one flag per report format.
    #[command(flatten)]
    copies: ReportCopies,
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

/// The copies of reports asked for: a `--<format> FILE` flag for each
/// [`Format`] that has one, so a new format brings its own flag.
#[derive(Clone, Debug, Default)]
struct ReportCopies(Vec<(Format, PathBuf)>);

impl clap::FromArgMatches for ReportCopies {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let copies = Format::ALL
            .into_iter()
            .filter_map(|format| {
                let (flag, _) = format.copy_flag()?;
                let path = matches.get_one::<PathBuf>(flag)?;
                Some((format, path.clone()))
            })
            .collect();
        Ok(ReportCopies(copies))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ReportCopies {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Format::ALL
            .into_iter()
            .filter_map(Format::copy_flag)
            .fold(cmd, |cmd, (flag, help)| {
                cmd.arg(
                    clap::Arg::new(flag)
                        .long(flag)
                        .value_name("FILE")
                        .value_parser(clap::value_parser!(PathBuf))
                        .help(help),
                )
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
    let datalinks: Vec<Option<DatalinkKind>> = args.datalink.iter().map(|c| c.0).collect();
    let plan = many::plan(&labs, &datalinks);
    let runtime = match rootless(&plan, args.runtime)? {
        true => Some(RuntimeKind::Netns),
        false => args.runtime,
    };
    super::check_privileges("run")?;
    if plan.len() == 1 {
        let only = plan.into_iter().next().expect("one run");
        return run_one(&args, runtime, only);
    }
    if args.name.is_some() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--name names one run, and these are {} (labs × datalinks); drop --name",
            plan.len()
        )));
    }
    run_many(&args, runtime, plan)
}

/// An ordinary user runs labs on the netns runtime inside a user
/// namespace of labctl's own ([`rootless`]), when every lab fits it;
/// a lab that needs root says so in one line (exit 4) before anything is
/// made. True when this process now runs rootless. Root, or a user who
/// named Docker or whose labs need images, goes on as before (and
/// [`super::check_privileges`] refuses a user).
fn rootless(plan: &[Planned], flag: Option<RuntimeKind>) -> Result<bool, CliError> {
    if rootless::is_privileged() || flag == Some(RuntimeKind::Docker) {
        return Ok(false);
    }
    let labs: Vec<Lab> = plan
        .iter()
        .map(|p| match p.datalink {
            Some(kind) => p.lab.clone().with_datalink(kind),
            None => p.lab.clone(),
        })
        .collect();
    if labs.iter().any(|lab| netns::check_lab(lab).is_err()) {
        return Ok(false);
    }
    if let Some(line) = labs.iter().find_map(rootless::needs_root) {
        return Err(CliError::from_runtime(RuntimeError::NeedsRoot(line)));
    }
    rootless::enter().map_err(|e| CliError::from_runtime(e.into()))?;
    eprintln!(
        "labctl: running without root: the netns runtime, in a user namespace of labctl's own \
         (everything the lab makes goes with this process)"
    );
    Ok(true)
}

fn options(args: &Args, datalink: Option<DatalinkKind>) -> RunOptions {
    RunOptions {
        instance: args.name.clone(),
        datalink,
        keep: args.keep,
        keep_going: args.keep_going,
        runs_dir: args.runs_dir.clone(),
        copies: args.copies.0.clone(),
    }
}

/// One lab: progress as it goes, its summary, its exit code. A netmap lab
/// without /dev/netmap fails here (exit 3), as the user asked for it.
fn run_one(args: &Args, runtime: Option<RuntimeKind>, planned: Planned) -> VerbResult {
    let options = options(args, planned.datalink);
    block_on(async move {
        let runtime = super::runtime_for(&[&planned.lab], runtime, Fallback::ToNetns).await?;
        let interrupts = super::interrupts_on_signal(OnSignal::RUN);
        let steps = StepProgress::new(planned.lab.steps().len());
        let progress = ConsoleProgress::new();
        let lab = planned.lab;
        let report = with_runtime!(&runtime, |r| {
            run_lab(r, lab, &options, &interrupts, &progress, &steps).await
        })
        .map_err(CliError::runtime)?;
        print!("{}", summary(&report));
        print_kept(args.keep, &report);
        Ok(ExitCode::from(exit::of_run(report.outcome)))
    })
}

fn print_kept(keep: bool, report: &RunReport) {
    if keep && report.outcome != Outcome::Error {
        println!(
            "the lab is still up (--keep): remove it with `labctl destroy {}`",
            report.instance
        );
    }
}

/// Many runs, as [`many::run_many`] goes: a line as each starts, its
/// summary as it ends, then the summary of all.
fn run_many(args: &Args, runtime: Option<RuntimeKind>, plan: Vec<Planned>) -> VerbResult {
    block_on(async move {
        let total = plan.len();
        let groups = many::by_runtime(plan, runtime);
        let mut runtimes = Vec::new();
        for (_, group) in &groups {
            let labs: Vec<&Lab> = group.iter().map(|p| &p.lab).collect();
            runtimes.push(super::runtime_for(&labs, runtime, Fallback::ToNetns).await?);
        }
        let interrupts = super::interrupts_on_signal(OnSignal::RUN);
        let options = options(args, None);
        let console = ManyConsole { keep: args.keep };
        let jobs = usize::from(args.jobs);
        let mut ends = Vec::with_capacity(total);
        for ((_, group), runtime) in groups.into_iter().zip(&runtimes) {
            let numbered = many::Numbered {
                inner: &console,
                before: ends.len(),
                total,
            };
            ends.extend(with_runtime!(runtime, |r| {
                many::run_many(r, group, &options, jobs, &interrupts, &numbered).await
            }));
        }
        let mut end = many::finish_many(&ends, interrupts.interrupt.is_cancelled(), &args.copies.0);
        print!("{}", end.summary);
        match many::write_page(&ends, &args.runs_dir) {
            Ok(page) => println!("report: {}", page.display()),
            Err(error) => {
                end.outcome = end.outcome.max(Outcome::Error);
                end.write_errors.push(error);
            }
        }
        for error in &end.write_errors {
            eprintln!("labctl: {error}");
        }
        Ok(ExitCode::from(exit::of_run(end.outcome)))
    })
}

/// Many runs on the console.
struct ManyConsole {
    keep: bool,
}

impl ManyObserver for ManyConsole {
    fn starting(&self, index: usize, total: usize, label: &str) {
        println!("=== [{index}/{total}] {label}");
    }

    fn skipped(&self, index: usize, total: usize, label: &str, reason: &str) {
        println!("=== [{index}/{total}] {label}: SKIPPED: {reason}");
    }

    fn ended(&self, label: &str, end: &RunEnd) {
        match end {
            RunEnd::Ran(report) => {
                // One write, so summaries of parallel runs do not
                // interleave.
                print!("=== {label}\n{}", summary(report));
                print_kept(self.keep, report);
            }
            RunEnd::Failed { error, .. } => eprintln!("labctl: {label}: {error}"),
            RunEnd::NotRun(_) => {}
        }
    }

    fn one_at_a_time(&self, lab: &Lab) -> (Box<dyn Progress>, Box<dyn Observer>) {
        (
            Box::new(ConsoleProgress::new()),
            Box::new(StepProgress::new(lab.steps().len())),
        )
    }
}
