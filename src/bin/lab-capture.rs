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
    cli::main(run)
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let start = args.common.start(&args.iface)?;
    let options = CaptureOptions {
        iface: args.iface.clone(),
        pcap: args.pcap,
        count: args.count,
        duration: args.duration,
        quiet: args.quiet,
    };
    let mut link = start.open(&OpenOptions {
        capture: true,
        ..start.options()
    })?;
    let mut out = start.output();
    capture::run(link.as_mut(), &options, &mut out, &start.stop)?;
    Ok(ExitCode::SUCCESS)
}
