//! The throughput search of RFC 2544 section 26.1, without any I/O: trials
//! at a fixed rate, a binary search between the highest rate that passed
//! and the lowest that did not, a final trial at the result.
//!
//! [`Search`] is a state machine: [`Search::next`] says which rate to try
//! (or that it is done), [`Search::record`] takes what the trial gave. The
//! step runner drives it with real trials (lab-gen and lab-sink through
//! the launcher, `steps/throughput.rs`); the tests drive it with fake
//! devices of known capacity. [`Outcome`] is one trial's accounting, and
//! the lines a throughput step prints are made here, so the same numbers
//! go to the output, report.json and junit.xml.

use crate::run::result::{Latency, RateKind, RateResult, Trial, TrialPurpose};

/// A trial counts only if at least this share of the frames the offered
/// rate asks for left the generator: below it, the generator (or its own
/// link) could not keep up, and the loss says nothing about the path.
pub const REACHED: f64 = 0.99;

/// The search stops once the highest passing rate is within this share of
/// the lowest failing one.
pub const RESOLUTION: f64 = 0.01;

/// The most trials one search runs (its final trial included); a search
/// from 10 million frames/s down to 1 % needs fewer than 15, so this
/// bounds a search that noise keeps sending back and forth.
pub const MAX_TRIALS: u32 = 24;

/// Below this rate (frames/s) nothing is searched: a path that loses at
/// such rates is broken, not slow.
pub const MIN_RATE: f64 = 10.0;

/// The latency is measured at these percentages of the NDR.
pub const LATENCY_AT: [u32; 3] = [10, 50, 90];

/// What one trial gave: the generator's count and time, and the sink's
/// count of this generator's frames (its session only: frames of an
/// earlier trial that arrive late are not this trial's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Frames that left the generator (its datalink took them).
    pub sent: u64,
    /// Frames the generator's own link refused (its queue full, or down):
    /// never offered to the path, so not its loss; they make the trial
    /// fall short of its rate instead.
    pub refused: u64,
    /// How long the generator took for them.
    pub seconds: f64,
    /// Distinct frames the sink counted (duplicates removed).
    pub received: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub latency: Option<Latency>,
}

impl Outcome {
    /// Frames per second that left the generator.
    pub fn achieved_rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.sent as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Frames sent that never arrived. A reordered frame arrived, so it
    /// is not lost; more received than sent (a duplicate the sink could
    /// not tell) is no loss either.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// `lost` over `sent`, 0 to 1 (0 when nothing was sent).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost() as f64 / self.sent as f64
        }
    }

    /// Whether the generator reached `offered` frames/s (an unpaced trial
    /// always did: it went as fast as it could).
    pub fn reached(&self, offered: Option<f64>) -> bool {
        offered.is_none_or(|rate| self.achieved_rate() >= rate * REACHED)
    }

    /// The trial as reports keep it, judged against `allowance` (a loss
    /// fraction).
    pub fn trial(&self, purpose: TrialPurpose, offered: Option<f64>, allowance: f64) -> Trial {
        let valid = self.reached(offered);
        Trial {
            purpose,
            offered_rate: offered,
            achieved_rate: self.achieved_rate().round(),
            sent: self.sent,
            refused: self.refused,
            received: self.received,
            lost: self.lost(),
            loss_percent: self.loss() * 100.0,
            reordered: self.reordered,
            duplicated: self.duplicated,
            latency: self.latency,
            valid,
            passed: valid && self.loss() <= allowance,
            note: (!valid).then(|| {
                let refused = match self.refused {
                    0 => String::new(),
                    n => format!(" ({n} frames refused by its own link)"),
                };
                format!(
                    "invalid: the generator reached {:.0} frames/s of the {:.0} offered{refused}, \
                     so its loss says nothing of the path (not counted)",
                    self.achieved_rate(),
                    offered.unwrap_or_default()
                )
            }),
        }
    }
}

/// What the search makes of a trial.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Lost at most the allowance; the loss fraction.
    Passed(f64),
    /// Lost more.
    Failed,
    /// The generator did not reach the rate: neither pass nor loss, but
    /// the rate is out of reach.
    Unreachable,
}

