//! [`StepRunner`]: a lab's steps in order. Foreground commands to their
//! end, background commands until their `ready` line, `wait` to stop them
//! and check what they printed. Knows no runtime: commands start through a
//! [`Launcher`].

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::check::{evaluate_streams, StreamSource};
use super::output::{step_files, window_text};
use super::result::{Status, StepResult};
use super::running::{Captured, Collect, Running};
use crate::lab::{Action, LinkState, Step, Until};
use crate::runtime::process::{Launcher, Signal};

/// Told about steps as they start and end (progress display).
pub trait Observer: Send + Sync {
    fn step_started(&self, _index: usize, _step: &Step) {}
    fn step_finished(&self, _index: usize, _result: &StepResult) {}
}

/// An observer that says nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

#[derive(Clone, Debug)]
pub struct StepOptions {
    /// Run the remaining steps after a failed one (default: skip them).
    pub keep_going: bool,
    /// How long a process gets to exit after SIGINT before SIGKILL, when
    /// the run stops it (timeouts, end of run, Ctrl-C).
    pub stop_grace: Duration,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions {
            keep_going: false,
            stop_grace: Duration::from_secs(3),
        }
    }
}

/// Runs steps through a launcher. `interrupt` is cancelled on the first
/// Ctrl-C (stop processes gracefully, skip what is left); `force` on the
/// second (stop without grace).
///
/// Each step's output goes to its files in `output_dir` as it comes
/// ([`step_files`]: `NN-name.stdout`, `.stderr`, raw bytes; for a step
/// with `until`, every try after a header line); memory keeps the end of
/// each stream, and the checks read the files.
pub struct StepRunner<'a> {
    launcher: &'a dyn Launcher,
    observer: &'a dyn Observer,
    options: StepOptions,
    interrupt: CancellationToken,
    force: CancellationToken,
    /// Every process started, so an interrupt can stop them all.
    started: Mutex<Vec<Running>>,
    output_dir: PathBuf,
    /// The first file of the output that could not be written, and how
    /// many more (a full disk fails them all the same way).
    write_errors: Mutex<(Option<String>, usize)>,
}

impl<'a> StepRunner<'a> {
    pub fn new(
        launcher: &'a dyn Launcher,
        observer: &'a dyn Observer,
        options: StepOptions,
        interrupt: CancellationToken,
        force: CancellationToken,
        output_dir: &Path,
    ) -> Self {
        StepRunner {
            launcher,
            observer,
            options,
            interrupt,
            force,
            started: Mutex::new(Vec::new()),
            output_dir: output_dir.to_owned(),
            write_errors: Mutex::new((None, 0)),
        }
    }

    /// The step files that could not be written, once [`StepRunner::run`]
    /// returned: one line (the first path and its cause, and how many more
    /// failed), or none.
    pub fn write_errors(&self) -> Option<String> {
        let errors = self.write_errors.lock().unwrap_or_else(|e| e.into_inner());
        let first = errors.0.clone()?;
        Some(match errors.1 {
            0 => first,
            n => format!(
                "{first} (and {n} more step output file{} not written)",
                if n == 1 { "" } else { "s" }
            ),
        })
    }

    fn write_error(&self, error: String) {
        let mut errors = self.write_errors.lock().unwrap_or_else(|e| e.into_inner());
        match &errors.0 {
            None => errors.0 = Some(error),
            Some(first) if *first == error => {}
            Some(_) => errors.1 += 1,
        }
    }

    /// Runs `steps` in order and returns one result per step. Every process
    /// it started has ended (or was killed) when this returns.
    pub async fn run(&self, steps: &[Step]) -> Vec<StepResult> {
        let mut results: Vec<StepResult> = steps.iter().map(StepResult::new).collect();
        let mut background: HashMap<String, (usize, Running)> = HashMap::new();
        let mut failed = false;
        let first_started = Instant::now();
        if let Err(e) = std::fs::create_dir_all(&self.output_dir) {
            self.write_error(format!("writing {}: {e}", self.output_dir.display()));
        }

        for (i, step) in steps.iter().enumerate() {
            if self.interrupt.is_cancelled() || (failed && !self.options.keep_going) {
                break;
            }
            self.observer.step_started(i, step);
            let started = Instant::now();
            let mut result = results[i].clone();
            result.start = Some(started - first_started);
            tokio::select! {
                () = self.step(i, step, &mut result, &mut background) => {}
                () = self.interrupt.cancelled() => {
                    result.status = Status::Interrupted;
                    result.error = Some("interrupted (Ctrl-C)".into());
                }
            }
            result.duration = started.elapsed();
            failed |= result.status == Status::Failed;
            self.observer.step_finished(i, &result);
            results[i] = result;
        }

        // Stop whatever still runs: background steps never waited for, and
        // on an interrupt the step that was running.
        let leftovers: Vec<Running> = self.lock_started().iter().cloned().collect();
        futures_util::future::join_all(
            leftovers
                .iter()
                .filter(|r| !r.ended())
                .map(|r| self.stop(r.clone())),
        )
        .await;
        // Background steps keep the end of their process's whole output.
        for (index, running) in background.values() {
            keep_output(&running.snapshot(), &mut results[*index]);
        }
        for running in &leftovers {
            if let Some(error) = running.snapshot().write_error {
                self.write_error(error);
            }
        }
        self.write_other_files(steps, &results, &background);
        results
    }

