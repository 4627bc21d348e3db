//! A netns node's `/lab/out` copied into the run directory: the node's
//! directory is on this host, so the copy is a walk of it.

use std::io;
use std::path::{Path, PathBuf};

use crate::runtime::error::RuntimeError;
use crate::runtime::names;
use crate::runtime::NODE_OUT_DIR;

use super::ns;

/// Copies the files of node `node`'s `/lab/out` into `dest` (created if
/// needed); returns the files written. Only regular files and
/// directories are copied: a link a step made may point anywhere.
pub async fn copy_out(lab: &str, node: &str, dest: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let source = ns::out_path(&names::container_name(lab, node));
    let dest = dest.to_owned();
    let failed = format!("copying {NODE_OUT_DIR} of node {node}");
    let copied = tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        copy_tree(&source, &dest, &mut written).map(|()| written)
    })
    .await;
    match copied {
        Ok(Ok(written)) => Ok(written),
        Ok(Err(Copy::Read(cause))) => Err(RuntimeError::io(failed)(cause)),
        Ok(Err(Copy::Write(path, cause))) => Err(RuntimeError::Write { path, cause }),
        Err(e) => Err(RuntimeError::io(failed)(io::Error::other(e.to_string()))),
    }
}

enum Copy {
    Read(io::Error),
    Write(PathBuf, io::Error),
}

fn copy_tree(source: &Path, dest: &Path, written: &mut Vec<PathBuf>) -> Result<(), Copy> {
    std::fs::create_dir_all(dest).map_err(|e| Copy::Write(dest.to_owned(), e))?;
    let entries = match std::fs::read_dir(source) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Copy::Read(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Copy::Read)?;
        let kind = entry.file_type().map_err(Copy::Read)?;
        let target = dest.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, written)?;
        } else if kind.is_file() {
            let mut from = std::fs::File::open(entry.path()).map_err(Copy::Read)?;
            let mut to =
                std::fs::File::create(&target).map_err(|e| Copy::Write(target.clone(), e))?;
            io::copy(&mut from, &mut to).map_err(|e| Copy::Write(target.clone(), e))?;
            written.push(target);
        }
    }
    Ok(())
}
