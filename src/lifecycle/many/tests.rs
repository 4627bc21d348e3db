//! Many runs with the fake runtime: the plan, skips, Ctrl-C between runs,
//! the exit precedence and the copies that cannot be written.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::report::{RunProblem, RunProblemKind};
use crate::runtime::fake::{FakeLauncher, FakeRuntime, Script};

const LAB: &str = r#"
name: many
nodes: { a: {}, b: {} }
links:
  - endpoints: ["a:eth1", "b:eth1"]
steps:
  - name: probe
    node: a
    exec: [probe]
    expect:
      stdout:
        - contains: "reply"
"#;

fn lab(name: &str) -> Lab {
    let source = LAB.replace("name: many", &format!("name: {name}"));
    crate::lab::parse(&source, Path::new("/labs/many.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn runtime() -> FakeRuntime {
    FakeRuntime {
        launcher: FakeLauncher::default().with("probe", Script::prints(&["reply"])),
        ..Default::default()
    }
}

fn options(runs: &Path) -> RunOptions {
    RunOptions {
        instance: None,
        datalink: None,
        keep: false,
        keep_going: false,
        runs_dir: runs.to_owned(),
        copies: Vec::new(),
    }
}

#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl ManyObserver for Seen {
    fn starting(&self, index: usize, total: usize, label: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("start {index}/{total} {label}"));
    }
    fn skipped(&self, index: usize, total: usize, label: &str, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("skip {index}/{total} {label}: {reason}"));
    }
    fn ended(&self, label: &str, _end: &RunEnd) {
        self.0.lock().unwrap().push(format!("end {label}"));
    }
}

fn no_netmap() -> Option<String> {
    Some("/dev/netmap is missing".into())
}

fn netmap_here() -> Option<String> {
    None
}

#[test]
fn the_plan_is_every_lab_on_every_datalink_named_once() {
    let labs = [lab("one"), lab("two")];
    let labels = |datalinks: &[Option<DatalinkKind>]| -> Vec<String> {
        plan(&labs, datalinks).iter().map(Planned::label).collect()
    };
    assert_eq!(labels(&[]), ["labctl run one", "labctl run two"]);
    let xdp = Some(DatalinkKind::AfXdp);
    assert_eq!(
        labels(&[None, xdp, None, xdp]),
        [
            "labctl run one",
            "labctl run one --datalink af_xdp",
            "labctl run two",
            "labctl run two --datalink af_xdp"
        ]
    );
}

#[tokio::test]
async fn every_run_goes_and_a_netmap_run_without_netmap_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut planned = plan(&[lab("one")], &[None, Some(DatalinkKind::Netmap)]);
    planned.push(Planned {
        lab: lab("two"),
        datalink: None,
    });
    let seen = Seen::default();
    let ends = run_many_with(
        &runtime(),
        planned,
        &options(dir.path()),
        2,
        &Interrupts::default(),
        &seen,
        no_netmap,
    )
    .await;
    assert_eq!(ends.len(), 3);
    assert!(matches!(&ends[0], RunEnd::Ran(r) if r.outcome == Outcome::Passed));
    let RunEnd::NotRun(skipped) = &ends[1] else {
        panic!("{:?}", ends[1]);
    };
    assert_eq!(skipped.reason, "it uses netmap, and /dev/netmap is missing");
    assert!(matches!(&ends[2], RunEnd::Ran(r) if r.lab == "two"));
    let seen = seen.0.into_inner().unwrap();
    assert!(
        seen.contains(&"skip 2/3 labctl run one --datalink netmap: it uses netmap, and /dev/netmap is missing".into()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"start 3/3 labctl run two".into()),
        "{seen:?}"
    );

    // Where netmap works, the run goes.
    let ends = run_many_with(
        &runtime(),
        plan(&[lab("one")], &[Some(DatalinkKind::Netmap)]),
        &options(dir.path()),
        1,
        &Interrupts::default(),
        &Seen::default(),
        netmap_here,
    )
    .await;
    assert!(matches!(&ends[0], RunEnd::Ran(_)), "{ends:?}");
}

