//! Docker's errors as the runtime's: the daemon's own error kept whole
//! as the cause (its chain, its status code), and the questions asked of
//! it, so that nothing outside `runtime/docker/` names bollard.

use std::fmt;

use crate::runtime::error::RuntimeError;

/// What the Docker daemon (or the connection to it) answered.
#[derive(Debug)]
pub struct DockerError(pub(crate) bollard::errors::Error);

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DockerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl RuntimeError {
    /// `doing` failed with Docker's `cause`.
    pub(crate) fn docker(doing: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let doing = doing.into();
        move |cause| RuntimeError::Docker {
            doing,
            cause: DockerError(cause),
        }
    }
}

/// Whether a Docker error means "no such object" (HTTP 404).
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