    /// The files of the steps whose output did not stream to their own:
    /// a wait step's are its process's (a hard link, or a copy), the rest
    /// (link-state steps, steps not run) hold what memory has.
    fn write_other_files(
        &self,
        steps: &[Step],
        results: &[StepResult],
        background: &HashMap<String, (usize, Running)>,
    ) {
        for (i, (step, result)) in steps.iter().zip(results).enumerate() {
            let ours = step_files(&self.output_dir, i, &step.name);
            let streamed = match &step.action {
                // The tries of a step with until wrote their headers there,
                // even if none started.
                Action::Exec { .. } if step.until.is_some() => true,
                Action::Exec { .. } => self.lock_started().iter().any(|r| r.files() == Some(&ours)),
                _ => false,
            };
            if streamed {
                continue;
            }
            let process = match &step.action {
                Action::Wait { step: target } => {
                    background.get(target).and_then(|(_, r)| r.files().cloned())
                }
                _ => None,
            };
            for (k, path) in ours.iter().enumerate() {
                let written = match &process {
                    Some(theirs) => {
                        let _ = std::fs::remove_file(path);
                        std::fs::hard_link(&theirs[k], path)
                            .or_else(|_| std::fs::copy(&theirs[k], path).map(|_| ()))
                    }
                    None => {
                        let text = if k == 0 {
                            &result.stdout
                        } else {
                            &result.stderr
                        };
                        std::fs::write(path, text.as_bytes())
                    }
                };
                if let Err(e) = written {
                    self.write_error(format!("writing {}: {e}", path.display()));
                }
            }
        }
    }

