//! lab-sink IFACE: counts what lab-gen sent to its address, per flow:
//! loss, duplicates, reordering, rate and one-way latency. See
//! docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::datalink::{DatalinkKind, OpenOptions};
use labctl::tools::error::ToolError;
use labctl::tools::sink::{self, SinkOptions};

#[derive(Parser, Debug)]
#[command(
    name = "lab-sink",
    version,
    about = "Count what lab-gen sends: loss, duplicates, reordering, rate, one-way latency"
)]
struct Args {
    /// Interface to receive on
    iface: String,
    /// Address to receive for (and answer ARP for) [default: IFACE's first
    /// IPv4 address]
    #[arg(long)]
    address: Option<Ipv4Addr>,
    /// Stop after this many lab-gen frames
    #[arg(short, long, value_parser = cli::positive)]
    count: Option<u64>,
    /// Stop this long after the ready line (5s, 500ms, 1.5)
    #[arg(short, long, value_parser = cli::duration)]
    duration: Option<Duration>,
    /// One line per flow before the summary
    #[arg(long)]
    per_flow: bool,
    /// With --json, one `interval` event per this much of the sink's clock
    /// (rate, loss, latency), from 1ms
    #[arg(long, default_value = "100ms", value_parser = interval)]
    interval: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    cli::main(run)
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let start = args.common.start(&args.iface)?;
    let me = start.lookup()?;
    let ip = start.address(args.address, me.ipv4, "--address")?;
    let options = SinkOptions {
        iface: args.iface.clone(),
        ip,
        mac: me.mac,
        count: args.count,
        duration: args.duration,
        per_flow: args.per_flow,
        interval: args.common.json.then_some(args.interval),
        kernel_sees_frames: start.kind == DatalinkKind::AfPacket,
    };
    let open = OpenOptions {
        bulk: true,
        ..start.options()
    };
    let mut link = start.open(&open)?;
    let mut out = start.output();
    let summary = sink::run(link.as_mut(), &options, &mut out, &start.stop)?;
    Ok(cli::exit_for(summary.received))
}

/// `--interval`: a duration of 1 ms or more (a shorter one would print
/// faster than anyone plots).
fn interval(text: &str) -> Result<Duration, String> {
    let interval = cli::duration(text)?;
    if interval < Duration::from_millis(1) {
        return Err(format!("{text:?} is shorter than 1ms"));
    }
    Ok(interval)
}