#[tokio::test]
async fn after_ctrl_c_no_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let interrupts = Interrupts::default();
    interrupts.interrupt.cancel();
    let ends = run_many_with(
        &runtime(),
        plan(&[lab("one"), lab("two")], &[]),
        &options(dir.path()),
        1,
        &interrupts,
        &Seen::default(),
        netmap_here,
    )
    .await;
    for end in &ends {
        assert!(
            matches!(end, RunEnd::NotRun(n) if n.reason == "not started: interrupted"),
            "{end:?}"
        );
    }
    let end = finish_many(&ends, true, &[]);
    assert_eq!(end.outcome, Outcome::Interrupted);
    assert!(
        end.summary
            .starts_with("labs: 2 runs, 0 passed, 0 failed, 2 skipped\n"),
        "{}",
        end.summary
    );
}

#[tokio::test]
async fn a_run_whose_directory_cannot_be_made_is_an_error_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let ends = run_many_with(
        &runtime(),
        plan(&[lab("one")], &[]),
        &options(&file.join("runs")),
        1,
        &Interrupts::default(),
        &Seen::default(),
        netmap_here,
    )
    .await;
    let RunEnd::Failed { label, error } = &ends[0] else {
        panic!("{ends:?}");
    };
    assert_eq!(label, "labctl run one");
    assert!(error.contains("a-file"), "{error}");
    assert_eq!(finish_many(&ends, false, &[]).outcome, Outcome::Error);
}

fn ran(lab: &str, outcome: Outcome) -> RunEnd {
    let mut report = crate::report::tests::report(Vec::new());
    report.lab = lab.into();
    report.outcome = outcome;
    if outcome == Outcome::Error {
        report
            .problems
            .push(RunProblem::new(RunProblemKind::Deploy, "no"));
    }
    report.duration = Duration::from_millis(1500);
    RunEnd::Ran(Box::new(report))
}

fn skipped(lab: &str) -> RunEnd {
    RunEnd::NotRun(NotRun {
        lab: lab.into(),
        datalink: Some(DatalinkKind::Netmap),
        reason: "it uses netmap, and no".into(),
    })
}

#[test]
fn the_worst_run_decides_then_ctrl_c_then_an_error() {
    let outcome = |ends: &[RunEnd], interrupted| finish_many(ends, interrupted, &[]).outcome;
    let passed = ran("a", Outcome::Passed);
    assert_eq!(
        outcome(&[passed.clone(), skipped("b")], false),
        Outcome::Passed
    );
    assert_eq!(
        outcome(&[passed.clone(), ran("b", Outcome::Failed)], false),
        Outcome::Failed
    );
    // Ctrl-C between runs makes the call interrupted, even if each ran.
    assert_eq!(
        outcome(std::slice::from_ref(&passed), true),
        Outcome::Interrupted
    );
    assert_eq!(
        outcome(&[ran("b", Outcome::Failed)], true),
        Outcome::Interrupted
    );
    // An error outranks an interruption.
    assert_eq!(
        outcome(&[ran("b", Outcome::Error), passed.clone()], true),
        Outcome::Error
    );
    let failed_dir = RunEnd::Failed {
        label: "c".into(),
        error: "writing runs: denied".into(),
    };
    assert_eq!(outcome(&[passed, failed_dir], false), Outcome::Error);
}

#[test]
fn the_summary_has_a_line_per_run() {
    let ends = [
        ran("a", Outcome::Passed),
        ran("b", Outcome::Failed),
        skipped("c"),
        RunEnd::Failed {
            label: "d".into(),
            error: "writing runs: denied".into(),
        },
    ];
    let end = finish_many(&ends, false, &[]);
    assert_eq!(
        end.summary,
        "labs: 4 runs, 1 passed, 2 failed, 1 skipped\n\
         \x20 PASS  labctl run a  1.50s  runs/icmp-r1\n\
         \x20 FAIL  labctl run b  1.50s  runs/icmp-r1\n\
         \x20 SKIP  labctl run c --datalink netmap  it uses netmap, and no\n\
         \x20 ERROR d  writing runs: denied\n"
    );
}