    fn lock_started(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn launch(
        &self,
        index: usize,
        step: &Step,
        node: &str,
        argv: &[String],
        ready: Option<&Regex>,
        append: bool,
    ) -> Result<Running, String> {
        let launched = self
            .launcher
            .launch(node, argv)
            .await
            .map_err(|e| e.to_string())?;
        let collect = Collect {
            files: Some(step_files(&self.output_dir, index, &step.name)),
            ready: ready.cloned(),
            append,
        };
        let running = Running::collect_with(launched, collect);
        self.lock_started().push(running.clone());
        Ok(running)
    }

    async fn step(
        &self,
        index: usize,
        step: &Step,
        result: &mut StepResult,
        background: &mut HashMap<String, (usize, Running)>,
    ) {
        match &step.action {
            Action::Exec {
                node,
                argv,
                background: false,
                ..
            } => self.foreground(index, step, node, argv, result).await,
            Action::Exec {
                node,
                argv,
                background: true,
                ready,
            } => {
                if let Some(running) = self
                    .start_background(index, step, node, argv, ready.as_ref(), result)
                    .await
                {
                    background.insert(step.name.clone(), (index, running));
                }
            }
            Action::Wait { step: target } => match background.get(target) {
                Some((_, running)) => self.wait(step, target, running.clone(), result).await,
                None => result.fail(format!(
                    "cannot wait for {target:?}: that background step did not start"
                )),
            },
            Action::Throughput(t) => self.throughput(step, t, result).await,
            Action::SetLink {
                node,
                interface,
                state,
            } => {
                let up = *state == LinkState::Up;
                let set = self.launcher.set_link(node, interface, up);
                match tokio::time::timeout(step.timeout, set).await {
                    Err(_) => result.fail(format!(
                        "setting {node}:{interface} {} timed out after {}",
                        state.as_str(),
                        humantime::format_duration(step.timeout)
                    )),
                    Ok(Err(e)) => result.fail(e.to_string()),
                    Ok(Ok(())) => {
                        result.stdout = format!("{node}:{interface} {}\n", state.as_str());
                        result.status = Status::Passed;
                    }
                }
            }
        }
    }

    async fn foreground(
        &self,
        index: usize,
        step: &Step,
        node: &str,
        argv: &[String],
        result: &mut StepResult,
    ) {
        match step.until {
            None => {
                self.run_once(index, step, node, argv, None, result).await;
            }
            Some(until) => self.until(index, step, node, argv, until, result).await,
        }
    }

    /// Runs a foreground command to its end, at most its timeout and, for
    /// a try of a step with `until`, not past `deadline`. The process, if
    /// it started.
    async fn run_once(
        &self,
        index: usize,
        step: &Step,
        node: &str,
        argv: &[String],
        deadline: Option<tokio::time::Instant>,
        result: &mut StepResult,
    ) -> Option<Running> {
        let mut running = match self
            .launch(index, step, node, argv, None, deadline.is_some())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                result.fail(e);
                return None;
            }
        };
        let timeout_at = tokio::time::Instant::now() + step.timeout;
        let cut_at = deadline.map_or(timeout_at, |d| d.min(timeout_at));
        let in_time = tokio::time::timeout_at(cut_at, running.ended_async())
            .await
            .is_ok();
        if !in_time {
            self.stop(running.clone()).await;
        }
        self.finish(step, &running, result).await;
        if !in_time && cut_at < timeout_at {
            result.fail("still running at the end of until and was stopped");
        } else if !in_time {
            result.fail(format!(
                "timed out after {} and was stopped",
                humantime::format_duration(step.timeout)
            ));
        }
        Some(running)
    }

    /// A step with `until`: tries until one passes, pausing `every` after
    /// each that did not. No try starts after the deadline and one still
    /// running then is stopped, so the step ends near `until` (plus the
    /// stop's grace at most). The result is the passing try's, or the
    /// last one's with the number of tries.
    async fn until(
        &self,
        index: usize,
        step: &Step,
        node: &str,
        argv: &[String],
        until: Until,
        result: &mut StepResult,
    ) {
        let started = tokio::time::Instant::now();
        let deadline = started + until.within;
        let mut previous: Option<Running> = None;
        let mut tries = 0u32;
        loop {
            tries += 1;
            // Set now, so an interrupted step says how far it got.
            result.tries = Some(tries);
            self.try_header(index, step, tries, started.elapsed());
            let mut attempt = result.clone();
            let running = self
                .run_once(index, step, node, argv, Some(deadline), &mut attempt)
                .await;
            // A try that did not start leaves the last one's files in place.
            if let Some(done) = running.and_then(|r| previous.replace(r)) {
                self.forget(&done);
            }
            if attempt.status == Status::Passed {
                *result = attempt;
                return;
            }
            let next = tokio::time::Instant::now() + until.every;
            if next >= deadline {
                let last = match attempt.error.take() {
                    Some(error) => error,
                    None if attempt.failures.len() == 1 => "1 check failed".to_owned(),
                    None => format!("{} checks failed", attempt.failures.len()),
                };
                *result = attempt;
                let tries = result.tries_text().unwrap_or_default();
                return result.fail(format!(
                    "did not pass within {}: {tries}; last try: {last}",
                    humantime::format_duration(until.within)
                ));
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// The line that starts try `n` in both of the step's files (the
    /// first truncates them): the tries follow each other there.
    fn try_header(&self, index: usize, step: &Step, n: u32, at: Duration) {
        let header = format!("--- labctl: try {n}, at {:.2}s ---\n", at.as_secs_f64());
        for path in step_files(&self.output_dir, index, &step.name) {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(n > 1)
                .truncate(n == 1)
                .open(&path)
                .and_then(|mut f| f.write_all(header.as_bytes()));
            if let Err(e) = written {
                self.write_error(format!("writing {}: {e}", path.display()));
            }
        }
    }

    /// Drops an ended try from the processes an interrupt would stop: a
    /// step that tries for hours keeps only its last try in memory.
    fn forget(&self, running: &Running) {
        if let Some(error) = running.write_error() {
            self.write_error(error);
        }
        self.lock_started().retain(|r| !r.same(running));
    }

    async fn start_background(
        &self,
        index: usize,
        step: &Step,
        node: &str,
        argv: &[String],
        ready: Option<&Regex>,
        result: &mut StepResult,
    ) -> Option<Running> {
        let mut running = match self.launch(index, step, node, argv, ready, false).await {
            Ok(r) => r,
            Err(e) => {
                result.fail(e);
                return None;
            }
        };
        let Some(ready) = ready else {
            result.status = Status::Passed;
            return Some(running);
        };
        let matched = tokio::time::timeout(step.timeout, running.ready()).await;
        keep_output(&running.snapshot(), result);
        match matched {
            Ok(true) => result.status = Status::Passed,
            Ok(false) => {
                let exit = running.control.exit_code().await.ok();
                result.exit = exit;
                result.fail(format!(
                    "ended before it was ready (exit code {}): no line matched '{}'",
                    exit.map_or("unknown".into(), |c| c.to_string()),
                    ready.as_str()
                ));
            }
            Err(_) => {
                self.stop(running.clone()).await;
                result.fail(format!(
                    "not ready within {}: no line matched '{}'",
                    humantime::format_duration(step.timeout),
                    ready.as_str()
                ));
            }
        }
        Some(running)
    }

    async fn wait(&self, step: &Step, target: &str, mut running: Running, result: &mut StepResult) {
        result.node = None;
        if !running.ended() {
            let _ = running.control.signal(Signal::Interrupt).await;
            let stopped = tokio::time::timeout(step.timeout, running.ended_async())
                .await
                .is_ok();
            if !stopped {
                self.kill(running.clone()).await;
                self.finish(step, &running, result).await;
                return result.fail(format!(
                    "{target:?} did not stop within {} of SIGINT and was killed",
                    humantime::format_duration(step.timeout)
                ));
            }
        }
        self.finish(step, &running, result).await;
    }

    /// Reads the exit code and output of an ended process and applies the
    /// step's checks.
    async fn finish(&self, step: &Step, running: &Running, result: &mut StepResult) {
        let out = running.snapshot();
        let exit = if out.ended {
            running.control.exit_code().await.ok()
        } else {
            None
        };
        keep_output(&out, result);
        // The checks read the whole output from the files (this try's part
        // of them); without them (they could not be written), what memory
        // kept.
        let files = running.files().filter(|_| out.write_error.is_none());
        let [stdout_start, stderr_start] = running.starts();
        let stdout = source(files, 0, stdout_start, &out.stdout, &result.stdout);
        let stderr = source(files, 1, stderr_start, &out.stderr, &result.stderr);
        let failures = evaluate_streams(&step.expect, exit, stdout, stderr);
        result.failures = failures;
        result.exit = exit;
        result.status = if result.failures.is_empty() {
            Status::Passed
        } else {
            Status::Failed
        };
    }

    /// SIGINT, a grace period, then SIGKILL. A second Ctrl-C cuts the grace.
    async fn stop(&self, mut running: Running) {
        if running.ended() {
            return;
        }
        let _ = running.control.signal(Signal::Interrupt).await;
        tokio::select! {
            r = tokio::time::timeout(self.options.stop_grace, running.ended_async()) => {
                if r.is_ok() { return; }
            }
            () = self.force.cancelled() => {}
        }
        self.kill(running).await;
    }

    async fn kill(&self, mut running: Running) {
        let _ = running.control.signal(Signal::Kill).await;
        let _ = tokio::time::timeout(self.options.stop_grace, running.ended_async()).await;
    }
}

/// Stream `k` of a process for the checks: its file from `start` on, or
/// when it has none (it could not be written) what memory kept.
fn source<'s>(
    files: Option<&[PathBuf; 2]>,
    k: usize,
    start: u64,
    kept: &'s [u8],
    tail: &'s str,
) -> StreamSource<'s> {
    let file = files.and_then(|f| {
        let mut file = std::fs::File::open(&f[k]).ok()?;
        file.seek(SeekFrom::Start(start)).ok()?;
        Some(file)
    });
    StreamSource {
        read: match file {
            Some(f) => Box::new(f),
            None => Box::new(kept),
        },
        tail,
    }
}

/// What memory kept of the output into `result`: the text and how much
/// of each stream's beginning it lacks.
fn keep_output(out: &Captured, result: &mut StepResult) {
    let (stdout, stdout_cut) = window_text(&out.stdout, out.stdout_cut);
    let (stderr, stderr_cut) = window_text(&out.stderr, out.stderr_cut);
    result.stdout = stdout;
    result.stderr = stderr;
    result.stdout_truncated_bytes = stdout_cut;
    result.stderr_truncated_bytes = stderr_cut;
}

#[cfg(test)]
mod tests;
mod throughput;
