//! Where the tools' events go: human lines, or with `--json` one JSON
//! object per line. Each event type is `Display` (the human line or lines)
//! and `Serialize` (an object whose "event" field names it), so both forms
//! carry the same facts.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub struct Output<W: Write> {
    format: Format,
    out: W,
}

impl Output<io::Stdout> {
    /// Standard output, which Rust flushes at every newline: a reader sees
    /// each event (e.g. "listening on") as soon as it is printed.
    pub fn stdout(format: Format) -> Self {
        Output::new(format, io::stdout())
    }
}

impl<W: Write> Output<W> {
    pub fn new(format: Format, out: W) -> Self {
        Output { format, out }
    }

    pub fn emit<E: Display + Serialize>(&mut self, event: &E) -> io::Result<()> {
        match self.format {
            Format::Human => writeln!(self.out, "{event}"),
            Format::Json => {
                serde_json::to_writer(&mut self.out, event)?;
                self.out.write_all(b"\n")
            }
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

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
}
