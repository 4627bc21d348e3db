//! The command-line pieces the tools share: `--datalink`, `--json` and
//! `--busy-poll`, durations such as `200ms`, one-line usage errors, the stop
//! flag set by SIGINT/SIGTERM, and turning a result into an exit code.
//!
//! Every tool's `main` is [`main`], and its opening is [`Start`]: the stop
//! flag, the datalink, the interface, the tool's address, the output.
//!
//! ```ignore
//! fn main() -> ExitCode {
//!     cli::main(run)
//! }
//!
//! fn run(args: Args) -> Result<ExitCode, ToolError> {
//!     let start = args.common.start(&args.iface)?;
//!     let me = start.lookup()?;
//!     let ip = start.address(args.address, me.ipv4, "--address")?;
//!     let mut link = start.open(&start.options())?;
//!     let mut out = start.output();
//!     // ... the tool's own run, until `start.stop`
//!     Ok(cli::exit_for(received))
//! }
//! ```

use std::io::{BufWriter, Stdout};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;

use crate::tools::datalink::{self, wait, Datalink, DatalinkKind, OpenOptions, WaitPolicy};
use crate::tools::error::{ToolError, EXIT_NOTHING_THROUGH, EXIT_USAGE};
use crate::tools::iface::{self, Interface};
use crate::tools::output::{Format, Output};

#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Packet I/O to use [default: $LABCTL_DATALINK_<IFACE>, else af_packet]
    #[arg(long, value_enum, value_name = "KIND")]
    pub datalink: Option<DatalinkKind>,
    /// Print one JSON object per line instead of the human lines
    #[arg(long)]
    pub json: bool,
    /// Never sleep waiting for frames: spin on the ring or socket (and ask
    /// the kernel to busy-poll the device where allowed). Lowest latency,
    /// at the cost of one CPU at 100% for as long as the tool runs
    #[arg(long)]
    pub busy_poll: bool,
    /// How long a wait for frames spins before it sleeps, e.g. 50us (for
    /// a tool with a CPU of its own) [default: 0, sleep at once]
    #[arg(long, value_name = "DURATION", value_parser = duration, conflicts_with = "busy_poll")]
    pub spin: Option<Duration>,
}

impl CommonArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Human
        }
    }

    /// How the datalink waits: `--busy-poll`, else a short spin before
    /// sleeping (docs/tools.md).
    pub fn wait_policy(&self) -> WaitPolicy {
        match (self.busy_poll, self.spin) {
            (true, _) => WaitPolicy::busy_poll(),
            (false, Some(spin)) => WaitPolicy {
                spin,
                busy_poll: false,
            },
            (false, None) => WaitPolicy::default(),
        }
    }

    /// What every tool opens its interface with (a capture sets
    /// `capture` on top).
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            wait: self.wait_policy(),
            ..OpenOptions::default()
        }
    }

    /// The tool's start on `iface`: the SIGINT/SIGTERM handlers first,
    /// then the datalink for `iface` ([`CommonArgs::datalink_for`]).
    pub fn start(&self, iface: &str) -> Result<Start, ToolError> {
        self.start_choosing(iface, None)
    }

    /// [`CommonArgs::start`] with a datalink `chosen` for this interface
    /// before `--datalink` (lab-fwd's `--datalink-a`).
    pub fn start_choosing(
        &self,
        iface: &str,
        chosen: Option<DatalinkKind>,
    ) -> Result<Start, ToolError> {
        let stop = stop_on_signals()?;
        Start::on(stop, self, iface, chosen)
    }

    /// `--datalink`, else what labctl set for `iface`, else af_packet.
    pub fn datalink_for(&self, iface: &str) -> Result<DatalinkKind, ToolError> {
        if let Some(kind) = self.datalink {
            return Ok(kind);
        }
        match DatalinkKind::from_env(iface) {
            None => Ok(DatalinkKind::AfPacket),
            Some(Ok(kind)) => Ok(kind),
            Some(Err(unknown)) => Err(ToolError::Usage(format!(
                "{}: {unknown}",
                DatalinkKind::env_var(iface)
            ))),
        }
    }
}

/// What every tool does first, on the interface it runs on: the stop flag
/// (set by SIGINT and SIGTERM, installed before anything else so that a
/// signal from then on stops the tool cleanly), the datalink it opens the
/// interface with, and how; then, as the tool needs them, the interface as
/// the kernel knows it, the tool's own address and its output.
#[derive(Debug)]
pub struct Start {
    /// Set by SIGINT and SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// The interface, as the command line names it.
    pub iface: String,
    /// `--datalink` (or the tool's own choice), else what labctl set for
    /// the interface, else af_packet.
    pub kind: DatalinkKind,
    options: OpenOptions,
    format: Format,
}

