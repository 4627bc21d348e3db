//! Progress on the console: a spinner on a terminal, plain lines otherwise
//! (CI logs, tests).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use labctl::runtime::Progress;

/// Whether progress may draw spinners: stderr is a terminal that is not
/// `TERM=dumb`, and `NO_COLOR` is not set (<https://no-color.org>; a
/// spinner's cursor movements are escape sequences too). Otherwise plain
/// lines. clap's help and errors follow `NO_COLOR` by themselves.
pub fn spinners() -> bool {
    use std::io::IsTerminal;
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal()
        && !set("NO_COLOR")
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

pub struct ConsoleProgress {
    spinner: Mutex<Option<ProgressBar>>,
    terminal: bool,
}

impl ConsoleProgress {
    pub fn new() -> Self {
        ConsoleProgress {
            spinner: Mutex::new(None),
            terminal: spinners(),
        }
    }
}

impl Progress for ConsoleProgress {
    fn building_image(&self, tag: &str) {
        if !self.terminal {
            eprintln!("labctl: building image {tag} (the packet tools changed or it is missing)");
            return;
        }
        let spinner = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {wide_msg}") {
            spinner.set_style(style);
        }
        spinner.set_prefix(format!("building {tag}"));
        spinner.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.spinner.lock() {
            *slot = Some(spinner);
        }
    }

    fn build_output(&self, line: &str) {
        match self.spinner.lock().ok().and_then(|s| s.clone()) {
            Some(spinner) => spinner.set_message(line.to_owned()),
            // In a log, the steps are enough; failures arrive as errors.
            None if line.starts_with("Step ") => eprintln!("  {line}"),
            None => {}
        }
    }

    fn image_built(&self, tag: &str, took: Duration) {
        if let Some(spinner) = self.spinner.lock().ok().and_then(|mut s| s.take()) {
            spinner.finish_and_clear();
        }
        eprintln!("labctl: built image {tag} in {:.1}s", took.as_secs_f64());
    }

    fn copying_evidence(&self) {
        eprintln!("labctl: copying the nodes' /lab/out into the run directory");
    }

    fn tearing_down(&self) {
        eprintln!("labctl: tearing the lab down");
    }
}
