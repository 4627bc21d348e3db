//! Connecting to the Docker daemon and agreeing on an API version.
//!
//! bollard speaks a recent API version by default and its own
//! `negotiate_version` asks `/v<that version>/version`, which a daemon
//! older than that refuses outright ("client version 1.53 is too new.
//! Maximum supported API version is 1.41", Debian's Docker 20.10). We read
//! the daemon's maximum from that refusal and reconnect at it; newer
//! daemons answer the first request and bollard lowers its version to
//! theirs if needed.

use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};

use crate::runtime::error::RuntimeError;

/// Where Docker listens when DOCKER_HOST is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Seconds bollard waits for a response's headers (not for a stream's end).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// The daemon labctl talks to: `$DOCKER_HOST`, else the local socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// Connects to the daemon at [`docker_host`] and settles the API version.
pub async fn connect() -> Result<Docker, RuntimeError> {
    let host = docker_host();
    connect_to(&host, None)
        .await
        .map_err(|cause| RuntimeError::Unreachable {
            host: host.clone(),
            cause: super::DockerError(cause),
        })
}

/// Connects to the daemon at `host` (`unix://`, `tcp://` (with TLS when
/// `tls` names a directory of ca.pem, cert.pem and key.pem, as
/// DOCKER_CERT_PATH), or `ssh://`, as the Docker CLI reaches it) and
/// settles the API version; the error is the daemon's or the transport's.
pub async fn connect_to(
    host: &str,
    tls: Option<&std::path::Path>,
) -> Result<Docker, bollard::errors::Error> {
    let docker = connect_at(host, tls, API_DEFAULT_VERSION)?;
    match docker.clone().negotiate_version().await {
        Ok(docker) => Ok(docker),
        Err(refusal) => {
            let Some(version) = daemon_maximum(&refusal) else {
                return Err(refusal);
            };
            let docker = connect_at(host, tls, &version)?;
            docker.version().await?;
            Ok(docker)
        }
    }
}

fn connect_at(
    host: &str,
    tls: Option<&std::path::Path>,
    version: &ClientVersion,
) -> Result<Docker, bollard::errors::Error> {
    if host.starts_with("unix://") {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version)
    } else if let (Some(dir), true) = (tls, host.starts_with("tcp://")) {
        Docker::connect_with_ssl(
            host,
            &dir.join("key.pem"),
            &dir.join("cert.pem"),
            &dir.join("ca.pem"),
            REQUEST_TIMEOUT_SECS,
            version,
        )
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version)
    } else if host.starts_with("ssh://") {
        Docker::connect_with_ssh(host, REQUEST_TIMEOUT_SECS, version, None)
    } else {
        // Other schemes keep bollard's own defaults.
        Docker::connect_with_defaults()
    }
}

/// The maximum API version a daemon names when it refuses a newer one.
fn daemon_maximum(refusal: &bollard::errors::Error) -> Option<ClientVersion> {
    let bollard::errors::Error::DockerResponseServerError { message, .. } = refusal else {
        return None;
    };
    parse_maximum(message)
}

fn parse_maximum(message: &str) -> Option<ClientVersion> {
    const MARKER: &str = "Maximum supported API version is ";
    let start = message.find(MARKER)? + MARKER.len();
    let version: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (major, minor) = version.trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_maximum_from_an_old_daemons_refusal() {
        let v =
            parse_maximum("client version 1.53 is too new. Maximum supported API version is 1.41")
                .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        let v = parse_maximum("... Maximum supported API version is 1.43.").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 43));
        assert!(parse_maximum("page not found").is_none());
        assert!(parse_maximum("Maximum supported API version is x").is_none());
    }
}
