//! The labctl command line: clap types and a match that hands each
//! subcommand to its handler in `cli/`, which calls the library.
//!
//! The exit codes are in `cli/exit.rs`.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    version = env!("LABCTL_VERSION"),
    about = "Containerized network test labs",
    long_about = "Containerized network test labs: nodes joined by veth pairs, packet tools \
                  on AF_PACKET, AF_XDP or netmap, steps with checks, JUnit and JSON reports, \
                  teardown on every path. `run`, `deploy`, `destroy`, `inspect` and `exec` need \
                  root; the other commands work for any user."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a lab, run its steps, check their output, report, tear down
    Run(cli::run::Args),
    /// Check lab files, print a one-line summary of each valid one
    ///
    /// Every problem of a file is reported at once, one per line, as
    /// FILE:LINE:COL: message. Exits 0 when every file is valid, 2 otherwise.
    Validate(cli::explain::ValidateArgs),
    /// Print a lab's topology as Graphviz DOT or Mermaid
    ///
    /// Nodes, links, and for each end its interface, address, MAC and
    /// datalink: `labctl graph lab.yaml | dot -Tsvg > lab.svg`.
    Graph(cli::explain::GraphArgs),
    /// Print the JSON Schema of lab files, for editors
    ///
    /// Save it (`labctl schema > lab.schema.json`) and point your editor's
    /// YAML plugin at it; docs/lab-format.md says how. With `--report`:
    /// the schema of report.json (docs/running.md).
    Schema(cli::explain::SchemaArgs),
    /// Render a run directory's report.html again from its report.json
    ///
    /// For a run made by an older labctl, or a page deleted: reads
    /// RUN_DIR/report.json (and the step files) and writes
    /// RUN_DIR/report.html, whose path it prints.
    Report(cli::report::Args),
    /// Create a lab's containers and veth links
    Deploy(cli::deploy::Args),
    /// Remove a lab, or every lab, and everything it created
    Destroy(cli::destroy::Args),
    /// Show deployed labs: nodes, state, pids, interfaces
    Inspect(cli::inspect::Args),
    /// Run a command in a node; exits with the command's exit code
    Exec(cli::exec::Args),
    /// Print a shell completion script
    ///
    /// bash: `labctl completions bash > /etc/bash_completion.d/labctl`;
    /// zsh: into a directory of your `fpath` as `_labctl`; fish:
    /// `labctl completions fish > ~/.config/fish/completions/labctl.fish`.
    Completions(cli::manual::CompletionsArgs),
    /// Print the man page (roff): `labctl man | man -l -`
    ///
    /// `labctl man run` prints labctl-run(1), the page of one command.
    Man(cli::manual::ManArgs),
    /// The wiring helper of a lab across hosts (labctl runs it in a
    /// container on each host; not for people)
    #[command(hide = true)]
    Wire,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Validate(args) => cli::explain::validate(args),
        Command::Graph(args) => cli::explain::graph(args),
        Command::Schema(args) => cli::explain::schema(args),
        Command::Report(args) => cli::report::run(args),
        Command::Deploy(args) => cli::deploy::run(args),
        Command::Destroy(args) => cli::destroy::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Exec(args) => cli::exec::run(args),
        Command::Completions(args) => cli::manual::completions(args, Cli::command()),
        Command::Man(args) => cli::manual::man(args, Cli::command()),
        Command::Wire => cli::wire::run(),
    };
    cli::finish(outcome)
}
