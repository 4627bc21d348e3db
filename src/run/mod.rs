//! Running a lab's steps and checking what they print; knows no runtime
//! (commands start through [`crate::runtime::process::Launcher`]).
//!
//! - [`steps`]: [`steps::StepRunner`], the steps in order: readiness,
//!   timeouts, waits, Ctrl-C.
//! - [`check`]: `expect` applied to what a step printed.
//! - [`result`]: what a step gave ([`result::StepResult`]), read by the
//!   reports.
//! - [`running`]: a started process whose output is collected as it comes.
//! - [`throughput`]: the RFC 2544 rate search of a throughput step, pure
//!   (the step runner drives it with real trials).

pub mod check;
pub mod output;
pub mod result;
pub mod running;
pub mod steps;
pub mod throughput;
