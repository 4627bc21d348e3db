//! lab-fwd IFACE_A IFACE_B: forwards every frame from A to B and from B to
//! A, unchanged, each interface on its own datalink. See docs/tools.md.

use std::process::ExitCode;

use clap::Parser;
use labctl::tools::cli::{self, CommonArgs, Start};
use labctl::tools::datalink::{DatalinkKind, OpenOptions};
use labctl::tools::error::ToolError;
use labctl::tools::fwd::{self, FwdOptions, Promiscuous, Side, DEFAULT_BATCH};

#[derive(Parser, Debug)]
#[command(
    name = "lab-fwd",
    version,
    about = "Forward every frame between two interfaces, unchanged (a user-space L2 forwarder)"
)]
struct Args {
    /// One interface
    iface_a: String,
    /// The other interface
    iface_b: String,
    /// Packet I/O for IFACE_A [default: --datalink, else $LABCTL_DATALINK_<IFACE_A>, else af_packet]
    #[arg(long, value_enum, value_name = "KIND")]
    datalink_a: Option<DatalinkKind>,
    /// Packet I/O for IFACE_B [default: --datalink, else $LABCTL_DATALINK_<IFACE_B>, else af_packet]
    #[arg(long, value_enum, value_name = "KIND")]
    datalink_b: Option<DatalinkKind>,
    /// Frames taken from one side before the other side gets its turn
    #[arg(long, default_value_t = DEFAULT_BATCH as u64, value_parser = cli::positive)]
    batch: u64,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    cli::main(run)
}

fn run(args: Args) -> Result<ExitCode, ToolError> {
    if args.iface_a == args.iface_b {
        return Err(ToolError::Usage(format!(
            "IFACE_A and IFACE_B are both {}: give two different interfaces",
            args.iface_a
        )));
    }
    let start_a = args.common.start_choosing(&args.iface_a, args.datalink_a)?;
    let start_b = start_a.also_on(&args.common, &args.iface_b, args.datalink_b)?;
    let (a, b) = (start_a.lookup()?, start_b.lookup()?);
    let mut promiscuous = Vec::new();
    for interface in [&a, &b] {
        match Promiscuous::hold(interface.index) {
            Ok(held) => promiscuous.push(held),
            // A veth hands over every frame anyway; a NIC would filter.
            Err(error) => eprintln!(
                "lab-fwd: warning: {} stays non-promiscuous ({error}): only frames to its own \
                 MAC, broadcast and multicast arrive on a NIC that filters",
                interface.name
            ),
        }
    }
    // A forwarder under a throughput search takes frames by the hundred
    // thousand a second: on af_xdp, 6,144 frames to receive into rather
    // than 192, which overflowed whenever the forwarder was off the CPU
    // for 5 ms at 40,000 frames/s on a busy machine (docs/performance.md).
    let bulk = |start: &Start| OpenOptions {
        bulk: true,
        ..start.options()
    };
    let mut link_a = start_a.open(&bulk(&start_a))?;
    let mut link_b = start_b.open(&bulk(&start_b))?;
    let options = FwdOptions {
        batch: usize::try_from(args.batch).unwrap_or(usize::MAX),
        wait: args.common.wait_policy(),
    };
    let mut out = start_a.output();
    fwd::run(
        Side {
            iface: &a.name,
            link: link_a.as_mut(),
        },
        Side {
            iface: &b.name,
            link: link_b.as_mut(),
        },
        &options,
        &mut out,
        &start_a.stop,
    )?;
    drop(promiscuous);
    Ok(ExitCode::SUCCESS)
}
