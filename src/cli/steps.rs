//! Step progress while `labctl run` goes: each step's name and elapsed time. A
//! spinner on a terminal; plain lines otherwise (CI logs), with a "still
//! running" line every few seconds so a long step is visibly alive.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use labctl::lab::Step;
use labctl::run::result::{Status, StepResult};
use labctl::run::steps::Observer;

/// Shows progress on stderr.
pub struct StepProgress {
    total: usize,
    mode: Mode,
}

enum Mode {
    Terminal(Mutex<Option<ProgressBar>>),
    Plain {
        /// Index + 1 of the step running now, 0 when none: the ticker
        /// thread prints only while it is unchanged.
        current: Arc<AtomicUsize>,
        every: Duration,
    },
}

impl StepProgress {
    /// A spinner on a terminal ([`super::progress::spinners`]), plain
    /// lines otherwise.
    pub fn new(total: usize) -> StepProgress {
        if super::progress::spinners() {
            StepProgress {
                total,
                mode: Mode::Terminal(Mutex::new(None)),
            }
        } else {
            StepProgress::plain(total, Duration::from_secs(10))
        }
    }

    /// Plain lines, with a "still running" line every `every`.
    pub fn plain(total: usize, every: Duration) -> StepProgress {
        StepProgress {
            total,
            mode: Mode::Plain {
                current: Arc::new(AtomicUsize::new(0)),
                every,
            },
        }
    }

    fn label(&self, index: usize, name: &str) -> String {
        format!("[{}/{}] {name}", index + 1, self.total)
    }
}

/// The line printed when a step ends.
pub fn finished_line(label: &str, result: &StepResult) -> String {
    let verdict = match result.status {
        Status::Passed => "passed",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
        Status::Interrupted => "interrupted",
    };
    let tries = result
        .tries_text()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    format!(
        "{label}: {verdict} in {:.2}s{tries}",
        result.duration.as_secs_f64()
    )
}

impl Observer for StepProgress {
    fn step_started(&self, index: usize, step: &Step) {
        let label = self.label(index, &step.name);
        match &self.mode {
            Mode::Terminal(bar) => {
                let spinner = ProgressBar::new_spinner();
                spinner.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                spinner.set_message(label);
                spinner.enable_steady_tick(Duration::from_millis(100));
                *bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(spinner);
            }
            Mode::Plain { current, every } => {
                eprintln!("{label}: running");
                current.store(index + 1, Ordering::SeqCst);
                let (current, every) = (Arc::clone(current), *every);
                std::thread::spawn(move || {
                    let mut waited = Duration::ZERO;
                    loop {
                        std::thread::sleep(every);
                        waited += every;
                        if current.load(Ordering::SeqCst) != index + 1 {
                            return;
                        }
                        eprintln!("{label}: still running after {}s", waited.as_secs());
                    }
                });
            }
        }
    }

    fn step_finished(&self, index: usize, result: &StepResult) {
        let line = finished_line(&self.label(index, &result.name), result);
        match &self.mode {
            Mode::Terminal(bar) => {
                if let Some(spinner) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    spinner.finish_and_clear();
                }
                eprintln!("{line}");
            }
            Mode::Plain { current, .. } => {
                current.store(0, Ordering::SeqCst);
                eprintln!("{line}");
            }
        }
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use labctl::run::result::StepKind;

    use super::*;

    #[test]
    fn the_end_line_names_the_step_its_verdict_and_time() {
        let r = StepResult {
            name: "ping".into(),
            kind: StepKind::Foreground,
            node: None,
            argv: Vec::new(),
            status: Status::Failed,
            duration: Duration::from_millis(640),
            start: None,
            waits_for: None,
            link: None,
            exit: Some(1),
            checks: Vec::new(),
            failures: Vec::new(),
            error: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated_bytes: 0,
            stderr_truncated_bytes: 0,
            tries: None,
            throughput: None,
        };
        assert_eq!(
            finished_line("[2/5] ping", &r),
            "[2/5] ping: FAILED in 0.64s"
        );
    }
}
