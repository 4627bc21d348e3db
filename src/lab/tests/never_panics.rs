//! Property tests: no input makes validation panic, every problem has a
//! position, and the structural pass agrees with serde (the tree, without
//! the values it left out, always deserializes into the raw types).

use std::path::Path;

use proptest::prelude::*;

use crate::lab::{parse, parse_bytes, raw, structure, typed, yaml};

/// Checks the properties every input must have.
fn holds_for(source: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = parse(source, Path::new("p.yaml")) {
        prop_assert!(!errors.problems.is_empty());
        for p in &errors.problems {
            prop_assert!(
                p.line >= 1 && p.column >= 1,
                "no position: {p:?} in {source:?}"
            );
            prop_assert!(!p.message.contains('\n'), "multi-line message {p:?}");
        }
    }
    // The structural pass and serde agree: what the structural pass did
    // not leave out, serde reads.
    if let Ok(tree) = yaml::parse(source) {
        if tree.value != yaml::Value::Null {
            let structure = structure::check(&tree, crate::lab::lab_schema());
            if !structure.dropped.contains(&typed::node_id(&tree)) {
                let read = typed::from_tree::<raw::RawLab>(&tree, &structure.dropped, source);
                prop_assert!(
                    read.is_ok(),
                    "structure accepted what serde refuses: {:?}\n{source}",
                    read.err()
                );
            }
        }
    }
    Ok(())
}

/// Words that break a lab file's rules, beside the keys it is made of
/// ([`super::CONTRACT_KEYS`]).
const NOT_KEYS: &[&str] = &[
    "a",
    "b",
    "pinger",
    "imgae",
    "net.ipv4.ip_forward",
    "LABCTL_X",
    "1X",
    "<<",
];

const SCALARS: &[&str] = &[
    "x",
    "a",
    "b",
    "pinger",
    "Bad_Name",
    "",
    "~",
    "null",
    "true",
    "yes",
    "0",
    "3",
    "-1",
    "1.5",
    "99999999999999999999999",
    "0x10",
    "1e3",
    ".nan",
    "default",
    "198.18.2.0/24",
    "100mbit",
    "100",
    "1%",
    "0.5%",
    "256MiB",
    "src:/src",
    "./nope:/x:rw",
    "a:/lab/bin",
    "down",
    "up",
    "quiet",
    "normal",
    "netns",
    "docker",
    "([0-9]+)",
    "af_packet",
    "af_xdp",
    "netmap",
    "afxdp",
    "a:eth1",
    "b:eth1",
    "a:b:c",
    ":x",
    "a:",
    "a:e=1",
    "a:lo",
    "198.18.0.1/24",
    "198.18.0.2/24",
    "198.18.0.1",
    "198.18.0.0/24",
    "300.1.1.1/24",
    "02:00:00:00:01:01",
    "01:00:00:00:00:01",
    "zz",
    "10s",
    "200ms",
    "0s",
    "10",
    "100y",
    "(",
    "[a-",
    "^x$",
    "\\d+",
    "a\u{0}b",
    "é",
    "*alias",
    "&anchor x",
    "!!binary aGk=",
    "!!int x",
    "'q'",
    "\"dq\"",
    "- a",
    "{",
    "[",
    "#",
    "|",
    ">",
    "\t",
    "\u{feff}",
];

#[derive(Debug, Clone)]
enum Doc {
    Scalar(String),
    List(Vec<Doc>),
    Map(Vec<(String, Doc)>),
}

fn word(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(list).prop_map(str::to_owned)
}

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![word(SCALARS), "[ -~]{0,12}"].prop_map(Doc::Scalar);
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::List),
            prop::collection::vec(
                (
                    prop_oneof![
                        word(super::CONTRACT_KEYS),
                        word(super::ADDED_KEYS),
                        word(NOT_KEYS),
                        word(SCALARS)
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(Doc::Map),
        ]
    })
}

/// Renders `doc` as YAML: block style, with flow style and quoting mixed in
/// (`style` picks, so the same tree comes out in several shapes).
fn render(doc: &Doc, indent: usize, style: u8, out: &mut String) {
    let pad = " ".repeat(indent);
    match doc {
        Doc::Scalar(s) => out.push_str(&scalar(s, style)),
        Doc::List(items) if items.is_empty() || style % 3 == 0 => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, indent, style / 3, out);
            }
            out.push(']');
        }
        Doc::Map(entries) if entries.is_empty() || style % 3 == 0 => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&scalar(k, style));
                out.push_str(": ");
                render(v, indent, style / 3, out);
            }
            out.push('}');
        }
        Doc::List(items) => {
            for item in items {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("- ");
                render(item, indent + 2, style.rotate_left(1), out);
            }
        }
        Doc::Map(entries) => {
            for (k, v) in entries {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(&scalar(k, style));
                out.push(':');
                if !matches!(v, Doc::Scalar(_)) || style % 2 == 0 {
                    out.push(' ');
                }
                render(v, indent + 2, style.rotate_left(1), out);
            }
        }
    }
}

