//! JUnit XML, the format CI systems display: one test suite per run, one
//! test case per step (plus one for the lab itself when it could not be
//! built or torn down).

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::wording::failure_message;
use super::RunReport;
use crate::run::result::Status;

pub fn junit_xml(report: &RunReport) -> Result<String, quick_junit::SerializeError> {
    let mut junit = Report::new("labctl");
    junit.set_time(report.duration);
    junit.add_test_suite(suite(report));
    junit.to_string().map(strict)
}

/// The Jenkins xunit plugin's junit-10.xsd (a copy is in tests/) has no
/// `skipped` on `<testsuites>`, which quick-junit always writes: drop it
/// there (each `<testsuite>` keeps its own count).
fn strict(xml: String) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml;
    };
    let end = xml[start..].find('>').map_or(xml.len(), |e| start + e);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml;
    };
    let value_end = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |e| at + 10 + e + 1);
    format!("{}{}{}", &xml[..start + at], &tag[value_end..], &xml[end..])
}

/// The machine the run ran on, for `hostname` (Ant's JUnit schema has
/// it): the report's own, which a re-rendered old report may lack. Made
/// XML text: sethostname(2) takes any bytes (the `report` fuzz target
/// found a U+FFFE there).
fn hostname(report: &RunReport) -> String {
    if report.host.is_empty() {
        xml_text(&super::hostname())
    } else {
        xml_text(&report.host)
    }
}

/// A run that did not happen, and why (a netmap lab where /dev/netmap is
/// missing): a suite with one skipped case, never a pass.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NotRun {
    pub lab: String,
    pub datalink: Option<crate::lab::DatalinkKind>,
    pub reason: String,
}

/// One JUnit file for many runs (`labctl run A B --datalink x,y`): a
/// test suite per lab × datalink, in the order given.
pub fn junit_xml_many(
    reports: &[RunReport],
    not_run: &[NotRun],
) -> Result<String, quick_junit::SerializeError> {
    let mut junit = Report::new("labctl");
    junit.set_time(reports.iter().map(|r| r.duration).sum());
    for report in reports {
        junit.add_test_suite(suite(report));
    }
    for skipped in not_run {
        let mut suite = TestSuite::new(xml_text(&suite_name(&skipped.lab, skipped.datalink)));
        let mut status = TestCaseStatus::skipped();
        status.set_message(xml_text(&skipped.reason));
        let mut case = TestCase::new("lab", status);
        case.set_classname(xml_text(&skipped.lab));
        suite.add_test_case(case);
        junit.add_test_suite(suite);
    }
    junit.to_string().map(strict)
}

/// `labctl run icmp`, `labctl run icmp --datalink af_xdp`: unique per lab
/// × datalink in one file.
pub fn suite_name(lab: &str, datalink: Option<crate::lab::DatalinkKind>) -> String {
    match datalink {
        Some(d) => format!("labctl run {lab} --datalink {}", d.as_str()),
        None => format!("labctl run {lab}"),
    }
}

