//! From the raw file to the validated [`Lab`]: every semantic check, every
//! problem gathered before giving up.
//!
//! Each part of the file has its module (hosts, nodes, links, steps); the rules for
//! single values are in [`values`]. Problems about a mapping as a whole
//! ("step has neither exec nor wait") are reported at the mapping's position,
//! so [`super::parse`] can drop them where the structural pass found a
//! misspelled key in that mapping.

mod hosts;
mod links;
mod nodes;
mod routes;
mod steps;
mod values;

use std::path::Path;

use serde_saphyr::Location;

use crate::lab::typed::Spanned;

use super::error::Problem;
use super::model::{DatalinkKind, Lab};
use super::raw::RawLab;

/// Collects problems with their positions.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn at(&mut self, location: Location, message: impl Into<String>) {
        self.0.push(Problem::at(location, message));
    }
}

fn pos<T>(spanned: &Spanned<T>) -> Location {
    spanned.referenced
}

/// The hint for a name that is not among `known` (in file order): the
/// nearest known one, or the first few.
fn unknown_hint<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> String {
    // Bounded, so that a file with huge lists stays quick to check.
    let known: Vec<&str> = known.take(1000).collect();
    if let Some(near) = super::wording::nearest(name, known.iter().copied()) {
        return format!("did you mean {near:?}?");
    }
    match known.as_slice() {
        [] => "there are none".to_owned(),
        few if few.len() <= 8 => format!("known: {}", few.join(", ")),
        many => format!("known: {}, ...", many[..8].join(", ")),
    }
}

/// Checks `raw` and builds the [`Lab`].
pub(super) fn resolve(raw: RawLab, file: &Path) -> Result<Lab, Vec<Problem>> {
    let mut problems = Problems::default();

    // A missing name was reported by the structural pass.
    if let Some(name) = &raw.name {
        if let Some(why) = lab_name_problem(&name.value) {
            problems.at(pos(name), why);
        }
    }
    let lab_datalink = raw
        .datalink
        .as_ref()
        .map(|d| d.value)
        .unwrap_or(DatalinkKind::AfPacket);

    let runtime = raw.runtime.as_ref().map(|r| r.value).unwrap_or_default();
    // Relative bind paths start at the lab file's directory.
    let dir = file.parent().unwrap_or(Path::new(""));
    let hosts = hosts::resolve(raw.hosts.as_ref(), raw.runtime.as_ref(), dir, &mut problems);
    let lab = nodes::LabWide {
        datalink: lab_datalink,
        runtime,
        dir,
        hosts: hosts::names(raw.hosts.as_ref()),
    };
    let mut nodes = nodes::resolve(raw.nodes.as_ref(), &lab, &mut problems);
    let links = links::resolve(
        raw.links.as_deref().unwrap_or_default(),
        &nodes,
        raw.hosts.is_some().then_some(hosts.as_slice()),
        &mut problems,
    );
    routes::resolve(raw.nodes.as_ref(), &mut nodes, &links, &mut problems);
    let steps = steps::resolve(
        raw.steps.as_deref().unwrap_or_default(),
        &nodes,
        &links,
        &mut problems,
    );

    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    Ok(Lab {
        name: raw.name.map(|n| n.value).unwrap_or_default(),
        description: raw.description,
        file: file.to_owned(),
        datalink: lab_datalink,
        runtime,
        hosts,
        nodes,
        links,
        steps,
    })
}

/// The lab-format rule for lab and node names, for callers outside.
pub(super) fn is_valid_name(name: &str) -> bool {
    values::name_problem(name).is_none()
}

fn lab_name_problem(name: &str) -> Option<String> {
    let rule = values::NAME_RULE;
    values::name_problem(name).map(|why| match why {
        values::NameProblem::Empty => format!("the lab's name is empty (expected {rule})"),
        why => format!("invalid lab name {name:?}: {why} (expected {rule})"),
    })
}
