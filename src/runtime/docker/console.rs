//! A node's console: its own image's command, stopped after the steps and
//! its output (the container's logs) streamed into the run directory,
//! where lab-init's last line says how it ended ([`crate::runtime::console`]).

use std::path::Path;

use bollard::container::LogOutput;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions, StopContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::is_not_found;
use crate::runtime::backend::KeptConsole;
use crate::runtime::console::{self, ConsoleWatch};
use crate::runtime::error::RuntimeError;

/// How long a command has to end after SIGTERM before Docker kills the
/// node: `docker stop`'s own default.
const STOP_GRACE_SECS: i32 = 10;

/// The longest stderr line read for lab-init's words; the file keeps
/// every byte whatever this is.
const LINE_BYTES: usize = 4096;

/// The command lab-init runs in `container` (its arguments after `--`),
/// and whether the container runs; `None` when it runs no command.
async fn command(
    docker: &Docker,
    container: &str,
) -> Result<Option<(Vec<String>, bool)>, RuntimeError> {
    let inspect = docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .map_err(RuntimeError::docker(format!(
            "inspecting container {container}"
        )))?;
    let args = inspect.config.and_then(|c| c.cmd).unwrap_or_default();
    let command = console::command_of(&args);
    if command.is_empty() {
        return Ok(None);
    }
    let running = inspect.state.and_then(|s| s.running).unwrap_or(false);
    Ok(Some((command.to_vec(), running)))
}

/// See [`crate::runtime::backend::Backend::stop_command`].
pub(super) async fn stop_command(docker: &Docker, container: &str) -> Result<(), RuntimeError> {
    match command(docker, container).await? {
        Some((_, true)) => {}
        _ => return Ok(()),
    }
    let options = StopContainerOptions {
        t: Some(STOP_GRACE_SECS),
        ..Default::default()
    };
    match docker.stop_container(container, Some(options)).await {
        Ok(()) => Ok(()),
        // Gone, or stopped meanwhile (304): nothing left to stop.
        Err(e) if is_not_found(&e) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(RuntimeError::docker(format!(
            "stopping the command of container {container}"
        ))(e)),
    }
}

/// See [`crate::runtime::backend::Backend::keep_console`].
pub(super) async fn keep_console(
    docker: &Docker,
    container: &str,
    dest: &Path,
) -> Result<Option<KeptConsole>, RuntimeError> {
    let Some((command, _)) = command(docker, container).await? else {
        return Ok(None);
    };
    let write = |cause| RuntimeError::Write {
        path: dest.to_owned(),
        cause,
    };
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|cause| RuntimeError::Write {
                path: parent.to_owned(),
                cause,
            })?;
    }
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(dest).await.map_err(write)?);
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = Box::pin(docker.logs(container, Some(options)));
    let mut watch = ConsoleWatch::default();
    let mut line = LineReader::default();
    while let Some(chunk) = logs.next().await {
        let chunk = chunk.map_err(RuntimeError::docker(format!(
            "reading the logs of container {container}"
        )))?;
        // lab-init speaks on stderr; a tty node has one stream only.
        let bytes = match &chunk {
            LogOutput::StdErr { message } | LogOutput::Console { message } => {
                line.feed(message, |l| watch.line(l));
                message
            }
            LogOutput::StdOut { message } | LogOutput::StdIn { message } => message,
        };
        file.write_all(bytes).await.map_err(write)?;
    }
    line.finish(|l| watch.line(l));
    file.flush().await.map_err(write)?;
    Ok(Some(KeptConsole {
        path: dest.to_owned(),
        command,
        ended: watch.ended_by_itself(),
    }))
}

/// Cuts a stream into lines, each at most [`LINE_BYTES`] (the rest of a
/// longer one is dropped): memory stays bounded whatever the command
/// prints.
#[derive(Default)]
struct LineReader {
    line: Vec<u8>,
}

impl LineReader {
    fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(&str)) {
        for part in bytes.split_inclusive(|b| *b == b'\n') {
            let room = LINE_BYTES.saturating_sub(self.line.len());
            let (text, ends) = match part.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (part, false),
            };
            self.line.extend_from_slice(&text[..text.len().min(room)]);
            if ends {
                each(&String::from_utf8_lossy(&self.line));
                self.line.clear();
            }
        }
    }

    fn finish(&mut self, mut each: impl FnMut(&str)) {
        if !self.line.is_empty() {
            each(&String::from_utf8_lossy(&self.line));
            self.line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_whole_across_chunks_and_long_ones_are_cut() {
        let mut reader = LineReader::default();
        let mut lines = Vec::new();
        reader.feed(b"lab-init: a ex", |l| lines.push(l.to_owned()));
        reader.feed(b"ited with status 3\nnext", |l| lines.push(l.to_owned()));
        assert_eq!(lines, ["lab-init: a exited with status 3"]);
        let long = vec![b'x'; LINE_BYTES * 3];
        reader.feed(&long, |l| lines.push(l.to_owned()));
        reader.feed(b"\n", |l| lines.push(l.to_owned()));
        assert_eq!(lines[1].len(), LINE_BYTES);
        assert!(lines[1].starts_with("nextxxx"));
        reader.feed(b"last", |l| lines.push(l.to_owned()));
        reader.finish(|l| lines.push(l.to_owned()));
        assert_eq!(lines[2], "last");
    }
}
