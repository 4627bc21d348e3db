//! The step runner against a scripted fake launcher.

use std::time::Duration;

use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::lab::{Check, Expect, Pattern, Until};
use crate::runtime::fake::{FakeLauncher, Script};
use crate::runtime::process::Stream;

fn exec(name: &str, program: &str) -> Step {
    Step {
        name: name.into(),
        action: Action::Exec {
            node: "n".into(),
            argv: vec![program.into()],
            background: false,
            ready: None,
        },
        timeout: Duration::from_secs(5),
        expect: Expect::default(),
        until: None,
    }
}

fn background(name: &str, program: &str, ready: Option<&str>) -> Step {
    Step {
        action: Action::Exec {
            node: "n".into(),
            argv: vec![program.into()],
            background: true,
            ready: ready.map(|r| Regex::new(r).unwrap()),
        },
        ..exec(name, program)
    }
}

fn wait(name: &str, target: &str) -> Step {
    Step {
        action: Action::Wait {
            step: target.into(),
        },
        ..exec(name, "")
    }
}

fn expecting(mut step: Step, stdout: &[(&str, Option<usize>)]) -> Step {
    step.expect.stdout = stdout
        .iter()
        .map(|(re, count)| Check {
            pattern: Pattern::Match(Regex::new(re).unwrap()),
            count: *count,
            bounds: None,
        })
        .collect();
    step
}

fn timeout(mut step: Step, ms: u64) -> Step {
    step.timeout = Duration::from_millis(ms);
    step
}

async fn run_with(
    launcher: &FakeLauncher,
    steps: &[Step],
    options: StepOptions,
    interrupt: CancellationToken,
) -> Vec<StepResult> {
    let dir = tempfile::tempdir().unwrap();
    let engine = StepRunner::new(
        launcher,
        &NoObserver,
        options,
        interrupt,
        CancellationToken::new(),
        dir.path(),
    );
    engine.run(steps).await
}

async fn run(launcher: &FakeLauncher, steps: &[Step]) -> Vec<StepResult> {
    let options = StepOptions {
        stop_grace: Duration::from_millis(300),
        ..Default::default()
    };
    run_with(launcher, steps, options, CancellationToken::new()).await
}

fn statuses(results: &[StepResult]) -> Vec<Status> {
    results.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_foreground_step_passes_on_exit_zero_and_its_checks() {
    let fake = FakeLauncher::default().with("ping", Script::prints(&["reply 1", "reply 2"]));
    let steps = [expecting(exec("ping", "ping"), &[("^reply \\d$", Some(2))])];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed]);
    assert_eq!(r[0].exit, Some(0));
    assert_eq!(r[0].stdout, "reply 1\nreply 2\n");
}

#[tokio::test]
async fn a_nonzero_exit_fails_by_default_and_skips_the_rest() {
    let fake = FakeLauncher::default()
        .with("bad", Script::prints(&["oops"]).exits(1))
        .with("ok", Script::prints(&["fine"]));
    let steps = [exec("bad", "bad"), exec("later", "ok")];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Failed, Status::Skipped]);
    assert_eq!(r[0].failures[0].check, "exit");
    // What the reports show of it (report/wording.rs): the end of the
    // output, kept whole.
    assert_eq!(r[0].stdout, "oops\n");
}

#[tokio::test]
async fn keep_going_runs_the_steps_after_a_failure() {
    let fake = FakeLauncher::default()
        .with("bad", Script::prints(&["oops"]).exits(1))
        .with("ok", Script::prints(&["fine"]));
    let steps = [exec("bad", "bad"), exec("later", "ok")];
    let options = StepOptions {
        keep_going: true,
        ..Default::default()
    };
    let r = run_with(&fake, &steps, options, CancellationToken::new()).await;
    assert_eq!(statuses(&r), [Status::Failed, Status::Passed]);
}

