//! A throughput step: the search of [`crate::run::throughput`] driven by
//! real trials. Each trial starts lab-sink on the step's `to`, runs lab-gen
//! on its `from` at one rate for the trial's length, lets the path settle
//! (frames still queued in a device arrive), stops the sink and reads both
//! tools' `--json` summaries. The processes go through the launcher and
//! into the runner's list of started processes, so Ctrl-C stops them as
//! any step's.

use std::time::Duration;

use serde::Deserialize;

use super::StepRunner;
use crate::lab::{Step, Throughput};
use crate::run::check::{evaluate, StepOutput};
use crate::run::result::{
    Latency, LatencyPoint, RateKind, SizeSearch, Status, StepResult, ThroughputReport, Trial,
    TrialPurpose,
};
use crate::run::running::{Collect, Running};
use crate::run::throughput::{
    latency_line, result_line, trial_line, Next, Outcome, Search, Verdict, LATENCY_AT,
};

/// Flows (source ports) of the generator: the sink counts sequence
/// numbers per flow, so loss is told from reordering even where a device
/// spreads flows over queues.
const FLOWS: u32 = 4;

/// How long the sink keeps counting after the generator ended: what a
/// device (or a rate limit's queue) still holds arrives, and is not lost.
/// RFC 2544 waits 2 s; a quarter of the trial, at least 100 ms, keeps a
/// search of short trials short.
fn settle(trial: Duration) -> Duration {
    (trial / 4).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

/// Why a trial could not be run: a tool that did not start, end, or say
/// what it counted. The search stops there; a slow path is never this.
#[derive(Debug, thiserror::Error)]
pub(super) enum TrialError {
    #[error("starting {tool} on {end}: {reason}")]
    Start {
        tool: &'static str,
        end: String,
        reason: String,
    },
    #[error("{tool} on {end} ended before it was ready{said}")]
    EndedEarly {
        tool: &'static str,
        end: String,
        said: String,
    },
    #[error("{tool} on {end} was not ready within {within} (the step's timeout)")]
    NotReady {
        tool: &'static str,
        end: String,
        within: String,
    },
    #[error("{tool} on {end} did not end within {within} and was stopped")]
    NoEnd {
        tool: &'static str,
        end: String,
        within: String,
    },
    #[error("{tool} on {end} exited {exit} without its summary{said}")]
    NoSummary {
        tool: &'static str,
        end: String,
        exit: String,
        said: String,
    },
    #[error(
        "no frame of the generator reached {to} in the unpaced trial of {size} bytes: the path \
         carries nothing (is the device under test running, and does it forward to {to}?)"
    )]
    NothingArrived { to: String, size: u32 },
}

/// lab-gen's `--json` events that a trial reads (docs/tools.md).
#[derive(Deserialize)]
struct GenStart {
    session: u32,
}

#[derive(Deserialize)]
struct GenSummary {
    sent: u64,
    /// Frames its own link refused (down, or a full queue).
    lost: u64,
    seconds: f64,
}

/// lab-sink's summary, with its flows.
#[derive(Deserialize)]
struct SinkSummary {
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    #[serde(default)]
    latency_p99_9_ms: Option<f64>,
    latency_max_ms: Option<f64>,
    flows: Vec<SinkFlow>,
}

#[derive(Deserialize)]
struct SinkFlow {
    session: u32,
    received: u64,
    duplicates: u64,
    reordered: u64,
}

/// The first line of `stdout` that is a JSON object with this `event`.
fn event<T: for<'de> Deserialize<'de>>(stdout: &[u8], name: &str) -> Option<T> {
    String::from_utf8_lossy(stdout).lines().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        if value.get("event")?.as_str()? != name {
            return None;
        }
        serde_json::from_value(value).ok()
    })
}

/// `: <the last line of stderr>`, or nothing.
fn said(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", crate::run::result::cap_line(l.trim())))
        .unwrap_or_default()
}

