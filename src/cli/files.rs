//! Lab files named on the command line: files, directories (their
//! `*.yaml`, sorted) and globs (`labs/*.yaml`, quoted so the shell leaves
//! them to labctl), in the order given, each once.

use std::path::{Path, PathBuf};

use super::CliError;

pub fn expand(args: &[String]) -> Result<Vec<PathBuf>, CliError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        let found = if path.is_dir() {
            let mut yaml: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| CliError::usage(anyhow::anyhow!("reading directory {arg}: {e}")))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.is_file())
                .collect();
            yaml.sort();
            if yaml.is_empty() {
                return Err(CliError::usage(anyhow::anyhow!(
                    "{arg}: a directory with no *.yaml lab files"
                )));
            }
            yaml
        } else if !path.exists() && arg.contains(['*', '?', '[']) {
            let pattern = glob::glob(arg)
                .map_err(|e| CliError::usage(anyhow::anyhow!("{arg}: not a valid glob: {e}")))?;
            let mut matched: Vec<PathBuf> = pattern.filter_map(Result::ok).collect();
            matched.retain(|p| p.is_file());
            matched.sort();
            if matched.is_empty() {
                return Err(CliError::usage(anyhow::anyhow!(
                    "{arg}: no lab file matches this pattern"
                )));
            }
            matched
        } else {
            // A file, or a path that does not exist: loading it says so.
            vec![path.to_owned()]
        };
        for file in found {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_and_globs_expand_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.yaml", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let d = dir.path().to_str().unwrap().to_owned();
        let got = expand(&[format!("{d}/b.yaml"), d.clone(), format!("{d}/*.yaml")]).unwrap();
        assert_eq!(
            got,
            [dir.path().join("b.yaml"), dir.path().join("a.yaml")],
            "b first as given, a from the directory, nothing twice"
        );
        assert!(expand(&[format!("{d}/*.json")]).is_err());
        let missing = expand(&[format!("{d}/missing.yaml")]).unwrap();
        assert_eq!(missing, [dir.path().join("missing.yaml")]);
    }
}
