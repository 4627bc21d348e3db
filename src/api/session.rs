//! How a lab instance comes up and goes down, for `labctl run` (the
//! lifecycle) and [`super::RunningLab`] alike: one deploy, one teardown,
//! one wording for an instance that is up already. Generic over the
//! [`Runtime`] seams, so the lifecycle's unit tests drive it with fakes.

use crate::lab::Lab;
use crate::runtime::names::{Instance, Scope};
use crate::runtime::{
    deploy, teardown, DeployError, DeployOptions, DeployOutcome, DeployedLab, Interrupts, Progress,
    Removed, Runtime,
};

/// Why an instance did not come up.
#[derive(Debug)]
pub enum UpError {
    /// An instance of that name is up already, with every node running:
    /// never reused silently. The message says what to do.
    AlreadyUp(String),
    /// The deploy failed (or was interrupted) and rolled back.
    Failed(DeployError),
}

/// Deploys `lab` as `instance` on `runtime`; Ctrl-C on `interrupts` rolls
/// the deploy back.
pub async fn bring_up<R: Runtime>(
    runtime: &R,
    lab: &Lab,
    instance: &Instance,
    interrupts: &Interrupts,
    progress: &dyn Progress,
) -> Result<DeployedLab, UpError> {
    let options = DeployOptions {
        instance: Some(instance.clone()),
        interrupts: interrupts.clone(),
        ..Default::default()
    };
    match deploy::deploy(runtime.backend(), runtime.wiring(), lab, &options, progress).await {
        Ok(DeployOutcome::Deployed(deployed)) => Ok(deployed),
        // Its owner is gone (the deploy refuses one whose owner lives), so
        // removing it breaks nobody's run; but that is the user's call.
        Ok(DeployOutcome::AlreadyUp { instance, run, .. }) => Err(UpError::AlreadyUp(format!(
            "lab {instance} is already deployed (run {run}); remove it with `labctl destroy \
             {instance}` first, or run under another `--name`"
        ))),
        Err(failed) => Err(UpError::Failed(failed)),
    }
}

/// Removes every node of `instance` and what it left; runs to its end
/// whatever happens meanwhile.
pub async fn take_down<R: Runtime>(runtime: &R, instance: &Instance) -> Removed {
    teardown::teardown(
        runtime.backend(),
        runtime.wiring(),
        &Scope::Instance(instance.to_string()),
    )
    .await
}
