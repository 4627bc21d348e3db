//! A unit test that cannot run on this host says so, as the integration
//! tests' `support::skip` does: written to the stderr handle itself
//! (libtest hides a passing test's `eprintln!`, not that), and a failure
//! under `LABCTL_REQUIRE_ALL=1`.

use std::io::Write;

/// Ends the calling test's checks as skipped for `reason`; the caller
/// returns right after.
pub(crate) fn skip(reason: &str) {
    assert!(
        std::env::var_os("LABCTL_REQUIRE_ALL").is_none_or(|v| v != "1"),
        "{reason} (LABCTL_REQUIRE_ALL=1 forbids a skip)"
    );
    let _ = writeln!(std::io::stderr().lock(), "skipped: {reason}");
}
