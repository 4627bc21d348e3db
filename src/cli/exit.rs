//! labctl's exit codes, all in one place (README.md and docs/running.md
//! list them; `labctl exec` exits with the command's own code instead).

use labctl::report::Outcome;

/// Success; `labctl run`: every step passed.
pub const SUCCESS: u8 = 0;
/// `labctl run`: a step failed its checks, or a node's own command ended
/// with a failure before the steps ended.
pub const CHECK_FAILED: u8 = 1;
/// An invalid lab file or bad usage (including a lab or node that is not
/// deployed).
pub const USAGE: u8 = 2;
/// The lab could not be built or torn down (Docker, netlink, image), or
/// the run's files could not be written.
pub const RUNTIME: u8 = 3;
/// labctl cannot build labs here, as it runs or as it is installed: not
/// root (or without CAP_NET_ADMIN and CAP_SYS_ADMIN), a lab an ordinary
/// user cannot run rootless (af_xdp, `loss`, netmap without
/// `/dev/netmap`, Docker), or packet tools that are not statically linked.
/// Nothing was created.
pub const SETUP: u8 = 4;
/// Interrupted by Ctrl-C or SIGTERM (after rolling back or tearing down).
pub const INTERRUPTED: u8 = 130;

/// The exit code of a `labctl run` that ended with `outcome`.
pub fn of_run(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Passed => SUCCESS,
        Outcome::Failed => CHECK_FAILED,
        Outcome::Error => RUNTIME,
        Outcome::Interrupted => INTERRUPTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_exits_by_its_outcome() {
        assert_eq!(of_run(Outcome::Passed), 0);
        assert_eq!(of_run(Outcome::Failed), 1);
        assert_eq!(of_run(Outcome::Error), 3);
        assert_eq!(of_run(Outcome::Interrupted), 130);
    }
}