fn suite(report: &RunReport) -> TestSuite {
    let mut suite = TestSuite::new(xml_text(&suite_name(&report.lab, report.datalink)));
    suite.set_timestamp(chrono::DateTime::<chrono::Utc>::from(report.started));
    suite
        .extra
        .insert("hostname".into(), hostname(report).into());
    suite.set_time(report.duration);
    suite.add_property(quick_junit::Property::new(
        "lab-file",
        xml_text(&report.file.display().to_string()),
    ));
    suite.add_property(("run-id", xml_text(&report.run_id).as_str()));
    if let Some(datalink) = report.datalink {
        suite.add_property(("datalink", datalink.as_str()));
    }
    // junit-10.xsd has properties on the suite only: each throughput
    // result is four of them there, named after its step, so a CI plot
    // reads the numbers without parsing output.
    for step in &report.steps {
        for (name, value) in throughput_properties(step) {
            suite.add_property(quick_junit::Property::new(
                xml_text(&name),
                xml_text(&value),
            ));
        }
    }
    // CI systems that keep the run directory link the page from here.
    suite.add_property(quick_junit::Property::new(
        "report-html",
        xml_text(&report.run_dir.join(super::HTML_FILE).display().to_string()),
    ));

    // Every problem of the run in one case: CI shows the lab as one error.
    if let Some(first) = report.problems.first() {
        let all: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_type(problem_type(first.kind));
        status.set_message(first_line(&first.message));
        status.set_description(xml_text(&all.join("\n")));
        let mut case = TestCase::new("lab", status);
        case.set_classname(xml_text(&report.lab));
        suite.add_test_case(case);
    }

    for step in &report.steps {
        let status = match step.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("not run: an earlier step failed or the run stopped");
                s
            }
            Status::Failed | Status::Interrupted => {
                let kind = if step.status == Status::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let message = failure_message(step);
                let mut s = TestCaseStatus::non_success(kind);
                s.set_type(if step.status == Status::Failed {
                    "check"
                } else {
                    "interrupted"
                });
                s.set_message(first_line(&message));
                s.set_description(xml_text(&message));
                s
            }
        };
        let mut case = TestCase::new(xml_text(&step.name), status);
        case.set_classname(xml_text(&report.lab));
        case.set_time(step.duration);
        // The testcase of junit-10.xsd has no properties: the tries are
        // said where a reader of the output looks.
        match step.tries_text() {
            Some(tries) => {
                case.set_system_out(format!(
                    "[{tries}; the output is the last try's, every try's is in the run \
                     directory]\n{}",
                    output_text(&step.stdout, step.stdout_truncated_bytes)
                ));
            }
            None if !step.stdout.is_empty() => {
                case.set_system_out(output_text(&step.stdout, step.stdout_truncated_bytes));
            }
            None => {}
        }
        if !step.stderr.is_empty() {
            case.set_system_err(output_text(&step.stderr, step.stderr_truncated_bytes));
        }
        suite.add_test_case(case);
    }
    suite
}

/// `throughput.<step>.ndr.64.frames_per_s` = `245000`, and its
/// `mbit_per_s`, `loss_percent` and `trials`, for every result of a
/// throughput step (none for other steps).
pub(crate) fn throughput_properties(
    step: &crate::run::result::StepResult,
) -> Vec<(String, String)> {
    let Some(report) = &step.throughput else {
        return Vec::new();
    };
    let mut properties = Vec::new();
    for result in report.sizes.iter().flat_map(|s| &s.results) {
        let prefix = format!(
            "throughput.{}.{}.{}",
            step.name,
            result.kind.as_str(),
            result.size
        );
        properties.extend([
            (
                format!("{prefix}.frames_per_s"),
                format!("{:.0}", result.rate),
            ),
            (
                format!("{prefix}.mbit_per_s"),
                format!("{:.1}", result.mbit_per_s),
            ),
            (
                format!("{prefix}.loss_percent"),
                format!("{:.3}", result.loss_percent),
            ),
            (format!("{prefix}.trials"), result.trials.to_string()),
        ]);
    }
    properties
}

/// The failure `type` of the lab's own test case: the first problem's
/// kind, as in report.json.
fn problem_type(kind: crate::report::RunProblemKind) -> &'static str {
    use crate::report::RunProblemKind as K;
    match kind {
        K::Deploy => "deploy",
        K::Interrupted => "interrupted",
        K::Write => "write",
        K::Evidence => "evidence",
        K::Teardown => "teardown",
        K::NodeCommand => "node_command",
    }
}

fn first_line(text: &str) -> String {
    xml_text(text.lines().next().unwrap_or(""))
}

/// `text` with what XML 1.0 cannot hold (control characters other than
/// tab, newline and CR; U+FFFE and U+FFFF) replaced by U+FFFD: whatever a
/// step prints, junit.xml stays well-formed.
pub(crate) fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            _ => c,
        })
        .collect()
}

/// How much of a step's stdout or stderr junit.xml carries: the end of
/// it; the whole output is in the run directory.
pub(crate) const OUTPUT_BYTES: usize = 64 * 1024;

