//! The labctl command line: clap types and a match that hands each
//! subcommand to its handler in `cli/`, which calls the library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Containerized network test labs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a lab's containers and veth links
    Deploy(cli::deploy::Args),
    /// Remove a lab, or every lab, and everything it created
    Destroy(cli::destroy::Args),
    /// Show deployed labs: nodes, state, pids, interfaces
    Inspect(cli::inspect::Args),
    /// Run a command in a node; exits with the command's exit code
    Exec(cli::exec::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Deploy(args) => cli::deploy::run(args),
        Command::Destroy(args) => cli::destroy::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Exec(args) => cli::exec::run(args),
    };
    cli::finish(outcome)
}
