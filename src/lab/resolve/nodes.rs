//! Nodes: names, images, environment, sysctls.

use std::collections::{BTreeMap, HashSet};

use serde_saphyr::Spanned;

use super::names::{self, NAME_RULE};
use super::{pos, Problems};
use crate::lab::model::{DatalinkKind, Node};
use crate::lab::raw::{Entries, RawNode};

type RawNodes = Spanned<Entries<Spanned<String>, Option<RawNode>>>;

pub(super) fn resolve(
    raw: Option<&RawNodes>,
    lab_datalink: DatalinkKind,
    problems: &mut Problems,
) -> Vec<Node> {
    // Without `nodes`, the structural pass reported the missing key.
    let Some(raw) = raw else {
        return Vec::new();
    };
    let entries = raw.value.0.as_slice();
    if entries.is_empty() {
        problems.at(
            pos(raw),
            "the lab has no nodes (expected at least one under `nodes:`, such as `nodes: {a: {}}`)",
        );
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut seen = HashSet::new();
    for (name, node) in entries {
        // A name written twice was reported by the structural pass.
        if !seen.insert(name.value.as_str()) {
            continue;
        }
        check_name(name, problems);
        let default = RawNode::default();
        let node = node.as_ref().unwrap_or(&default);
        if let Some(image) = &node.image {
            check_image(&name.value, image, problems);
        }
        nodes.push(Node {
            name: name.value.clone(),
            image: node.image.as_ref().map(|i| i.value.clone()),
            datalink: node.datalink.as_ref().map_or(lab_datalink, |d| d.value),
            env: environment(&name.value, &node.env, problems),
            sysctls: sysctls(&name.value, &node.sysctls, problems),
        });
    }
    nodes
}

fn check_name(name: &Spanned<String>, problems: &mut Problems) {
    let why = if name.value.is_empty() {
        Some("is empty".to_owned())
    } else {
        names::name_problem(&name.value)
    };
    if let Some(why) = why {
        problems.at(
            pos(name),
            format!(
                "invalid node name {:?}: {why} (expected {NAME_RULE})",
                name.value
            ),
        );
    }
}

fn check_image(node: &str, image: &Spanned<String>, problems: &mut Problems) {
    let text = &image.value;
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.at(
            pos(image),
            format!(
                "invalid image {text:?} for node {node:?} (expected a local image such as \
                 alpine:3, or no image for the tools image)"
            ),
        );
    }
}

fn environment(
    node: &str,
    raw: &Entries<Spanned<String>, Spanned<String>>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in &raw.0 {
        if let Some(why) = names::env_name_problem(&key.value) {
            problems.at(
                pos(key),
                format!(
                    "environment variable {:?} in node {node:?} {why}",
                    key.value
                ),
            );
        }
        if names::has_nul(&value.value) {
            problems.at(
                pos(value),
                format!(
                    "the value of {:?} in node {node:?} contains a NUL character",
                    key.value
                ),
            );
        }
        env.entry(key.value.clone())
            .or_insert_with(|| value.value.clone());
    }
    env
}

fn sysctls(
    node: &str,
    raw: &Entries<Spanned<String>, Spanned<String>>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut sysctls = BTreeMap::new();
    for (key, value) in &raw.0 {
        if let Some(why) = names::sysctl_problem(&key.value) {
            problems.at(
                pos(key),
                format!("sysctl {:?} in node {node:?} {why}", key.value),
            );
        }
        let text = &value.value;
        if text.trim().is_empty() || text.contains(['\n', '\r']) || names::has_nul(text) {
            problems.at(
                pos(value),
                format!(
                    "invalid value {text:?} for sysctl {:?} in node {node:?} (expected one line, \
                     such as 1)",
                    key.value
                ),
            );
        }
        sysctls
            .entry(key.value.clone())
            .or_insert_with(|| text.clone());
    }
    sysctls
}
