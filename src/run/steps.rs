//! [`StepRunner`]: a lab's steps in order. Foreground commands to their
//! end, background commands until their `ready` line, `wait` to stop them
//! and check what they printed. Knows no runtime: commands start through a
//! [`Launcher`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::check::{evaluate, StepOutput};
use super::result::{Status, StepResult};
use super::running::{Captured, Running};
use crate::lab::{Action, LinkState, Step};
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
pub struct StepRunner<'a> {
    launcher: &'a dyn Launcher,
    observer: &'a dyn Observer,
    options: StepOptions,
    interrupt: CancellationToken,
    force: CancellationToken,
    /// Every process started, so an interrupt can stop them all.
    started: Mutex<Vec<Running>>,
}

impl<'a> StepRunner<'a> {
    pub fn new(
        launcher: &'a dyn Launcher,
        observer: &'a dyn Observer,
        options: StepOptions,
        interrupt: CancellationToken,
        force: CancellationToken,
    ) -> Self {
        StepRunner {
            launcher,
            observer,
            options,
            interrupt,
            force,
            started: Mutex::new(Vec::new()),
        }
    }

    /// Runs `steps` in order and returns one result per step. Every process
    /// it started has ended (or was killed) when this returns.
    pub async fn run(&self, steps: &[Step]) -> Vec<StepResult> {
        let mut results: Vec<StepResult> = steps.iter().map(StepResult::new).collect();
        let mut background: HashMap<String, (usize, Running)> = HashMap::new();
        let mut failed = false;

        for (i, step) in steps.iter().enumerate() {
            if self.interrupt.is_cancelled() || (failed && !self.options.keep_going) {
                break;
            }
            self.observer.step_started(i, step);
            let started = Instant::now();
            let mut result = results[i].clone();
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
        // Background steps keep the whole output of their process.
        for (index, running) in background.values() {
            let out = running.snapshot();
            results[*index].stdout = text(&out.stdout);
            results[*index].stderr = text(&out.stderr);
        }
        results
    }

    fn lock_started(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn launch(&self, node: &str, argv: &[String]) -> Result<Running, String> {
        let launched = self
            .launcher
            .launch(node, argv)
            .await
            .map_err(|e| e.to_string())?;
        let running = Running::collect(launched);
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
            } => self.foreground(step, node, argv, result).await,
            Action::Exec {
                node,
                argv,
                background: true,
                ready,
            } => {
                if let Some(running) = self
                    .start_background(step, node, argv, ready.as_ref(), result)
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

    async fn foreground(&self, step: &Step, node: &str, argv: &[String], result: &mut StepResult) {
        let mut running = match self.launch(node, argv).await {
            Ok(r) => r,
            Err(e) => return result.fail(e),
        };
        let in_time = tokio::time::timeout(step.timeout, running.ended_async())
            .await
            .is_ok();
        if !in_time {
            self.stop(running.clone()).await;
        }
        self.finish(step, &running, result).await;
        if !in_time {
            result.fail(format!(
                "timed out after {} and was stopped",
                humantime::format_duration(step.timeout)
            ));
        }
    }

    async fn start_background(
        &self,
        step: &Step,
        node: &str,
        argv: &[String],
        ready: Option<&Regex>,
        result: &mut StepResult,
    ) -> Option<Running> {
        let mut running = match self.launch(node, argv).await {
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
        let mut scan = ReadyScan::default();
        let matched =
            tokio::time::timeout(step.timeout, running.watch(|c| scan.find(ready, c))).await;
        let out = running.snapshot();
        result.stdout = text(&out.stdout);
        result.stderr = text(&out.stderr);
        match matched {
            Ok(Some(())) => result.status = Status::Passed,
            Ok(None) => {
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
        let output = StepOutput {
            exit,
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        };
        result.failures = evaluate(&step.expect, &output);
        result.exit = exit;
        result.stdout = output.stdout;
        result.stderr = output.stderr;
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

/// Looks for the `ready` regex in each line of stdout and stderr, reading
/// each complete line once however often the output grows (a chatty
/// process must not make readiness quadratic).
#[derive(Default)]
struct ReadyScan {
    stdout_done: usize,
    stderr_done: usize,
}

impl ReadyScan {
    fn find(&mut self, ready: &Regex, c: &Captured) -> Option<()> {
        let hit = scan(ready, &c.stdout, &mut self.stdout_done, c.ended)
            || scan(ready, &c.stderr, &mut self.stderr_done, c.ended);
        hit.then_some(())
    }
}

/// Matches the lines of `bytes[*done..]`; complete lines are marked done, a
/// partial last line is looked at again next time (or now, if the output
/// ended).
fn scan(ready: &Regex, bytes: &[u8], done: &mut usize, ended: bool) -> bool {
    let fresh = &bytes[*done..];
    let complete = match fresh.iter().rposition(|b| *b == b'\n') {
        Some(last_newline) => last_newline + 1,
        None => 0,
    };
    let text = String::from_utf8_lossy(&fresh[..complete]);
    if text.lines().any(|l| ready.is_match(l)) {
        return true;
    }
    *done += complete;
    let partial = String::from_utf8_lossy(&bytes[*done..]);
    (ended || !partial.is_empty()) && ready.is_match(&partial)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
