//! The lab file: parse the YAML, check it, and turn it into a [`Lab`].
//!
//! Parse, then check the structure, then resolve, all in one pass:
//! - [`file`] reads a lab file (a regular file, bounded);
//! - [`yaml`] reads the text into a tree where every value has its line and
//!   column (serde-saphyr: maintained, panic-free, with limits on depth and
//!   aliases; serde_yaml is archived and knows positions only for syntax
//!   errors);
//! - [`structure`] walks that tree against the JSON Schema that [`schema`]
//!   generates from the [`raw`] types, reporting every unknown key, wrong
//!   type and missing key at once, and marking the values serde cannot read
//!   (the walker is generic over the schema; [`wording`] names the places
//!   and keys of a lab);
//! - [`typed`] reads the [`raw`] types (typed values that keep their
//!   positions) from the tree, without the marked values, so a wrong type
//!   hides none of the semantic checks;
//! - [`resolve`] runs the semantic checks and builds the validated [`Lab`],
//!   the only type the rest of labctl accepts.
//!
//! [`graph`] draws a valid lab.

mod capability;
mod error;
mod file;
pub mod graph;
pub mod impairment;
mod model;
mod raw;
mod resolve;
pub mod schema;
mod structure;
mod typed;
mod wording;
mod yaml;

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

pub use capability::{Capability, Isolation, Reach};
pub use error::{LabErrors, LoadError, Problem};
pub use file::{read as read_file, MAX_LAB_FILE};
pub use impairment::{format_rate, Impairment};
pub use model::*;

/// Reads and validates the lab file at `path` (a regular file of at most
/// [`MAX_LAB_FILE`] bytes).
pub fn load(path: &Path) -> Result<Lab, LoadError> {
    let bytes = file::read(path)?;
    parse_bytes(&bytes, path).map_err(LoadError::Invalid)
}

/// Validates a lab file's text; `file` is used in messages and kept in the
/// [`Lab`].
pub fn parse(source: &str, file: &Path) -> Result<Lab, LabErrors> {
    check(source, file).map_err(|mut problems| {
        problems.sort_by_key(|p| (p.line, p.column));
        problems.dedup();
        LabErrors {
            file: file.to_owned(),
            problems,
        }
    })
}

/// Whether `name` is a valid lab (or node) name:
/// `[a-z0-9][a-z0-9-]{0,19}`.
pub fn is_valid_name(name: &str) -> bool {
    resolve::is_valid_name(name)
}

/// Like [`parse`], for a file's bytes, which may not be UTF-8.
pub fn parse_bytes(bytes: &[u8], file: &Path) -> Result<Lab, LabErrors> {
    match std::str::from_utf8(bytes) {
        Ok(source) => parse(source, file),
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Err(LabErrors {
                file: file.to_owned(),
                problems: vec![Problem {
                    line: line as u64,
                    column: column as u64,
                    message: "the file is not UTF-8 text (expected a YAML lab file)".to_owned(),
                }],
            })
        }
    }
}

/// Every problem of the file, or the lab.
fn check(source: &str, file: &Path) -> Result<Lab, Vec<Problem>> {
    let tree = yaml::parse(source).map_err(|p| vec![p])?;
    if tree.value == yaml::Value::Null {
        return Err(vec![Problem {
            line: 1,
            column: 1,
            message: "the file is empty (expected a lab: a mapping with name, nodes, links and \
                      steps)"
                .to_owned(),
        }]);
    }
    let structure = structure::check(&tree, lab_schema());
    let mut problems = structure.problems;
    if structure.dropped.contains(&typed::node_id(&tree)) {
        // Not a mapping at all: nothing to read.
        return Err(problems);
    }
    let raw: raw::RawLab = match typed::from_tree(&tree, &structure.dropped, source) {
        Ok(raw) => raw,
        Err(e) => {
            // The structural pass lets through only what serde reads (a
            // property test holds it to that); should they ever disagree,
            // the user still gets serde's word, with its position.
            problems.push(Problem::at(
                e.at,
                format!("cannot read this value: {}", e.message),
            ));
            return Err(problems);
        }
    };
    match resolve::resolve(raw, file) {
        Ok(lab) if problems.is_empty() => Ok(lab),
        Ok(_) => Err(problems),
        Err(semantic) => {
            problems.extend(without_echoes(semantic, &structure.suspects));
            Err(problems)
        }
    }
}

/// Drops the semantic problems about a mapping as a whole (reported at its
/// position) where that mapping holds a misspelled key: "has neither exec
/// nor wait" would only repeat "unknown key `exce`".
fn without_echoes(semantic: Vec<Problem>, suspects: &[serde_saphyr::Location]) -> Vec<Problem> {
    let suspect: HashSet<(u64, u64)> = suspects.iter().map(|at| (at.line(), at.column())).collect();
    semantic
        .into_iter()
        .filter(|p| !suspect.contains(&(p.line, p.column)))
        .collect()
}

/// The schema, generated once per process.
fn lab_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(schema::lab_schema)
}

#[cfg(test)]
mod tests;
