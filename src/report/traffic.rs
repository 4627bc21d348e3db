//! What lab-sink measured, read back from its `--json` output (the
//! `interval` and `summary` events of docs/tools.md) for report.json and
//! the page's plots. Read from the step's file in the run directory, line
//! by line: the whole output, however long, never more than a line in
//! memory; lines that are not such events are skipped.

use std::io::BufRead;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::run::result::{StepKind, StepResult};

/// One lab-sink step's measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SinkTraffic {
    /// The step that ran lab-sink.
    pub step: String,
    /// Its `interval` events, in order (at most [`MAX_INTERVALS`]).
    pub intervals: Vec<SinkInterval>,
    /// Intervals past [`MAX_INTERVALS`], left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub intervals_left_out: u64,
    /// Its `summary` event, if it printed one.
    pub summary: Option<SinkSummary>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An hour of 100 ms intervals: report.json stays bounded whatever the run.
pub const MAX_INTERVALS: usize = 36_000;

/// One `interval` event of lab-sink (docs/tools.md): milliseconds after
/// its ready line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SinkInterval {
    pub start_ms: f64,
    pub duration_ms: f64,
    pub received: u64,
    /// Frames per second.
    pub rate: f64,
    /// How much the lost count moved in it (may be negative).
    pub lost: i64,
    pub lost_total: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

impl SinkInterval {
    /// The share of frames of this interval known lost, in percent, within
    /// 0..=100 (a negative `lost`, late frames filling gaps, counts 0).
    pub fn loss_percent(&self) -> f64 {
        let lost = self.lost.max(0) as f64;
        let expected = lost + self.received as f64;
        if expected == 0.0 {
            0.0
        } else {
            100.0 * lost / expected
        }
    }
}

/// lab-sink's `summary` event, the figures the page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SinkSummary {
    pub received: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub rate: f64,
    pub latency_min_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// `[bound in ms, frames below it]`, doubling from 1 µs; absent from
    /// lab-sink before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_histogram: Vec<(f64, u64)>,
}

/// Whether `step` runs lab-sink with `--json`.
pub fn is_json_sink(step: &StepResult) -> bool {
    let runs_sink = step
        .argv
        .first()
        .is_some_and(|a| a == "lab-sink" || a.ends_with("/lab-sink"));
    runs_sink && step.kind != StepKind::Wait && step.argv.iter().skip(1).any(|a| a == "--json")
}

/// The measurements of every lab-sink `--json` step of `steps`, read from
/// their stdout files (`file_of(index)`: the step's file, if any).
pub fn of_steps(
    steps: &[StepResult],
    file_of: impl Fn(usize) -> Option<std::path::PathBuf>,
) -> Vec<SinkTraffic> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, step)| is_json_sink(step))
        .filter_map(|(index, step)| {
            let file = file_of(index)?;
            let traffic = read_file(&step.name, &file)?;
            (!traffic.intervals.is_empty() || traffic.summary.is_some()).then_some(traffic)
        })
        .collect()
}

fn read_file(step: &str, path: &Path) -> Option<SinkTraffic> {
    let file = std::fs::File::open(path).ok()?;
    Some(read(step, std::io::BufReader::new(file)))
}

/// The longest line looked at: an event is a few hundred bytes; a longer
/// line is not one, and is skipped without being kept.
const MAX_LINE: u64 = 64 * 1024;

/// The events of lab-sink's output `from`.
pub fn read(step: &str, mut from: impl BufRead) -> SinkTraffic {
    let mut traffic = SinkTraffic {
        step: step.to_owned(),
        intervals: Vec::new(),
        intervals_left_out: 0,
        summary: None,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = std::io::Read::take(&mut from, MAX_LINE)
            .read_until(b'\n', &mut line)
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && read as u64 == MAX_LINE {
            // Too long to be an event: skip to its end, keeping none of it.
            skip_line(&mut from);
            continue;
        }
        let Ok(event) = serde_json::from_slice::<Event>(&line) else {
            continue;
        };
        match event {
            Event::Interval(interval) if traffic.intervals.len() < MAX_INTERVALS => {
                traffic.intervals.push(interval)
            }
            Event::Interval(_) => traffic.intervals_left_out += 1,
            Event::Summary(summary) => traffic.summary = Some(summary),
            Event::Other => {}
        }
    }
    traffic
}

