//! Running a lab's steps and checking what they print.
//!
//! [`engine`] runs the steps through a [`process::Launcher`] (the Docker
//! runtime in real runs, a fake in tests); [`check`] applies `expect`.

pub mod check;
pub mod engine;
pub mod process;
pub mod progress;

#[cfg(test)]
mod fake;
