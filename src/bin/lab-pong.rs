//! lab-pong IFACE: answers ARP and ICMP echo for its address over a
//! datalink. See docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::error::ToolError;
use labctl::tools::iface;
use labctl::tools::output::Output;
use labctl::tools::pong::{self, Identity, PongOptions};

#[derive(Parser, Debug)]
#[command(
    name = "lab-pong",
    version,
    about = "Answer ARP and ICMP echo requests over a datalink"
)]
struct Args {
    /// Interface to answer on
    iface: String,
    /// Address to answer for [default: IFACE's first IPv4 address]
    #[arg(long)]
    address: Option<Ipv4Addr>,
    /// Stop after this many echo replies
    #[arg(short, long, value_parser = cli::positive)]
    count: Option<u64>,
    /// Print only the start line and the summary
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    match cli::parse_args::<Args>("lab-pong") {
        Ok(args) => cli::finish("lab-pong", run(args)),
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
    let options = PongOptions {
        iface: args.iface.clone(),
        me: Identity { ip, mac: me.mac },
        count: args.count,
        quiet: args.quiet,
    };
    let mut link = cli::open_datalink(kind, &args.iface, &args.common.open_options())?;
    let mut out = Output::stdout(args.common.format());
    pong::run(link.as_mut(), &options, &mut out, &stop)?;
    Ok(ExitCode::SUCCESS)
}
