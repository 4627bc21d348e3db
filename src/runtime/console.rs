//! A node's console: the output of its own image's command, and what
//! lab-init says there about that command. lab-init writes the lines
//! (`src/bin/lab-init.rs`, through `#[path]`: std and libc only, like
//! lab-init itself), labctl reads them back after the steps to learn how
//! the command ended, so the two cannot drift.
//!
//! lab-init's arguments are `[--user USER] -- ARGV...`: the command, if
//! the node runs one, and the image's USER to run it as.

use std::fmt;

/// The start of every line lab-init writes to its stderr.
pub const PREFIX: &str = "lab-init: ";

/// The separator before the command in lab-init's arguments.
pub const COMMAND_SEPARATOR: &str = "--";

/// lab-init's option before the separator: run the command as this user.
pub const USER_OPTION: &str = "--user";

/// lab-init's arguments for running `argv` as `user` (nothing when
/// `argv` is empty).
pub fn init_args(argv: &[String], user: Option<&str>) -> Vec<String> {
    if argv.is_empty() {
        return Vec::new();
    }
    let user = user
        .into_iter()
        .flat_map(|u| [USER_OPTION.to_owned(), u.to_owned()]);
    user.chain(std::iter::once(COMMAND_SEPARATOR.to_owned()))
        .chain(argv.iter().cloned())
        .collect()
}

/// The command in lab-init's arguments `args`: what follows the first
/// `--`; empty when there is none.
pub fn command_of<T: PartialEq<str>>(args: &[T]) -> &[T] {
    match args.iter().position(|a| a == COMMAND_SEPARATOR) {
        Some(i) => &args[i + 1..],
        None => &[],
    }
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Killed(i32),
}

const EXITED: &str = " exited with status ";
const KILLED: &str = " killed by signal ";
const FORWARDING: &str = "forwarding signal ";

impl Ending {
    /// From a `waitpid` status; `None` for a stop or a continue.
    pub fn of_wait_status(status: i32) -> Option<Ending> {
        if libc::WIFEXITED(status) {
            Some(Ending::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Ending::Killed(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    pub fn is_success(self) -> bool {
        self == Ending::Exited(0)
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "{}{code}", EXITED.trim_start()),
            Ending::Killed(signal) => write!(f, "{}{signal}", KILLED.trim_start()),
        }
    }
}

/// `argv` as one line a reader can paste into a shell: arguments with
/// spaces or quotes in single quotes.
pub fn shown(argv: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            let a = a.as_ref();
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a.to_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// lab-init's last line about the command: `lab-init: CMD exited with
/// status N` or `... killed by signal S`.
pub fn ended_line(command: &str, ending: Ending) -> String {
    format!("{PREFIX}{command} {ending}")
}

/// lab-init's line when it passes a stop signal on: what ends the command
/// after it is labctl's stop, not the command's own failure.
pub fn forwarding_line(command: &str, signal: i32) -> String {
    format!("{PREFIX}{FORWARDING}{signal} to {command}")
}

/// Reads a console's stderr line by line for lab-init's lines.
#[derive(Debug, Default)]
pub struct ConsoleWatch {
    stopping: bool,
    /// The first ending seen, and whether a stop signal came before it.
    ending: Option<(Ending, bool)>,
}

impl ConsoleWatch {
    pub fn line(&mut self, line: &str) {
        let Some(said) = line.trim_end().strip_prefix(PREFIX) else {
            return;
        };
        if said.starts_with(FORWARDING) {
            self.stopping = true;
            return;
        }
        if self.ending.is_some() {
            return;
        }
        let ending = if let Some((_, code)) = said.rsplit_once(EXITED) {
            code.parse().ok().map(Ending::Exited)
        } else if let Some((_, signal)) = said.rsplit_once(KILLED) {
            signal.parse().ok().map(Ending::Killed)
        } else {
            None
        };
        self.ending = ending.map(|e| (e, self.stopping));
    }

    /// How the command ended on its own, before any stop signal: `None`
    /// while it runs, or when it ended because it was told to stop.
    pub fn ended_by_itself(&self) -> Option<Ending> {
        self.ending
            .filter(|(_, after_stop)| !after_stop)
            .map(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(lines: &[String]) -> Option<Ending> {
        let mut w = ConsoleWatch::default();
        for line in lines {
            w.line(line);
        }
        w.ended_by_itself()
    }

    #[test]
    fn the_first_ending_before_any_stop_is_the_commands_own() {
        let cmd = shown(&["sh", "-c", "echo started; exit 3"]);
        assert_eq!(cmd, "sh -c 'echo started; exit 3'");
        let lines = [
            "started".to_owned(),
            ended_line(&cmd, Ending::Exited(3)),
            forwarding_line(&cmd, libc::SIGTERM),
        ];
        assert_eq!(
            lines[1],
            "lab-init: sh -c 'echo started; exit 3' exited with status 3"
        );
        assert_eq!(watch(&lines), Some(Ending::Exited(3)));
        let killed = [ended_line("my-lb", Ending::Killed(9))];
        assert_eq!(watch(&killed), Some(Ending::Killed(9)));
        assert_eq!(
            ended_line("my-lb", Ending::Killed(9)),
            "lab-init: my-lb killed by signal 9"
        );
    }

    #[test]
    fn an_ending_after_a_forwarded_stop_or_none_at_all_is_not_the_commands_own() {
        let stopped = [
            forwarding_line("my-lb", libc::SIGTERM),
            "stopping".to_owned(),
            ended_line("my-lb", Ending::Exited(143)),
        ];
        assert_eq!(watch(&stopped), None);
        assert_eq!(watch(&["started".to_owned()]), None);
        // Only lines that parse count.
        assert_eq!(
            watch(&["lab-init: my-lb exited with status x".to_owned()]),
            None
        );
    }

    #[test]
    fn wait_statuses_become_endings() {
        assert_eq!(Ending::of_wait_status(3 << 8), Some(Ending::Exited(3)));
        assert_eq!(Ending::of_wait_status(9), Some(Ending::Killed(9)));
        assert!(Ending::Exited(0).is_success());
        assert!(!Ending::Killed(15).is_success());
    }

    #[test]
    fn the_command_follows_the_separator_in_lab_inits_arguments() {
        let argv = vec!["my-lb".to_owned(), "--".to_owned()];
        let args = init_args(&argv, None);
        assert_eq!(args, ["--", "my-lb", "--"]);
        assert_eq!(command_of(&args), argv.as_slice());
        let args = init_args(&argv, Some("frr"));
        assert_eq!(args, ["--user", "frr", "--", "my-lb", "--"]);
        assert_eq!(command_of(&args), argv.as_slice());
        assert!(init_args(&[], Some("frr")).is_empty());
        assert!(command_of::<String>(&[]).is_empty());
    }
}
