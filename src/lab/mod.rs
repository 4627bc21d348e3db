//! The lab file: parse the YAML, check it, and turn it into a [`Lab`].
//!
//! Parse, then resolve, then verify: [`raw`] mirrors the file with source
//! positions, [`resolve`] checks it and builds the validated [`Lab`] that
//! the rest of labctl accepts, gathering every problem at once.

mod error;
mod model;
mod raw;
mod resolve;

use std::path::Path;

pub use error::{LabErrors, LoadError, Problem};
pub use model::*;

/// Reads and validates the lab file at `path`.
pub fn load(path: &Path) -> Result<Lab, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&source, path).map_err(LoadError::Invalid)
}

/// Validates a lab file's text; `file` is used in messages and kept in the
/// [`Lab`].
pub fn parse(source: &str, file: &Path) -> Result<Lab, LabErrors> {
    let fail = |problems| LabErrors {
        file: file.to_owned(),
        problems,
    };
    let raw: raw::RawLab = serde_saphyr::from_str(source).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        fail(vec![Problem {
            line,
            column,
            message: e.without_snippet().to_string(),
        }])
    })?;
    resolve::resolve(raw, file).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icmp_lab_resolves() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/icmp.yaml"));
        let lab = load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lab.name(), "icmp");
        assert_eq!(lab.nodes().len(), 2);
        assert_eq!(lab.links().len(), 1);
        assert_eq!(lab.steps().len(), 5);
        let [a, b] = &lab.links()[0].endpoints;
        assert_eq!(a.label(), "pinger:eth1");
        assert_eq!(b.ipv4.unwrap().to_string(), "198.18.0.2/24");
    }

    #[test]
    fn problems_carry_positions() {
        let src =
            "name: Bad_Name\nnodes:\n  a: {}\nlinks:\n  - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
        let err = parse(src, Path::new("x.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x.yaml:1:7: invalid lab name"), "{text}");
        assert!(text.contains("x.yaml:5:"), "{text}");
        assert!(text.contains("unknown node \"b\""), "{text}");
    }
}
