//! Report writing with hostile step output: any step names, commands,
//! output, errors and failed checks (what a step prints is the least
//! trusted text a run has). junit.xml always validates against
//! tests/schemas/junit-10.xsd (libxml2, as `xmllint --schema`), for one
//! run and for many; report.json always parses and keeps every output
//! byte for byte; the summary is made. (The HTML report, once it exists:
//! never any markup from the output, to be added here.)
#![no_main]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use labctl::lab::DatalinkKind;
use labctl::report::{
    self, junit_xml, junit_xml_many, runs_json, NotRun, Outcome, RunProblem, RunProblemKind,
    RunReport, Timing,
};
use labctl::run::result::{ExpectedCheck, FailedCheck, LinkChange, Status, StepKind, StepResult};
use labctl_fuzz::xsd::junit_is_valid;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Clone, Debug)]
struct Input {
    lab: String,
    instance: String,
    file: String,
    run_id: String,
    datalink: Option<u8>,
    /// Seconds after 2020 (a real run's start is now).
    started: u32,
    duration_ms: u32,
    problems: Vec<(u8, String)>,
    steps: Vec<Step>,
    phases: Vec<(String, u32)>,
    removed: Vec<String>,
    run_dir: String,
    not_run: Vec<(String, Option<u8>, String)>,
    labctl: String,
    host: String,
}

#[derive(Arbitrary, Clone, Debug)]
struct Step {
    name: String,
    kind: u8,
    node: Option<String>,
    argv: Vec<String>,
    status: u8,
    duration_ms: u32,
    exit: Option<i64>,
    failures: Vec<(String, String, String, Vec<String>)>,
    error: Option<String>,
    stdout: String,
    stderr: String,
    stdout_truncated_bytes: u64,
    stderr_truncated_bytes: u64,
    tries: Option<u32>,
    start_ms: Option<u32>,
    waits_for: Option<String>,
    link: Option<(String, String)>,
    checks: Vec<(String, String)>,
}

fn datalink(n: Option<u8>) -> Option<DatalinkKind> {
    n.map(|n| DatalinkKind::ALL[usize::from(n % 3)])
}

/// Every string of the input through `f`.
fn strings(input: &Input, f: &dyn Fn(&str) -> String) -> Input {
    let v = |list: &[String]| list.iter().map(|s| f(s)).collect::<Vec<_>>();
    let mut out = input.clone();
    out.lab = f(&input.lab);
    out.instance = f(&input.instance);
    out.file = f(&input.file);
    out.run_id = f(&input.run_id);
    out.run_dir = f(&input.run_dir);
    out.labctl = f(&input.labctl);
    out.host = f(&input.host);
    out.removed = v(&input.removed);
    for (_, m) in &mut out.problems {
        *m = f(m);
    }
    for (name, _) in &mut out.phases {
        *name = f(name);
    }
    for (lab, _, reason) in &mut out.not_run {
        *lab = f(lab);
        *reason = f(reason);
    }
    for s in &mut out.steps {
        s.name = f(&s.name);
        s.node = s.node.as_deref().map(f);
        s.argv = v(&s.argv);
        for (a, b, c, tail) in &mut s.failures {
            *a = f(a);
            *b = f(b);
            *c = f(c);
            *tail = v(tail);
        }
        s.error = s.error.as_deref().map(f);
        s.stdout = f(&s.stdout);
        s.stderr = f(&s.stderr);
        s.waits_for = s.waits_for.as_deref().map(f);
        s.link = s.link.as_ref().map(|(a, b)| (f(a), f(b)));
        for (a, b) in &mut s.checks {
            *a = f(a);
            *b = f(b);
        }
    }
    out
}

