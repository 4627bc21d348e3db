//! The lab file: any bytes → load → validate. Never a panic; every error
//! positioned, on one line; a valid lab also draws. Time and memory per
//! input are bounded by libFuzzer (-timeout, -rss_limit_mb: ci/fuzz).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let file = Path::new("fuzz.yaml");
    match labctl::lab::parse_bytes(bytes, file) {
        Ok(lab) => {
            let _ = labctl::lab::graph::dot(&lab);
        }
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "an error without a problem");
            for problem in &errors.problems {
                assert!(
                    problem.line >= 1 && problem.column >= 1,
                    "a problem without a position: {problem:?}"
                );
                assert!(
                    !problem.message.contains('\n') && !problem.message.is_empty(),
                    "a problem that is not one line: {problem:?}"
                );
            }
            // Printing every problem must not fail either.
            let _ = errors.to_string();
        }
    }
});
