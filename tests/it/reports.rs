//! Reports CI tools accept (issue 16.3): every JUnit file labctl writes
//! validates against the Jenkins xunit plugin's junit-10.xsd (a copy in
//! tests/schemas/) with `xmllint --schema`, and carries timestamp,
//! hostname and a failure type.

use std::path::Path;
use std::process::Command;

use crate::support::lab::{assert_nothing_left, labctl, stderr, stdout, TestLab, PING_PAIR_LAB};

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
            eprintln!("SKIPPED: xmllint is not installed ({e}); ci/setup installs libxml2-utils");
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
