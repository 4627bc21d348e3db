//! The lab file through the real `labctl` binary: `validate` on the
//! invalid-lab corpus, the example labs and the examples of
//! docs/lab-format.md; `graph` rendered by Graphviz; `schema`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::Command as Cmd;
use predicates::prelude::*;

use crate::support;

const EXIT_INVALID: i32 = 2;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `labctl ARGS` run from the repository's root, so paths in messages are
/// the relative ones given.
fn labctl(args: &[&str]) -> Output {
    labctl_in(root(), args)
}

fn labctl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::bin("labctl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run labctl: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The files of `dir` (relative to the root) ending in `extension`, sorted.
fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| Path::new(dir).join(path.file_name().unwrap_or_default()))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_labs_get_exactly_the_expected_messages() {
    let labs = files("tests/labs/invalid", "yaml");
    assert!(labs.len() >= 15, "only {} invalid labs", labs.len());
    let mut failures = Vec::new();
    for lab in &labs {
        let expected_file = root().join(lab.with_extension("expected"));
        let expected = fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        let path = lab.to_string_lossy();
        let out = labctl(&["validate", &path]);
        let stderr = text(&out.stderr);
        if out.status.code() != Some(EXIT_INVALID) || !out.stdout.is_empty() || stderr != expected {
            failures.push(format!(
                "{path}: exit {:?}, stdout {:?}\n--- expected\n{expected}--- got\n{stderr}",
                out.status.code(),
                text(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn several_problems_of_a_file_are_reported_in_one_run() {
    let out = labctl(&["validate", "tests/labs/invalid/several-problems.yaml"]);
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 8, "{stderr}");
    // A misspelled key, names, addresses, nodes, regexes and steps, each
    // on its own line with its own position.
    for (line, what) in [
        (2, "invalid lab name"),
        (5, "unknown key `imgae`"),
        (9, "uses netmap on one end only"),
        (10, "is already used by"),
        (11, "unknown node \"pongr\""),
        (17, "invalid regex"),
        (24, "count applies to match checks only"),
        (26, "which is not a background step"),
    ] {
        let prefix = format!("tests/labs/invalid/several-problems.yaml:{line}:");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(what)),
            "no {what:?} at line {line}:\n{stderr}"
        );
    }
}

#[test]
fn eight_mistakes_of_mixed_kinds_are_reported_in_one_run() {
    // Issue 16.4: wrong types and bad enum values used to hide the checks
    // of meaning (5, then 2 more, then the last). The exact lines are in
    // the corpus (eight-mistakes.expected).
    let out = labctl(&["validate", "tests/labs/invalid/eight-mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 8, "{stderr}");
    for (line, what) in [
        (4, "`datalink` is \"afxdp\""),
        (13, "`mtu` of link 1 is \"jumbo\""),
        (12, "is not an address"),
        (20, "unknown node \"clinet\""),
        (23, "which is not a background step"),
    ] {
        let prefix = format!("tests/labs/invalid/eight-mistakes.yaml:{line}:");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(what)),
            "no {what:?} at line {line}:\n{stderr}"
        );
    }
}

#[test]
fn validate_goes_on_after_an_invalid_file() {
    let out = labctl(&[
        "validate",
        "labs/icmp.yaml",
        "tests/labs/invalid/unknown-key.yaml",
        "labs/two-pairs.yaml",
    ]);
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    assert_eq!(
        text(&out.stdout),
        "labs/icmp.yaml: valid lab `icmp`: 2 nodes, 1 link, 5 steps, datalinks: af_packet\n\
         labs/two-pairs.yaml: valid lab `two-pairs`: 3 nodes, 2 links, 6 steps, datalinks: af_packet\n"
    );
    let expected = fs::read_to_string(root().join("tests/labs/invalid/unknown-key.expected"))
        .unwrap_or_default();
    assert_eq!(text(&out.stderr), expected);
}

#[test]
fn every_lab_in_labs_is_valid() {
    let labs = files("labs", "yaml");
    assert!(labs.len() >= 2, "{labs:?}");
    let paths: Vec<String> = labs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = labctl(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{stdout}");
    for (line, path) in lines.iter().zip(&paths) {
        assert!(
            line.starts_with(&format!("{path}: valid lab `")) && line.contains(" nodes, "),
            "{line}"
        );
    }
}

/// The ```yaml blocks of a document (e.g. docs/lab-format.md), with their
/// info string, and the block that follows each.
fn doc_blocks(document: &str) -> Vec<(String, String, Option<String>)> {
    let doc = fs::read_to_string(root().join(document)).unwrap_or_default();
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    (0..blocks.len())
        .filter(|&i| blocks[i].0.starts_with("yaml"))
        .map(|i| {
            let (info, body) = blocks[i].clone();
            (info, body, blocks.get(i + 1).map(|b| b.1.clone()))
        })
        .collect()
}

#[test]
fn the_examples_of_the_docs_are_valid_and_the_error_examples_exact() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blocks = doc_blocks("docs/lab-format.md");
    let valid = blocks.iter().filter(|b| b.0 == "yaml").count();
    let invalid = blocks.iter().filter(|b| b.0 == "yaml invalid").count();
    assert!(
        valid >= 6 && invalid >= 5,
        "{valid} valid, {invalid} invalid examples"
    );
    // The host paths that the binds example mounts, beside the lab file.
    fs::create_dir_all(dir.path().join("build")).unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(dir.path().join("config")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.path().join("build/myfwd"), "").unwrap_or_else(|e| panic!("{e}"));
    // The TLS directory of the hosts example (only its files' presence is
    // checked at validation).
    fs::create_dir_all(dir.path().join("certs/b")).unwrap_or_else(|e| panic!("{e}"));
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        fs::write(dir.path().join("certs/b").join(file), "").unwrap_or_else(|e| panic!("{e}"));
    }
    for (info, body, next) in &blocks {
        fs::write(dir.path().join("lab.yaml"), body).unwrap_or_else(|e| panic!("{e}"));
        let out = labctl_in(dir.path(), &["validate", "lab.yaml"]);
        match info.as_str() {
            "yaml" => assert_eq!(
                out.status.code(),
                Some(0),
                "this example of the docs is invalid:\n{body}\n{}",
                text(&out.stderr)
            ),
            "yaml invalid" => {
                assert_eq!(out.status.code(), Some(EXIT_INVALID), "{body}");
                assert_eq!(
                    Some(text(&out.stderr)),
                    next.clone(),
                    "the docs show other messages for:\n{body}"
                );
            }
            other => panic!("unknown kind of example {other:?}"),
        }
    }
}

#[test]
fn the_lab_in_the_readme_is_valid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blocks = doc_blocks("README.md");
    assert_eq!(blocks.len(), 1, "the README shows one lab");
    for (_, body, _) in &blocks {
        fs::write(dir.path().join("lab.yaml"), body).unwrap_or_else(|e| panic!("{e}"));
        let out = labctl_in(dir.path(), &["validate", "lab.yaml"]);
        assert_eq!(out.status.code(), Some(0), "{body}\n{}", text(&out.stderr));
    }
}

#[test]
fn the_dot_graph_renders_and_names_every_node() {
    for lab in files("labs", "yaml") {
        let loaded = labctl::lab::load(&root().join(&lab)).unwrap_or_else(|e| panic!("{e}"));
        let graph = labctl(&["graph", &lab.to_string_lossy()]);
        assert_eq!(graph.status.code(), Some(0), "{}", text(&graph.stderr));
        assert!(text(&graph.stdout).starts_with("graph "));

        let mut dot = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Graphviz's dot (ci/setup installs it): {e}"));
        dot.stdin
            .take()
            .map(|mut stdin| stdin.write_all(&graph.stdout))
            .unwrap_or_else(|| panic!("no stdin"))
            .unwrap_or_else(|e| panic!("{e}"));
        let svg = dot.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        assert!(svg.status.success(), "dot: {}", text(&svg.stderr));
        assert!(svg.stderr.is_empty(), "dot warns: {}", text(&svg.stderr));
        let svg = text(&svg.stdout);
        assert!(svg.contains("<svg"), "{svg}");
        let texts = svg_texts(&svg);
        for node in loaded.nodes() {
            assert!(
                texts.contains(&node.name),
                "{}: the SVG does not name node {} in {texts:?}",
                lab.display(),
                node.name
            );
            for end in loaded.interfaces_of(&node.name) {
                assert!(
                    texts
                        .iter()
                        .any(|t| t.starts_with(&format!("{} ", end.interface))),
                    "{}: the SVG does not name {} in {texts:?}",
                    lab.display(),
                    end.label()
                );
            }
        }
    }
}

/// The text of every `<text>` element of an SVG, XML entities decoded.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|element| {
            let content = element.split_once('>')?.1.split_once("</text>")?.0;
            Some(decode_entities(content))
        })
        .collect()
}