/// Consumes `from` up to the end of the current line.
fn skip_line(from: &mut impl BufRead) {
    loop {
        let (done, used) = match from.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => match memchr::memchr(b'\n', buf) {
                Some(at) => (true, at + 1),
                None => (false, buf.len()),
            },
        };
        from.consume(used);
        if done {
            return;
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Interval(SinkInterval),
    Summary(SinkSummary),
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::step;
    use crate::run::result::Status;

    const OUTPUT: &str = concat!(
        "{\"event\":\"ready\",\"iface\":\"eth1\",\"ip\":\"198.18.4.2\",\"mac\":\"02:00:00:00:00:01\",\"datalink\":\"af_packet\"}\n",
        "{\"event\":\"interval\",\"start_ms\":0.0,\"duration_ms\":100.0,\"received\":100,\"rate\":1000.0,\"lost\":0,\"lost_total\":0,\"duplicates\":0,\"reordered\":0,\"latency_p50_ms\":0.02,\"latency_p99_ms\":0.09,\"latency_max_ms\":0.4}\n",
        "not json \u{fffd} </script>\n",
        "{\"event\":\"interval\",\"start_ms\":100.0,\"duration_ms\":100.0,\"received\":0,\"rate\":0.0,\"lost\":0,\"lost_total\":0,\"duplicates\":0,\"reordered\":0,\"latency_p50_ms\":null,\"latency_p99_ms\":null,\"latency_max_ms\":null}\n",
        "{\"event\":\"interval\",\"start_ms\":200.0,\"duration_ms\":50.0,\"received\":50,\"rate\":1000.0,\"lost\":50,\"lost_total\":50,\"duplicates\":0,\"reordered\":0,\"latency_p50_ms\":0.03,\"latency_p99_ms\":0.1,\"latency_max_ms\":0.5}\n",
        "{\"event\":\"summary\",\"received\":150,\"lost\":50,\"loss_percent\":25.0,\"duplicates\":0,\"reordered\":0,\"rate\":1000.0,\"latency_min_ms\":0.01,\"latency_p50_ms\":0.02,\"latency_p99_ms\":0.1,\"latency_max_ms\":0.5,\"corrupted\":0,\"ignored\":0,\"arp_replies\":1,\"untracked\":0,\"dropped\":0,\"flows\":[]}\n",
    );

    #[test]
    fn the_intervals_and_summary_are_read_and_the_rest_skipped() {
        let traffic = read("sink", OUTPUT.as_bytes());
        assert_eq!(traffic.intervals.len(), 3);
        assert_eq!(traffic.intervals[2].lost, 50);
        assert_eq!(traffic.intervals[2].loss_percent(), 50.0);
        assert_eq!(traffic.intervals[1].loss_percent(), 0.0);
        assert_eq!(traffic.intervals[1].latency_p50_ms, None);
        let summary = traffic.summary.expect("summary");
        assert_eq!(summary.loss_percent, 25.0);
        assert_eq!(summary.latency_p99_ms, Some(0.1));
    }

    #[test]
    fn a_huge_line_is_skipped_and_the_events_after_it_kept() {
        let huge = format!("{}\n{OUTPUT}", "x".repeat(3 * MAX_LINE as usize));
        let traffic = read("sink", huge.as_bytes());
        assert_eq!(traffic.intervals.len(), 3);
        assert!(traffic.summary.is_some());
    }

    #[test]
    fn only_lab_sink_steps_with_json_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("01-sink.stdout");
        std::fs::write(&file, OUTPUT).unwrap();
        let mut sink = step("sink", Status::Passed);
        sink.argv = vec!["lab-sink".into(), "eth1".into(), "--json".into()];
        let mut human = step("human", Status::Passed);
        human.argv = vec!["lab-sink".into(), "eth1".into()];
        let ping = step("ping", Status::Passed);
        let found = of_steps(&[sink, human, ping], |_| Some(file.clone()));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].step, "sink");
        assert_eq!(found[0].intervals.len(), 3);
    }
}
