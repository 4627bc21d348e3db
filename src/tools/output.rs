//! Where the tools' events go: human lines, or with `--json` one JSON
//! object per line. Each event type is `Display` (the human line or lines)
//! and `Serialize` (an object whose "event" field names it), so both forms
//! carry the same facts.

use std::fmt::Display;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub struct Output<W: Write> {
    format: Format,
    out: W,
    /// Events written since the last flush.
    pending: bool,
}

impl Output<BufWriter<io::Stdout>> {
    /// Standard output, written in batches. The tools flush it before every
    /// wait for the wire, so a reader sees each event as soon as the tool
    /// has nothing queued, and a burst of frames costs one write instead of
    /// one per line (Rust's stdout alone writes at every newline).
    pub fn stdout(format: Format) -> Self {
        Output::new(format, BufWriter::new(io::stdout()))
    }
}

impl<W: Write> Output<W> {
    pub fn new(format: Format, out: W) -> Self {
        Output {
            format,
            out,
            pending: false,
        }
    }

    pub fn emit<E: Display + Serialize>(&mut self, event: &E) -> io::Result<()> {
        self.pending = true;
        match self.format {
            Format::Human => writeln!(self.out, "{event}"),
            Format::Json => {
                serde_json::to_writer(&mut self.out, event)?;
                self.out.write_all(b"\n")
            }
        }
    }

    /// True when events were written since the last flush: a tool about to
    /// wait for the wire flushes first.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending {
            self.out.flush()?;
            self.pending = false;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `datalink.recv(wait)`, but when events are waiting in `out` and the call
/// may wait, it first takes a frame already queued, and only if there is
/// none flushes `out` and waits. So a tool under load prints in batches,
/// and an idle tool has printed everything. Evaluates to
/// `Result<Option<Received>, ToolError>`.
///
/// A macro rather than a function: a function that calls `recv` twice and
/// returns the frame borrowed from the first call is refused by today's
/// borrow checker (NLL "problem case #3"); expanded in place it is not.
macro_rules! recv_flushing {
    ($datalink:expr, $wait:expr, $out:expr) => {{
        let wait: std::time::Duration = $wait;
        if $out.is_pending() && !wait.is_zero() {
            match $datalink.recv(std::time::Duration::ZERO) {
                Ok(None) => match $out.flush() {
                    Ok(()) => $datalink
                        .recv(wait)
                        .map_err($crate::tools::error::ToolError::Wire),
                    Err(error) => Err($crate::tools::error::ToolError::Stdout(error)),
                },
                taken => taken.map_err($crate::tools::error::ToolError::Wire),
            }
        } else {
            $datalink
                .recv(wait)
                .map_err($crate::tools::error::ToolError::Wire)
        }
    }};
}
pub(crate) use recv_flushing;

/// Serializes a value by its Display form (MAC addresses as
/// "02:00:00:00:00:01").
pub fn as_text<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Example {
        Hello { name: &'static str },
    }

    impl fmt::Display for Example {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let Example::Hello { name } = self;
            write!(f, "hello {name}")
        }
    }

    #[test]
    fn one_line_per_event_in_either_format() {
        let mut human = Output::new(Format::Human, Vec::new());
        human.emit(&Example::Hello { name: "eth1" }).unwrap();
        assert_eq!(human.into_inner(), b"hello eth1\n");

        let mut json = Output::new(Format::Json, Vec::new());
        json.emit(&Example::Hello { name: "eth1" }).unwrap();
        assert_eq!(
            json.into_inner(),
            b"{\"event\":\"hello\",\"name\":\"eth1\"}\n"
        );
    }

    /// Counts the writes that reach it, as the system calls on stdout.
    #[derive(Default)]
    struct Writes {
        bytes: Vec<u8>,
        calls: usize,
    }

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            self.bytes.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_go_out_in_one_write_at_the_flush() {
        let mut out = Output::new(Format::Human, BufWriter::new(Writes::default()));
        assert!(!out.is_pending());
        for name in ["eth1", "eth2", "eth3"] {
            out.emit(&Example::Hello { name }).unwrap();
        }
        assert!(out.is_pending());
        assert_eq!(out.out.get_ref().calls, 0);
        out.flush().unwrap();
        assert!(!out.is_pending());
        let writes = out.out.get_ref();
        assert_eq!(writes.calls, 1);
        assert_eq!(writes.bytes, b"hello eth1\nhello eth2\nhello eth3\n");
        // Nothing new: no write.
        out.flush().unwrap();
        assert_eq!(out.out.get_ref().calls, 1);
    }
}