impl Verdict {
    pub fn of(trial: &Trial, allowance: f64) -> Verdict {
        if !trial.valid {
            Verdict::Unreachable
        } else if trial.loss_percent / 100.0 <= allowance {
            Verdict::Passed(trial.loss_percent / 100.0)
        } else {
            Verdict::Failed
        }
    }
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Run a trial at this many frames per second.
    Trial(f64),
    /// The search is over.
    Done(Found),
}

/// A search's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    /// The highest rate that passed (0: none did).
    pub rate: f64,
    /// The loss of the last trial at `rate`, 0 to 1.
    pub loss: f64,
    /// The trials the result rests on: those this search ran, and those
    /// of another search it took in.
    pub trials: u32,
    /// Narrowed to [`RESOLUTION`] (not cut short by [`MAX_TRIALS`]).
    pub converged: bool,
}

impl Found {
    pub fn result(&self, kind: RateKind, size: u32, extra_trials: u32) -> RateResult {
        RateResult {
            kind,
            size,
            rate: self.rate,
            mbit_per_s: mbit_per_s(self.rate, size),
            loss_percent: self.loss * 100.0,
            trials: self.trials + extra_trials,
            converged: self.converged,
        }
    }
}

/// Frames per second of `size` bytes as Mbit/s.
pub fn mbit_per_s(rate: f64, size: u32) -> f64 {
    rate * f64::from(size) * 8.0 / 1e6
}

/// One binary search for the highest rate whose trial loses at most an
/// allowance, between 0 and a ceiling (what the generator reaches).
#[derive(Clone, Debug)]
pub struct Search {
    allowance: f64,
    ceiling: f64,
    /// The highest rate that passed, and its loss; 0 when none did.
    pass: f64,
    pass_loss: f64,
    /// The lowest rate above `pass` that did not pass (failed, or out of
    /// reach); `None` while the ceiling itself is untried.
    fail: Option<f64>,
    /// Every rate that passed, so a final trial that fails falls back to
    /// the next one below.
    passes: Vec<(f64, f64)>,
    /// The last trial was at `pass` and passed: the result is confirmed.
    confirmed: bool,
    /// The highest rate the generator reached in a trial that counted.
    reached: f64,
    /// Trials run for this search (retries included).
    trials: u32,
    /// Trials of another search it took in ([`Search::learn`]).
    learned: u32,
}

impl Search {
    /// A search up to `ceiling` frames/s for a loss of at most `allowance`
    /// (a fraction).
    pub fn new(allowance: f64, ceiling: f64) -> Search {
        Search {
            allowance,
            ceiling: ceiling.floor(),
            pass: 0.0,
            pass_loss: 0.0,
            fail: None,
            passes: Vec::new(),
            confirmed: false,
            reached: 0.0,
            trials: 0,
            learned: 0,
        }
    }

    /// The allowance this search judges trials by.
    pub fn allowance(&self) -> f64 {
        self.allowance
    }

    /// What to do next: a trial at some rate, or the result.
    pub fn next(&self) -> Next {
        let done = |converged| {
            Next::Done(Found {
                rate: self.pass,
                loss: self.pass_loss,
                trials: self.trials + self.learned,
                converged,
            })
        };
        let Some(fail) = self.fail else {
            return if self.ceiling < MIN_RATE {
                done(true)
            } else {
                Next::Trial(self.ceiling)
            };
        };
        let narrow = fail - self.pass <= RESOLUTION * fail || fail < MIN_RATE;
        let mid = ((self.pass + fail) / 2.0).floor();
        if narrow || mid <= self.pass {
            if self.pass == 0.0 || self.confirmed {
                return done(true);
            }
            if self.trials >= MAX_TRIALS {
                return done(false);
            }
            // RFC 2544: the result is the rate of a trial that passed, run
            // once more at the end.
            return Next::Trial(self.pass);
        }
        if self.trials >= MAX_TRIALS {
            return done(false);
        }
        Next::Trial(mid)
    }

    /// Counts a trial that was run again (an invalid one, retried)
    /// without telling the search anything.
    pub fn retried(&mut self) {
        self.trials += 1;
    }

