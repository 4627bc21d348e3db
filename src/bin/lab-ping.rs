//! lab-ping IFACE DESTINATION: ICMP echo over a datalink, with its own ARP,
//! through the next hop the node's routing table gives. See docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::error::ToolError;
use labctl::tools::frames::MAX_ECHO_PAYLOAD;
use labctl::tools::ping::{self, Pacing, PingOptions};
use labctl::tools::route;
use pnet::util::MacAddr;

#[derive(Parser, Debug)]
#[command(
    name = "lab-ping",
    version,
    about = "Send ICMP echo requests over a datalink (own ARP, own frames)"
)]
struct Args {
    /// Interface to send from
    iface: String,
    /// IPv4 address to ping: on IFACE's link, or behind a gateway the
    /// node's routing table (or --gateway) gives
    destination: Ipv4Addr,
    /// Send through this gateway (on IFACE's link) instead of the one the
    /// routing table gives
    #[arg(long, value_name = "ADDR")]
    gateway: Option<Ipv4Addr>,
    /// Source address [default: IFACE's first IPv4 address]
    #[arg(long)]
    source: Option<Ipv4Addr>,
    /// Requests to send
    #[arg(short, long, default_value_t = 5, value_parser = cli::positive)]
    count: u64,
    /// Time between requests (1s, 200ms, 0.5)
    #[arg(short, long, default_value = "1s", value_parser = cli::duration)]
    interval: Duration,
    /// How long to wait for a reply, the last one in particular
    #[arg(short = 'W', long, default_value = "1s", value_parser = cli::duration)]
    timeout: Duration,
    /// ICMP payload bytes
    #[arg(short, long, default_value_t = 56, value_parser = payload_size)]
    size: usize,
    /// ICMP identifier [default: the process id]
    #[arg(long)]
    id: Option<u16>,
    /// Send the next request as soon as the reply arrives (at least every
    /// 10ms); prints only the summary
    #[arg(short, long, conflicts_with_all = ["interval", "rate"])]
    flood: bool,
    /// Send this many requests per second (a load generator; with --count)
    #[arg(long, value_name = "PPS", value_parser = cli::rate, conflicts_with = "interval")]
    rate: Option<f64>,
    /// Print only the start line and the summary
    #[arg(short, long)]
    quiet: bool,
    /// The next hop's MAC address (DESTINATION's, or its gateway's): send
    /// without resolving it by ARP (a load generator towards a node that
    /// answers no ARP)
    #[arg(long, value_name = "MAC")]
    peer_mac: Option<MacAddr>,
    #[command(flatten)]
    common: CommonArgs,
}

fn payload_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(size) if size <= MAX_ECHO_PAYLOAD => Ok(size),
        _ => Err(format!(
            "{text:?} is not a payload size from 0 to {MAX_ECHO_PAYLOAD}"
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
    let pacing = match (args.flood, args.rate) {
        (true, _) => Pacing::Flood,
        (false, Some(rate)) => Pacing::Rate(rate),
        (false, None) => Pacing::Interval(args.interval),
    };
    let options = PingOptions {
        destination: args.destination,
        gateway: hop.gateway,
        source,
        count: args.count,
        pacing,
        timeout: args.timeout,
        size: args.size,
        id: args.id.unwrap_or(std::process::id() as u16),
        quiet: args.quiet,
        peer_mac: args.peer_mac,
    };
    let mut link = start.open(&start.options())?;
    let mut out = start.output();
    let summary = ping::run(link.as_mut(), &me, &options, &mut out, &start.stop)?;
    Ok(cli::exit_for(summary.received))
}
