//! Applying a step's `expect` to what the step printed, streaming: each
//! stream is read once, piece by piece (from the step's file), so a check
//! over 1 GB of output or one 200 MB line holds no more of it than
//! [`LINE_BYTES`].
//!
//! `match` (counts, bounds) looks at each line over its first
//! [`LINE_BYTES`]; `contains` at the whole stream, raw bytes, an
//! occurrence may span lines. The tails shown in failures come from the
//! window memory kept.

use std::io::Read;

use super::output::{Finder, LineSplitter, LINE_BYTES};
use super::result::{tail, ExpectedCheck, FailedCheck, TAIL_LINES};
use crate::lab::{Bounds, Check, Expect, Pattern};

/// What a finished step left behind, as text in memory (short outputs,
/// tests): the checks read these strings whole.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// `None` when the exit code could not be read (the process was lost).
    pub exit: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// One stream to check: where to read it whole, and the end of it that
/// failures show.
pub struct StreamSource<'a> {
    pub read: Box<dyn Read + 'a>,
    pub tail: &'a str,
}

/// Every check of `expect` that fails on `out`, in the order written.
pub fn evaluate(expect: &Expect, out: &StepOutput) -> Vec<FailedCheck> {
    evaluate_streams(
        expect,
        out.exit,
        StreamSource {
            read: Box::new(out.stdout.as_bytes()),
            tail: &out.stdout,
        },
        StreamSource {
            read: Box::new(out.stderr.as_bytes()),
            tail: &out.stderr,
        },
    )
}

/// Every check of `expect` that fails, reading each stream once. A stream
/// that cannot be read to its end is checked as far as it was read, and
/// the read error is one more failure.
pub fn evaluate_streams(
    expect: &Expect,
    exit: Option<i64>,
    stdout: StreamSource<'_>,
    stderr: StreamSource<'_>,
) -> Vec<FailedCheck> {
    let mut failures = Vec::new();
    if exit != Some(expect.exit) {
        failures.push(FailedCheck {
            check: "exit".into(),
            expected: format!("exit code {}", expect.exit),
            found: match exit {
                Some(code) => format!("exit code {code}"),
                None => "no exit code (the process was lost)".into(),
            },
            tail: Vec::new(),
        });
    }
    for (stream, source, checks) in [
        ("stdout", stdout, &expect.stdout),
        ("stderr", stderr, &expect.stderr),
    ] {
        if checks.is_empty() {
            continue;
        }
        failures.extend(check_stream(stream, source, checks));
    }
    failures
}

/// What one check has seen so far.
enum Seen {
    Match {
        matching: usize,
        /// The first line out of bounds, as (expected, found).
        out_of_bounds: Option<(String, String)>,
    },
    Contains(Finder),
}