#[tokio::test]
async fn a_foreground_step_past_its_timeout_fails_and_is_stopped() {
    let fake =
        FakeLauncher::default().with("hang", Script::prints(&["start"]).until_interrupt("bye"));
    let steps = [timeout(exec("hang", "hang"), 200)];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    assert!(r[0]
        .error
        .as_deref()
        .unwrap()
        .contains("timed out after 200ms"));
    assert_eq!(fake.signals_to("hang"), [Signal::Interrupt]);
    assert!(r[0].stdout.contains("bye"));
}

#[tokio::test]
async fn background_waits_for_ready_then_wait_stops_it_and_checks_everything() {
    let pong = Script::prints(&["listening on eth1", "echo reply 1", "echo reply 2"])
        .until_interrupt("2 replies");
    // ping ends after pong printed everything, as on a real wire.
    let fake = FakeLauncher::default().with("pong", pong).with(
        "ping",
        Script::prints(&["ok"]).after(Duration::from_millis(100)),
    );
    let steps = [
        background("pong", "pong", Some("^listening on eth1$")),
        exec("ping", "ping"),
        expecting(
            wait("pong answered", "pong"),
            &[("^echo reply", Some(2)), ("^2 replies$", None)],
        ),
    ];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed; 3], "{:#?}", r);
    assert_eq!(fake.signals_to("pong"), [Signal::Interrupt]);
    assert_eq!(r[2].exit, Some(0));
    assert!(
        r[0].stdout.contains("2 replies"),
        "background keeps the whole output"
    );
}

#[tokio::test]
async fn ready_split_across_chunks_and_streams_still_matches() {
    let mut script = Script::default().until_interrupt("bye");
    script.lines = vec![
        (
            Duration::from_millis(5),
            Stream::Stderr,
            "warming up\nlisten".into(),
        ),
        (
            Duration::from_millis(5),
            Stream::Stderr,
            "ing on eth1\n".into(),
        ),
    ];
    let fake = FakeLauncher::default().with("pong", script);
    let steps = [background("pong", "pong", Some("listening on eth1"))];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed]);
}

#[tokio::test]
async fn a_background_step_never_ready_fails_at_its_timeout() {
    let fake = FakeLauncher::default()
        .with("pong", Script::prints(&["starting"]).until_interrupt("bye"))
        .with("ping", Script::prints(&["ok"]));
    let steps = [
        timeout(background("pong", "pong", Some("listening")), 200),
        exec("ping", "ping"),
    ];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Failed, Status::Skipped]);
    assert!(r[0]
        .error
        .as_deref()
        .unwrap()
        .contains("not ready within 200ms"));
    assert_eq!(fake.signals_to("pong"), [Signal::Interrupt]);
}

#[tokio::test]
async fn a_background_step_that_exits_before_ready_fails_with_its_exit_code() {
    let fake =
        FakeLauncher::default().with("pong", Script::prints(&["no such interface"]).exits(2));
    let steps = [background("pong", "pong", Some("listening"))];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    assert!(r[0]
        .error
        .as_deref()
        .unwrap()
        .contains("ended before it was ready (exit code 2)"));
}

#[tokio::test]
async fn wait_kills_a_process_that_ignores_sigint() {
    let fake = FakeLauncher::default().with("stubborn", Script::prints(&["up"]).stubborn());
    let steps = [
        background("bg", "stubborn", Some("up")),
        timeout(wait("stop it", "bg"), 200),
    ];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed, Status::Failed]);
    assert!(r[1]
        .error
        .as_deref()
        .unwrap()
        .contains("did not stop within 200ms"));
    assert_eq!(
        fake.signals_to("stubborn"),
        [Signal::Interrupt, Signal::Kill]
    );
    assert_eq!(r[1].exit, Some(137));
}