impl Start {
    fn on(
        stop: Arc<AtomicBool>,
        common: &CommonArgs,
        iface: &str,
        chosen: Option<DatalinkKind>,
    ) -> Result<Start, ToolError> {
        let kind = match chosen {
            Some(kind) => kind,
            None => common.datalink_for(iface)?,
        };
        Ok(Start {
            stop,
            iface: iface.to_owned(),
            kind,
            options: common.open_options(),
            format: common.format(),
        })
    }

    /// The same start on a second interface, with the same stop flag
    /// (lab-fwd's other side).
    pub fn also_on(
        &self,
        common: &CommonArgs,
        iface: &str,
        chosen: Option<DatalinkKind>,
    ) -> Result<Start, ToolError> {
        Start::on(Arc::clone(&self.stop), common, iface, chosen)
    }

    /// The interface's index, MAC and address.
    pub fn lookup(&self) -> Result<Interface, ToolError> {
        Ok(iface::lookup(&self.iface)?)
    }

    /// The address the tool sends from or answers for: `given` (its
    /// `flag`), else `found` (the route's source, or the interface's
    /// address); neither is an error that names the flag.
    pub fn address(
        &self,
        given: Option<Ipv4Addr>,
        found: Option<Ipv4Addr>,
        flag: &'static str,
    ) -> Result<Ipv4Addr, ToolError> {
        given.or(found).ok_or_else(|| ToolError::NoIpv4 {
            iface: self.iface.clone(),
            flag,
        })
    }

    /// What the command line asks of the datalink (`--busy-poll`,
    /// `--spin`); a tool adds its own needs (`bulk`, `capture`).
    pub fn options(&self) -> OpenOptions {
        self.options.clone()
    }

    /// Opens the interface with the tool's datalink and `options`.
    pub fn open(&self, options: &OpenOptions) -> Result<Box<dyn Datalink>, ToolError> {
        open_datalink(self.kind, &self.iface, options)
    }

    /// Opens the interface with `kind` rather than the tool's datalink
    /// (lab-sink's ARP beside its XDP counting).
    pub fn open_as(
        &self,
        kind: DatalinkKind,
        options: &OpenOptions,
    ) -> Result<Box<dyn Datalink>, ToolError> {
        open_datalink(kind, &self.iface, options)
    }

    /// Standard output, in human lines or `--json` events.
    pub fn output(&self) -> Output<BufWriter<Stdout>> {
        Output::stdout(self.format)
    }
}

/// The exit of a tool that counts what got through (replies, frames sent,
/// frames received): 0 for any, [`EXIT_NOTHING_THROUGH`] for none.
pub fn exit_for(got_through: u64) -> ExitCode {
    if got_through > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOTHING_THROUGH)
    }
}

/// Every tool's `main`: parses the command line into `T` (whose clap name
/// is the tool's: usage errors and failures start with it), runs the tool,
/// and exits with its code, or with one line on stderr and the failure's.
pub fn main<T: Parser>(run: impl FnOnce(T) -> Result<ExitCode, ToolError>) -> ExitCode {
    let command = T::command();
    let tool = command.get_name();
    match parse_args::<T>(tool) {
        Ok(args) => finish(tool, run(args)),
        Err(code) => code,
    }
}

/// Opens `iface` with `kind`; the error names both.
fn open_datalink(
    kind: DatalinkKind,
    iface: &str,
    options: &OpenOptions,
) -> Result<Box<dyn Datalink>, ToolError> {
    datalink::open(kind, iface, options).map_err(|source| ToolError::Open {
        kind,
        iface: iface.to_owned(),
        source,
    })
}

/// A clap value parser for durations: `1s`, `200ms`, `1m 30s`, or a plain
/// number of seconds (`0.2`).
pub fn duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a duration of zero or more seconds"));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration such as 1s or 200ms ({error})"))
}

/// A clap value parser for a positive, finite rate (packets per second).
pub fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive number of packets per second"
        )),
    }
}

/// Parses the command line. `--help` and `--version` print and exit 0;
/// any other problem is one line on stderr and exit 2.
fn parse_args<T: Parser>(tool: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|error| match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("{tool}: {} (see {tool} --help)", one_line(&error));
            ExitCode::from(EXIT_USAGE)
        }
    })
}

/// clap's message up to its first blank line (which comes before the usage
/// and the hints), on one line: "invalid value 'x' for '--datalink <KIND>'
/// [possible values: af_packet, af_xdp, netmap]".
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    message
        .strip_prefix("error: ")
        .unwrap_or(&message)
        .to_owned()
}

/// A clap value parser for counts: 1 or more.
pub fn positive(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{text:?} is not a whole number of 1 or more")),
    }
}

