//! Many labs and datalinks in one `labctl run` (issue 16.1), through the
//! real binary and the real Docker daemon.

use std::path::Path;

use crate::support::lab::{assert_nothing_left, labctl, stderr, stdout, TestLab};

use crate::support::lab::PING_PAIR_LAB as PING_LAB;

fn repo_lab(path: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    text.lines()
        .map(|l| {
            if l.starts_with("name:") {
                "name: {name}"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn dir_of(lab: &TestLab) -> &str {
    lab.file.parent().unwrap().to_str().unwrap()
}

#[test]
fn labs_by_file_glob_and_directory_on_two_datalinks_in_parallel() {
    let one = TestLab::new("mone", PING_LAB);
    let two = TestLab::new("mtwo", PING_LAB);
    let three = TestLab::new("mthr", PING_LAB);
    let out_dir = tempfile::tempdir().unwrap();
    let junit = out_dir.path().join("junit.xml");
    let json = out_dir.path().join("report.json");
    let runs = out_dir.path().join("runs");
    let glob = format!("{}/*.yaml", dir_of(&two));
    let out = labctl(&[
        "run",
        one.path(),
        &glob,
        dir_of(&three),
        "--datalink",
        "af_packet,af_xdp",
        "--jobs",
        "3",
        "--runs-dir",
        runs.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let said = format!("{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        stdout(&out).contains("labs: 6 runs, 6 passed, 0 failed, 0 skipped"),
        "{said}"
    );
    for lab in [&one, &two, &three] {
        for d in ["af_packet", "af_xdp"] {
            let line = format!("PASS  labctl run {} --datalink {d}", lab.name);
            assert!(stdout(&out).contains(&line), "{line}\n{said}");
        }
    }
    // One JUnit file, one test suite per lab × datalink.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 6, "{xml}");
    assert!(
        xml.contains(&format!(
            r#"<testsuite name="labctl run {} --datalink af_xdp""#,
            two.name
        )),
        "{xml}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 6, "{report}");
    // Six run directories, and the call's page in one of its own: a
    // matrix whose cells link to each run's page.
    let dirs: Vec<std::path::PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 7, "{dirs:?}");
    let page_dir = dirs
        .iter()
        .find(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("many-")
        })
        .expect("the call's page directory");
    let page = std::fs::read_to_string(page_dir.join("report.html")).unwrap();
    assert!(
        stdout(&out).contains(&format!(
            "report: {}",
            page_dir.join("report.html").display()
        )),
        "{said}"
    );
    assert!(page.contains("<th>af_packet</th><th>af_xdp</th>"), "{page}");
    for dir in dirs.iter().filter(|d| *d != page_dir) {
        assert!(dir.join("report.html").exists(), "{dir:?}");
        let link = format!(
            "href=\"../{}/report.html\"",
            dir.file_name().unwrap().to_string_lossy()
        );
        assert!(page.contains(&link), "{link} in {page}");
    }
    for lab in [&one, &two, &three] {
        assert_nothing_left(&lab.name);
    }
}

#[test]
fn the_worst_outcome_is_the_exit_code_and_netmap_is_skipped_where_missing() {
    let good = TestLab::new("mgood", PING_LAB);
    let bad = TestLab::new("mbad", &PING_LAB.replace("2 received", "3 received"));
    let netmap = TestLab::new("mnm", &repo_lab("labs/icmp-netmap.yaml"));
    let out_dir = tempfile::tempdir().unwrap();
    let junit = out_dir.path().join("junit.xml");
    let out = labctl(&[
        "run",
        good.path(),
        bad.path(),
        netmap.path(),
        "--runs-dir",
        out_dir.path().join("runs").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let said = format!("{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed check is exit 1: {said}"
    );
    assert!(
        stdout(&out).contains(&format!("PASS  labctl run {}", good.name)),
        "{said}"
    );
    assert!(
        stdout(&out).contains(&format!("FAIL  labctl run {}", bad.name)),
        "{said}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    if Path::new("/dev/netmap").exists() {
        eprintln!("/dev/netmap exists: the netmap lab ran");
    } else {
        assert!(
            stdout(&out).contains(&format!("SKIP  labctl run {}", netmap.name)),
            "{said}"
        );
        assert!(stdout(&out).contains("/dev/netmap"), "{said}");
        assert!(
            stdout(&out).contains("1 passed, 1 failed, 1 skipped"),
            "{said}"
        );
        // Skipped, never passed, in the JUnit file too.
        assert!(xml.contains("<skipped"), "{xml}");
    }
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert!(xml.contains("<failure"), "{xml}");
    assert_nothing_left(&good.name);
    assert_nothing_left(&bad.name);
}

#[test]
fn validate_takes_directories_and_globs_and_an_invalid_file_stops_run_before_anything() {
    let labs = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
    let out = labctl(&["validate", labs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let count = std::fs::read_dir(&labs)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yaml")
        })
        .count();
    assert_eq!(stdout(&out).lines().count(), count, "{}", stdout(&out));
    let glob = format!("{}/icmp*.yaml", labs.display());
    let out = labctl(&["validate", &glob]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("icmp.yaml"), "{}", stdout(&out));
    let out = labctl(&["validate", "/nonexistent/*.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no lab file matches"),
        "{}",
        stderr(&out)
    );

    let good = TestLab::new("mval", PING_LAB);
    let broken = TestLab::new("mbrk", "name: {name}\nnodes: 12\n");
    let out = labctl(&["run", good.path(), broken.path()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(crate::support::lab::containers_of(&good.name).is_empty());
    // --name is for one run.
    let out = labctl(&[
        "run",
        good.path(),
        "--datalink",
        "af_packet,af_xdp",
        "--name",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
