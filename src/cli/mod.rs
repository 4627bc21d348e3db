//! Handlers of the verbs (run, deploy, destroy, inspect, exec): they
//! parse what the user named, call [`labctl::runtime`], print, and pick the
//! exit code.
//!
//! The exit codes are in [`exit`].

#[cfg(test)]
mod commit;
pub mod deploy;
pub mod destroy;
pub mod exec;
pub mod exit;
pub mod explain;
mod files;
pub mod inspect;
pub mod manual;
mod progress;
pub mod report;
pub mod run;
mod steps;
pub mod wire;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use labctl::lab::{self, LoadError};
use labctl::runtime::registry::{self, AnyRuntime, Fallback};
use labctl::runtime::{names, Interrupts, RuntimeError, Timings};

/// A verb that failed: what to print and the exit code.
#[derive(Debug)]
pub struct CliError {
    code: u8,
    /// `None` when the problem was already printed (a lab file's problems,
    /// one `FILE:LINE:COL: message` line each).
    error: Option<anyhow::Error>,
}

impl CliError {
    /// A failure whose explanation is already on stderr.
    pub fn reported(code: u8) -> Self {
        CliError { code, error: None }
    }

    /// Prints the failure as one line (the whole cause chain), if it was
    /// not printed already.
    pub fn print(&self) {
        if let Some(error) = &self.error {
            eprintln!("labctl: {error:#}");
        }
    }

    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: exit::USAGE,
            error: Some(error.into()),
        }
    }

    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: exit::RUNTIME,
            error: Some(error.into()),
        }
    }

    /// Exit code by the kind of runtime error.
    pub fn from_runtime(error: RuntimeError) -> Self {
        let code = match error {
            RuntimeError::Interrupted => exit::INTERRUPTED,
            // Naming a lab or node that is not there is a usage error.
            RuntimeError::NotDeployed { .. }
            | RuntimeError::NoSuchNode { .. }
            | RuntimeError::Ambiguous { .. }
            | RuntimeError::Owned { .. }
            // A lab the runtime it was told to use cannot build.
            | RuntimeError::NetnsUnsupported { .. } => exit::USAGE,
            RuntimeError::NotPrivileged { .. }
            | RuntimeError::ToolsNotStatic { .. }
            | RuntimeError::NeedsRoot(_)
            | RuntimeError::Rootless(_)
            // A host the lab cannot use, found before anything was made.
            | RuntimeError::HostUnfit { .. } => exit::SETUP,
            _ => exit::RUNTIME,
        };
        CliError {
            code,
            error: Some(error.into()),
        }
    }
}

pub type VerbResult = Result<ExitCode, CliError>;

/// Prints a failure as one line (the whole cause chain) and returns the
/// exit code.
pub fn finish(outcome: VerbResult) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

/// Runs a verb's async body on a multi-threaded runtime (netlink
/// connections and Docker streams run as tasks beside it).
pub fn block_on<F: Future<Output = VerbResult>>(body: F) -> VerbResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CliError::runtime)?;
    runtime.block_on(body)
}

/// Loads and validates a lab file. An invalid file's problems are printed
/// at once, one `FILE:LINE:COL: message` line each, and nothing else
/// happens (exit 2).
pub fn load_lab(path: &Path) -> Result<lab::Lab, CliError> {
    lab::load(path).map_err(|e| match e {
        LoadError::Invalid(errors) => {
            eprintln!("{errors}");
            CliError::reported(exit::USAGE)
        }
        unreadable => CliError::usage(unreadable),
    })
}

/// What a LAB argument names: a file's lab `name` if the path exists
/// (read leniently, so an invalid or edited file can still be destroyed),
/// else the argument itself if it is a valid lab or instance name. The
/// runtime resolves it ([`labctl::runtime::Scope::Named`]): an instance of
/// that name, else the instances of the lab of that name.
pub fn lab_name(arg: &str) -> Result<String, CliError> {
    let path = Path::new(arg);
    if path.is_file() {
        return match lab::load(path) {
            Ok(lab) => Ok(lab.name().to_owned()),
            Err(_) => name_in_file(path),
        };
    }
    if names::is_valid_instance(arg) {
        Ok(arg.to_owned())
    } else {
        Err(CliError::usage(anyhow::anyhow!(
            "{arg:?} is neither a lab file nor a lab or instance name \
             ([a-z0-9][a-z0-9-]{{0,{}}})",
            names::INSTANCE_MAX - 1
        )))
    }
}

