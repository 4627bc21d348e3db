//! The words the reports use for a step that did not pass.

use crate::run::result::{tail, StepResult, TAIL_LINES};

/// One line per problem, then the end of the output: what a report shows
/// for a failed or interrupted step.
pub(crate) fn failure_message(step: &StepResult) -> String {
    let mut lines: Vec<String> = Vec::new();
    lines.extend(step.error.clone());
    lines.extend(step.failures.iter().map(|f| f.to_string()));
    let shown_tail = step
        .failures
        .iter()
        .find(|f| !f.tail.is_empty())
        .map(|f| f.tail.clone())
        .unwrap_or_else(|| {
            let mut t = tail(&step.stdout, TAIL_LINES);
            t.extend(tail(&step.stderr, TAIL_LINES));
            t
        });
    if !shown_tail.is_empty() {
        lines.push(if step.truncated() {
            "last lines of output (memory kept only its end; the whole output is in the run \
             directory):"
                .into()
        } else {
            "last lines of output:".into()
        });
        lines.extend(shown_tail.iter().map(|l| format!("  | {l}")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::result::{FailedCheck, Status};

    #[test]
    fn a_failed_exit_shows_the_end_of_the_output() {
        let mut step = crate::report::tests::step("bad", Status::Failed);
        step.stdout = "oops\n".into();
        step.failures = vec![FailedCheck {
            check: "exit".into(),
            expected: "exit code 0".into(),
            found: "exit code 1".into(),
            tail: Vec::new(),
        }];
        let message = failure_message(&step);
        assert!(
            message.starts_with("exit: expected exit code 0, found exit code 1\n"),
            "{message}"
        );
        assert!(message.contains("  | oops"), "{message}");
    }

    #[test]
    fn a_truncated_output_says_its_tail_is_only_the_end() {
        let mut step = crate::report::tests::step("big", Status::Failed);
        step.stdout = "last line\n".into();
        step.stdout_truncated_bytes = 1 << 30;
        step.error = Some("timed out".into());
        step.failures.clear();
        let message = failure_message(&step);
        assert!(
            message.contains(
                "last lines of output (memory kept only its end; the whole output is in the run \
                 directory):\n  | last line"
            ),
            "{message}"
        );
    }
}
