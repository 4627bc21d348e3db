//! The labctl command line: clap types and a match that hands each
//! subcommand to the library.
//!
//! Exit codes (docs/lab-format.md): 0 success, 1 a check failed
//! (`labctl run`), 2 invalid lab file or bad usage, 3 the lab could not be
//! built or torn down.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use labctl::lab;

/// Exit code: an invalid lab file, or bad usage (clap uses 2 as well).
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(version, about = "Containerized network test labs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check lab files, print a one-line summary of each valid one
    ///
    /// Every problem of a file is reported at once, one per line, as
    /// FILE:LINE:COL: message. Exits 0 when every file is valid, 2 otherwise.
    Validate {
        /// Lab files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a lab's topology as Graphviz DOT or Mermaid
    ///
    /// Nodes, links, and for each end its interface, address, MAC and
    /// datalink: `labctl graph lab.yaml | dot -Tsvg > lab.svg`.
    Graph {
        /// The lab file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: lab::graph::Format,
    },
    /// Print the JSON Schema of lab files, for editors
    ///
    /// Save it (`labctl schema > lab.schema.json`) and point your editor's
    /// YAML plugin at it; docs/lab-format.md says how.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Graph { file, format } => graph(&file, format),
        Command::Schema => {
            println!("{}", lab::schema::lab_schema_json());
            ExitCode::SUCCESS
        }
    }
}

/// Checks every file, even after an invalid one.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut all_valid = true;
    for file in files {
        match load(file) {
            Some(lab) => println!("{}: {}", file.display(), lab.summary()),
            None => all_valid = false,
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

fn graph(file: &Path, format: lab::graph::Format) -> ExitCode {
    match load(file) {
        Some(lab) => {
            print!("{}", lab::graph::render(&lab, format));
            ExitCode::SUCCESS
        }
        None => ExitCode::from(EXIT_INVALID),
    }
}

/// Loads a lab, printing its problems (or why it cannot be read) on stderr.
fn load(file: &Path) -> Option<lab::Lab> {
    match lab::load(file) {
        Ok(lab) => Some(lab),
        Err(lab::LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            None
        }
        Err(e) => {
            eprintln!("labctl: {e}");
            None
        }
    }
}