/// The end of a step's output, `cut` bytes of whose beginning memory
/// did not keep.
fn output_text(text: &str, cut: u64) -> String {
    if text.len() <= OUTPUT_BYTES && cut == 0 {
        return xml_text(text);
    }
    let mut start = text.len().saturating_sub(OUTPUT_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!(
        "[first {} bytes cut; the whole output is in the run directory]\n{}",
        start as u64 + cut,
        xml_text(&text[start..])
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{report, step};
    use super::super::{Outcome, RunProblem, RunProblemKind};
    use super::*;

    #[test]
    fn one_case_per_step_with_failures_and_output() {
        let r = report(vec![
            step("pong", Status::Passed),
            step("ping", Status::Failed),
            step("later", Status::Skipped),
        ]);
        let xml = junit_xml(&r).unwrap();
        assert!(xml.contains(r#"tests="3""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains(r#"skipped="1""#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="ping" classname="icmp" time="0.640">"#),
            "{xml}"
        );
        assert!(xml.contains("stdout contains &quot;3 received&quot;: expected the text in the output, found no occurrence"), "{xml}");
        assert!(
            xml.contains("<system-out>64 bytes from 198.18.0.2 &lt;&amp;&gt;"),
            "{xml}"
        );
        // CI systems that keep the run directory link the page from here.
        assert!(
            xml.contains(r#"<property name="report-html" value="runs/icmp-r1/report.html"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn the_tries_of_a_step_with_until_open_its_system_out() {
        let mut converged = step("converged", Status::Passed);
        converged.tries = Some(5);
        let xml = junit_xml(&report(vec![converged, step("plain", Status::Passed)])).unwrap();
        assert!(
            xml.contains(
                "<system-out>[5 tries; the output is the last try&apos;s, every try&apos;s is in \
                 the run directory]\n64 bytes from"
            ),
            "{xml}"
        );
        assert_eq!(xml.matches("tries;").count(), 1, "{xml}");
    }

    #[test]
    fn a_lab_that_could_not_be_built_is_an_error_case() {
        let mut r = report(Vec::new());
        r.problems = vec![RunProblem::new(
            RunProblemKind::Deploy,
            "creating container labctl-icmp-pinger: no such image",
        )];
        r.outcome = Outcome::Error;
        let xml = junit_xml(&r).unwrap();
        assert!(xml.contains(r#"errors="1""#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="lab" classname="icmp">"#),
            "{xml}"
        );
    }

    #[test]
    fn what_xml_forbids_never_reaches_the_report() {
        let mut bad = step("ping", Status::Failed);
        bad.stdout = "a\u{ffff}b\u{0}c\u{1b}[31m\u{fffe}\ttab\r\n".into();
        bad.stderr = "\u{7}bell".into();
        bad.error = Some("exit \u{1}".into());
        let xml = junit_xml(&report(vec![bad])).unwrap();
        let forbidden = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
        assert!(!xml.chars().any(forbidden), "{xml:?}");
        assert!(
            xml.contains("a\u{fffd}b\u{fffd}c\u{fffd}[31m\u{fffd}"),
            "{xml:?}"
        );
        assert!(xml.contains("\u{fffd}bell"), "{xml:?}");
    }

    #[test]
    fn a_huge_output_is_cut_in_the_report() {
        let mut big = step("ping", Status::Failed);
        big.stdout = format!("{}\nthe end\n", "x".repeat(10 * 1024 * 1024));
        let xml = junit_xml(&report(vec![big])).unwrap();
        assert!(xml.len() < 2 * OUTPUT_BYTES, "{}", xml.len());
        assert!(xml.contains("bytes cut; the whole output is in the run directory"));
        assert!(xml.contains("the end"));
    }

    #[test]
    fn output_memory_did_not_keep_is_counted_in_the_cut() {
        let mut cut = step("ping", Status::Passed);
        cut.stdout = "the end\n".into();
        cut.stdout_truncated_bytes = 200_000_000;
        let xml = junit_xml(&report(vec![cut])).unwrap();
        assert!(
            xml.contains(
                "[first 200000000 bytes cut; the whole output is in the run directory]\nthe end"
            ),
            "{xml}"
        );
    }
}

#[cfg(test)]
mod hostname_tests {
    use super::super::tests::report;
    use super::*;

    /// The `report` fuzz target's find: a host name with what XML 1.0
    /// cannot hold made junit.xml invalid.
    #[test]
    fn a_host_name_xml_cannot_hold_is_replaced_in_junit() {
        let mut run = report(Vec::new());
        run.host = "lab\u{fffe}host\u{1}".into();
        let xml = junit_xml(&run).unwrap();
        assert!(
            xml.contains("hostname=\"lab\u{fffd}host\u{fffd}\""),
            "{xml}"
        );
        assert!(!xml.contains('\u{fffe}'));
    }
}