fn check_stream(stream: &str, mut source: StreamSource<'_>, checks: &[Check]) -> Vec<FailedCheck> {
    let mut seen: Vec<Seen> = checks
        .iter()
        .map(|c| match &c.pattern {
            Pattern::Match(_) => Seen::Match {
                matching: 0,
                out_of_bounds: None,
            },
            Pattern::Contains(needle) => Seen::Contains(Finder::new(needle)),
        })
        .collect();
    let mut lines = LineSplitter::new(LINE_BYTES);
    let mut number = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut read_error = None;
    loop {
        match source.read.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                lines.feed(&buf[..n], &mut |line| {
                    see_lines(checks, &mut seen, &mut number, line)
                });
                for s in seen_contains(&mut seen) {
                    s.feed(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    lines.finish(&mut |line| see_lines(checks, &mut seen, &mut number, line));

    let mut failures: Vec<FailedCheck> = checks
        .iter()
        .zip(&seen)
        .filter_map(|(check, seen)| verdict(stream, check, seen, source.tail))
        .collect();
    if let Some(e) = read_error {
        failures.push(FailedCheck {
            check: format!("{stream} checks"),
            expected: format!("the whole {stream} to read"),
            found: format!("a read error: {e}"),
            tail: tail(source.tail, TAIL_LINES),
        });
    }
    failures
}

fn see_lines(checks: &[Check], seen: &mut [Seen], number: &mut usize, line: &[u8]) {
    *number += 1;
    let line = String::from_utf8_lossy(line);
    for (check, seen) in checks.iter().zip(seen.iter_mut()) {
        if let Pattern::Match(re) = &check.pattern {
            see_line(check, re, seen, &line, *number);
        }
    }
}

fn seen_contains(seen: &mut [Seen]) -> impl Iterator<Item = &mut Finder> {
    seen.iter_mut().filter_map(|s| match s {
        Seen::Contains(f) => Some(f),
        Seen::Match { .. } => None,
    })
}

fn see_line(check: &Check, re: &regex::Regex, seen: &mut Seen, line: &str, number: usize) {
    let Seen::Match {
        matching,
        out_of_bounds,
    } = seen
    else {
        return;
    };
    let Some(captures) = re.captures(line) else {
        return;
    };
    *matching += 1;
    let Some(bounds) = &check.bounds else {
        return;
    };
    if out_of_bounds.is_none() {
        *out_of_bounds = out_of_bound(&captures, bounds, line, number);
    }
}

/// `(expected, found)` when the line's number (the regex's first capture
/// group) is not within `bounds`.
fn out_of_bound(
    captures: &regex::Captures<'_>,
    bounds: &Bounds,
    line: &str,
    number: usize,
) -> Option<(String, String)> {
    let group = captures.get(1).map_or("", |m| m.as_str());
    let expected = format!("a number {bounds} in the first capture group");
    match group.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && bounds.admits(value) => None,
        Ok(value) => Some((
            expected,
            format!("{value} on line {number}: {}", clip(line)),
        )),
        Err(_) => Some((
            expected,
            format!("{group:?}, not a number, on line {number}: {}", clip(line)),
        )),
    }
}

fn verdict(stream: &str, check: &Check, seen: &Seen, tail_text: &str) -> Option<FailedCheck> {
    let (what, expected, found) = match (&check.pattern, seen) {
        (
            Pattern::Match(_),
            Seen::Match {
                matching,
                out_of_bounds,
            },
        ) => {
            let what = check_name(stream, check);
            // The first line out of bounds fails the check; no matching
            // line at all is left to the count rules.
            if let Some((expected, found)) = out_of_bounds.clone() {
                (what, expected, found)
            } else {
                match check.count {
                    Some(n) if *matching != n => (
                        what,
                        format!("exactly {n} matching line{}", plural(n)),
                        format!("{matching}"),
                    ),
                    None if *matching == 0 => (
                        what,
                        "at least one matching line".to_owned(),
                        "none".to_owned(),
                    ),
                    _ => return None,
                }
            }
        }
        (Pattern::Contains(_), Seen::Contains(finder)) => {
            if finder.found() {
                return None;
            }
            (
                check_name(stream, check),
                "the text in the output".to_owned(),
                "no occurrence".to_owned(),
            )
        }
        _ => return None,
    };
    Some(FailedCheck {
        check: what,
        expected,
        found,
        tail: tail(tail_text, TAIL_LINES),
    })
}

/// How reports name a check: `stdout match '^64 bytes'`, `stderr contains
/// "x"` (a failed check says the same, so the two can be matched).
pub fn check_name(stream: &str, check: &Check) -> String {
    match &check.pattern {
        Pattern::Match(re) => format!("{stream} match '{}'", re.as_str()),
        Pattern::Contains(needle) => format!("{stream} contains {needle:?}"),
    }
}

/// Every check of `expect`, each with what it expects, in the order they
/// are checked (the exit code first).
pub fn expected_checks(expect: &Expect) -> Vec<ExpectedCheck> {
    let mut all = vec![ExpectedCheck {
        check: "exit".into(),
        expected: format!("exit code {}", expect.exit),
    }];
    for (stream, checks) in [("stdout", &expect.stdout), ("stderr", &expect.stderr)] {
        for check in checks {
            let expected = match (&check.pattern, check.count, check.bounds) {
                (Pattern::Contains(_), _, _) => "the text in the output".to_owned(),
                (Pattern::Match(_), Some(n), _) => {
                    format!("exactly {n} matching line{}", plural(n))
                }
                (Pattern::Match(_), None, Some(bounds)) => {
                    format!("at least one matching line, each one's number {bounds}")
                }
                (Pattern::Match(_), None, None) => "at least one matching line".to_owned(),
            };
            all.push(ExpectedCheck {
                check: check_name(stream, check),
                expected,
            });
        }
    }
    all
}

/// A line as quoted in a failure: whole when short, cut on a char boundary.
fn clip(line: &str) -> String {
    const MAX: usize = 200;
    if line.len() <= MAX {
        return line.to_owned();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    fn matching(re: &str, count: Option<usize>) -> Check {
        Check {
            pattern: Pattern::Match(Regex::new(re).unwrap()),
            count,
            bounds: None,
        }
    }

    fn contains(s: &str) -> Check {
        Check {
            pattern: Pattern::Contains(s.into()),
            count: None,
            bounds: None,
        }
    }

    const PING: &str = "64 bytes from 198.18.0.2: icmp_seq=0 ttl=64 time=0.1 ms\n\
                        64 bytes from 198.18.0.2: icmp_seq=1 ttl=64 time=0.1 ms\n\
                        --- 198.18.0.2 ping statistics ---\n\
                        3 packets transmitted, 2 received, 33% packet loss\n";

    fn out(exit: i64, stdout: &str) -> StepOutput {
        StepOutput {
            exit: Some(exit),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn every_check_is_listed_under_the_name_its_failure_has() {
        let expect = Expect {
            exit: 0,
            stdout: vec![matching("^64 bytes", Some(3)), contains("never")],
            stderr: Vec::new(),
        };
        let all = expected_checks(&expect);
        let names: Vec<&str> = all.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(
            names,
            [
                "exit",
                "stdout match '^64 bytes'",
                "stdout contains \"never\""
            ]
        );
        assert_eq!(all[1].expected, "exactly 3 matching lines");
        let failed = evaluate(&expect, &out(1, "nothing\n"));
        assert_eq!(failed.len(), 3);
        for (failure, check) in failed.iter().zip(&all) {
            assert_eq!(failure.check, check.check);
        }
    }

    #[test]
    fn exit_code_is_checked_and_defaults_to_zero() {
        assert!(evaluate(&Expect::default(), &out(0, "")).is_empty());
        let f = evaluate(&Expect::default(), &out(1, ""));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].to_string(),
            "exit: expected exit code 0, found exit code 1"
        );
        let lost = evaluate(&Expect::default(), &StepOutput::default());
        assert!(lost[0].found.contains("lost"));
    }

    #[test]
    fn counted_match_needs_exactly_that_many_lines() {
        let expect = Expect {
            stdout: vec![matching(
                r"^64 bytes from 198\.18\.0\.2: icmp_seq=\d+ ",
                Some(3),
            )],
            ..Default::default()
        };
        let f = evaluate(&expect, &out(0, PING));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expected, "exactly 3 matching lines");
        assert_eq!(f[0].found, "2");
        assert_eq!(
            f[0].tail.last().unwrap(),
            "3 packets transmitted, 2 received, 33% packet loss"
        );

        let two = Expect {
            stdout: vec![matching(r"^64 bytes from", Some(2))],
            ..Default::default()
        };
        assert!(evaluate(&two, &out(0, PING)).is_empty());
    }

    #[test]
    fn uncounted_match_needs_one_line_and_anchors_apply_per_line() {
        let anchored = Expect {
            stdout: vec![matching(r"^--- 198\.18\.0\.2 ping statistics ---$", None)],
            ..Default::default()
        };
        assert!(evaluate(&anchored, &out(0, PING)).is_empty());
        let absent = Expect {
            stdout: vec![matching(r"DUP!", None)],
            ..Default::default()
        };
        let f = evaluate(&absent, &out(0, PING));
        assert_eq!(f[0].found, "none");
    }

    #[test]
    fn contains_looks_at_the_whole_output() {
        let expect = Expect {
            stdout: vec![contains("2 received"), contains("3 received")],
            ..Default::default()
        };
        let f = evaluate(&expect, &out(0, PING));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].check, "stdout contains \"3 received\"");
    }

    #[test]
    fn stderr_checks_read_stderr_only() {
        let expect = Expect {
            stderr: vec![contains("boom")],
            ..Default::default()
        };
        let mut o = out(0, "boom");
        assert_eq!(evaluate(&expect, &o).len(), 1);
        o.stderr = "boom\n".into();
        assert!(evaluate(&expect, &o).is_empty());
    }

    fn bounded(re: &str, at_least: Option<f64>, at_most: Option<f64>) -> Check {
        Check {
            pattern: Pattern::Match(Regex::new(re).unwrap()),
            count: None,
            bounds: Some(Bounds { at_least, at_most }),
        }
    }

    const SINK: &str = "receiving on eth1 (198.18.40.2, 02:00:00:00:40:02, af_packet)\n\
                        received 36000 frames, lost 4000 (10.00%), duplicates 0, reordered 0, 18000 frames/s\n";

    #[test]
    fn bounds_hold_on_the_first_capture_group() {
        let expect = Expect {
            stdout: vec![
                bounded(r"lost \d+ \(([0-9.]+)%\)", Some(5.0), Some(15.0)),
                bounded(r"^received ([0-9]+) frames", Some(30000.0), None),
            ],
            ..Default::default()
        };
        assert!(evaluate(&expect, &out(0, SINK)).is_empty());
    }

    #[test]
    fn a_number_out_of_bounds_names_the_line_the_number_and_the_bound() {
        let expect = Expect {
            stdout: vec![bounded(r"lost \d+ \(([0-9.]+)%\)", None, Some(0.5))],
            ..Default::default()
        };
        let f = evaluate(&expect, &out(0, SINK));
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].expected,
            "a number at most 0.5 in the first capture group"
        );
        assert!(
            f[0].found.starts_with("10 on line 2: received 36000"),
            "{}",
            f[0].found
        );
        let low = Expect {
            stdout: vec![bounded(r"([0-9]+) frames/s", Some(20000.0), None)],
            ..Default::default()
        };
        let f = evaluate(&low, &out(0, SINK));
        assert!(
            f[0].expected.contains("at least 20000"),
            "{}",
            f[0].expected
        );
        assert!(f[0].found.starts_with("18000 on line 2"), "{}", f[0].found);
    }

    #[test]
    fn a_capture_that_is_not_a_number_fails_and_no_match_fails() {
        let words = Expect {
            stdout: vec![bounded(r"^(received) ", Some(1.0), None)],
            ..Default::default()
        };
        let f = evaluate(&words, &out(0, SINK));
        assert!(f[0].found.contains("not a number"), "{}", f[0].found);
        let none = Expect {
            stdout: vec![bounded(r"^sent ([0-9]+)", Some(1.0), None)],
            ..Default::default()
        };
        let f = evaluate(&none, &out(0, SINK));
        assert_eq!(f[0].found, "none");
    }

    #[test]
    fn bounds_with_count_need_that_many_lines_in_bounds() {
        let mut check = bounded(r"^received ([0-9]+)", Some(1.0), None);
        check.count = Some(2);
        let expect = Expect {
            stdout: vec![check],
            ..Default::default()
        };
        let f = evaluate(&expect, &out(0, SINK));
        assert_eq!(f[0].expected, "exactly 2 matching lines");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..25).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text, TAIL_LINES);
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t[0], "line 15");
        assert_eq!(tail("", 3), Vec::<String>::new());
    }

    #[test]
    fn tail_cuts_a_huge_line_on_a_char_boundary() {
        let huge = "é".repeat(3 * super::super::result::TAIL_LINE_CHARS);
        let text = format!("first\n{huge}\nlast\n");
        let t = tail(&text, TAIL_LINES);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], "first");
        assert!(t[1].starts_with(&"é".repeat(512)), "{}", t[1]);
        assert!(t[1].ends_with("… [2048 more bytes cut]"), "{}", t[1]);
        assert!(t[1].chars().count() < 600);
        assert_eq!(t[2], "last");
    }
}
