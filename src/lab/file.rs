//! Reading a lab file: a regular file of at most [`MAX_LAB_FILE`] bytes,
//! read with a bounded reader. A FIFO, a device or a directory is refused
//! at once, so `labctl validate /dev/zero` neither hangs nor grows.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::error::LoadError;

/// The largest lab file labctl reads. A real lab is a few KiB; a bigger
/// file is a mistake, not a lab.
pub const MAX_LAB_FILE: u64 = 16 * 1024 * 1024;

/// The bytes of the lab file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    let cannot = |cause: std::io::Error| LoadError::Read {
        path: path.to_owned(),
        cause,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It changes nothing for a regular file, which is all we read.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    // The type of what was opened, not of what the path named a moment
    // before: nothing can swap a FIFO in between.
    let metadata = file.metadata().map_err(cannot)?;
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(LoadError::NotAFile {
            path: path.to_owned(),
            what,
        });
    }
    let too_large = |size: u64| LoadError::TooLarge {
        path: path.to_owned(),
        size,
    };
    if metadata.len() > MAX_LAB_FILE {
        return Err(too_large(metadata.len()));
    }
    // Bounded even if the file grows after the check above.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    Read::take(&file, MAX_LAB_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_LAB_FILE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    #[test]
    fn regular_files_are_read_and_others_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("lab.yaml");
        std::fs::write(&lab, "name: x\n").unwrap();
        assert_eq!(read(&lab).unwrap(), b"name: x\n");

        let err = read(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory (expected a regular file)"),
            "{err}"
        );
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("is a character device"), "{err}");

        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = read(&fifo).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");

        let big = dir.path().join("big.yaml");
        File::create(&big)
            .unwrap()
            .set_len(MAX_LAB_FILE + 1)
            .unwrap();
        let err = read(&big).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "lab file {} is 16.0 MiB (16777217 bytes), more than the 16 MiB a lab file may \
                 have",
                big.display()
            )
        );
        File::create(&big).unwrap().set_len(MAX_LAB_FILE).unwrap();
        assert_eq!(read(&big).unwrap().len() as u64, MAX_LAB_FILE);
    }
}
