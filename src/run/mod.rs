//! Running a lab's steps and checking what they print.
//!
//! - [`runner`]: `labctl run` end to end: deploy, steps, evidence,
//!   teardown, reports.
//! - [`engine`]: the steps in order, through a [`process::Launcher`] (the
//!   Docker runtime in real runs, a scripted fake in tests).
//! - [`check`]: `expect` applied to what a step printed.
//! - [`docker`]: steps as `docker exec`, and each node's `/lab/out`.

pub mod check;
pub mod docker;
pub mod engine;
pub mod process;
pub mod runner;

#[cfg(test)]
mod fake;

pub use runner::{run_lab, Interrupts, RunOptions};