fn decode_entities(text: &str) -> String {
    let mut decoded = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        decoded.push_str(&rest[..start]);
        let Some(end) = rest[start..].find(';') else {
            break;
        };
        let entity = &rest[start + 1..start + end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32),
        };
        decoded.extend(c);
        rest = &rest[start + end + 1..];
    }
    decoded.push_str(rest);
    decoded
}

#[test]
fn the_mermaid_graph_has_a_line_per_node_and_per_link() {
    let out = labctl(&["graph", "--format", "mermaid", "labs/two-pairs.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"flowchart LR"), "{stdout}");
    let nodes: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("[\""))
        .copied()
        .collect();
    assert_eq!(
        nodes,
        [
            "  n0[\"client\"]",
            "  n1[\"server-a\"]",
            "  n2[\"server-b\"]"
        ]
    );
    let links: Vec<&&str> = lines.iter().filter(|l| l.contains(" ---|\"")).collect();
    assert_eq!(links.len(), 2, "{stdout}");
    assert!(links[0].starts_with(
        "  n0 ---|\"to-a 198.18.1.1/24 02:00:00:00:01:01 af_packet — uplink 198.18.1.2/24"
    ));
    assert!(links[1].ends_with("\"| n2"), "{}", links[1]);
}

#[test]
fn graph_of_an_invalid_lab_prints_the_problems_and_no_graph() {
    Cmd::new(support::bin("labctl"))
        .current_dir(root())
        .args(["graph", "tests/labs/invalid/one-sided-netmap.yaml"])
        .assert()
        .code(EXIT_INVALID)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "tests/labs/invalid/one-sided-netmap.yaml:8:16: link 1 uses netmap on one end only",
        ));
}