/// A flag that SIGINT and SIGTERM set. The datalinks' waits end early on a
/// signal, so the tools see it within one receive: a sleeping wait is
/// interrupted, a spinning one sees the signal counted (datalink::wait).
fn stop_on_signals() -> Result<Arc<AtomicBool>, ToolError> {
    let stop = Arc::new(AtomicBool::new(false));
    let signals = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];
    for signal in signals {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(ToolError::Signals)?;
    }
    wait::count_signals(&signals).map_err(ToolError::Signals)?;
    Ok(stop)
}

/// The process's exit: the tool's own code, or one line on stderr and the
/// failure's code.
fn finish(tool: &str, result: Result<ExitCode, ToolError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{tool}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_human_units_or_seconds() {
        assert_eq!(duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert!(duration("-1").is_err());
        assert!(duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn counts_are_one_or_more() {
        assert_eq!(positive("3"), Ok(3));
        for bad in ["0", "-1", "x", ""] {
            assert!(positive(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn usage_errors_fit_on_one_line() {
        #[derive(Parser, Debug)]
        struct Example {
            #[arg(long, value_enum)]
            datalink: DatalinkKind,
        }
        let error = Example::try_parse_from(["x", "--datalink", "dpdk"]).unwrap_err();
        assert_eq!(
            one_line(&error),
            "invalid value 'dpdk' for '--datalink <DATALINK>' [possible values: af_packet, af_xdp, netmap]"
        );
    }

    #[test]
    fn busy_poll_is_a_flag_every_tool_shares() {
        #[derive(Parser, Debug)]
        struct Tool {
            #[command(flatten)]
            common: CommonArgs,
        }
        let busy = Tool::try_parse_from(["x", "--busy-poll"]).unwrap().common;
        assert_eq!(busy.open_options().wait, WaitPolicy::busy_poll());
        let none = Tool::try_parse_from(["x", "--spin", "0"]).unwrap().common;
        assert_eq!(none.open_options().wait.spin, Duration::ZERO);
        assert!(Tool::try_parse_from(["x", "--spin", "1ms", "--busy-poll"]).is_err());
        let default = Tool::try_parse_from(["x"]).unwrap().common;
        assert_eq!(default.open_options().wait, WaitPolicy::default());
        assert!(!default.open_options().capture);
    }

    #[test]
    fn rates_are_positive_and_finite() {
        assert_eq!(rate("1000"), Ok(1000.0));
        for bad in ["0", "-5", "inf", "NaN", "fast"] {
            assert!(rate(bad).is_err(), "{bad} accepted");
        }
    }

    fn start_on(iface: &str) -> Start {
        let common = CommonArgs {
            datalink: Some(DatalinkKind::AfPacket),
            json: true,
            busy_poll: true,
            spin: None,
        };
        Start::on(Arc::new(AtomicBool::new(false)), &common, iface, None).unwrap()
    }

    #[test]
    fn the_start_carries_the_command_lines_datalink_options_and_format() {
        let start = start_on("eth1");
        assert_eq!(
            (start.iface.as_str(), start.kind),
            ("eth1", DatalinkKind::AfPacket)
        );
        assert_eq!(start.options().wait, WaitPolicy::busy_poll());
        assert_eq!(start.format, Format::Json);
        let common = CommonArgs {
            datalink: None,
            json: false,
            busy_poll: false,
            spin: None,
        };
        let other = start
            .also_on(&common, "eth2", Some(DatalinkKind::Netmap))
            .unwrap();
        assert_eq!(
            (other.iface.as_str(), other.kind),
            ("eth2", DatalinkKind::Netmap)
        );
        assert!(Arc::ptr_eq(&start.stop, &other.stop), "one stop flag");
    }

    #[test]
    fn the_address_is_the_flags_else_the_found_one_else_an_error_naming_the_flag() {
        let start = start_on("eth1");
        let given = Ipv4Addr::new(198, 18, 0, 1);
        let found = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(
            start.address(Some(given), Some(found), "--source").unwrap(),
            given
        );
        assert_eq!(start.address(None, Some(found), "--source").unwrap(), found);
        let error = start.address(None, None, "--address").unwrap_err();
        assert!(
            matches!(&error, ToolError::NoIpv4 { iface, flag: "--address" } if iface == "eth1"),
            "{error:?}"
        );
    }

    #[test]
    fn nothing_through_is_exit_1() {
        assert_eq!(exit_for(1), ExitCode::SUCCESS);
        assert_eq!(exit_for(0), ExitCode::from(1));
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let flag = CommonArgs {
            datalink: Some(DatalinkKind::Netmap),
            json: false,
            busy_poll: false,
            spin: None,
        };
        assert_eq!(flag.datalink_for("eth1").unwrap(), DatalinkKind::Netmap);
        let none = CommonArgs {
            datalink: None,
            json: false,
            busy_poll: false,
            spin: None,
        };
        // No variable is set for an interface name nobody uses.
        assert_eq!(
            none.datalink_for("cli-test-if").unwrap(),
            DatalinkKind::AfPacket
        );
    }
}
