//! Tests of the whole pipeline, from text to [`Lab`] or problems.

mod checks;
mod never_panics;

use std::path::Path;

use super::{parse, Lab};

/// Every key of the lab format, version 1 (../shared/lab-format-v1.md).
pub(crate) const CONTRACT_KEYS: &[&str] = &[
    "name",
    "description",
    "datalink",
    "nodes",
    "links",
    "steps",
    "image",
    "env",
    "sysctls",
    "endpoints",
    "ipv4",
    "mtu",
    "node",
    "interface",
    "mac",
    "exec",
    "background",
    "ready",
    "timeout",
    "wait",
    "expect",
    "exit",
    "stdout",
    "stderr",
    "match",
    "contains",
    "count",
];

/// The keys added after version 1 (../shared/lab-format-additions.md), and
/// labctl's own (`limits`, `pids`, `memory`, `privileged`).
pub(crate) const ADDED_KEYS: &[&str] = &[
    "runtime",
    "routes",
    "to",
    "via",
    "kernel",
    "binds",
    "limits",
    "pids",
    "memory",
    "privileged",
    "impair",
    "rate",
    "loss",
    "delay",
    "jitter",
    "duplicate",
    "reorder",
    "corrupt",
    "link",
    "state",
    "at_least",
    "at_most",
    "hosts",
    "host",
    "docker",
    "underlay",
    "tls",
    "vxlan",
    "vni",
    "port",
];

/// Two nodes, `a` and `b`, nothing else: lines 1 to 4.
const TWO_NODES: &str = "name: x\nnodes:\n  a: {}\n  b: {}\n";

/// [`TWO_NODES`] and `steps:` on line 5, then `steps` from line 6.
fn with_steps(steps: &str) -> String {
    format!("{TWO_NODES}steps:\n{steps}")
}

/// The problems of `source` as `LINE:COL: message`, in order.
fn problems(source: &str) -> Vec<String> {
    match parse(source, Path::new("t.yaml")) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect(),
    }
}

#[track_caller]
fn valid(source: &str) -> Lab {
    parse(source, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_icmp_lab_resolves() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/icmp.yaml"));
    let lab = super::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lab.name(), "icmp");
    assert_eq!(lab.nodes().len(), 2);
    assert_eq!(lab.links().len(), 1);
    assert_eq!(lab.steps().len(), 5);
    let [a, b] = &lab.links()[0].endpoints;
    assert_eq!(a.label(), "pinger:eth1");
    assert_eq!(
        b.ipv4.map(|a| a.to_string()).as_deref(),
        Some("198.18.0.2/24")
    );
    assert_eq!(
        lab.summary(),
        "valid lab `icmp`: 2 nodes, 1 link, 5 steps, datalinks: af_packet"
    );
}

#[test]
fn errors_display_as_file_line_column_lines() {
    let err = parse(
        "name: Bad\nnodes:\n  a:\n    imgae: x\n",
        Path::new("dir/x.yaml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir/x.yaml:1:7: invalid lab name \"Bad\": contains the uppercase 'B' (expected 1 to 20 \
         of a-z, 0-9 and '-', not starting with '-')\n\
         dir/x.yaml:4:5: unknown key `imgae` in node \"a\" (did you mean `image`?)"
    );
}

#[test]
fn bytes_that_are_not_utf8() {
    let err = super::parse_bytes(b"name: x\nnodes: \xff\n", Path::new("b.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.yaml:2:8: the file is not UTF-8 text (expected a YAML lab file)"
    );
}

#[test]
fn the_extended_form_keeps_every_setting() {
    let lab = valid(
        "name: x\nnodes:\n  a: {image: 'alpine:3', env: {K: v}}\n  b: {}\nlinks:\n  - endpoints:\n      - {node: a, interface: e1, ipv4: 198.19.0.1/24, mac: '02:00:00:00:01:01', datalink: af_xdp}\n      - {node: b, interface: e1, ipv4: 198.19.0.2/24}\n    mtu: 9000\n",
    );
    let a = &lab.links()[0].endpoints[0];
    assert_eq!(
        a.ipv4.map(|n| n.to_string()).as_deref(),
        Some("198.19.0.1/24")
    );
    assert_eq!(
        a.mac.map(|m| m.to_string()).as_deref(),
        Some("02:00:00:00:01:01")
    );
    assert_eq!(a.datalink.as_str(), "af_xdp");
    assert_eq!(lab.links()[0].mtu, Some(9000));
    assert_eq!(lab.nodes()[0].image.as_deref(), Some("alpine:3"));
    assert_eq!(lab.nodes()[0].env["K"], "v");
}