impl StepRunner<'_> {
    /// Runs the search for every size; the lines go to the step's stdout
    /// as they come, the numbers to `result.throughput`.
    pub(super) async fn throughput(&self, step: &Step, t: &Throughput, result: &mut StepResult) {
        result.throughput = Some(Box::new(ThroughputReport {
            from: t.from_label(),
            to: t.to_label(),
            trial_seconds: t.trial.as_secs_f64(),
            loss_percent: t.loss * 100.0,
            partial_percent: t.partial.map(|p| p * 100.0),
            sizes: Vec::new(),
        }));
        let mut trials = 0;
        for &size in &t.sizes {
            if let Err(e) = self.search_size(step, t, size, &mut trials, result).await {
                result.stdout.push_str(&format!("stopped: {e}\n"));
                return result.fail(format!("the throughput search stopped: {e}"));
            }
        }
        let failures = evaluate(
            &step.expect,
            &StepOutput {
                exit: Some(0),
                stdout: result.stdout.clone(),
                stderr: String::new(),
            },
        );
        result.exit = Some(0);
        result.status = if failures.is_empty() {
            Status::Passed
        } else {
            Status::Failed
        };
        result.failures = failures;
    }

    /// NDR (and PDR) at one size, then the latency at fractions of the NDR.
    async fn search_size(
        &self,
        step: &Step,
        t: &Throughput,
        size: u32,
        n: &mut usize,
        result: &mut StepResult,
    ) -> Result<(), TrialError> {
        let mut log = Log {
            size,
            at: result.throughput.as_ref().map_or(0, |r| r.sizes.len()),
            n,
            result,
        };
        if let Some(report) = log.result.throughput.as_mut() {
            report.sizes.push(SizeSearch {
                size,
                ..SizeSearch::default()
            });
        }

        // RFC 2544 starts at the most the path's medium takes; a veth has
        // no line rate, so it is what the generator reaches unpaced.
        let outcome = self.trial(step, t, size, None).await?;
        if outcome.received == 0 {
            return Err(TrialError::NothingArrived {
                to: t.to_label(),
                size,
            });
        }
        let ceiling = outcome.achieved_rate().floor();
        log.trial(outcome.trial(TrialPurpose::Ceiling, None, t.loss));
        if let Some(search) = log.search() {
            search.ceiling = ceiling;
        }

        let mut searched: Vec<(f64, Trial)> = Vec::new();
        let mut ndr = Search::new(t.loss, ceiling);
        let found = loop {
            match ndr.next() {
                Next::Done(found) => break found,
                Next::Trial(rate) => {
                    let trial = self
                        .paced(step, t, rate, TrialPurpose::Ndr, &mut ndr, &mut log)
                        .await?;
                    searched.push((rate, trial));
                }
            }
        };
        // The unpaced trial is one of the NDR's.
        let mut results = vec![found.result(RateKind::Ndr, size, 1)];

        if let Some(partial) = t.partial {
            // The NDR's trials already bracket the PDR: learn them.
            let mut pdr = Search::new(partial, ceiling);
            for (rate, trial) in &searched {
                pdr.learn(*rate, Verdict::of(trial, partial));
            }
            let found = loop {
                match pdr.next() {
                    Next::Done(found) => break found,
                    Next::Trial(rate) => {
                        self.paced(step, t, rate, TrialPurpose::Pdr, &mut pdr, &mut log)
                            .await?;
                    }
                }
            };
            results.push(found.result(RateKind::Pdr, size, 0));
        }

        let ndr_rate = results[0].rate;
        let mut points = Vec::new();
        if ndr_rate > 0.0 {
            for percent in LATENCY_AT {
                let rate = (ndr_rate * f64::from(percent) / 100.0).round().max(1.0);
                let outcome = self.trial(step, t, size, Some(rate)).await?;
                points.push(LatencyPoint {
                    percent_of_ndr: percent,
                    rate,
                    latency: outcome.latency,
                });
                log.trial(outcome.trial(TrialPurpose::Latency, Some(rate), t.loss));
            }
        }
        for r in &results {
            log.line(&result_line(r));
        }
        for point in &points {
            log.line(&latency_line(size, point));
        }
        if let Some(search) = log.search() {
            search.results = results;
            search.latency = points;
        }
        Ok(())
    }

    /// A trial of `search` at `rate`, recorded; an invalid one is run once
    /// more before the search takes the rate as out of reach (a generator
    /// preempted on a busy machine falls short once, not twice).
    async fn paced(
        &self,
        step: &Step,
        t: &Throughput,
        rate: f64,
        purpose: TrialPurpose,
        search: &mut Search,
        log: &mut Log<'_>,
    ) -> Result<Trial, TrialError> {
        let allowance = search.allowance();
        let mut trial =
            self.trial(step, t, log.size, Some(rate))
                .await?
                .trial(purpose, Some(rate), allowance);
        if !trial.valid {
            log.trial(trial);
            search.retried();
            trial = self.trial(step, t, log.size, Some(rate)).await?.trial(
                purpose,
                Some(rate),
                allowance,
            );
        }
        search.record(rate, Verdict::of(&trial, allowance));
        log.trial(trial.clone());
        Ok(trial)
    }

    /// One trial: `rate` frames/s (unpaced: `None`) of `size` bytes for
    /// the trial's length.
    async fn trial(
        &self,
        step: &Step,
        t: &Throughput,
        size: u32,
        rate: Option<f64>,
    ) -> Result<Outcome, TrialError> {
        let sink_argv: Vec<String> = [
            "lab-sink",
            &t.to.1,
            "--json",
            // One interval event at most: the summary is what counts.
            "--interval",
            "1h",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let sink = self
            .start_tool(
                "lab-sink",
                &t.to,
                &sink_argv,
                Some(("\"event\":\"ready\"", step.timeout)),
            )
            .await?;
        let generated = self.generate(step, t, size, rate).await;
        // Whatever happened, the sink is stopped before the next trial.
        self.stop(sink.clone()).await;
        self.forget(&sink);
        let gen = generated?;
        let sink_exit = sink.control.exit_code().await.ok();
        let out = sink.snapshot();
        let summary: SinkSummary =
            event(&out.stdout, "summary").ok_or_else(|| TrialError::NoSummary {
                tool: "lab-sink",
                end: t.to_label(),
                exit: sink_exit.map_or("unknown".into(), |c| c.to_string()),
                said: said(&out.stderr),
            })?;
        let ours = summary.flows.iter().filter(|f| f.session == gen.session);
        let (mut received, mut duplicated, mut reordered) = (0, 0, 0);
        for flow in ours {
            received += flow.received.saturating_sub(flow.duplicates);
            duplicated += flow.duplicates;
            reordered += flow.reordered;
        }
        let latency = match (
            summary.latency_p50_ms,
            summary.latency_p99_ms,
            summary.latency_max_ms,
        ) {
            (Some(p50_ms), Some(p99_ms), Some(max_ms)) => Some(Latency {
                p50_ms,
                p99_ms,
                p99_9_ms: summary.latency_p99_9_ms,
                max_ms,
            }),
            _ => None,
        };
        Ok(Outcome {
            sent: gen.sent,
            refused: gen.refused,
            seconds: gen.seconds,
            received,
            reordered,
            duplicated,
            latency,
        })
    }

    /// The generator's part of a trial, with the sink ready: its session,
    /// frames sent and refused, its time; then the settle time.
    async fn generate(
        &self,
        step: &Step,
        t: &Throughput,
        size: u32,
        rate: Option<f64>,
    ) -> Result<Generated, TrialError> {
        let mut argv: Vec<String> = vec![
            "lab-gen".into(),
            t.from.1.clone(),
            t.destination.to_string(),
            "--json".into(),
            "--size".into(),
            size.to_string(),
            "--flows".into(),
            FLOWS.to_string(),
            "--duration".into(),
            format!("{:.3}", t.trial.as_secs_f64()),
        ];
        if let Some(rate) = rate {
            argv.extend(["--rate".into(), format!("{rate:.0}")]);
        }
        let mut gen = self.start_tool("lab-gen", &t.from, &argv, None).await?;
        let within = t.trial + step.timeout;
        let ended = tokio::time::timeout(within, gen.ended_async())
            .await
            .is_ok();
        if !ended {
            self.stop(gen.clone()).await;
            self.forget(&gen);
            return Err(TrialError::NoEnd {
                tool: "lab-gen",
                end: t.from_label(),
                within: humantime::format_duration(within).to_string(),
            });
        }
        let exit = gen.control.exit_code().await.ok();
        self.forget(&gen);
        let out = gen.snapshot();
        let no_summary = || TrialError::NoSummary {
            tool: "lab-gen",
            end: t.from_label(),
            exit: exit.map_or("unknown".into(), |c| c.to_string()),
            said: said(&out.stderr),
        };
        let start: GenStart = event(&out.stdout, "start").ok_or_else(no_summary)?;
        let summary: GenSummary = event(&out.stdout, "summary").ok_or_else(no_summary)?;
        tokio::time::sleep(settle(t.trial)).await;
        Ok(Generated {
            session: start.session,
            sent: summary.sent,
            refused: summary.lost,
            seconds: summary.seconds,
        })
    }

    /// Starts `tool` on `end` (`(node, interface)`) and, with `ready`,
    /// waits at most that long for a line holding that text.
    async fn start_tool(
        &self,
        tool: &'static str,
        end: &(String, String),
        argv: &[String],
        ready: Option<(&str, Duration)>,
    ) -> Result<Running, TrialError> {
        let label = format!("{}:{}", end.0, end.1);
        let launched = self
            .launcher
            .launch(&end.0, argv)
            .await
            .map_err(|e| TrialError::Start {
                tool,
                end: label.clone(),
                reason: e.to_string(),
            })?;
        let collect = Collect {
            files: None,
            ready: ready.and_then(|(r, _)| regex::Regex::new(&regex::escape(r)).ok()),
            append: false,
        };
        let mut running = Running::collect_with(launched, collect);
        self.lock_started().push(running.clone());
        let Some((_, within)) = ready else {
            return Ok(running);
        };
        match tokio::time::timeout(within, running.ready()).await {
            Ok(true) => Ok(running),
            Ok(false) => {
                self.forget(&running);
                Err(TrialError::EndedEarly {
                    tool,
                    end: label,
                    said: said(&running.snapshot().stderr),
                })
            }
            Err(_) => {
                self.stop(running.clone()).await;
                self.forget(&running);
                Err(TrialError::NotReady {
                    tool,
                    end: label,
                    within: humantime::format_duration(within).to_string(),
                })
            }
        }
    }
}

/// Where a size's trials and lines go: the step's stdout as they come,
/// and its entry in the step's report.
struct Log<'r> {
    size: u32,
    /// The size's index in the report.
    at: usize,
    /// Trials so far in the step.
    n: &'r mut usize,
    result: &'r mut StepResult,
}

impl Log<'_> {
    fn line(&mut self, line: &str) {
        self.result.stdout.push_str(line);
        self.result.stdout.push('\n');
    }

    fn trial(&mut self, trial: Trial) {
        *self.n += 1;
        let line = trial_line(*self.n, self.size, &trial);
        self.line(&line);
        if let Some(search) = self.search() {
            search.trials.push(trial);
        }
    }

    fn search(&mut self) -> Option<&mut SizeSearch> {
        self.result
            .throughput
            .as_mut()
            .and_then(|r| r.sizes.get_mut(self.at))
    }
}

/// What the generator did in one trial.
struct Generated {
    session: u32,
    sent: u64,
    /// Refused by its own link.
    refused: u64,
    seconds: f64,
}