#[tokio::test]
async fn background_steps_not_waited_for_are_stopped_at_the_end() {
    let fake = FakeLauncher::default()
        .with(
            "pong",
            Script::prints(&["listening"]).until_interrupt("bye"),
        )
        .with("ping", Script::prints(&["ok"]));
    let steps = [
        background("pong", "pong", Some("listening")),
        exec("ping", "ping"),
    ];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed, Status::Passed]);
    assert_eq!(fake.signals_to("pong"), [Signal::Interrupt]);
    assert!(r[0].stdout.contains("bye"));
}

#[tokio::test]
async fn an_interrupt_stops_the_running_step_and_skips_the_rest() {
    let fake = FakeLauncher::default()
        .with(
            "pong",
            Script::prints(&["listening"]).until_interrupt("bye"),
        )
        .with(
            "long",
            Script::prints(&["working"]).until_interrupt("stopped"),
        )
        .with("ping", Script::prints(&["ok"]));
    let steps = [
        background("pong", "pong", Some("listening")),
        exec("long", "long"),
        exec("ping", "ping"),
    ];
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let r = run_with(&fake, &steps, StepOptions::default(), interrupt).await;
    assert_eq!(
        statuses(&r),
        [Status::Passed, Status::Interrupted, Status::Skipped]
    );
    assert_eq!(fake.signals_to("long"), [Signal::Interrupt]);
    assert_eq!(fake.signals_to("pong"), [Signal::Interrupt]);
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_its_step() {
    let fake = FakeLauncher::default().with("nope", Script::cannot_start("Permission denied"));
    let r = run(&fake, &[exec("missing", "nope")]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    assert!(r[0].error.as_deref().unwrap().contains("Permission denied"));
}

#[tokio::test]
async fn a_program_not_in_the_node_fails_its_step_with_exit_126() {
    // As Docker's exec: it starts, says why on stdout, and exits 126.
    let fake = FakeLauncher::default();
    let r = run(&fake, &[exec("missing", "nope")]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    assert_eq!(r[0].exit, Some(126));
    assert!(
        r[0].stdout
            .contains("exec: \"nope\": executable file not found in $PATH"),
        "{}",
        r[0].stdout
    );
}

#[tokio::test]
async fn wait_on_a_step_that_did_not_start_fails() {
    let fake = FakeLauncher::default().with("nope", Script::cannot_start("Permission denied"));
    let options = StepOptions {
        keep_going: true,
        ..Default::default()
    };
    let steps = [background("bg", "nope", None), wait("w", "bg")];
    let r = run_with(&fake, &steps, options, CancellationToken::new()).await;
    assert_eq!(statuses(&r), [Status::Failed, Status::Failed]);
    assert!(r[1].error.as_deref().unwrap().contains("did not start"));
}

fn set_link(name: &str, state: LinkState) -> Step {
    Step {
        action: Action::SetLink {
            node: "client".into(),
            interface: "eth1".into(),
            state,
        },
        ..exec(name, "")
    }
}

#[tokio::test]
async fn link_state_steps_set_the_interface_in_order_between_commands() {
    let fake = FakeLauncher::default().with("ok", Script::prints(&["fine"]));
    let steps = [
        set_link("cut", LinkState::Down),
        exec("during", "ok"),
        set_link("restore", LinkState::Up),
    ];
    let r = run(&fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed; 3]);
    assert_eq!(r[0].kind, crate::run::result::StepKind::Link);
    assert_eq!(r[0].stdout, "client:eth1 down\n");
    assert_eq!(
        *fake.launched.lock().unwrap(),
        ["client: link eth1 down", "n: ok", "client: link eth1 up"]
    );
}

/// Runs `steps` with their files in `dir`.
async fn run_in(dir: &std::path::Path, launcher: &FakeLauncher, steps: &[Step]) -> Vec<StepResult> {
    let options = StepOptions {
        stop_grace: Duration::from_millis(300),
        ..Default::default()
    };
    let engine = StepRunner::new(
        launcher,
        &NoObserver,
        options,
        CancellationToken::new(),
        CancellationToken::new(),
        dir,
    );
    let results = engine.run(steps).await;
    assert_eq!(engine.write_errors(), None);
    results
}

/// `n` lines `line <i>`, at once, 1000 to a chunk.
fn many_lines(n: usize) -> Script {
    let all: Vec<String> = (0..n).map(|i| format!("line {i}\n")).collect();
    Script {
        lines: all
            .chunks(1000)
            .map(|c| (Duration::ZERO, Stream::Stdout, c.concat()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn output_beyond_the_window_goes_whole_to_the_file_and_the_checks_see_all_of_it() {
    use crate::run::output::WINDOW_BYTES;
    let n = 30_000; // ~290 KB: several windows
    let fake = FakeLauncher::default().with("chatty", many_lines(n));
    let mut step = expecting(
        exec("chatty", "chatty"),
        &[("^line \\d+$", Some(n)), ("^line 0$", Some(1))],
    );
    step.expect.stdout.push(Check {
        pattern: Pattern::Contains("line 17\nline 18\n".into()),
        count: None,
        bounds: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &fake, &[step]).await;
    assert_eq!(statuses(&r), [Status::Passed], "{:?}", r[0].failures);
    let expected: String = (0..n).map(|i| format!("line {i}\n")).collect();
    let file = std::fs::read(dir.path().join("01-chatty.stdout")).unwrap();
    assert!(file == expected.as_bytes(), "the file differs");
    // Memory kept the end, from a line's start, and says how much is cut.
    assert!(r[0].stdout.len() <= WINDOW_BYTES);
    assert!(r[0].stdout.starts_with("line "), "{:?}", &r[0].stdout[..20]);
    assert!(r[0].stdout.ends_with(&format!("line {}\n", n - 1)));
    assert_eq!(
        r[0].stdout_truncated_bytes as usize + r[0].stdout.len(),
        expected.len()
    );
    assert!(expected.ends_with(&r[0].stdout));
}

#[tokio::test]
async fn a_failed_check_over_a_cut_output_shows_the_end_and_counts_every_line() {
    let n = 20_000;
    let fake = FakeLauncher::default().with("chatty", many_lines(n));
    let step = expecting(exec("chatty", "chatty"), &[("^line 1\\d*$", Some(1))]);
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &fake, &[step]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    // line 1, 10-19, 100-199, 1000-1999, 10000-19999
    assert_eq!(r[0].failures[0].found, "11111");
    assert_eq!(
        r[0].failures[0].tail.last().map(String::as_str),
        Some("line 19999")
    );
    assert!(r[0].truncated());
}

#[tokio::test]
async fn a_wait_step_file_holds_its_process_output_and_ready_matches_a_late_line() {
    let mut script = many_lines(20_000);
    script
        .lines
        .push((Duration::ZERO, Stream::Stderr, "up and ready\n".into()));
    script.forever = true;
    script.on_interrupt = Some(("bye\n".into(), 0));
    let fake = FakeLauncher::default().with("srv", script);
    let steps = [
        background("srv", "srv", Some("^up and ready$")),
        expecting(wait("stop", "srv"), &[("^line \\d+$", Some(20_000))]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &fake, &steps).await;
    assert_eq!(statuses(&r), [Status::Passed; 2], "{:?}", r[1].failures);
    let bg = std::fs::read(dir.path().join("01-srv.stdout")).unwrap();
    let waited = std::fs::read(dir.path().join("02-stop.stdout")).unwrap();
    assert!(bg.ends_with(b"line 19999\nbye\n"));
    assert!(bg == waited);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("02-stop.stderr")).unwrap(),
        "up and ready\n"
    );
}

// --- until: the tries, on tokio's paused clock ---

fn until(mut step: Step, within: u64, every: u64) -> Step {
    step.until = Some(Until {
        within: Duration::from_secs(within),
        every: Duration::from_secs(every),
    });
    step
}

fn contains(mut step: Step, text: &str) -> Step {
    step.expect.stdout.push(Check {
        pattern: Pattern::Contains(text.into()),
        count: None,
        bounds: None,
    });
    step
}

#[tokio::test(start_paused = true)]
async fn until_passes_on_the_third_try_with_each_try_checked_on_its_own_output() {
    // Each try exits 0: only the checks, on that try's output, tell them
    // apart (over the whole file, "not yet" would be found on the third).
    let fake = FakeLauncher::default().with_each(
        "probe",
        vec![
            Script::prints(&["not yet"]),
            Script::prints(&["not yet"]),
            Script::prints(&["converged"]),
        ],
    );
    let step = contains(
        expecting(exec("ospf", "probe"), &[("^not yet$", Some(0))]),
        "converged",
    );
    let dir = tempfile::tempdir().unwrap();
    let begun = tokio::time::Instant::now();
    let r = run_in(dir.path(), &fake, &[until(step, 30, 1)]).await;
    assert_eq!(statuses(&r), [Status::Passed], "{:#?}", r[0]);
    assert_eq!(r[0].tries, Some(3));
    assert_eq!(r[0].stdout, "converged\n");
    // Two pauses of 1s, and the fake's 5ms per line.
    let took = begun.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100));
    // The files keep every try, each after its header.
    let file = std::fs::read_to_string(dir.path().join("01-ospf.stdout")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 6, "{file}");
    assert!(
        lines[0].starts_with("--- labctl: try 1, at 0.00s ---"),
        "{file}"
    );
    assert!(lines[2].starts_with("--- labctl: try 2, at 1.0"), "{file}");
    assert_eq!(
        [lines[1], lines[3], lines[5]],
        ["not yet", "not yet", "converged"]
    );
    let stderr = std::fs::read_to_string(dir.path().join("01-ospf.stderr")).unwrap();
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
}

#[tokio::test(start_paused = true)]
async fn until_fails_at_the_deadline_with_the_count_and_the_last_output() {
    let fake = FakeLauncher::default().with_each(
        "probe",
        vec![
            Script::prints(&["first"]).exits(1),
            Script::prints(&["later"]).exits(1),
        ],
    );
    let begun = tokio::time::Instant::now();
    let r = run(&fake, &[until(exec("ospf", "probe"), 5, 1)]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    // Tries at 0, 1, 2, 3 and 4s: a sixth would start after the deadline.
    assert_eq!(r[0].tries, Some(5));
    assert_eq!(
        r[0].error.as_deref(),
        Some("did not pass within 5s: 5 tries; last try: 1 check failed")
    );
    assert_eq!(r[0].failures[0].check, "exit");
    assert_eq!(r[0].stdout, "later\n");
    let took = begun.elapsed();
    assert!(took > Duration::from_secs(4) && took < Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn until_pauses_every_between_tries() {
    let fake = FakeLauncher::default().with("probe", Script::prints(&["no"]).exits(1));
    let begun = tokio::time::Instant::now();
    let r = run(&fake, &[until(exec("ospf", "probe"), 10, 3)]).await;
    // Tries at 0, 3, 6 and 9s; with the default 1s there would be 10.
    assert_eq!(r[0].tries, Some(4));
    assert_eq!(fake.launched.lock().unwrap().len(), 4);
    let took = begun.elapsed();
    assert!(took > Duration::from_secs(9) && took < Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_try_still_running_at_the_deadline_is_stopped_there() {
    // The second try hangs; its own timeout (30s) is far past the deadline.
    let fake = FakeLauncher::default().with_each(
        "probe",
        vec![
            Script::prints(&["no"]).exits(1),
            Script::prints(&["stuck"]).until_interrupt("bye"),
        ],
    );
    let begun = tokio::time::Instant::now();
    let step = until(timeout(exec("ospf", "probe"), 30_000), 2, 1);
    let r = run(&fake, &[step]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    assert_eq!(r[0].tries, Some(2));
    assert_eq!(
        r[0].error.as_deref(),
        Some(
            "did not pass within 2s: 2 tries; last try: still running at the end of until and \
             was stopped"
        )
    );
    assert_eq!(fake.signals_to("probe"), [Signal::Interrupt]);
    assert_eq!(r[0].stdout, "stuck\nbye\n");
    let took = begun.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100));
}

#[tokio::test(start_paused = true)]
async fn each_try_is_bounded_by_the_step_timeout() {
    let fake = FakeLauncher::default().with_each(
        "probe",
        vec![
            Script::prints(&["stuck"]).until_interrupt("bye"),
            Script::prints(&["ok"]),
        ],
    );
    let begun = tokio::time::Instant::now();
    let r = run(&fake, &[until(timeout(exec("ospf", "probe"), 500), 10, 1)]).await;
    assert_eq!(statuses(&r), [Status::Passed], "{:#?}", r[0]);
    assert_eq!(r[0].tries, Some(2));
    assert_eq!(r[0].error, None);
    let took = begun.elapsed();
    assert!(took > Duration::from_millis(1500) && took < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_in_the_pause_stops_the_step_at_once() {
    let fake = FakeLauncher::default()
        .with("probe", Script::prints(&["no"]).exits(1))
        .with("later", Script::prints(&["ok"]));
    let steps = [until(exec("ospf", "probe"), 60, 30), exec("later", "later")];
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        trigger.cancel();
    });
    let begun = tokio::time::Instant::now();
    let r = run_with(&fake, &steps, StepOptions::default(), interrupt).await;
    assert_eq!(statuses(&r), [Status::Interrupted, Status::Skipped]);
    assert_eq!(r[0].tries, Some(1));
    let took = begun.elapsed();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_millis(3100));
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_during_a_try_stops_it() {
    let fake = FakeLauncher::default().with_each(
        "probe",
        vec![
            Script::prints(&["no"]).exits(1),
            Script::prints(&["stuck"]).until_interrupt("bye"),
        ],
    );
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let step = until(timeout(exec("ospf", "probe"), 30_000), 60, 1);
    let r = run_with(&fake, &[step], StepOptions::default(), interrupt).await;
    assert_eq!(statuses(&r), [Status::Interrupted]);
    assert_eq!(r[0].tries, Some(2));
    assert_eq!(fake.signals_to("probe"), [Signal::Interrupt]);
}

#[tokio::test]
async fn a_step_without_until_has_no_tries() {
    let fake = FakeLauncher::default().with("ok", Script::prints(&["fine"]));
    let r = run(&fake, &[exec("once", "ok")]).await;
    assert_eq!(r[0].tries, None);
}

fn throughput_step(sizes: &[u32]) -> Step {
    Step {
        action: Action::Throughput(crate::lab::Throughput {
            from: ("client".into(), "eth1".into()),
            to: ("server".into(), "eth1".into()),
            destination: "198.18.0.2".parse().unwrap(),
            sizes: sizes.to_vec(),
            trial: Duration::from_millis(10),
            loss: 0.0,
            partial: None,
        }),
        ..exec("throughput", "")
    }
}

/// lab-gen's JSON: session 7, `sent` frames in a second.
fn gen_script(sent: u64) -> Script {
    Script::prints(&[
        r#"{"event":"start","iface":"eth1","session":7,"rate":null}"#,
        &format!(
            r#"{{"event":"summary","sent":{sent},"lost":0,"queue_drops":0,"seconds":1.0,"rate":{sent},"behind":0,"arp_replies":0}}"#
        ),
    ])
}

/// lab-sink's JSON: ready, then on SIGINT a summary of `received` frames
/// of `session`'s one flow.
fn sink_script(session: u32, received: u64) -> Script {
    Script::prints(&[r#"{"event":"ready","iface":"eth1","ip":"198.18.0.2"}"#]).until_interrupt(
        &format!(
            r#"{{"event":"summary","received":{received},"lost":0,"latency_p50_ms":0.02,"latency_p99_ms":0.09,"latency_p99_9_ms":0.12,"latency_max_ms":0.4,"flows":[{{"source":"198.18.0.1","source_port":49152,"port":9,"session":{session},"received":{received},"lost":0,"duplicates":0,"reordered":3}}]}}"#
        ),
    )
}

#[tokio::test]
async fn a_throughput_step_runs_trials_through_the_launcher_and_prints_its_results() {
    let fake = FakeLauncher::default()
        .with("lab-gen", gen_script(1000))
        .with("lab-sink", sink_script(7, 1000));
    let mut step = throughput_step(&[64]);
    step.expect.stdout = vec![Check {
        pattern: Pattern::Match(Regex::new("^ndr 64 bytes: ([0-9]+) frames/s").unwrap()),
        count: Some(1),
        bounds: Some(crate::lab::Bounds {
            at_least: Some(1000.0),
            at_most: None,
        }),
    }];
    let r = run(&fake, &[step]).await;
    assert_eq!(statuses(&r), [Status::Passed], "{:?}", r[0]);
    assert_eq!(r[0].kind, crate::run::result::StepKind::Throughput);
    // The ceiling (unpaced), the NDR's first trial at it passes, then the
    // latency at 10, 50 and 90 % of it.
    let out = &r[0].stdout;
    assert!(
        out.contains("ndr 64 bytes: 1000 frames/s, 0.5 Mbit/s, loss 0.000% (2 trials)\n"),
        "{out}"
    );
    assert!(
        out.contains("latency 64 bytes at 50% of ndr (500 frames/s): p50 0.020 ms, p99 0.090 ms, p99.9 0.120 ms, max 0.400 ms"),
        "{out}"
    );
    assert!(
        out.starts_with("trial 1 (64 bytes, ceiling) at unpaced: sent 1000"),
        "{out}"
    );
    let report = r[0].throughput.as_ref().unwrap();
    assert_eq!(report.sizes.len(), 1);
    let size = &report.sizes[0];
    assert_eq!(size.ceiling, 1000.0);
    assert_eq!(size.trials.len(), 5);
    assert_eq!(size.latency.len(), 3);
    assert_eq!(size.trials[1].reordered, 3);
    // Each trial: a sink started and stopped, a generator run.
    let launched = fake.launched.lock().unwrap().clone();
    assert_eq!(launched.len(), 10, "{launched:?}");
    assert_eq!(launched[0], "server: lab-sink");
    assert_eq!(launched[1], "client: lab-gen");
    assert_eq!(fake.signals_to("lab-sink").len(), 5);
}

#[tokio::test]
async fn frames_of_another_session_are_not_this_trial_s() {
    // The sink saw only an earlier generator's frames: nothing of this
    // one arrived, and the search stops there with the reason.
    let fake = FakeLauncher::default()
        .with("lab-gen", gen_script(1000))
        .with("lab-sink", sink_script(99, 1000));
    let r = run(&fake, &[throughput_step(&[64, 1514])]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    let error = r[0].error.as_deref().unwrap();
    assert!(
        error.contains(
            "no frame of the generator reached server:eth1 in the unpaced trial of 64 bytes"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_generator_that_fails_stops_the_search_with_its_own_words() {
    let gen = Script {
        lines: vec![(
            Duration::from_millis(5),
            Stream::Stderr,
            "lab-gen: no ARP reply from 198.18.0.2 on eth1 after 3 requests\n".into(),
        )],
        exit: 1,
        ..Default::default()
    };
    let fake = FakeLauncher::default()
        .with("lab-gen", gen)
        .with("lab-sink", sink_script(7, 0));
    let r = run(&fake, &[throughput_step(&[64])]).await;
    assert_eq!(statuses(&r), [Status::Failed]);
    let error = r[0].error.as_deref().unwrap();
    assert!(
        error
            .contains("lab-gen on client:eth1 exited 1 without its summary: lab-gen: no ARP reply"),
        "{error}"
    );
    // The sink of that trial was stopped all the same.
    assert_eq!(fake.signals_to("lab-sink"), [Signal::Interrupt]);
}
