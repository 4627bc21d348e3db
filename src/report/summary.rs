//! The summary printed at the end of a run.

use std::fmt::Write;

use super::junit::suite_name;
use super::wording::failure_message;
use super::{Outcome, RunEnd, RunReport};
use crate::run::result::Status;

/// A few lines per step (more for a failed one), then the totals, the
/// phases, what teardown removed and where the run directory is.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let width = report.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for step in &report.steps {
        let tag = match step.status {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Skipped => "SKIP",
            Status::Interrupted => "INTR",
        };
        let _ = write!(out, "  {tag}  {:width$}", step.name);
        if step.status != Status::Skipped {
            let _ = write!(out, "  {:>7.2}s", step.duration.as_secs_f64());
        }
        if let Some(tries) = step.tries_text() {
            let _ = write!(out, " ({tries})");
        }
        out.push('\n');
        // What a throughput step found is the point of running it: its
        // result lines, whatever its checks said.
        if let Some(throughput) = &step.throughput {
            for result in throughput.sizes.iter().flat_map(|s| &s.results) {
                let _ = writeln!(out, "        {}", result.line());
            }
        }
        if matches!(step.status, Status::Failed | Status::Interrupted) {
            for line in failure_message(step).lines() {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    for problem in &report.problems {
        let _ = writeln!(out, "  ERROR {problem}");
    }
    let _ = writeln!(
        out,
        "{}: {} steps, {} passed, {} failed, {} skipped in {:.2}s",
        report.lab,
        report.steps.len(),
        report.count(Status::Passed),
        report.count(Status::Failed) + report.count(Status::Interrupted),
        report.count(Status::Skipped),
        report.duration.as_secs_f64()
    );
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {:.2}s", p.name, p.duration.as_secs_f64()))
            .collect();
        let _ = writeln!(out, "phases: {}", phases.join(", "));
    }
    if !report.removed.is_empty() {
        let _ = writeln!(out, "removed: {}", report.removed.join(", "));
    }
    let _ = writeln!(out, "run directory: {}", report.run_dir.display());
    out
}

/// The summary of many runs in one call: the totals, then a line per lab
/// × datalink (its outcome, how long it took, its run directory, or why
/// it did not run).
pub fn summary_many(ends: &[RunEnd]) -> String {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut lines = String::new();
    for end in ends {
        match end {
            RunEnd::Ran(report) => {
                let tag = match report.outcome {
                    Outcome::Passed => "PASS",
                    Outcome::Failed => "FAIL",
                    Outcome::Interrupted => "INTR",
                    Outcome::Error => "ERROR",
                };
                if report.outcome == Outcome::Passed {
                    passed += 1;
                } else {
                    failed += 1;
                }
                let _ = writeln!(
                    lines,
                    "  {tag:<5} {}  {:.2}s  {}",
                    suite_name(&report.lab, report.datalink),
                    report.duration.as_secs_f64(),
                    report.run_dir.display()
                );
            }
            RunEnd::Failed { label, error } => {
                failed += 1;
                let _ = writeln!(lines, "  ERROR {label}  {error}");
            }
            RunEnd::NotRun(n) => {
                skipped += 1;
                let _ = writeln!(
                    lines,
                    "  SKIP  {}  {}",
                    suite_name(&n.lab, n.datalink),
                    n.reason
                );
            }
        }
    }
    format!(
        "labs: {} runs, {passed} passed, {failed} failed, {skipped} skipped\n{lines}",
        ends.len()
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{report, step};
    use super::*;

    #[test]
    fn summary_lists_steps_failures_and_totals() {
        let r = report(vec![
            step("pong", Status::Passed),
            step("ping", Status::Failed),
            step("later", Status::Skipped),
        ]);
        let text = summary(&r);
        assert!(text.contains("  PASS  pong      0.64s\n"), "{text}");
        assert!(text.contains("  FAIL  ping"), "{text}");
        assert!(
            text.contains("        stdout contains \"3 received\""),
            "{text}"
        );
        assert!(
            text.contains("          | 3 packets transmitted, 0 received, 100% packet loss\n"),
            "{text}"
        );
        assert!(text.contains("  SKIP  later\n"), "{text}");
        assert!(
            text.contains("icmp: 3 steps, 1 passed, 1 failed, 1 skipped in 3.00s"),
            "{text}"
        );
        assert!(
            text.contains("removed: container labctl-icmp-0a0b.pinger"),
            "{text}"
        );
        assert!(text.contains("run directory: runs/icmp-r1"), "{text}");
    }

    #[test]
    fn a_step_with_until_says_how_many_tries_it_took() {
        let mut converged = step("converged", Status::Passed);
        converged.tries = Some(5);
        let mut once = step("once", Status::Passed);
        once.tries = Some(1);
        let text = summary(&report(vec![
            converged,
            once,
            step("plain", Status::Passed),
        ]));
        assert!(
            text.contains("  PASS  converged     0.64s (5 tries)\n"),
            "{text}"
        );
        assert!(
            text.contains("  PASS  once          0.64s (1 try)\n"),
            "{text}"
        );
        assert!(text.contains("  PASS  plain         0.64s\n"), "{text}");
    }
}