    /// Takes what a trial at `rate` gave.
    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        self.trials += 1;
        self.take(rate, verdict);
    }

    /// Takes what an earlier trial (another search's) says about `rate`:
    /// it counts among the trials the result rests on, not among the
    /// trials this search may run.
    pub fn learn(&mut self, rate: f64, verdict: Verdict) {
        self.learned += 1;
        self.take(rate, verdict);
    }

    fn take(&mut self, rate: f64, verdict: Verdict) {
        match verdict {
            // The generator reached this rate, or a higher one, before:
            // falling short now is the machine (a preempted generator),
            // not the rate, and says nothing of the path. The search asks
            // for the same rate again; its most trials bound that.
            Verdict::Unreachable if rate <= self.reached => return,
            Verdict::Passed(_) | Verdict::Failed => self.reached = self.reached.max(rate),
            Verdict::Unreachable => {}
        }
        match verdict {
            Verdict::Passed(loss) => {
                self.passes.push((rate, loss));
                if rate >= self.pass {
                    self.pass = rate;
                    self.pass_loss = loss;
                    self.confirmed = true;
                }
                if rate >= self.ceiling {
                    self.fail = Some(self.fail.map_or(rate, |f| f.max(rate)));
                }
            }
            Verdict::Failed | Verdict::Unreachable => {
                self.confirmed = false;
                self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
                if rate <= self.pass {
                    // The result did not hold: fall back to the highest
                    // rate below that passed, and search between.
                    self.passes.retain(|(r, _)| *r < rate);
                    let below = self.passes.iter().copied().fold((0.0, 0.0), |best, p| {
                        if p.0 > best.0 {
                            p
                        } else {
                            best
                        }
                    });
                    (self.pass, self.pass_loss) = below;
                }
            }
        }
    }
}

/// `ndr 64 bytes: 245000 frames/s, 125.4 Mbit/s, loss 0.000% (11 trials)`:
/// the line a check matches.
pub fn result_line(result: &RateResult) -> String {
    let mut line = format!(
        "{} {} bytes: {:.0} frames/s, {:.1} Mbit/s, loss {:.3}% ({} {})",
        result.kind.as_str(),
        result.size,
        result.rate,
        result.mbit_per_s,
        result.loss_percent,
        result.trials,
        if result.trials == 1 {
            "trial"
        } else {
            "trials"
        }
    );
    if !result.converged {
        line.push_str(&format!(
            "; not narrowed to {:.0}% within {MAX_TRIALS} trials",
            RESOLUTION * 100.0
        ));
    }
    line
}

/// One line per trial, before the results.
pub fn trial_line(n: usize, size: u32, trial: &Trial) -> String {
    let purpose = match trial.purpose {
        TrialPurpose::Ceiling => "ceiling",
        TrialPurpose::Ndr => "ndr",
        TrialPurpose::Pdr => "pdr",
        TrialPurpose::Latency => "latency",
    };
    let rate = match trial.offered_rate {
        Some(rate) => format!("{rate:.0} frames/s"),
        None => "unpaced".to_owned(),
    };
    let counts = format!(
        "sent {} ({:.0} frames/s), received {}, lost {} ({:.3}%), reordered {}, duplicated {}",
        trial.sent,
        trial.achieved_rate,
        trial.received,
        trial.lost,
        trial.loss_percent,
        trial.reordered,
        trial.duplicated
    );
    let verdict = match (&trial.note, trial.purpose, trial.passed) {
        (Some(note), _, _) => note.clone(),
        (None, TrialPurpose::Ceiling | TrialPurpose::Latency, _) => "measured".to_owned(),
        (None, _, true) => "pass".to_owned(),
        (None, _, false) => "fail".to_owned(),
    };
    format!("trial {n} ({size} bytes, {purpose}) at {rate}: {counts}: {verdict}")
}

/// `latency 64 bytes at 10% of ndr (24500 frames/s): p50 0.020 ms, ...`.
pub fn latency_line(size: u32, point: &crate::run::result::LatencyPoint) -> String {
    let figures = match &point.latency {
        None => "no frame arrived".to_owned(),
        Some(l) => format!(
            "p50 {:.3} ms, p99 {:.3} ms, p99.9 {} ms, max {:.3} ms",
            l.p50_ms,
            l.p99_ms,
            l.p99_9_ms.map_or("-".to_owned(), |p| format!("{p:.3}")),
            l.max_ms
        ),
    };
    format!(
        "latency {size} bytes at {}% of ndr ({:.0} frames/s): {figures}",
        point.percent_of_ndr, point.rate
    )
}

#[cfg(test)]
mod tests;
