//! A directory copied out of a container into the host, streamed: the
//! archive Docker sends is unpacked as it arrives, so memory stays bounded
//! however large the files (a long capture) are.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::query_parameters::DownloadFromContainerOptions;
use bollard::Docker;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::runtime::error::RuntimeError;

/// Chunks of the archive in flight between the download and the unpacker.
const IN_FLIGHT: usize = 8;

/// Copies `from` of `container` into `dest`; see
/// [`crate::runtime::backend::Backend::copy_out`].
pub(super) async fn copy_out(
    docker: &Docker,
    container: &str,
    from: &str,
    dest: &Path,
) -> Result<Vec<PathBuf>, RuntimeError> {
    let doing = format!("copying {from} out of container {container}");
    // The first Docker error, kept whole for the message; the unpacker
    // only sees that the stream broke.
    let docker_error: Arc<Mutex<Option<bollard::errors::Error>>> = Arc::default();
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let download = {
        let (docker, container, docker_error) = (
            docker.clone(),
            container.to_owned(),
            Arc::clone(&docker_error),
        );
        let options = DownloadFromContainerOptions {
            path: from.to_owned(),
        };
        tokio::spawn(async move {
            let mut stream = Box::pin(docker.download_from_container(&container, Some(options)));
            while let Some(item) = stream.next().await {
                let item = item.map_err(|e| {
                    let text = e.to_string();
                    lock(&docker_error).get_or_insert(e);
                    std::io::Error::other(text)
                });
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        })
    };
    // Stops the download if this future is dropped (Ctrl-C); the unpacker
    // then sees the stream end and stops too.
    let _abort = AbortOnDrop(download);
    let dest = dest.to_owned();
    let unpacked = tokio::task::spawn_blocking(move || {
        extract(
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
            &dest,
        )
    })
    .await
    .map_err(|e| RuntimeError::io(doing.clone())(std::io::Error::other(e)))?;
    match unpacked {
        Ok(written) => Ok(written),
        Err(Fault::Write { path, cause }) => Err(RuntimeError::Write { path, cause }),
        Err(Fault::Read(cause)) => Err(match lock(&docker_error).take() {
            Some(cause) => RuntimeError::Docker {
                doing,
                cause: super::DockerError(cause),
            },
            None => RuntimeError::Io { doing, cause },
        }),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The archive as a blocking reader, for the tar crate.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Which side of the copy failed.
#[derive(Debug)]
enum Fault {
    /// Reading the archive (the download, or a broken archive).
    Read(std::io::Error),
    /// Writing on the host.
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

fn write_fault(path: &Path) -> impl FnOnce(std::io::Error) -> Fault + '_ {
    move |cause| Fault::Write {
        path: path.to_owned(),
        cause,
    }
}

/// Unpacks the archive Docker gives for a directory (`out/...`) into
/// `dest`, dropping the first path component and refusing any entry that
/// would land outside `dest`.
fn extract(archive: impl Read, dest: &Path) -> Result<Vec<PathBuf>, Fault> {
    let mut written = Vec::new();
    std::fs::create_dir_all(dest).map_err(write_fault(dest))?;
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(Fault::Read)?;
    let mut buf = vec![0u8; 64 * 1024];
    for entry in entries {
        let mut entry = entry.map_err(Fault::Read)?;
        let path = entry.path().map_err(Fault::Read)?.into_owned();
        let Some(relative) = inside(&path) else {
            continue;
        };
        let target = dest.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(write_fault(&target))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(write_fault(parent))?;
                }
                let mut file = std::fs::File::create(&target).map_err(write_fault(&target))?;
                let mut size = 0u64;
                loop {
                    let n = entry.read(&mut buf).map_err(Fault::Read)?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    // Zeros become a hole: a sparse file in a node (a
                    // preallocated capture) stays sparse on the host.
                    if buf[..n].iter().all(|b| *b == 0) {
                        file.seek(SeekFrom::Current(n as i64))
                            .map_err(write_fault(&target))?;
                    } else {
                        file.write_all(&buf[..n]).map_err(write_fault(&target))?;
                    }
                }
                file.set_len(size).map_err(write_fault(&target))?;
                written.push(target);
            }
            // Links, devices and fifos are not evidence: only files are kept.
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
        let written = extract(&tar[..], dir.path()).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(
            std::fs::read(dir.path().join("ponger-eth1.pcap")).unwrap(),
            b"pcap"
        );
        assert_eq!(std::fs::read(dir.path().join("sub/x.txt")).unwrap(), b"x");
    }

    #[test]
    fn zeros_become_holes_and_the_size_and_bytes_stay() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0u8; 4 << 20];
        data[1 << 20] = 7;
        data.extend_from_slice(&[0u8; 100]);
        let tar = archive(&[("out/sparse", &data)]);
        extract(&tar[..], dir.path()).unwrap();
        let path = dir.path().join("sparse");
        assert!(std::fs::read(&path).unwrap() == data);
        // 4 MiB of zeros did not take 4 MiB of disk.
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("out/../../escape", b"no"), ("out/ok", b"ok")]);
        let written = extract(&tar[..], dir.path()).unwrap();
        assert_eq!(written, vec![dir.path().join("ok")]);
        assert!(!dir.path().join("../escape").exists());
    }
}
