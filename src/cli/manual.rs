//! `labctl completions SHELL` and `labctl man [COMMAND]`: generated from
//! the clap definitions, so they always match the binary.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{CliError, VerbResult};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell)
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// A subcommand's own page (labctl-run(1), ...) instead of labctl(1)
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

/// What the EXIT STATUS section says (cli/exit.rs holds the codes).
const EXIT_STATUS: &[(u8, &str)] = &[
    (super::exit::SUCCESS, "every step passed, or the command succeeded"),
    (super::exit::CHECK_FAILED, "a step failed: a check did not hold, a timeout, a step that could not start"),
    (super::exit::USAGE, "the lab file is invalid or bad usage; nothing was created"),
    (super::exit::RUNTIME, "the lab could not be built or torn down (Docker, netlink, image, /dev/netmap), or the run's files could not be written"),
    (super::exit::SETUP, "labctl cannot build labs here: not root (or without CAP_NET_ADMIN and CAP_SYS_ADMIN), packet tools that are not statically linked, or a host of a lab across hosts that the lab cannot use; nothing was created"),
    (super::exit::INTERRUPTED, "interrupted by Ctrl-C or SIGTERM; the lab was torn down"),
];

pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> VerbResult {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "labctl", &mut out);
    print_bytes(&out)
}

pub fn man(args: ManArgs, command: clap::Command) -> VerbResult {
    let mut out = Vec::new();
    let page = |out: &mut Vec<u8>, man: clap_mangen::Man| {
        man.render(out).context("rendering the man page")
    };
    match &args.command {
        None => {
            page(&mut out, clap_mangen::Man::new(command.clone())).map_err(CliError::runtime)?;
            out.extend_from_slice(exit_status_roff().as_bytes());
        }
        Some(name) => {
            let Some(sub) = command.find_subcommand(name) else {
                let names: Vec<&str> = command
                    .get_subcommands()
                    .map(|s| s.get_name())
                    .filter(|n| *n != "help")
                    .collect();
                return Err(CliError::usage(anyhow::anyhow!(
                    "no command {name:?}; labctl's commands: {}",
                    names.join(", ")
                )));
            };
            // Named as its page (NAME: labctl-run), called as it is typed.
            let sub = sub
                .clone()
                .name(format!("labctl-{name}"))
                .bin_name(format!("labctl {name}"));
            let man = clap_mangen::Man::new(sub).source(env!("LABCTL_VERSION"));
            page(&mut out, man).map_err(CliError::runtime)?;
        }
    }
    print_bytes(&out)
}

/// The EXIT STATUS section in roff: plain words, no line starts with a
/// control character.
fn exit_status_roff() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_STATUS {
        roff.push_str(&format!(".TP\n{code}\n{meaning}\n"));
    }
    roff.push_str(
        ".PP\n`labctl exec` exits with the command's own exit code. See docs/running.md.\n",
    );
    roff
}

fn print_bytes(bytes: &[u8]) -> VerbResult {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `labctl completions bash | head`: a closed pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(CliError::runtime(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_is_in_the_man_page_and_no_line_is_a_stray_request() {
        let roff = exit_status_roff();
        for code in [0, 1, 2, 3, 4, 130] {
            assert!(roff.contains(&format!(".TP\n{code}\n")), "{code}: {roff}");
        }
        for line in roff.lines() {
            assert!(
                !line.starts_with('\'')
                    && (!line.starts_with('.')
                        || [".SH", ".TP", ".PP"].iter().any(|r| line.starts_with(r))),
                "{line}"
            );
        }
    }
}