/// A scalar plain (as the word is, which may break the YAML: on purpose)
/// or double-quoted (JSON strings are valid YAML).
fn scalar(s: &str, style: u8) -> String {
    if style % 5 < 3 {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Valid labs to break one change at a time.
const VALID: &[&str] = &[
    include_str!("../../../labs/icmp.yaml"),
    "name: x\ndatalink: netmap\nnodes:\n  a: {}\n  b:\n    image: alpine:3\n    env: {K: v}\n    sysctls: {net.ipv4.ip_forward: 1}\nlinks:\n  - endpoints:\n      - {node: a, interface: e1, ipv4: 198.19.0.1/24, mac: '02:00:00:00:01:01'}\n      - {node: b, interface: e1, ipv4: 198.19.0.2/24, datalink: netmap}\n    mtu: 9000\nsteps:\n  - name: s\n    node: a\n    exec: [x, 3]\n    background: true\n    ready: up\n    timeout: 2s\n  - name: w\n    wait: s\n    expect:\n      exit: 1\n      stderr:\n        - match: '^x$'\n          count: 0\n",
    // Every key added after version 1.
    "name: y\nruntime: docker\nnodes:\n  c:\n    kernel: normal\n    privileged: true\n    limits: {pids: 64, memory: 256MiB}\n    binds: [\"src:/src\", \"./Cargo.toml:/etc/c.toml:rw\"]\n    routes:\n      - {to: 198.18.2.0/24, via: 198.18.1.254}\n      - {to: default, via: 198.18.1.254}\n  r: {kernel: normal, sysctls: {net.ipv4.ip_forward: 1}}\nlinks:\n  - endpoints:\n      - {node: c, interface: eth1, ipv4: 198.18.1.1/24, impair: {rate: 10mbit}}\n      - {node: r, interface: eth1, ipv4: 198.18.1.254/24}\n    impair: {rate: 100mbit, loss: 1%, delay: 10ms, jitter: 2ms}\nsteps:\n  - name: cut\n    link: c:eth1\n    state: down\n  - name: gen\n    node: c\n    exec: [lab-gen, eth1]\n    expect:\n      stdout:\n        - match: '^sent ([0-9]+) frames'\n          at_least: 150000\n          at_most: 1e9\n          count: 1\n  - name: up\n    link: c:eth1\n    state: up\n",
];

#[derive(Debug, Clone)]
enum Change {
    /// The value after the first `: ` of a line (or the whole line).
    ReplaceValue(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
    Indent(usize, usize),
    Dedent(usize),
    InsertText(usize, usize, String),
}

fn change() -> impl Strategy<Value = Change> {
    let line = any::<prop::sample::Index>().prop_map(|i| i.index(64));
    prop_oneof![
        (line.clone(), word(SCALARS)).prop_map(|(l, w)| Change::ReplaceValue(l, w)),
        line.clone().prop_map(Change::DeleteLine),
        line.clone().prop_map(Change::DuplicateLine),
        (line.clone(), 1..4usize).prop_map(|(l, n)| Change::Indent(l, n)),
        line.clone().prop_map(Change::Dedent),
        (
            line,
            0..80usize,
            prop_oneof![
                word(SCALARS),
                word(super::CONTRACT_KEYS),
                word(super::ADDED_KEYS),
                word(NOT_KEYS)
            ]
        )
            .prop_map(|(l, c, w)| Change::InsertText(l, c, w)),
    ]
}

fn apply(source: &str, changes: &[Change]) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    for change in changes {
        if lines.is_empty() {
            break;
        }
        let at = |l: usize| l % lines.len();
        match change {
            Change::ReplaceValue(l, w) => {
                let l = at(*l);
                let line = &lines[l];
                lines[l] = match line.find(": ") {
                    Some(i) => format!("{}: {w}", &line[..i]),
                    None => w.clone(),
                };
            }
            Change::DeleteLine(l) => {
                let l = at(*l);
                lines.remove(l);
            }
            Change::DuplicateLine(l) => {
                let l = at(*l);
                let copy = lines[l].clone();
                lines.insert(l, copy);
            }
            Change::Indent(l, n) => {
                let l = at(*l);
                lines[l] = format!("{}{}", " ".repeat(*n), lines[l]);
            }
            Change::Dedent(l) => {
                let l = at(*l);
                lines[l] = lines[l].trim_start().to_owned();
            }
            Change::InsertText(l, c, w) => {
                let l = at(*l);
                let line = &lines[l];
                let c = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(*c)
                    .unwrap_or(line.len());
                lines[l] = format!("{}{w}{}", &line[..c], &line[c..]);
            }
        }
    }
    lines.join("\n")
}

// 256 cases each by default; PROPTEST_CASES=100000 for a long run.
proptest! {
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(errors) = parse_bytes(&bytes, Path::new("p.yaml")) {
            prop_assert!(errors.problems.iter().all(|p| p.line >= 1 && p.column >= 1));
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            holds_for(text)?;
        }
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,300}") {
        holds_for(&text)?;
    }

    #[test]
    fn arbitrary_yaml_documents(doc in doc(), style in any::<u8>()) {
        let mut text = String::new();
        render(&doc, 0, style, &mut text);
        holds_for(&text)?;
    }

    #[test]
    fn valid_labs_with_changes(
        which in 0..VALID.len(),
        changes in prop::collection::vec(change(), 1..4),
    ) {
        holds_for(&apply(VALID[which], &changes))?;
    }
}

#[test]
fn the_labs_to_change_are_valid() {
    for source in VALID {
        if let Err(e) = parse(source, Path::new("v.yaml")) {
            panic!("{e}");
        }
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused_not_fatal() {
    let deep = format!("name: {}x{}\n", "[".repeat(5000), "]".repeat(5000));
    assert!(parse(&deep, Path::new("d.yaml")).is_err());
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_owned()
        } else {
            format!("a{}", i - 1)
        };
        bomb.push_str(&format!(
            "b{i}: &a{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let result = parse(&bomb, Path::new("bomb.yaml"));
    assert!(result.is_err());
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}
