//! The run's side of the Docker runtime: steps start as `docker exec` in
//! the lab's containers, and each node's `/lab/out` is copied into the run
//! directory at the end.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bollard::query_parameters::DownloadFromContainerOptions;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use super::process::{Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream};
use crate::runtime::{names, ExecHandle, ExecOutput, Runtime};

/// Where the tools write files a run keeps (pcaps, logs).
pub const NODE_OUT_DIR: &str = "/lab/out";

/// Starts steps in the nodes of one deployed lab.
pub struct DockerLauncher {
    runtime: Runtime,
    lab: String,
}

impl DockerLauncher {
    pub fn new(runtime: Runtime, lab: &str) -> Self {
        DockerLauncher {
            runtime,
            lab: lab.to_owned(),
        }
    }
}

impl Launcher for DockerLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        async move {
            let (handle, mut stream) =
                self.runtime
                    .exec(&self.lab, node, argv)
                    .await
                    .map_err(|e| ProcessError::Launch {
                        node: node.to_owned(),
                        argv: argv.to_vec(),
                        reason: e.to_string(),
                    })?;
            let (tx, output) = mpsc::channel(256);
            tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    let chunk = match item {
                        Ok(ExecOutput::Stdout(data)) => Chunk {
                            stream: Stream::Stdout,
                            data: data.to_vec(),
                        },
                        Ok(ExecOutput::Stderr(data)) => Chunk {
                            stream: Stream::Stderr,
                            data: data.to_vec(),
                        },
                        // The stream broke: say so where the step's output
                        // is read, and end it.
                        Err(e) => Chunk {
                            stream: Stream::Stderr,
                            data: format!("labctl: output stream lost: {e}\n").into_bytes(),
                        },
                    };
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Launched {
                output,
                control: Arc::new(ExecControl(handle)),
            })
        }
        .boxed()
    }
}

struct ExecControl(ExecHandle);

impl Control for ExecControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        let number = match signal {
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        };
        async move {
            self.0
                .signal(number)
                .await
                .map_err(|e| ProcessError::Signal(e.to_string()))
        }
        .boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        async move {
            self.0
                .exit_code()
                .await
                .map_err(|e| ProcessError::ExitCode(e.to_string()))
        }
        .boxed()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("copying {NODE_OUT_DIR} out of {container}: {reason}")]
    Download { container: String, reason: String },
    #[error("writing {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Copies `/lab/out` of `node` into `dest` (created if needed); returns the
/// files written.
pub async fn download_out_dir(
    runtime: &Runtime,
    lab: &str,
    node: &str,
    dest: &Path,
) -> Result<Vec<PathBuf>, ArtifactError> {
    let container = names::container_name(lab, node);
    let options = DownloadFromContainerOptions {
        path: NODE_OUT_DIR.to_owned(),
    };
    let archive: Vec<u8> = runtime
        .docker()
        .download_from_container(&container, Some(options))
        .map_ok(|bytes| bytes.to_vec())
        .try_concat()
        .await
        .map_err(|e| ArtifactError::Download {
            container: container.clone(),
            reason: e.to_string(),
        })?;
    extract(&archive, dest).map_err(|(path, cause)| ArtifactError::Write { path, cause })
}

/// Unpacks the archive Docker gives for a directory (`out/...`) into
/// `dest`, dropping the first path component and refusing any entry that
/// would land outside `dest`.
fn extract(archive: &[u8], dest: &Path) -> Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let mut written = Vec::new();
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(|e| (dest.to_owned(), e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| (dest.to_owned(), e))?;
        let path = entry.path().map_err(|e| (dest.to_owned(), e))?.into_owned();
        let Some(relative) = inside(&path) else {
            continue;
        };
        let target = dest.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| (target.clone(), e))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| (parent.to_owned(), e))?;
                }
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| (target.clone(), e))?;
                std::fs::write(&target, data).map_err(|e| (target.clone(), e))?;
                written.push(target);
            }
            // Links, devices and fifos are not artifacts.
            _ => {}
        }
    }
    Ok(written)
}

/// `out/a/b.pcap` -> `a/b.pcap`; `None` for the top directory itself and
/// for anything with `..`, a root or a prefix.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut components = path.components();
    components.next()?;
    let rest: PathBuf = components.clone().collect();
    let clean = components.all(|c| matches!(c, Component::Normal(_)));
    (clean && !rest.as_os_str().is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // set_path refuses "..": write the name bytes directly, as a
            // hostile archive would.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn unpacks_below_dest_without_the_top_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("out/ponger-eth1.pcap", b"pcap"), ("out/sub/x.txt", b"x")]);
        let written = extract(&tar, dir.path()).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(
            std::fs::read(dir.path().join("ponger-eth1.pcap")).unwrap(),
            b"pcap"
        );
        assert_eq!(std::fs::read(dir.path().join("sub/x.txt")).unwrap(), b"x");
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("out/../../escape", b"no"), ("out/ok", b"ok")]);
        let written = extract(&tar, dir.path()).unwrap();
        assert_eq!(written, vec![dir.path().join("ok")]);
        assert!(!dir.path().join("../escape").exists());
    }
}
