//! The run end to end against the fakes of `runtime::fake`: whatever goes
//! wrong, and whenever Ctrl-C comes, teardown is called and the outcome
//! and problems say what happened.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::report::RunProblemKind;
use crate::run::result::Status;
use crate::run::steps::NoObserver;
use crate::runtime::fake::{FakeBackend, FakeLauncher, FakeRuntime, Moment, Script};
use crate::runtime::NoProgress;

const LAB: &str = r#"
name: life
nodes: { a: {}, b: {} }
links:
  - endpoints: ["a:eth1", "b:eth1"]
steps:
  - name: serve
    node: b
    exec: [serve]
    background: true
    ready: listening
  - name: probe
    node: a
    exec: [probe]
    expect:
      stdout:
        - contains: "reply"
  - name: stop serve
    wait: serve
"#;

/// Both containers of the lab, as the fake names them.
const CONTAINERS: [&str; 2] = ["labctl-life.a", "labctl-life.b"];

fn lab() -> Lab {
    crate::lab::parse(LAB, Path::new("/labs/life.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// A launcher whose programs behave: `serve` runs until SIGINT, `probe`
/// prints a reply.
fn launcher() -> FakeLauncher {
    FakeLauncher::default()
        .with(
            "serve",
            Script::prints(&["listening"]).until_interrupt("served 1"),
        )
        .with("probe", Script::prints(&["reply"]))
}

fn runtime(backend: FakeBackend) -> FakeRuntime {
    FakeRuntime {
        backend: FakeBackend {
            files: vec![("b".into(), "b.pcap".into(), b"pcap".to_vec())],
            ..backend
        },
        launcher: launcher(),
        ..Default::default()
    }
}

struct Done {
    report: RunReport,
    _dir: tempfile::TempDir,
}

impl Done {
    fn kinds(&self) -> Vec<RunProblemKind> {
        self.report.problems.iter().map(|p| p.kind).collect()
    }

    fn statuses(&self) -> Vec<Status> {
        self.report.steps.iter().map(|s| s.status).collect()
    }

    fn messages(&self) -> String {
        let all: Vec<&str> = self
            .report
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect();
        all.join("\n")
    }
}

/// Runs the lab in a fresh run directory; `prepare` may spoil it first.
async fn run_with(
    runtime: &FakeRuntime,
    interrupts: &Interrupts,
    prepare: impl FnOnce(&Path),
) -> Done {
    run_lab_with(runtime, interrupts, lab(), prepare).await
}

async fn run_lab_with(
    runtime: &FakeRuntime,
    interrupts: &Interrupts,
    lab: Lab,
    prepare: impl FnOnce(&Path),
) -> Done {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    prepare(&run_dir);
    let options = RunOptions {
        instance: Some(Instance::of_lab("life")),
        datalink: None,
        keep: false,
        keep_going: false,
        runs_dir: dir.path().to_owned(),
        copies: Vec::new(),
    };
    let run = Run {
        options: &options,
        interrupts,
        instance: Instance::of_lab("life"),
        clock: Instant::now(),
    };
    let report = run
        .run_in(
            runtime,
            lab,
            run_dir,
            SystemTime::now(),
            &NoProgress,
            &NoObserver,
        )
        .await;
    Done { report, _dir: dir }
}

async fn run(runtime: &FakeRuntime) -> Done {
    run_with(runtime, &Interrupts::default(), |_| {}).await
}

/// Teardown (or the rollback) removed every container and nothing is left.
fn assert_torn_down(runtime: &FakeRuntime) {
    assert_eq!(runtime.backend.removed(), CONTAINERS);
    assert!(runtime.backend.containers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_clean_run_keeps_outputs_and_files_then_tears_down() {
    let rt = runtime(FakeBackend::default());
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Passed, "{}", done.messages());
    assert!(done.report.problems.is_empty(), "{}", done.messages());
    assert_eq!(
        done.statuses(),
        [Status::Passed, Status::Passed, Status::Passed]
    );
    let dir = &done.report.run_dir;
    assert_eq!(
        std::fs::read_to_string(dir.join("steps/02-probe.stdout")).unwrap(),
        "reply\n"
    );
    assert_eq!(std::fs::read(dir.join("nodes/b/b.pcap")).unwrap(), b"pcap");
    for file in [REPORT_JUNIT, REPORT_JSON, SUMMARY] {
        assert!(dir.join(file).exists(), "{file}");
    }
    let phases: Vec<&str> = done.report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        phases,
        [
            "image",
            "containers",
            "links",
            "steps",
            "artifacts",
            "teardown"
        ]
    );
    assert_eq!(
        done.report.removed,
        ["container labctl-life.a", "container labctl-life.b"]
    );
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_failing_step_fails_the_run_and_still_tears_down() {
    let rt = FakeRuntime {
        launcher: launcher().with("probe", Script::prints(&["no answer"]).exits(1)),
        ..runtime(FakeBackend::default())
    };
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Failed);
    assert_eq!(
        done.statuses(),
        [Status::Passed, Status::Failed, Status::Skipped]
    );
    assert!(done.report.problems.is_empty(), "{}", done.messages());
    // The evidence of a failed run is kept.
    assert!(done.report.run_dir.join("nodes/b/b.pcap").exists());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_nodes_command_that_failed_on_its_own_fails_the_run_after_every_command_is_stopped() {
    use crate::runtime::console::Ending;
    let rt = runtime(FakeBackend {
        commands: vec![("a".into(), Some(Ending::Exited(3))), ("b".into(), None)],
        ..Default::default()
    });
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Failed);
    assert_eq!(done.kinds(), [RunProblemKind::NodeCommand]);
    let console = done.report.run_dir.join("nodes/a/console.log");
    assert_eq!(
        done.messages(),
        format!(
            "node a: its command `daemon --config 'a b'` exited with status 3 before the steps \
             ended; its output is in {}",
            console.display()
        )
    );
    assert_eq!(*rt.backend.stopped.lock().unwrap(), ["a", "b"]);
    assert!(done.statuses().iter().all(|s| *s == Status::Passed));
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_command_that_exited_0_or_runs_until_stopped_is_no_problem() {
    use crate::runtime::console::Ending;
    let rt = runtime(FakeBackend {
        commands: vec![("a".into(), Some(Ending::Exited(0))), ("b".into(), None)],
        ..Default::default()
    });
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Passed, "{}", done.messages());
    assert!(done.kinds().is_empty());
}

#[tokio::test]
async fn a_failing_evidence_copy_is_reported_and_the_verdict_holds() {
    let rt = runtime(FakeBackend {
        fail_copy: Some("a".into()),
        ..Default::default()
    });
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Passed);
    assert_eq!(done.kinds(), [RunProblemKind::Evidence]);
    assert!(
        done.messages()
            .starts_with("artifacts of node a: copying /lab/out out of container labctl-life.a"),
        "{}",
        done.messages()
    );
    // The other node's files are still copied.
    assert!(done.report.run_dir.join("nodes/b/b.pcap").exists());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_write_error_in_the_run_directory_still_tears_down_and_keeps_every_problem() {
    // `steps` is a file: the step outputs cannot be written, as on a full
    // or read-only disk. And node a's files cannot be read.
    let rt = runtime(FakeBackend {
        fail_copy: Some("a".into()),
        ..Default::default()
    });
    let done = run_with(&rt, &Interrupts::default(), |dir| {
        std::fs::write(dir.join("steps"), "in the way").unwrap();
    })
    .await;
    assert_eq!(done.report.outcome, Outcome::Error);
    // The write error, then the evidence note found after it: neither
    // overwrites the other.
    assert_eq!(
        done.kinds(),
        [RunProblemKind::Write, RunProblemKind::Evidence]
    );
    let steps = done.report.run_dir.join("steps");
    assert!(
        done.report.problems[0]
            .message
            .starts_with(&format!("writing {}", steps.display())),
        "{}",
        done.messages()
    );
    // The steps themselves passed, and the reports were still written.
    assert_eq!(
        done.statuses(),
        [Status::Passed, Status::Passed, Status::Passed]
    );
    assert!(done.report.run_dir.join(REPORT_JSON).exists());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_failed_deploy_rolls_back_and_runs_nothing() {
    let rt = runtime(FakeBackend {
        fail_node: Some("b".into()),
        ..Default::default()
    });
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Error);
    assert_eq!(done.kinds(), [RunProblemKind::Deploy]);
    assert!(
        done.messages().starts_with("deploying lab life: node b"),
        "{}",
        done.messages()
    );
    assert!(rt.launcher.launched.lock().unwrap().is_empty());
    assert_eq!(done.statuses(), Vec::<Status>::new());
    assert!(done.report.run_dir.join(REPORT_JUNIT).exists());
    assert_torn_down(&rt);
}

/// The lab with node b in an image of its own.
fn lab_with_image(image: &str) -> Lab {
    let text = LAB.replace("b: {}", &format!("b: {{ image: \"{image}\" }}"));
    crate::lab::parse(&text, Path::new("/labs/life.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_node_image_the_daemon_does_not_have_is_an_error_before_any_node() {
    let rt = runtime(FakeBackend::default());
    let done = run_lab_with(&rt, &Interrupts::default(), lab_with_image("frr:9"), |_| {}).await;
    // Outcome::Error: labctl run exits 3.
    assert_eq!(done.report.outcome, Outcome::Error);
    assert_eq!(done.kinds(), [RunProblemKind::Deploy]);
    assert!(
        done.messages()
            .contains("image frr:9 of node b is not in the local Docker image store"),
        "{}",
        done.messages()
    );
    assert!(rt.backend.started.lock().unwrap().is_empty());
    assert!(rt.launcher.launched.lock().unwrap().is_empty());
    assert_eq!(done.statuses(), Vec::<Status>::new());

    // With the image in the store, the same lab runs.
    let rt = runtime(FakeBackend {
        images: vec!["frr:9".into()],
        ..Default::default()
    });
    let done = run_lab_with(&rt, &Interrupts::default(), lab_with_image("frr:9"), |_| {}).await;
    assert_eq!(done.report.outcome, Outcome::Passed, "{}", done.messages());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn ctrl_c_during_the_deploy_rolls_back_and_is_interrupted() {
    let interrupts = Interrupts::default();
    let rt = runtime(FakeBackend {
        interrupt: Some((Moment::StartNode, interrupts.interrupt.clone())),
        ..Default::default()
    });
    let done = run_with(&rt, &interrupts, |_| {}).await;
    assert_eq!(done.report.outcome, Outcome::Interrupted);
    assert_eq!(done.kinds(), [RunProblemKind::Interrupted]);
    assert!(rt.launcher.launched.lock().unwrap().is_empty());
    // The deploy holds the run's own Interrupts: it sees the signal at
    // once, so the node after the one under way is never created.
    assert_eq!(*rt.backend.started.lock().unwrap(), ["a"]);
    assert_eq!(rt.backend.removed(), ["labctl-life.a"]);
    assert!(rt.backend.containers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ctrl_c_during_the_steps_stops_them_keeps_the_evidence_and_tears_down() {
    let interrupts = Interrupts::default();
    let rt = FakeRuntime {
        // The probe would run for a minute.
        launcher: launcher().with(
            "probe",
            Script::prints(&["reply"]).after(Duration::from_secs(60)),
        ),
        ..runtime(FakeBackend::default())
    };
    let interrupt = interrupts.interrupt.clone();
    let press = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        interrupt.cancel();
    });
    let done = run_with(&rt, &interrupts, |_| {}).await;
    press.await.unwrap();
    assert_eq!(done.report.outcome, Outcome::Interrupted);
    assert_eq!(
        done.statuses(),
        [Status::Passed, Status::Interrupted, Status::Skipped]
    );
    // The step says it was interrupted; no problem is added for it.
    assert!(done.report.problems.is_empty(), "{}", done.messages());
    assert!(done.report.run_dir.join("nodes/b/b.pcap").exists());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn ctrl_c_during_the_evidence_stops_the_copy_and_tears_down() {
    let interrupts = Interrupts::default();
    let rt = runtime(FakeBackend {
        interrupt: Some((Moment::CopyOut, interrupts.interrupt.clone())),
        ..Default::default()
    });
    let done = run_with(&rt, &interrupts, |_| {}).await;
    assert_eq!(done.report.outcome, Outcome::Interrupted);
    assert_eq!(done.kinds(), [RunProblemKind::Interrupted]);
    assert!(
        done.messages().contains("the files of node a"),
        "{}",
        done.messages()
    );
    assert!(!done.report.run_dir.join("nodes/b/b.pcap").exists());
    assert_eq!(
        done.statuses(),
        [Status::Passed, Status::Passed, Status::Passed]
    );
    assert_torn_down(&rt);
}

#[tokio::test]
async fn ctrl_c_during_teardown_lets_it_finish() {
    let interrupts = Interrupts::default();
    let rt = runtime(FakeBackend {
        interrupt: Some((Moment::Remove, interrupts.interrupt.clone())),
        ..Default::default()
    });
    let done = run_with(&rt, &interrupts, |_| {}).await;
    assert_eq!(done.report.outcome, Outcome::Interrupted);
    assert_eq!(done.kinds(), [RunProblemKind::Interrupted]);
    assert!(done.report.run_dir.join("nodes/b/b.pcap").exists());
    assert_torn_down(&rt);
}

#[tokio::test]
async fn a_signal_no_phase_saw_still_makes_the_run_interrupted() {
    let done = run(&runtime(FakeBackend::default())).await;
    assert_eq!(done.report.outcome, Outcome::Passed);
    let options = RunOptions {
        instance: Some(Instance::of_lab("life")),
        datalink: None,
        keep: false,
        keep_going: false,
        runs_dir: done._dir.path().to_owned(),
        copies: Vec::new(),
    };
    let interrupts = Interrupts::default();
    interrupts.interrupt.cancel();
    let run = Run {
        options: &options,
        interrupts: &interrupts,
        instance: Instance::of_lab("life"),
        clock: Instant::now(),
    };
    let report = run.finish(done.report.clone());
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(
        report.problems.iter().map(|p| p.kind).collect::<Vec<_>>(),
        [RunProblemKind::Interrupted]
    );
}

#[tokio::test]
async fn keep_leaves_the_lab_up() {
    let rt = runtime(FakeBackend::default());
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        instance: Some(Instance::of_lab("life")),
        datalink: None,
        keep: true,
        keep_going: false,
        runs_dir: dir.path().join("runs"),
        copies: vec![(Format::Junit, dir.path().join("junit.xml"))],
    };
    let report = run_lab(
        &rt,
        lab(),
        &options,
        &Interrupts::default(),
        &NoProgress,
        &NoObserver,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Passed);
    assert!(rt.backend.removed().is_empty());
    assert_eq!(rt.backend.containers.lock().unwrap().len(), 2);
    assert!(dir.path().join("junit.xml").exists());
    assert!(report.run_dir.starts_with(dir.path().join("runs")));
}

#[test]
fn run_dirs_are_named_by_lab_and_time_and_never_reused() {
    let runs = tempfile::tempdir().unwrap();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let a = make_run_dir(runs.path(), "icmp", t).unwrap();
    let b = make_run_dir(runs.path(), "icmp", t).unwrap();
    assert_eq!(a.file_name().unwrap(), "icmp-20261118T110640");
    assert_eq!(b.file_name().unwrap(), "icmp-20261118T110640-1");
}

#[tokio::test]
async fn docker_dying_mid_run_says_the_lab_may_be_up_and_how_to_remove_it_keeping_every_problem() {
    // The daemon stops answering when the evidence is copied: the copy and
    // the whole teardown fail.
    let rt = runtime(FakeBackend {
        dies_at: Some(Moment::CopyOut),
        ..Default::default()
    });
    let done = run(&rt).await;
    assert_eq!(done.report.outcome, Outcome::Error);
    // The copy's problem first, then teardown's, then what to do: the
    // later ones add to the earlier, never replace them.
    assert_eq!(
        done.kinds(),
        [
            RunProblemKind::Evidence,
            RunProblemKind::Evidence,
            RunProblemKind::Teardown,
            RunProblemKind::Teardown
        ],
        "{}",
        done.messages()
    );
    assert!(
        done.report.problems[2]
            .message
            .starts_with("teardown: listing the lab's containers: error trying to connect"),
        "{}",
        done.messages()
    );
    assert_eq!(
        done.report.problems[3].message,
        "lab life may still be up (teardown could not finish): once the runtime answers again \
         (for Docker: the daemon is back), remove it with `labctl destroy life`"
    );
    // The steps' verdicts stay.
    assert_eq!(done.statuses(), [Status::Passed; 3]);
    // Nothing was removed: the containers are still there.
    assert!(rt.backend.removed().is_empty());
    assert_eq!(rt.backend.containers.lock().unwrap().len(), 2);
    let text = crate::report::summary(&done.report);
    assert!(text.contains("`labctl destroy life`"), "{text}");
}
