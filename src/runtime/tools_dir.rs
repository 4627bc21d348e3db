//! The packet tools as a runtime hands them to its nodes: the binaries
//! labctl ships beside itself, found in one directory, and where a node
//! sees them. Docker builds its tools image from them
//! ([`super::docker::image`]); the netns runtime mounts the directory
//! itself.

use std::path::{Path, PathBuf};

use super::error::RuntimeError;

/// The binaries the image carries, all from this package (the one list).
pub use crate::tools::TOOLS;

/// Where the tools are, in the tools image and in every node.
pub const TOOLS_PATH: &str = "/lab/bin";

/// Overrides where labctl looks for the tools.
pub const TOOLS_DIR_ENV: &str = "LABCTL_TOOLS_DIR";

/// The directory holding the tool binaries.
#[derive(Clone, Debug)]
pub struct ToolsDir(PathBuf);

impl ToolsDir {
    /// `$LABCTL_TOOLS_DIR`, else the directory of labctl's own executable
    /// (cargo puts every binary of the package in the same place), else,
    /// for a program that uses labctl as a library (`labctl::api`), the
    /// directory above it (a cargo test binary is in `target/*/deps`) or
    /// that of a `labctl` on `PATH` (`cargo install labctl` puts the tools
    /// beside it).
    pub fn locate() -> Result<Self, RuntimeError> {
        if let Some(dir) = std::env::var_os(TOOLS_DIR_ENV).filter(|d| !d.is_empty()) {
            return Self::at(PathBuf::from(dir));
        }
        let own = std::env::current_exe()
            .map_err(RuntimeError::io("finding labctl's own executable"))?
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let mut others: Vec<PathBuf> = own.parent().map(Path::to_owned).into_iter().collect();
        if let Some(path) = std::env::var_os("PATH") {
            others.extend(std::env::split_paths(&path).filter(|dir| dir.join("labctl").is_file()));
        }
        let first = Self::at(own);
        if first.is_ok() {
            return first;
        }
        others
            .into_iter()
            .find_map(|dir| Self::at(dir).ok())
            .map_or(first, Ok)
    }

    /// `dir`, if every tool is in it.
    pub fn at(dir: PathBuf) -> Result<Self, RuntimeError> {
        let missing: Vec<String> = TOOLS
            .iter()
            .filter(|t| !dir.join(t).is_file())
            .map(|t| t.to_string())
            .collect();
        if missing.is_empty() {
            Ok(ToolsDir(dir))
        } else {
            Err(RuntimeError::ToolsMissing { dir, missing })
        }
    }

    /// Refuses a tool that is not statically linked ([`super::linkage`]):
    /// it could not run in the FROM-scratch image nor in any other image.
    pub fn check_static(&self) -> Result<(), RuntimeError> {
        for tool in TOOLS {
            let path = self.0.join(tool);
            let linkage = super::linkage::linkage(&path)
                .map_err(RuntimeError::io(format!("reading {}", path.display())))?;
            if let Some(problem) = linkage.problem() {
                return Err(RuntimeError::ToolsNotStatic {
                    tool: path,
                    problem,
                });
            }
        }
        Ok(())
    }

    /// The directory itself (the netns runtime mounts it on `/lab/bin`).
    pub fn path(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamically_linked_tools_are_refused_with_how_to_build_them() {
        // Real ELF files: this test binary is built like the tools
        // (crt-static); /bin/ls is linked dynamically.
        let me = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for tool in TOOLS {
            std::os::unix::fs::symlink(&me, dir.path().join(tool)).unwrap();
        }
        let tools = ToolsDir::at(dir.path().to_owned()).unwrap();
        tools.check_static().unwrap();
        if !Path::new("/bin/ls").exists() {
            eprintln!("SKIPPED (half): no /bin/ls to stand for a dynamic tool");
            return;
        }
        let ping = dir.path().join("lab-ping");
        std::fs::remove_file(&ping).unwrap();
        std::os::unix::fs::symlink("/bin/ls", &ping).unwrap();
        let e = tools.check_static().unwrap_err();
        assert!(
            matches!(&e, RuntimeError::ToolsNotStatic { tool, .. } if *tool == ping),
            "{e:?}"
        );
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        for words in [
            "lab-ping is dynamically linked, needs the interpreter /lib",
            "target-feature=+crt-static",
            "--target x86_64-unknown-linux-gnu",
        ] {
            assert!(line.contains(words), "{words:?} not in: {line}");
        }
    }

    #[test]
    fn missing_tools_are_named_with_how_to_build_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOOLS[0]), b"x").unwrap();
        let err = ToolsDir::at(dir.path().to_owned()).unwrap_err().to_string();
        // Every tool but the one written above.
        assert!(err.contains(&TOOLS[1..].join(", ")), "{err}");
        assert!(err.contains("cargo build --release"), "{err}");
    }
}
