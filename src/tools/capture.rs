//! lab-capture: one packetdump-style line per frame, both directions, and
//! optionally every frame into a pcap file that Wireshark and tshark read.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use serde::Serialize;

use crate::tools::datalink::{Datalink, DatalinkError, Direction};
use crate::tools::error::ToolError;
use crate::tools::frames::{self, Frame, Malformed};
use crate::tools::output::{recv_flushing, Output};

/// How long one receive waits before the stop flag and the deadline are
/// looked at again (signals also end the wait at once).
const POLL: Duration = Duration::from_millis(200);
/// At most this long is spent reading what is still queued after a stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The longest frame kept whole in the pcap file (tcpdump's default).
pub const SNAPLEN: u32 = 262_144;

#[derive(Clone, Debug, Default)]
pub struct CaptureOptions {
    pub iface: String,
    pub pcap: Option<PathBuf>,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// No per-frame events, only the summary.
    pub quiet: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    pub captured: u64,
    /// Frames the datalink dropped, where it can tell.
    pub dropped: Option<u64>,
    /// Frames that did not decode (still captured, and in the pcap file).
    pub malformed: u64,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CaptureEvent<'a> {
    Capturing {
        iface: &'a str,
        datalink: String,
        pcap: Option<&'a Path>,
    },
    Frame {
        iface: &'a str,
        direction: Direction,
        length: usize,
        frame: &'a Frame<'a>,
    },
    Malformed {
        iface: &'a str,
        direction: Direction,
        length: usize,
        #[serde(flatten)]
        error: &'a Malformed,
    },
    Summary(&'a CaptureSummary),
}

/// Captures until `count` frames, `duration`, or a stop; after a stop or
/// the deadline, frames already queued are still read (the last ones on
/// the wire are often the ones that matter).
pub fn run<W: Write>(
    datalink: &mut dyn Datalink,
    options: &CaptureOptions,
    out: &mut Output<W>,
    stop: &AtomicBool,
) -> Result<CaptureSummary, ToolError> {
    let mut pcap = options.pcap.as_deref().map(PcapFile::create).transpose()?;
    out.emit(&CaptureEvent::Capturing {
        iface: &options.iface,
        datalink: datalink.describe(),
        pcap: options.pcap.as_deref(),
    })?;
    out.flush()?;
    let deadline = options
        .duration
        .and_then(|duration| Instant::now().checked_add(duration));
    let mut summary = CaptureSummary::default();
    let mut drain_until: Option<Instant> = None;
    while options.count.is_none_or(|count| summary.captured < count) {
        let now = Instant::now();
        let stopping = stop.load(Ordering::Relaxed) || deadline.is_some_and(|end| now >= end);
        if stopping && drain_until.is_none() {
            drain_until = Some(now + DRAIN_LIMIT);
        }
        let wait = match (drain_until, deadline) {
            (Some(_), _) => Duration::ZERO,
            (None, Some(end)) => end.saturating_duration_since(now).min(POLL),
            (None, None) => POLL,
        };
        let received = match recv_flushing!(datalink, wait, out) {
            // What the capture watched is gone (a netmap monitor's port
            // left netmap mode): nothing more will come, so it ends here.
            Err(ToolError::Wire(ended @ DatalinkError::Ended { .. })) => {
                eprintln!("lab-capture: {ended}; the capture ends");
                break;
            }
            other => other?,
        };
        let Some(received) = received else {
            if drain_until.is_some() {
                break;
            }
            if let Some(file) = pcap.as_mut() {
                // Idle: let a reader of the file see what came so far.
                file.flush()?;
            }
            continue;
        };
        summary.captured += 1;
        if let Some(file) = pcap.as_mut() {
            file.write(received.frame)?;
        }
        let length = received.frame.len();
        let (iface, direction) = (options.iface.as_str(), received.direction);
        match frames::decode(received.frame) {
            Ok(frame) if !options.quiet => out.emit(&CaptureEvent::Frame {
                iface,
                direction,
                length,
                frame: &frame,
            })?,
            Ok(_) => {}
            Err(error) => {
                summary.malformed += 1;
                if !options.quiet {
                    out.emit(&CaptureEvent::Malformed {
                        iface,
                        direction,
                        length,
                        error: &error,
                    })?;
                }
            }
        }
        if drain_until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
    }
    if let Some(file) = pcap.as_mut() {
        file.flush()?;
    }
    summary.dropped = datalink.stats().dropped;
    out.emit(&CaptureEvent::Summary(&summary))?;
    out.flush()?;
    Ok(summary)
}

/// The pcap file: a little-endian, microsecond pcap with Ethernet frames.
struct PcapFile {
    path: PathBuf,
    writer: PcapWriter<SharedFile>,
    /// The same buffered file, to flush it (PcapWriter cannot).
    file: SharedFile,
}

#[derive(Clone)]
struct SharedFile(Rc<RefCell<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl PcapFile {
    fn create(path: &Path) -> Result<Self, ToolError> {
        let file = File::create(path).map_err(|source| pcap_error("creating", path, source))?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: pcap_file::Endianness::Little,
            ..PcapHeader::default()
        };
        let file = SharedFile(Rc::new(RefCell::new(BufWriter::new(file))));
        let writer = PcapWriter::with_header(file.clone(), header)
            .map_err(|error| pcap_error("writing", path, into_io(error)))?;
        Ok(PcapFile {
            path: path.to_owned(),
            writer,
            file,
        })
    }

    fn write(&mut self, frame: &[u8]) -> Result<(), ToolError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let original_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(timestamp, original_len, kept);
        self.writer
            .write_packet(&packet)
            .map(|_| ())
            .map_err(|error| pcap_error("writing", &self.path, into_io(error)))
    }

    fn flush(&mut self) -> Result<(), ToolError> {
        self.file
            .flush()
            .map_err(|source| pcap_error("writing", &self.path, source))
    }
}

fn pcap_error(action: &'static str, path: &Path, source: io::Error) -> ToolError {
    ToolError::Pcap {
        action,
        path: path.to_owned(),
        source,
    }
}

/// pcap-file's I/O error hides its cause in its message; keep the cause.
fn into_io(error: pcap_file::PcapError) -> io::Error {
    match error {
        pcap_file::PcapError::IoError(source) => source,
        other => io::Error::other(other.to_string()),
    }
}

impl fmt::Display for CaptureEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureEvent::Capturing {
                iface, datalink, ..
            } => write!(f, "capturing on {iface} ({datalink})"),
            CaptureEvent::Frame { iface, frame, .. } => write!(f, "[{iface}]: {frame}"),
            CaptureEvent::Malformed { iface, error, .. } => write!(f, "[{iface}]: {error}"),
            CaptureEvent::Summary(summary) => {
                write!(f, "{} packets captured", summary.captured)?;
                if let Some(dropped) = summary.dropped {
                    write!(f, ", {dropped} dropped")?;
                }
                write!(f, ", {} malformed", summary.malformed)
            }
        }
    }
}

#[cfg(test)]
mod tests;
