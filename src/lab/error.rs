//! Problems found in a lab file, each with its position.

use std::fmt;
use std::path::PathBuf;

use serde_saphyr::Location;

/// One problem: where it is and what is wrong (and what was expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based; 0 when the position is unknown.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Problem {
    /// A problem at `location`. Control characters that the message quotes
    /// from the file are escaped: a message is one line, and the file's
    /// bytes must not drive the terminal.
    pub(super) fn at(location: Location, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Problem {
            line: location.line(),
            column: location.column(),
            message: message
                .chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect(),
        }
    }
}

/// Every problem found in one lab file, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LabErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for LabErrors {
    /// One `FILE:LINE:COL: message` line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.column,
                p.message
            )?;
        }
        Ok(())
    }
}

/// Why a lab could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The cause is part of the message and kept as a plain field, so a
    /// printed error chain does not say it twice.
    #[error("cannot read lab file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A FIFO, a device, a directory: never read, so never a hang.
    #[error("cannot read lab file {path}: it is {what} (expected a regular file)")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error(
        "lab file {path} is {:.1} MiB ({size} bytes), more than the 16 MiB a lab file may have",
        *size as f64 / (1024.0 * 1024.0)
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{0}")]
    Invalid(LabErrors),
}