/// Parses `--name`.
pub fn instance_arg(name: &str) -> Result<names::Instance, String> {
    names::Instance::new(name).map_err(|e| e.to_string())
}

/// Reads only `name` from a lab file that does not validate: as YAML if
/// it still parses, else from a top-level `name:` line.
fn name_in_file(path: &Path) -> Result<String, CliError> {
    let bytes = lab::read_file(path).map_err(CliError::usage)?;
    let source = String::from_utf8_lossy(&bytes);
    lenient_name(&source).ok_or_else(|| {
        CliError::usage(anyhow::anyhow!(
            "{}: no valid lab `name` in this file; pass the lab's name instead",
            path.display()
        ))
    })
}

fn lenient_name(source: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct NameOnly {
        name: String,
    }
    let from_yaml = serde_saphyr::from_str::<NameOnly>(source)
        .ok()
        .map(|n| n.name);
    let from_line = || {
        source.lines().find_map(|line| {
            let value = line.strip_prefix("name:")?;
            let value = value.split(" #").next().unwrap_or(value).trim();
            Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
    };
    from_yaml
        .or_else(from_line)
        .filter(|n| lab::is_valid_name(n))
}

/// The runtime of a run or a deploy ([`registry::for_lab`]), saying so
/// when the embedded default chose it.
pub async fn runtime_for(
    labs: &[&lab::Lab],
    flag: Option<lab::RuntimeKind>,
    fallback: Fallback,
) -> Result<AnyRuntime, CliError> {
    let chosen = match labs {
        [lab] => registry::for_lab(lab, flag, fallback).await,
        labs => registry::for_labs(labs, flag, fallback).await,
    }
    .map_err(CliError::from_runtime)?;
    if let Some(note) = &chosen.note {
        eprintln!("labctl: {note}");
    }
    Ok(chosen.runtime)
}

/// The verbs that build, look into or remove labs check first that this
/// process may (exit 4 with one line, before anything is done).
pub fn check_privileges(verb: &'static str) -> Result<(), CliError> {
    labctl::runtime::check_host_privileges(verb).map_err(CliError::from_runtime)
}

/// What labctl says when a signal comes, by verb.
pub struct OnSignal {
    first: &'static str,
    /// `None`: the verb has no grace to cut, a second signal changes
    /// nothing.
    again: Option<&'static str>,
}

impl OnSignal {
    pub const RUN: OnSignal = OnSignal {
        first: "interrupted; stopping the steps and tearing the lab down (Ctrl-C again to stop \
                without grace)",
        again: Some("stopping now; tearing the lab down"),
    };
    pub const DEPLOY: OnSignal = OnSignal {
        first: "interrupted; removing what was created",
        again: None,
    };
}

/// The one place signals are caught: the first SIGINT or SIGTERM cancels
/// the returned [`Interrupts`]' `interrupt` (stop, tear down), the second
/// its `force` (no more grace). Teardown itself always runs to its end.
/// (`labctl exec` alone passes Ctrl-C on to its command instead.)
pub fn interrupts_on_signal(say: OnSignal) -> Interrupts {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupts = Interrupts::default();
    let watched = interrupts.clone();
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                eprintln!("labctl: {}", say.first);
                watched.interrupt.cancel();
            } else if let Some(again) = say.again {
                eprintln!("labctl: {again}");
                watched.force.cancel();
            }
        }
    });
    interrupts
}

/// `--timings`: one line per phase, on stderr (`node`: what the runtime
/// calls a node).
pub fn print_timings(timings: &Timings, node: &str) {
    for (phase, took) in timings {
        eprintln!(
            "timing: {:<10} {:>8.3}s",
            phase.name(node),
            took.as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_lab_file_still_names_its_lab() {
        assert_eq!(
            lenient_name("name: abc\nnodes: 12\n").as_deref(),
            Some("abc")
        );
        assert_eq!(
            lenient_name("nodes: [\nname: \"abc\"  # the lab\n").as_deref(),
            Some("abc")
        );
        assert_eq!(lenient_name("nodes: {}\n"), None);
        assert_eq!(lenient_name("name: Not_A_Name\n"), None);
    }

    #[test]
    fn lab_names_follow_the_format() {
        assert!(lab::is_valid_name("icmp") && lab::is_valid_name("a-1") && lab::is_valid_name("0"));
        assert!(
            !lab::is_valid_name("") && !lab::is_valid_name("-a") && !lab::is_valid_name("Icmp")
        );
        assert!(!lab::is_valid_name("labs/icmp.yaml") && !lab::is_valid_name(&"a".repeat(21)));
    }
}