#[test]
fn the_copies_hold_every_run_and_one_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ends = [ran("a", Outcome::Passed), skipped("b")];
    let (junit, json) = (dir.path().join("out/all.xml"), dir.path().join("all.json"));
    let end = finish_many(
        &ends,
        false,
        &[(Format::Junit, junit.clone()), (Format::Json, json.clone())],
    );
    assert_eq!(end.outcome, Outcome::Passed);
    assert!(end.write_errors.is_empty(), "{:?}", end.write_errors);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("name=\"labctl run a\"")
            && xml.contains("name=\"labctl run b --datalink netmap\""),
        "{xml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["lab"], "a");
    assert_eq!(json["not_run"][0]["lab"], "b");

    // A copy that cannot be written fails the call, after the others
    // are written; an interruption is outranked.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let json = dir.path().join("again.json");
    let end = finish_many(
        &ends,
        true,
        &[
            (Format::Junit, blocked.join("all.xml")),
            (Format::Json, json.clone()),
        ],
    );
    assert_eq!(end.outcome, Outcome::Error);
    assert_eq!(end.write_errors.len(), 1);
    assert!(
        end.write_errors[0].to_string().contains("a-file"),
        "{}",
        end.write_errors[0]
    );
    assert!(json.exists());
}

#[test]
fn each_lab_runs_on_the_runtime_its_file_names_unless_the_flag_says() {
    let netns = |name: &str| {
        let source = LAB
            .replace("name: many", &format!("name: {name}"))
            .replace("nodes:", "runtime: netns\nnodes:");
        crate::lab::parse(&source, Path::new("/labs/n.yaml")).unwrap_or_else(|e| panic!("{e}"))
    };
    let labs = [lab("d1"), netns("n1"), lab("d2"), netns("n2")];
    let planned = plan(&labs, &[None, Some(DatalinkKind::AfXdp)]);
    let names = |group: &[Planned]| group.iter().map(Planned::label).collect::<Vec<_>>();

    let groups = by_runtime(planned.clone(), None);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].0, RuntimeKind::Docker);
    assert_eq!(
        names(&groups[0].1),
        [
            "labctl run d1",
            "labctl run d1 --datalink af_xdp",
            "labctl run d2",
            "labctl run d2 --datalink af_xdp"
        ]
    );
    assert_eq!(groups[1].0, RuntimeKind::Netns);
    assert_eq!(
        names(&groups[1].1),
        [
            "labctl run n1",
            "labctl run n1 --datalink af_xdp",
            "labctl run n2",
            "labctl run n2 --datalink af_xdp"
        ]
    );

    let flagged = by_runtime(planned, Some(RuntimeKind::Netns));
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].0, RuntimeKind::Netns);
    assert_eq!(flagged[0].1.len(), 8);
}

#[tokio::test]
async fn a_group_is_numbered_among_all_the_calls_runs() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let numbered = Numbered {
        inner: &seen,
        before: 3,
        total: 5,
    };
    let plan = plan(&[lab("two")], &[None, Some(DatalinkKind::AfXdp)]);
    run_many_with(
        &runtime(),
        plan,
        &options(dir.path()),
        1,
        &Interrupts::default(),
        &numbered,
        || None,
    )
    .await;
    let seen = seen.0.lock().unwrap();
    assert_eq!(
        seen.iter()
            .filter(|l| l.starts_with("start"))
            .collect::<Vec<_>>(),
        [
            "start 4/5 labctl run two",
            "start 5/5 labctl run two --datalink af_xdp"
        ],
    );
}