#[test]
fn schema_is_draft_07_json_with_every_key() {
    let out = labctl(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["required"], serde_json::json!(["name", "nodes"]));
    assert_eq!(schema["properties"]["nodes"]["minProperties"], 1);
    let step = &schema["definitions"]["RawStep"]["properties"];
    for key in [
        "name",
        "node",
        "exec",
        "background",
        "ready",
        "timeout",
        "until",
        "every",
        "wait",
        "expect",
    ] {
        assert!(
            step[key]["description"].is_string(),
            "step key {key} is not documented"
        );
    }
    assert_eq!(
        schema["definitions"]["RawLink"]["properties"]["mtu"]["maximum"],
        65535
    );
}

/// Validates `lab` against the schema at `schema` with Python's jsonschema
/// (Draft-07, as the YAML language server) and returns its verdict.
fn python_validates(schema: &Path, lab: &Path) -> Output {
    const SCRIPT: &str = "
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(
    yaml.safe_load(open(sys.argv[2])))]
print('\\n'.join(errors))
sys.exit(1 if errors else 0)
";
    // The interpreter apt installs python3-jsonschema for (ci/setup).
    Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .arg(schema)
        .arg(lab)
        .output()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3 (ci/setup installs it): {e}"))
}

#[test]
fn an_independent_validator_agrees_with_the_schema() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let schema = dir.path().join("lab.schema.json");
    fs::write(&schema, labctl(&["schema"]).stdout).unwrap_or_else(|e| panic!("{e}"));

    let mut valid: Vec<PathBuf> = files("labs", "yaml")
        .iter()
        .map(|l| root().join(l))
        .collect();
    for (i, (info, body, _)) in doc_blocks("docs/lab-format.md").iter().enumerate() {
        if info == "yaml" {
            let path = dir.path().join(format!("doc-{i}.yaml"));
            fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
            valid.push(path);
        }
    }
    for lab in &valid {
        let out = python_validates(&schema, lab);
        assert_eq!(
            out.status.code(),
            Some(0),
            "jsonschema refuses {}: {}{}",
            lab.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let out = python_validates(&schema, &root().join("tests/labs/invalid/unknown-key.yaml"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("'adresses' was unexpected"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unreadable_files_and_bad_usage_exit_2() {
    Cmd::new(support::bin("labctl"))
        .args(["validate", "/nonexistent/lab.yaml"])
        .assert()
        .code(EXIT_INVALID)
        .stderr(predicate::str::starts_with(
            "labctl: cannot read lab file /nonexistent/lab.yaml: ",
        ));
    Cmd::new(support::bin("labctl"))
        .arg("validate")
        .assert()
        .code(EXIT_INVALID);
    Cmd::new(support::bin("labctl"))
        .args(["graph", "--format", "png", "labs/icmp.yaml"])
        .assert()
        .code(EXIT_INVALID);
}

/// `labctl validate PATH`, killed if it has not ended within 10 s (a hang
/// is what this guards against), with its exit code and stderr.
fn validate_in_time(path: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(support::bin("labctl"))
        .arg("validate")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run labctl: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("labctl validate {} did not end within 10 s", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (out.status.code(), text(&out.stderr))
}

#[test]
fn lab_files_that_are_not_small_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fifo = dir.path().join("lab.yaml");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("cannot run mkfifo: {e}"));
    assert!(status.success());
    let big = dir.path().join("big.yaml");
    // Sparse: 17 MiB of nothing on disk.
    fs::File::create(&big)
        .and_then(|f| f.set_len(17 * 1024 * 1024))
        .unwrap_or_else(|e| panic!("{e}"));
    for (path, says) in [
        (
            Path::new("/dev/zero").to_owned(),
            "it is a character device (expected a regular file)",
        ),
        // A directory is a set of labs to `validate` (its *.yaml); the
        // reader's refusal of one is a unit test of lab::read_file.
        (fifo.clone(), "it is a FIFO (expected a regular file)"),
    ] {
        let (code, stderr) = validate_in_time(&path);
        assert_eq!(code, Some(EXIT_INVALID), "{}: {stderr}", path.display());
        assert_eq!(
            stderr,
            format!("labctl: cannot read lab file {}: {says}\n", path.display())
        );
    }
    let (code, stderr) = validate_in_time(&big);
    assert_eq!(code, Some(EXIT_INVALID), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "labctl: lab file {} is 17.0 MiB (17825792 bytes), more than the 16 MiB a lab file \
             may have\n",
            big.display()
        )
    );
}
