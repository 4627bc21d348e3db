//! lab-pong IFACE: answers ARP and ICMP echo for its address over a
//! datalink. See docs/tools.md.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs};
use labctl::tools::error::ToolError;
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
    cli::main(run)
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    let start = args.common.start(&args.iface)?;
    let me = start.lookup()?;
    let ip = start.address(args.address, me.ipv4, "--address")?;
    let options = PongOptions {
        iface: args.iface.clone(),
        me: Identity { ip, mac: me.mac },
        count: args.count,
        quiet: args.quiet,
    };
    let mut link = start.open(&start.options())?;
    let mut out = start.output();
    pong::run(link.as_mut(), &options, &mut out, &start.stop)?;
    Ok(ExitCode::SUCCESS)
}