fn step(s: Step) -> StepResult {
    StepResult {
        name: s.name,
        start: s.start_ms.map(|ms| Duration::from_millis(u64::from(ms))),
        waits_for: s.waits_for,
        link: s
            .link
            .map(|(interface, state)| LinkChange { interface, state }),
        checks: s
            .checks
            .into_iter()
            .map(|(check, expected)| ExpectedCheck { check, expected })
            .collect(),
        throughput: None,
        kind: [
            StepKind::Foreground,
            StepKind::Background,
            StepKind::Wait,
            StepKind::Link,
        ][usize::from(s.kind % 4)],
        node: s.node,
        argv: s.argv,
        status: [
            Status::Passed,
            Status::Failed,
            Status::Skipped,
            Status::Interrupted,
        ][usize::from(s.status % 4)],
        duration: Duration::from_millis(u64::from(s.duration_ms)),
        exit: s.exit,
        failures: s
            .failures
            .into_iter()
            .map(|(check, expected, found, tail)| FailedCheck {
                check,
                expected,
                found,
                tail,
            })
            .collect(),
        error: s.error,
        stdout: s.stdout,
        stderr: s.stderr,
        stdout_truncated_bytes: s.stdout_truncated_bytes,
        stderr_truncated_bytes: s.stderr_truncated_bytes,
        tries: s.tries,
    }
}

const KINDS: [RunProblemKind; 6] = [
    RunProblemKind::Deploy,
    RunProblemKind::Interrupted,
    RunProblemKind::Write,
    RunProblemKind::Evidence,
    RunProblemKind::Teardown,
    RunProblemKind::NodeCommand,
];

fuzz_target!(|input: Input| {
    // Markup characters replaced by a letter: lengths, emptiness and
    // line breaks stay, so the page keeps its shape.
    let tame = strings(&input, &|s: &str| s.replace(['<', '>', '"', '\''], "x"));
    let (hostile, tamed) = (report_of(input.clone()).0, report_of(tame).0);
    let html = |r: &RunReport| report::Format::Html.of_run(r).expect("report.html is made");
    let (page, tame_page) = (html(&hostile), html(&tamed));
    for c in ['<', '"'] {
        assert_eq!(
            page.matches(c).count(),
            tame_page.matches(c).count(),
            "the page gained {c:?} from its text"
        );
    }
    let (report, not_run) = report_of(input);
    check(&report, &not_run);
});

fn report_of(input: Input) -> (RunReport, Vec<NotRun>) {
    let steps: Vec<StepResult> = input.steps.into_iter().map(step).collect();
    let problems: Vec<RunProblem> = input
        .problems
        .into_iter()
        .map(|(kind, message)| RunProblem::new(KINDS[usize::from(kind % 6)], message))
        .collect();
    let outcome = Outcome::of(&steps, &problems);
    let report = RunReport {
        lab: input.lab,
        instance: input.instance,
        file: PathBuf::from(input.file),
        run_id: input.run_id,
        datalink: datalink(input.datalink),
        started: SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_577_836_800 + u64::from(input.started)),
        duration: Duration::from_millis(u64::from(input.duration_ms)),
        outcome,
        problems,
        steps,
        phases: input
            .phases
            .into_iter()
            .map(|(name, ms)| Timing {
                name,
                duration: Duration::from_millis(u64::from(ms)),
                start: None,
            })
            .collect(),
        removed: input.removed,
        run_dir: PathBuf::from(input.run_dir),
        labctl: input.labctl,
        host: input.host,
        topology: None,
        traffic: Vec::new(),
    };
    let not_run: Vec<NotRun> = input
        .not_run
        .into_iter()
        .map(|(lab, d, reason)| NotRun {
            lab,
            datalink: datalink(d),
            reason,
        })
        .collect();
    (report, not_run)
}

fn check(report: &RunReport, not_run: &[NotRun]) {
    let report = report.clone();
    let xml = junit_xml(&report).expect("junit.xml is made");
    assert!(junit_is_valid(&xml), "junit.xml does not validate:\n{xml}");
    let many = junit_xml_many(std::slice::from_ref(&report), not_run).expect("many");
    assert!(
        junit_is_valid(&many),
        "junit.xml of many runs does not validate:\n{many}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&report.to_json()).expect("report.json parses");
    for (i, s) in report.steps.iter().enumerate() {
        assert_eq!(json["steps"][i]["stdout"].as_str(), Some(s.stdout.as_str()));
        assert_eq!(json["steps"][i]["stderr"].as_str(), Some(s.stderr.as_str()));
        assert_eq!(json["steps"][i]["name"].as_str(), Some(s.name.as_str()));
    }
    let runs: serde_json::Value =
        serde_json::from_str(&runs_json(std::slice::from_ref(&report), not_run))
            .expect("the JSON of many runs parses");
    assert!(runs["runs"].is_array());

    for format in report::Format::ALL {
        format
            .of_run(&report)
            .expect("every format of a run is made");
    }
    let _ = report::summary(&report);
}
