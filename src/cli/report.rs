//! `labctl report RUN_DIR`: report.html again, from the run directory's
//! report.json and step files, so an old run can be looked at with a
//! newer labctl. Works for any user; nothing but the page is written.

use std::path::PathBuf;
use std::process::ExitCode;

use labctl::lifecycle::{render_page, PageError};

use super::{CliError, VerbResult};

#[derive(clap::Args)]
pub struct Args {
    /// A run directory (`runs/<instance>-<time>`, with its report.json)
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,
}

pub fn run(args: Args) -> VerbResult {
    match render_page(&args.run_dir) {
        Ok(page) => {
            println!("{}", page.display());
            Ok(ExitCode::SUCCESS)
        }
        // Not a run directory, or not a report this labctl can read: the
        // user named the wrong thing.
        Err(e @ (PageError::Read { .. } | PageError::Invalid { .. })) => Err(CliError::usage(
            anyhow::Error::new(e).context("labctl report"),
        )),
        // Exit 3, as for a run whose files could not be written.
        Err(e @ PageError::Write(_)) => Err(CliError::runtime(
            anyhow::Error::new(e).context("labctl report"),
        )),
    }
}
