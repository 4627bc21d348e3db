//! `labctl wire` (hidden): the wiring helper's side of a lab across hosts.
//! labctl runs it in a short-lived container on a host it reaches only
//! through Docker (runtime/hosts/helper.rs); it reads the typed plan from
//! its environment, carries it out in the host's namespaces and prints the
//! outcomes as one JSON line. Not for people: it takes no arguments.

use std::process::ExitCode;

use anyhow::Context as _;
use labctl::runtime::hosts::plan::{self, Plan, PLAN_ENV};

use super::{block_on, exit, CliError, VerbResult};

pub fn run() -> VerbResult {
    let json = std::env::var(PLAN_ENV)
        .with_context(|| format!("reading the plan from {PLAN_ENV}"))
        .map_err(|e| CliError {
            code: exit::USAGE,
            error: Some(e),
        })?;
    let plan: Plan = serde_json::from_str(&json)
        .context("reading the wiring plan")
        .map_err(|e| CliError {
            code: exit::USAGE,
            error: Some(e),
        })?;
    block_on(async move {
        let report = plan::execute(&plan).await;
        let line = serde_json::to_string(&report).map_err(CliError::runtime)?;
        println!("{line}");
        Ok(match report.failure() {
            Some(_) => ExitCode::from(exit::RUNTIME),
            None => ExitCode::SUCCESS,
        })
    })
}
