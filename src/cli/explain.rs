//! `labctl validate`, `labctl graph`, `labctl schema`: the lab file
//! explained, with no Docker involved.

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::lab;

use super::{exit, load_lab, CliError, VerbResult};

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Lab files to check: files, directories (their *.yaml) or globs
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

#[derive(clap::Args)]
pub struct GraphArgs {
    /// The lab file
    file: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: lab::graph::Format,
}

/// Checks every file, even after an invalid one.
pub fn validate(args: ValidateArgs) -> VerbResult {
    let mut all_valid = true;
    for file in &super::files::expand(&args.files)? {
        match load_lab(file) {
            Ok(lab) => println!("{}: {}", file.display(), lab.summary()),
            Err(failure) => {
                failure.print();
                all_valid = false;
            }
        }
    }
    if all_valid {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::reported(exit::USAGE))
    }
}

pub fn graph(args: GraphArgs) -> VerbResult {
    let lab = load_lab(&args.file)?;
    print!("{}", lab::graph::render(&lab, args.format));
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct SchemaArgs {
    /// Print the schema of report.json (a run's JSON report) instead
    #[arg(long)]
    report: bool,
}

pub fn schema(args: SchemaArgs) -> VerbResult {
    if args.report {
        println!("{}", labctl::report::report_schema_json());
    } else {
        println!("{}", lab::schema::lab_schema_json());
    }
    Ok(ExitCode::SUCCESS)
}
