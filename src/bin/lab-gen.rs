//! lab-gen IFACE DESTINATION: UDP frames at a fixed rate, stamped with a
//! sequence number and a send time, sent in batches. See docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use labctl::tools::arp;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::datalink::OpenOptions;
use labctl::tools::error::ToolError;
use labctl::tools::gen::{self, GenOptions, Limit, PathChoice, DEFAULT_PORT, MAX_FLOWS};
use labctl::tools::route;
use labctl::tools::traffic::{MAX_FRAME, MIN_FRAME};
use pnet::util::MacAddr;

#[derive(Parser, Debug)]
#[command(
    name = "lab-gen",
    version,
    about = "Send stamped UDP frames at a fixed rate over a datalink (for lab-sink)"
)]
struct Args {
    /// Interface to send from
    iface: String,
    /// IPv4 address to send to (lab-sink's)
    destination: Ipv4Addr,
    /// Frames per second [default: as fast as the datalink takes them]
    #[arg(long, value_name = "PPS", value_parser = cli::rate)]
    rate: Option<f64>,
    /// Frames to send (lost ones included) [default: 1000 without --duration]
    #[arg(short, long, value_parser = cli::positive, conflicts_with = "duration")]
    count: Option<u64>,
    /// How long to send (2s, 500ms, 1.5)
    #[arg(short, long, value_parser = cli::duration)]
    duration: Option<Duration>,
    /// Frame bytes, Ethernet header included (no FCS)
    #[arg(short, long, default_value_t = 64, value_parser = frame_size)]
    size: usize,
    /// Flows: source ports 49152, 49153, ... taking frames in turn
    #[arg(long, default_value_t = 1, value_parser = flows)]
    flows: u16,
    /// UDP destination port
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Source address [default: the route's, else IFACE's first IPv4 address]
    #[arg(long)]
    source: Option<Ipv4Addr>,
    /// Send through this router (on IFACE's link) instead of the node's
    /// routing table's choice
    #[arg(long, value_name = "ADDRESS")]
    gateway: Option<Ipv4Addr>,
    /// How long to wait for each ARP reply from the next hop
    #[arg(short = 'W', long, default_value = "1s", value_parser = cli::duration)]
    timeout: Duration,
    /// The next hop's MAC: no ARP (towards a peer that answers none, e.g.
    /// an XDP drop)
    #[arg(long, value_name = "MAC")]
    peer_mac: Option<MacAddr>,
    /// How frames go out: `auto` (XDP live frames where the kernel and the
    /// interface allow, else the datalink, with one line saying why),
    /// `live` (live frames, or exit 3 saying why not), `datalink`
    #[arg(long, value_enum, default_value_t = PathArg::Auto)]
    path: PathArg,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PathArg {
    Auto,
    Live,
    Datalink,
}

impl From<PathArg> for PathChoice {
    fn from(arg: PathArg) -> PathChoice {
        match arg {
            PathArg::Auto => PathChoice::Auto,
            PathArg::Live => PathChoice::Live,
            PathArg::Datalink => PathChoice::Datalink,
        }
    }
}

fn frame_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(size) if (MIN_FRAME..=MAX_FRAME).contains(&size) => Ok(size),
        _ => Err(format!(
            "{text:?} is not a frame size from {MIN_FRAME} to {MAX_FRAME} bytes"
        )),
    }
}

fn flows(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(flows) if (1..=MAX_FLOWS).contains(&flows) => Ok(flows),
        _ => Err(format!(
            "{text:?} is not a number of flows from 1 to {MAX_FLOWS}"
        )),
    }
}

fn main() -> ExitCode {
    cli::main(run)
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let start = args.common.start(&args.iface)?;
    let me = start.lookup()?;
    let hop = route::next_hop(&me, args.destination, args.gateway)?;
    let source = start.address(args.source, hop.source, "--source")?;
    let options = OpenOptions {
        bulk: true,
        ..start.options()
    };
    let mut link = start.open(&options)?;
    let destination_mac = match args.peer_mac {
        Some(mac) => mac,
        None => arp::resolve_mac(
            link.as_mut(),
            &me,
            source,
            hop.address,
            args.timeout,
            &start.stop,
        )?,
    };
    let limit = match (args.count, args.duration) {
        (_, Some(duration)) => Limit::Duration(duration),
        (Some(count), None) => Limit::Count(count),
        (None, None) => Limit::Count(1000),
    };
    let options = GenOptions {
        destination: args.destination,
        destination_mac,
        source,
        rate: args.rate,
        limit,
        size: args.size,
        flows: args.flows,
        port: args.port,
        session: session(),
    };

    let (mut live, fallback) = match PathChoice::from(args.path) {
        PathChoice::Datalink => (None, None),
        choice => match gen::try_live(start.kind, &me, &options) {
            Ok(live) => (Some(live), None),
            Err(why) if choice == PathChoice::Live => {
                return Err(ToolError::LiveFrames(why.to_string()))
            }
            Err(why) => {
                eprintln!(
                    "lab-gen: not using XDP live frames: {why}; sending on {}",
                    start.kind
                );
                (None, Some(why.to_string()))
            }
        },
    };
    let mut out = start.output();
    let summary = gen::run_on_path(
        link.as_mut(),
        live.as_mut(),
        fallback.as_deref(),
        &me,
        &options,
        &mut out,
        &start.stop,
    )?;
    if let Some(shortfall) = gen::shortfall(&summary, options.rate) {
        eprintln!("lab-gen: {shortfall}");
    }
    Ok(cli::exit_for(summary.sent))
}

/// A number that differs between runs: the process id and the clock.
fn session() -> u32 {
    let now = labctl::tools::traffic::monotonic_ns();
    (now as u32) ^ ((now >> 32) as u32) ^ std::process::id().rotate_left(16)
}
