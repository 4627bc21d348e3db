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
use labctl::tools::sink::xdp::XdpCounter;
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
    /// Where frames are counted: `datalink` (in lab-sink, off its
    /// datalink), `xdp` (in an XDP program on IFACE, ARP answered on
    /// af_packet; or exit 3 saying why not), `auto` (xdp where it can
    /// run, else the datalink, with one line saying why)
    #[arg(long, value_enum, default_value_t = PathArg::Datalink)]
    path: PathArg,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PathArg {
    Auto,
    Xdp,
    Datalink,
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
        fallback: None,
    };
    let open = OpenOptions {
        bulk: true,
        ..start.options()
    };
    let (counter, fallback) = match args.path {
        PathArg::Datalink => (None, None),
        path => match XdpCounter::attach(&args.iface, me.index, ip, args.count) {
            Ok(counter) => (Some(counter), None),
            Err(why) if path == PathArg::Xdp => return Err(ToolError::XdpCount(why.to_string())),
            Err(why) => {
                eprintln!(
                    "lab-sink: not counting in XDP: {why}; counting on {}",
                    start.kind
                );
                (None, Some(why.to_string()))
            }
        },
    };
    let mut out = start.output();
    let summary = match counter {
        Some(mut counter) => {
            // ARP beside the program: frames it passes reach af_packet.
            let mut link = start.open_as(DatalinkKind::AfPacket, &open)?;
            sink::run_xdp(&mut counter, link.as_mut(), &options, &mut out, &start.stop)?
        }
        None => {
            let mut link = start.open(&open)?;
            let options = SinkOptions {
                fallback,
                ..options
            };
            sink::run(link.as_mut(), &options, &mut out, &start.stop)?
        }
    };
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
