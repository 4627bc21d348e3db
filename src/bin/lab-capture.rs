//! lab-capture IFACE: one line per frame, both directions, and optionally
//! a pcap file. See docs/tools.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use labctl::tools::capture::{self, CaptureOptions};
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::datalink::OpenOptions;
use labctl::tools::error::ToolError;
use labctl::tools::output::Output;

#[derive(Parser, Debug)]
#[command(
    name = "lab-capture",
    version,
    about = "Print every frame on an interface, and write a pcap file"
)]
struct Args {
    /// Interface to capture on
    iface: String,
    /// Also write every frame to this pcap file
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Stop after this many frames
    #[arg(short, long, value_parser = cli::positive)]
    count: Option<u64>,
    /// Stop after this long (10s, 500ms)
    #[arg(short, long, value_parser = cli::duration)]
    duration: Option<Duration>,
    /// Print only the start line and the summary
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    match cli::parse_args::<Args>("lab-capture") {
        Ok(args) => cli::finish("lab-capture", run(args)),
        Err(code) => code,
    }
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let stop = cli::stop_on_signals()?;
    let kind = args.common.datalink_for(&args.iface)?;
    let options = CaptureOptions {
        iface: args.iface.clone(),
        pcap: args.pcap,
        count: args.count,
        duration: args.duration,
        quiet: args.quiet,
    };
    let mut link = cli::open_datalink(
        kind,
        &args.iface,
        &OpenOptions {
            capture: true,
            ..args.common.open_options()
        },
    )?;
    let mut out = Output::stdout(args.common.format());
    capture::run(link.as_mut(), &options, &mut out, &stop)?;
    Ok(ExitCode::SUCCESS)
}
