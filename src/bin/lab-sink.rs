//! lab-sink IFACE: counts what lab-gen sent to its address, per flow:
//! loss, duplicates, reordering, rate and one-way latency. See
//! docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::datalink::{DatalinkKind, OpenOptions};
use labctl::tools::error::{ToolError, EXIT_NO_REPLY};
use labctl::tools::iface;
use labctl::tools::output::Output;
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
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    match cli::parse_args::<Args>("lab-sink") {
        Ok(args) => cli::finish("lab-sink", run(args)),
        Err(code) => code,
    }
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let stop = cli::stop_on_signals()?;
    let kind = args.common.datalink_for(&args.iface)?;
    let me = iface::lookup(&args.iface)?;
    let ip = args.address.or(me.ipv4).ok_or_else(|| ToolError::NoIpv4 {
        iface: args.iface.clone(),
        flag: "--address",
    })?;
    let options = SinkOptions {
        iface: args.iface.clone(),
        ip,
        mac: me.mac,
        count: args.count,
        duration: args.duration,
        per_flow: args.per_flow,
        kernel_sees_frames: kind == DatalinkKind::AfPacket,
    };
    let open = OpenOptions {
        bulk: true,
        ..args.common.open_options()
    };
    let mut link = cli::open_datalink(kind, &args.iface, &open)?;
    let mut out = Output::stdout(args.common.format());
    let summary = sink::run(link.as_mut(), &options, &mut out, &stop)?;
    Ok(if summary.received > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO_REPLY)
    })
}
