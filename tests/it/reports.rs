//! Reports CI tools accept (issue 16.3): every JUnit file labctl writes
//! validates against the Jenkins xunit plugin's junit-10.xsd (a copy in
//! tests/schemas/) with `xmllint --schema`, and carries timestamp,
//! hostname and a failure type.

use std::path::Path;
use std::process::Command;

use crate::support::lab::{assert_nothing_left, labctl, stderr, stdout, TestLab, PING_PAIR_LAB};
use crate::support::skip::skip;

/// The ping pair, then a step whose output is not checked.
fn lab() -> String {
    format!("{PING_PAIR_LAB}  - name: never\n    node: a\n    exec: [lab-ping, --version]\n")
}

fn xsd() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd")
}

/// `xmllint --schema`; `None` (with the reason printed) where xmllint is
/// missing, so the test is visibly skipped, never passed by accident.
fn xmllint(file: &Path) -> Option<std::process::Output> {
    match Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd())
        .arg(file)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            skip(format!(
                "xmllint is not installed ({e}); ci/setup installs libxml2-utils"
            ));
            None
        }
    }
}

#[test]
fn junit_of_one_and_of_many_runs_validates_against_junit_10_xsd() {
    let good = TestLab::new("jgood", &lab());
    // A failed check (failure) and a skipped step.
    let bad = TestLab::new("jbad", &lab().replace("2 received", "9 received"));
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.xml");
    let many = dir.path().join("many.xml");
    let runs = dir.path().join("runs");
    let out = labctl(&[
        "run",
        bad.path(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--junit",
        one.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = labctl(&[
        "run",
        good.path(),
        bad.path(),
        "--datalink",
        "as-written,af_xdp",
        "--jobs",
        "2",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--junit",
        many.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    for file in [&one, &many] {
        let xml = std::fs::read_to_string(file).unwrap();
        assert!(xml.contains(" timestamp=\""), "{xml}");
        assert!(xml.contains(" hostname=\""), "{xml}");
        let failure = xml
            .lines()
            .find(|l| l.contains("<failure "))
            .expect("a failure");
        assert!(failure.contains(" type=\"check\""), "{failure}");
        assert!(xml.contains("<skipped"), "{xml}");
        let head = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
        assert!(!head.contains("skipped="), "{head}");
        let Some(lint) = xmllint(file) else { return };
        assert!(
            lint.status.success(),
            "{} does not validate against junit-10.xsd:\n{}\n{xml}",
            file.display(),
            stderr(&lint)
        );
    }
    assert_nothing_left(&good.name);
    assert_nothing_left(&bad.name);
}

#[test]
fn the_xsd_check_can_fail() {
    // What quick-junit writes by itself (skipped on <testsuites>) is
    // rejected: the check above is not vacuous.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.xml");
    std::fs::write(
        &file,
        "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"0\" skipped=\"0\" failures=\"0\" errors=\"0\"></testsuites>\n",
    )
    .unwrap();
    let Some(lint) = xmllint(&file) else { return };
    assert!(!lint.status.success(), "{}", stderr(&lint));
}

/// Validates each of `documents` (JSON files) against the JSON Schema at
/// `schema` with Python's jsonschema (Draft-07), independent of labctl's
/// serde and schemars; returns the validator's output.
fn jsonschema_validates(schema: &Path, documents: &[std::path::PathBuf]) -> std::process::Output {
    const SCRIPT: &str = "
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
bad = 0
for path in sys.argv[2:]:
    for e in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(path, list(e.absolute_path), e.message)
sys.exit(1 if bad else 0)
";
    // The interpreter apt installs python3-jsonschema for (ci/setup).
    Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .arg(schema)
        .args(documents)
        .output()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3 (ci/setup installs it): {e}"))
}

/// Every report.json under `dir`.
fn report_jsons(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(report_jsons(&path));
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            found.push(path);
        }
    }
    found
}

#[test]
fn report_json_of_real_runs_validates_against_schema_report() {
    let out = labctl(&["schema", "--report"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("report.schema.json");
    std::fs::write(&schema, &out.stdout).unwrap();

    let good = TestLab::new("sgood", &lab());
    let bad = TestLab::new("sbad", &lab().replace("2 received", "9 received"));
    let runs = dir.path().join("runs");
    let many = dir.path().join("many.json");
    let out = labctl(&[
        "run",
        good.path(),
        bad.path(),
        "--jobs",
        "2",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--json",
        many.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_nothing_left(&good.name);
    assert_nothing_left(&bad.name);

    // One passed and one failed run (a failed check, a skipped step).
    let reports = report_jsons(&runs);
    assert_eq!(reports.len(), 2, "{reports:?}");
    let outcomes: Vec<String> = reports
        .iter()
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(r).unwrap()).unwrap();
            assert_eq!(v["schema_version"], 3, "{}", r.display());
            v["outcome"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(
        outcomes.contains(&"passed".into()) && outcomes.contains(&"failed".into()),
        "{outcomes:?}"
    );
    // `--json` of many runs: each of its `runs` is a report.json.
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&many).unwrap()).unwrap();
    assert_eq!(all["schema_version"], 3);
    let mut documents = reports.clone();
    for (i, run) in all["runs"].as_array().unwrap().iter().enumerate() {
        let path = dir.path().join(format!("run-{i}.json"));
        std::fs::write(&path, run.to_string()).unwrap();
        documents.push(path);
    }
    assert_eq!(documents.len(), 4);
    let verdict = jsonschema_validates(&schema, &documents);
    assert!(
        verdict.status.success(),
        "report.json does not validate against `labctl schema --report`:\n{}{}",
        stdout(&verdict),
        stderr(&verdict)
    );

    // The check can fail: a report of another version, or with an outcome
    // the schema does not know, is refused.
    let mut wrong: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    wrong["schema_version"] = 1.into();
    wrong["outcome"] = "maybe".into();
    let wrong_path = dir.path().join("wrong.json");
    std::fs::write(&wrong_path, wrong.to_string()).unwrap();
    let verdict = jsonschema_validates(&schema, &[wrong_path]);
    assert_eq!(verdict.status.code(), Some(1), "{}", stderr(&verdict));
    let said = stdout(&verdict);
    assert!(
        said.contains("['schema_version']") && said.contains("['outcome']"),
        "{said}"
    );
}
