//! `labctl run LAB`.

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::lab::DatalinkKind;
use labctl::lifecycle::{run_lab, Interrupts, RunOptions};
use labctl::report::{summary, Outcome};
use labctl::runtime::DockerRuntime;

use super::progress::ConsoleProgress;
use super::steps::StepProgress;
use super::{block_on, exit, load_lab, CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// The lab file
    lab: PathBuf,
    /// Run the lab with every interface on this datalink
    #[arg(long, value_enum)]
    datalink: Option<DatalinkKind>,
    /// Deploy as this instance (default: `<lab>-<4 hex>`, new for each run,
    /// so runs of one lab on one host never meet)
    #[arg(long, value_name = "NAME", value_parser = super::instance_arg)]
    name: Option<labctl::runtime::names::Instance>,
    /// Leave the lab up at the end, for debugging (`labctl destroy` removes it)
    #[arg(long)]
    keep: bool,
    /// Run the remaining steps after a failed one (default: skip them)
    #[arg(long)]
    keep_going: bool,
    /// Also write the JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the JSON report to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where run directories are made
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
}

pub fn run(args: Args) -> VerbResult {
    let lab = load_lab(&args.lab)?;
    let options = RunOptions {
        instance: args.name,
        datalink: args.datalink,
        keep: args.keep,
        keep_going: args.keep_going,
        runs_dir: args.runs_dir,
        junit: args.junit,
        json: args.json,
    };
    block_on(async move {
        let runtime = DockerRuntime::connect()
            .await
            .map_err(CliError::from_runtime)?;
        let interrupts = Interrupts::default();
        forward_interrupts(interrupts.clone());
        let steps = StepProgress::new(lab.steps().len());
        let report = run_lab(
            &runtime,
            lab,
            &options,
            &interrupts,
            &ConsoleProgress::new(),
            &steps,
        )
        .await
        .map_err(CliError::runtime)?;
        print!("{}", summary(&report));
        if options.keep && report.outcome != Outcome::Error {
            println!(
                "the lab is still up (--keep): remove it with `labctl destroy {}`",
                report.instance
            );
        }
        Ok(ExitCode::from(exit::of_run(report.outcome)))
    })
}

/// First SIGINT/SIGTERM: stop the steps and tear down. Second: no more
/// grace. Teardown itself always runs to its end.
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
