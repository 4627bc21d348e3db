//! report.html: the run as one page to look at. Self-contained (inline
//! CSS and SVG, no script, no font, no request: a Content-Security-Policy
//! of `default-src 'none'` says so to the browser too), small (the tails
//! of outputs, never whole outputs: those are linked), and safe whatever
//! the steps printed: every piece of text goes through [`esc`].
//!
//! It shows the lab (facts and topology), a timeline of phases and steps,
//! lab-sink's plots, every step with its checks and the end of its
//! output, and links to every file of the run directory. [`page_many`] is
//! the page of many runs: a matrix of labs × datalinks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plots::{self, Marker, Span, SpanKind};
use super::topology::{self, Marks};
use super::traffic::SinkTraffic;
use super::wording::failure_message;
use super::{suite_name, Outcome, RunEnd, RunReport};
use crate::run::result::{
    tail, RateKind, Status, StepKind, StepResult, ThroughputReport, TAIL_LINES,
};

/// The page's file in every run directory.
pub const HTML_FILE: &str = "report.html";

/// Nothing may load: no script, no font, no image from anywhere; inline
/// styles only (the SVGs carry theirs).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1000px;padding:0 16px 48px;color:#1f2933}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d9e2ec}h3{font-size:15px;margin:16px 0 6px}
.tag{display:inline-block;min-width:44px;text-align:center;border-radius:3px;padding:0 5px;color:#fff;font-weight:600;font-size:12px}
.passed{background:#2e7d32}.failed,.error{background:#c62828}.interrupted{background:#ef6c00}.skipped{background:#9e9e9e}
.banner{padding:8px 12px;border-radius:4px;margin:12px 0;border-left:6px solid}
.banner.ok{background:#edf7ee;border-color:#2e7d32}.banner.bad{background:#fdecea;border-color:#c62828}.banner.cut{background:#fff3e0;border-color:#ef6c00}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
table.facts th{font-weight:600;color:#52606d}table.checks td,table.checks th{border:1px solid #d9e2ec;padding:2px 6px}
table.matrix td,table.matrix th{border:1px solid #d9e2ec;padding:4px 8px}
details.step{border:1px solid #d9e2ec;border-radius:4px;margin:6px 0;padding:4px 8px}
details.step.s-failed,details.step.s-interrupted{border-color:#c62828;background:#fffafa}
summary{cursor:pointer}.meta{color:#52606d;font-size:12px}
pre{background:#f5f7fa;padding:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:12px;margin:4px 0}
.failure{color:#c62828;font-weight:600}.held td:last-child{color:#2e7d32}svg{max-width:100%;height:auto}code{font-size:12px}
"#;

/// Text as HTML: markup characters as entities, control characters
/// (but tab and newline) as U+FFFD, so nothing a step prints can open a
/// tag, end an attribute or break the page.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A relative link to a file of the run directory, every byte outside
/// `[A-Za-z0-9._~/-]` percent-encoded: a file named by a node cannot make
/// it anything but a relative path.
fn href(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'~' | b'/' | b'-' => {
                out.push(byte as char)
            }
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    // A leading `/` or `..` would leave the run directory.
    out.trim_start_matches('/').to_owned()
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(title)
    );
}

fn outcome_tag(outcome: Outcome) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Passed => ("passed", "PASSED"),
        Outcome::Failed => ("failed", "FAILED"),
        Outcome::Interrupted => ("interrupted", "INTERRUPTED"),
        Outcome::Error => ("error", "ERROR"),
    }
}

fn status_tag(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Passed => ("passed", "PASS"),
        Status::Failed => ("failed", "FAIL"),
        Status::Skipped => ("skipped", "SKIP"),
        Status::Interrupted => ("interrupted", "INTR"),
    }
}

/// The files of the run directory, relative to it, sorted; at most
/// [`MAX_FILES`] (the page stays small whatever a node left in /lab/out).
fn run_files(run_dir: &Path) -> (Vec<PathBuf>, usize) {
    let mut files = Vec::new();
    let mut more = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(run_dir.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            // The page itself: absent when it is first written, so a
            // page rendered again is the same.
            if path == Path::new(HTML_FILE) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() && files.len() < MAX_FILES => files.push(path),
                Ok(t) if t.is_file() => more += 1,
                _ => {}
            }
        }
    }
    files.sort();
    (files, more)
}

const MAX_FILES: usize = 500;

/// Where things are on the run's time axis, in seconds after its start.
struct Clock<'a> {
    report: &'a RunReport,
    steps_start: f64,
}

impl<'a> Clock<'a> {
    fn new(report: &'a RunReport) -> Self {
        let mut at = 0.0;
        let mut steps_start = None;
        for phase in &report.phases {
            let start = phase.start.map_or(at, |s| s.as_secs_f64());
            if phase.name == "steps" {
                steps_start = Some(start);
            }
            at = start + phase.duration.as_secs_f64();
        }
        Clock {
            report,
            steps_start: steps_start.unwrap_or(at),
        }
    }

    fn start(&self, step: &StepResult) -> Option<f64> {
        step.start.map(|s| self.steps_start + s.as_secs_f64())
    }

    fn end(&self, step: &StepResult) -> Option<f64> {
        let start = self.start(step)?;
        if step.kind == StepKind::Background {
            // A background step lasts until its wait ended it, or the steps.
            let waited = self
                .report
                .steps
                .iter()
                .find(|w| w.waits_for.as_deref() == Some(&step.name))
                .and_then(|w| Some(self.start(w)? + w.duration.as_secs_f64()));
            return Some(waited.unwrap_or_else(|| self.steps_end()).max(start));
        }
        Some(start + step.duration.as_secs_f64())
    }

    fn steps_end(&self) -> f64 {
        self.report
            .phases
            .iter()
            .find(|p| p.name == "steps")
            .map_or(self.report.duration.as_secs_f64(), |p| {
                self.steps_start + p.duration.as_secs_f64()
            })
    }

    /// Where a lab-sink step's intervals begin: its ready line (the end
    /// of a background step's start), else its start.
    fn sink_offset(&self, step: &StepResult) -> Option<f64> {
        let start = self.start(step)?;
        Some(match step.kind {
            StepKind::Background => start + step.duration.as_secs_f64(),
            _ => start,
        })
    }

    fn markers(&self) -> Vec<Marker> {
        self.report
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Link)
            .filter_map(|s| {
                let link = s.link.as_ref()?;
                Some(Marker {
                    label: format!(
                        "{}:{} {}",
                        s.node.as_deref().unwrap_or("?"),
                        link.interface,
                        link.state
                    ),
                    at: self.start(s)?,
                    failed: s.status != Status::Passed,
                })
            })
            .collect()
    }
}

/// The page of one run.
pub fn page(report: &RunReport) -> String {
    let (files, more_files) = run_files(&report.run_dir);
    let clock = Clock::new(report);
    let (class, word) = outcome_tag(report.outcome);
    let mut out = String::new();
    head(&mut out, &format!("{}: {word} (labctl run)", report.lab));
    let _ = write!(
        out,
        "<header id=\"lab\">\n<h1>{} <span class=\"tag {class}\" id=\"outcome\">{word}</span></h1>\n",
        esc(&report.lab)
    );
    if let Some(description) = report
        .topology
        .as_ref()
        .and_then(|t| t.description.as_ref())
    {
        let _ = writeln!(out, "<p>{}</p>", esc(description));
    }
    facts(&mut out, report);
    out.push_str("</header>\n");
    banner(&mut out, report);
    topology_section(&mut out, report);
    timeline_section(&mut out, report, &clock);
    traffic_section(&mut out, report, &clock);
    steps_section(&mut out, report, &files);
    files_section(&mut out, &files, more_files);
    out.push_str("</body>\n</html>\n");
    out
}

fn facts(out: &mut String, report: &RunReport) {
    let topology = report.topology.as_ref();
    let datalinks = match (report.datalink, topology) {
        (Some(d), _) => format!("{} (--datalink)", d.as_str()),
        (None, Some(t)) => t
            .datalinks
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        (None, None) => "as written".to_owned(),
    };
    let rows = [
        ("lab file", report.file.display().to_string()),
        ("instance", report.instance.clone()),
        ("run", report.run_id.clone()),
        (
            "started",
            humantime::format_rfc3339_seconds(report.started).to_string(),
        ),
        ("duration", seconds(report.duration)),
        (
            "runtime",
            topology.map(|t| t.runtime.clone()).unwrap_or_default(),
        ),
        ("datalinks", datalinks),
        ("labctl", report.labctl.clone()),
        ("host", report.host.clone()),
        (
            "steps",
            format!(
                "{} passed, {} failed, {} skipped",
                report.count(Status::Passed),
                report.count(Status::Failed) + report.count(Status::Interrupted),
                report.count(Status::Skipped)
            ),
        ),
    ];
    out.push_str("<table class=\"facts\">\n");
    for (name, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{}</td></tr>", esc(value));
    }
    out.push_str("</table>\n");
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// What a person must see first when the run did not pass: why, and for
/// a run cut short, that it was.
fn banner(out: &mut String, report: &RunReport) {
    let (class, text) = match report.outcome {
        Outcome::Passed => ("ok", "Every step passed.".to_owned()),
        Outcome::Failed => {
            let failed: Vec<&str> = report
                .steps
                .iter()
                .filter(|s| s.status == Status::Failed)
                .map(|s| s.name.as_str())
                .collect();
            (
                "bad",
                if failed.is_empty() {
                    "The run failed.".to_owned()
                } else {
                    format!("Failed: {}.", failed.join(", "))
                },
            )
        }
        Outcome::Interrupted => (
            "cut",
            "This run was cut short (Ctrl-C or SIGTERM): the steps after the interruption were \
             skipped; what ran is below."
                .to_owned(),
        ),
        Outcome::Error => (
            "bad",
            "This run could not finish as it should: see the problems below.".to_owned(),
        ),
    };
    let _ = writeln!(
        out,
        "<div class=\"banner {class}\" id=\"verdict\"><p>{}</p>",
        esc(&text)
    );
    if !report.problems.is_empty() {
        out.push_str("<ul id=\"problems\">\n");
        for problem in &report.problems {
            let kind = serde_json::to_value(problem.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<li><b>{}</b>: {}</li>",
                esc(&kind),
                esc(&problem.message)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n");
}

fn topology_section(out: &mut String, report: &RunReport) {
    out.push_str("<section id=\"topology\">\n<h2>Topology</h2>\n");
    let Some(topology) = &report.topology else {
        out.push_str(
            "<p>This report.json has no topology (written by an older labctl).</p>\n</section>\n",
        );
        return;
    };
    let mut marks = Marks::default();
    for step in &report.steps {
        if matches!(step.status, Status::Failed | Status::Interrupted) {
            marks.failed_nodes.extend(step.node.clone());
        }
        if let (Some(link), Some(node)) = (&step.link, &step.node) {
            if link.state == "down" {
                marks.cut.insert(format!("{node}:{}", link.interface));
            }
        }
    }
    match topology::svg(topology, &marks) {
        Some(svg) => {
            let _ = writeln!(out, "<div class=\"drawing\">{svg}</div>");
        }
        None => out.push_str("<p>The topology could not be drawn.</p>\n"),
    }
    // The same facts as text: searchable, and readable without the drawing.
    out.push_str("<table class=\"checks\" id=\"links\">\n<tr><th>link</th><th>end</th><th>end</th><th>notes</th></tr>\n");
    for (n, link) in topology.links.iter().enumerate() {
        let [a, b] = &link.ends;
        let mut notes = Vec::new();
        if let Some(mtu) = link.mtu {
            notes.push(format!("mtu {mtu}"));
        }
        for (end, other) in [(a, b), (b, a)] {
            if let Some(impair) = &end.impair {
                notes.push(format!("{} → {}: {impair}", end.node, other.node));
            }
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}: {}</td><td>{}: {}</td><td>{}</td></tr>",
            n + 1,
            esc(&a.node),
            esc(&a.label()),
            esc(&b.node),
            esc(&b.label()),
            esc(&notes.join("; "))
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn timeline_section(out: &mut String, report: &RunReport, clock: &Clock) {
    let mut spans = Vec::new();
    let mut at = 0.0;
    for phase in &report.phases {
        let start = phase.start.map_or(at, |s| s.as_secs_f64());
        at = start + phase.duration.as_secs_f64();
        spans.push(Span {
            label: format!("phase: {}", phase.name),
            start,
            end: at,
            kind: SpanKind::Phase,
        });
    }
    for step in report.steps.iter().filter(|s| s.kind != StepKind::Link) {
        let (Some(start), Some(end)) = (clock.start(step), clock.end(step)) else {
            continue;
        };
        let kind = match step.status {
            Status::Failed | Status::Interrupted => SpanKind::Failed,
            Status::Skipped => SpanKind::Skipped,
            Status::Passed if step.kind == StepKind::Background => SpanKind::Background,
            Status::Passed => SpanKind::Passed,
        };
        spans.push(Span {
            label: step.name.clone(),
            start,
            end,
            kind,
        });
    }
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    out.push_str(
        "<p class=\"meta\">Phases in grey, steps in green (background steps in blue, from their \
         start to their wait), failures in red; link-state steps are the orange lines.</p>\n",
    );
    let total = report.duration.as_secs_f64().max(at);
    match plots::timeline_svg(&spans, &clock.markers(), total) {
        Some(svg) if !spans.is_empty() => {
            let _ = writeln!(out, "{svg}");
        }
        _ => out.push_str("<p>No timings were recorded.</p>\n"),
    }
    out.push_str("</section>\n");
}

fn traffic_section(out: &mut String, report: &RunReport, clock: &Clock) {
    let searches: Vec<_> = report
        .steps
        .iter()
        .filter_map(|s| s.throughput.as_deref().map(|t| (s, t)))
        .collect();
    if report.traffic.is_empty() && searches.is_empty() {
        return;
    }
    out.push_str("<section id=\"traffic\">\n<h2>Traffic</h2>\n");
    for (step, search) in searches {
        let _ = writeln!(
            out,
            "<h3>throughput: {} ({} to {})</h3>",
            esc(&step.name),
            esc(&search.from),
            esc(&search.to)
        );
        let (trials, results) = throughput_points(search);
        if let Some(svg) = plots::throughput_svg(&trials, &results) {
            let _ = writeln!(out, "<div class=\"plot throughput\">{svg}</div>");
        }
        for size in &search.sizes {
            for result in &size.results {
                let _ = writeln!(out, "<p>{}</p>", esc(&result.line()));
            }
        }
    }
    let markers = clock.markers();
    for traffic in &report.traffic {
        let offset = report
            .steps
            .iter()
            .find(|s| s.name == traffic.step)
            .and_then(|s| clock.sink_offset(s))
            .unwrap_or(0.0);
        let _ = writeln!(out, "<h3>lab-sink: {}</h3>", esc(&traffic.step));
        sink_summary(out, traffic);
        if let Some(svg) = plots::sink_rate_loss_svg(traffic, offset, &markers) {
            let _ = writeln!(out, "<div class=\"plot rate\">{svg}</div>");
        }
        if let Some(svg) = plots::sink_latency_svg(traffic, offset) {
            let _ = writeln!(out, "<div class=\"plot latency\">{svg}</div>");
        }
        if let Some(summary) = &traffic.summary {
            let percentiles: Vec<(&str, f64)> = [
                ("p50", summary.latency_p50_ms),
                ("p99", summary.latency_p99_ms),
                ("max", summary.latency_max_ms),
            ]
            .into_iter()
            .filter_map(|(name, ms)| ms.map(|ms| (name, ms)))
            .collect();
            if let Some(svg) =
                plots::latency_histogram_svg(&summary.latency_histogram, &percentiles)
            {
                let _ = writeln!(out, "<div class=\"plot histogram\">{svg}</div>");
            }
        }
    }
    out.push_str("</section>\n");
}

/// A throughput step's trials and results as the plot takes them: a trial
/// the search did not count (invalid, or the warm-up to the ceiling) is
/// drawn hollow.
fn throughput_points(
    search: &ThroughputReport,
) -> (Vec<plots::ThroughputTrial>, Vec<plots::ThroughputResult>) {
    let mut trials = Vec::new();
    let mut results = Vec::new();
    for size in &search.sizes {
        trials.extend(size.trials.iter().map(|t| plots::ThroughputTrial {
            frame_size: size.size,
            offered_fps: t.offered_rate.unwrap_or(t.achieved_rate),
            loss_percent: t.loss_percent,
            counted: t.valid && t.offered_rate.is_some(),
        }));
        results.extend(size.results.iter().map(|r| plots::ThroughputResult {
            kind: match r.kind {
                RateKind::Ndr => plots::ThroughputKind::Ndr,
                RateKind::Pdr => plots::ThroughputKind::Pdr,
            },
            frame_size: r.size,
            frames_per_second: r.rate,
        }));
    }
    (trials, results)
}

fn sink_summary(out: &mut String, traffic: &SinkTraffic) {
    let Some(s) = &traffic.summary else {
        out.push_str("<p class=\"meta\">No summary (the sink did not end normally).</p>\n");
        return;
    };
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        out,
        "<p>received {} frames, lost {} ({:.2}%), {:.0} frames/s; latency min/p50/p99/max = \
         {}/{}/{}/{} ms; {} intervals{}</p>",
        s.received,
        s.lost,
        s.loss_percent,
        s.rate,
        ms(s.latency_min_ms),
        ms(s.latency_p50_ms),
        ms(s.latency_p99_ms),
        ms(s.latency_max_ms),
        traffic.intervals.len(),
        if traffic.intervals_left_out > 0 {
            format!(" ({} more left out)", traffic.intervals_left_out)
        } else {
            String::new()
        }
    );
}

fn steps_section(out: &mut String, report: &RunReport, files: &[PathBuf]) {
    out.push_str("<section id=\"steps\">\n<h2>Steps</h2>\n");
    for (index, step) in report.steps.iter().enumerate() {
        step_entry(out, index, step, files);
    }
    if report.steps.is_empty() {
        out.push_str("<p>No step ran.</p>\n");
    }
    out.push_str("</section>\n");
}

fn step_entry(out: &mut String, index: usize, step: &StepResult, files: &[PathBuf]) {
    let (class, tag) = status_tag(step.status);
    let failed = matches!(step.status, Status::Failed | Status::Interrupted);
    let kind = match step.kind {
        StepKind::Foreground => "foreground",
        StepKind::Background => "background",
        StepKind::Wait => "wait",
        StepKind::Link => "link-state",
        StepKind::Throughput => "throughput",
    };
    let mut meta = vec![kind.to_owned()];
    meta.extend(step.node.as_ref().map(|n| format!("node {n}")));
    if step.status != Status::Skipped {
        meta.push(seconds(step.duration));
    }
    meta.extend(step.exit.map(|e| format!("exit {e}")));
    meta.extend(step.tries_text());
    let _ = writeln!(
        out,
        "<details class=\"step s-{class}\" id=\"step-{}\"{}>\n<summary><span class=\"tag {class}\">{tag}</span> \
         <b class=\"name\">{}</b> <span class=\"meta\">{}</span></summary>",
        index + 1,
        if failed { " open" } else { "" },
        esc(&step.name),
        esc(&meta.join(" · "))
    );
    if !step.argv.is_empty() {
        let _ = writeln!(out, "<p><code>{}</code></p>", esc(&step.argv.join(" ")));
    }
    if let Some(wait) = &step.waits_for {
        let _ = writeln!(out, "<p>ends the background step {}</p>", esc(wait));
    }
    if let (Some(link), Some(node)) = (&step.link, &step.node) {
        let _ = writeln!(
            out,
            "<p>sets {}:{} {}</p>",
            esc(node),
            esc(&link.interface),
            esc(&link.state)
        );
    }
    if let Some(error) = &step.error {
        let _ = writeln!(out, "<p class=\"failure\">{}</p>", esc(error));
    }
    checks_table(out, step);
    if failed {
        // The words of the summary and JUnit, for one wording everywhere.
        let _ = writeln!(
            out,
            "<pre class=\"message\">{}</pre>",
            esc(&failure_message(step))
        );
    }
    for (stream, text, cut) in [
        ("stdout", &step.stdout, step.stdout_truncated_bytes),
        ("stderr", &step.stderr, step.stderr_truncated_bytes),
    ] {
        let lines = tail(text, TAIL_LINES);
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<p class=\"meta\">last lines of {stream}{}:</p>\n<pre class=\"{stream}\">{}</pre>",
            if cut > 0 {
                " (its beginning only in the file)"
            } else {
                ""
            },
            esc(&lines.join("\n"))
        );
    }
    let prefix = format!("{:02}-", index + 1);
    let own: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            f.parent() == Some(Path::new("steps"))
                && f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    if !own.is_empty() {
        let links: Vec<String> = own
            .iter()
            .map(|f| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    href(f),
                    esc(&f.display().to_string())
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"meta\">full output: {}</p>",
            links.join(", ")
        );
    }
    out.push_str("</details>\n");
}

/// Every check of the step: expected, and found (a failed one's finding,
/// `held` for one that passed, `not checked` for a step that did not get
/// that far); failures a report of an older labctl lists without the
/// checks come alone.
fn checks_table(out: &mut String, step: &StepResult) {
    if step.checks.is_empty() && step.failures.is_empty() {
        return;
    }
    out.push_str(
        "<table class=\"checks\">\n<tr><th>check</th><th>expected</th><th>found</th></tr>\n",
    );
    let checked = step.status != Status::Skipped && step.error.is_none();
    let mut row = |class: &str, check: &str, expected: &str, found: &str| {
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(check),
            esc(expected),
            esc(found)
        );
    };
    for check in &step.checks {
        match step.failures.iter().find(|f| f.check == check.check) {
            Some(failed) => row("failure", &failed.check, &failed.expected, &failed.found),
            None if checked => row("held", &check.check, &check.expected, "held"),
            None => row("unchecked", &check.check, &check.expected, "not checked"),
        }
    }
    // Failures that are not one of the checks: a stream that could not be
    // read, or a report without its checks.
    for failed in step
        .failures
        .iter()
        .filter(|f| !step.checks.iter().any(|c| c.check == f.check))
    {
        row("failure", &failed.check, &failed.expected, &failed.found);
    }
    out.push_str("</table>\n");
}

fn files_section(out: &mut String, files: &[PathBuf], more: usize) {
    out.push_str("<section id=\"files\">\n<h2>Files of the run directory</h2>\n");
    let captures: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if !captures.is_empty() {
        out.push_str("<h3>Captures</h3>\n<ul id=\"pcaps\">\n");
        for file in captures {
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a></li>",
                href(file),
                esc(&file.display().to_string())
            );
        }
        out.push_str("</ul>\n");
    }
    let mut by_folder: BTreeMap<String, Vec<&PathBuf>> = BTreeMap::new();
    for file in files {
        let folder = file
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        by_folder.entry(folder).or_default().push(file);
    }
    for (folder, files) in by_folder {
        let _ = writeln!(
            out,
            "<details><summary>{} ({} files)</summary><ul>",
            esc(if folder.is_empty() { "." } else { &folder }),
            files.len()
        );
        for file in files {
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a></li>",
                href(file),
                esc(&file.display().to_string())
            );
        }
        out.push_str("</ul></details>\n");
    }
    if more > 0 {
        let _ = writeln!(out, "<p>and {more} more files, not listed.</p>");
    }
    out.push_str("</section>\n");
}

/// The page of many runs in one call: a matrix of labs × datalinks, each
/// cell linking to its run's page. It is written in a directory beside
/// the run directories (`RUNS/many-<time>/`), so each link is
/// `../<run directory>/report.html`.
pub fn page_many(ends: &[RunEnd]) -> String {
    let mut labs: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let mut failed = Vec::new();
    let (mut passed, mut total) = (0, 0);
    let mut place = |lab: &str, datalink: Option<crate::lab::DatalinkKind>, cell: String| {
        let column = datalink.map_or("as written".to_owned(), |d| d.as_str().to_owned());
        let row = labs.iter().position(|l| l == lab).unwrap_or_else(|| {
            labs.push(lab.to_owned());
            labs.len() - 1
        });
        let col = columns
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| {
                columns.push(column);
                columns.len() - 1
            });
        cells.insert((row, col), cell);
    };
    for end in ends {
        total += 1;
        match end {
            RunEnd::Ran(report) => {
                let (class, word) = outcome_tag(report.outcome);
                if report.outcome == Outcome::Passed {
                    passed += 1;
                }
                let dir = report
                    .run_dir
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                let link = href(&dir.join(HTML_FILE));
                place(
                    &report.lab,
                    report.datalink,
                    format!(
                        "<a href=\"../{link}\" title=\"{}\"><span class=\"tag {class}\">{word}</span></a> \
                         <span class=\"meta\">{}</span>",
                        esc(&suite_name(&report.lab, report.datalink)),
                        esc(&seconds(report.duration))
                    ),
                );
            }
            RunEnd::NotRun(not_run) => place(
                &not_run.lab,
                not_run.datalink,
                format!(
                    "<span class=\"tag skipped\">SKIP</span> <span class=\"meta\">{}</span>",
                    esc(&not_run.reason)
                ),
            ),
            RunEnd::Failed { label, error } => failed.push((label.clone(), error.clone())),
        }
    }
    let mut out = String::new();
    head(&mut out, &format!("labctl run: {passed} of {total} passed"));
    let _ = writeln!(
        out,
        "<h1>labctl run: {passed} of {total} runs passed</h1>\n<table class=\"matrix\" id=\"matrix\">\n<tr><th>lab</th>{}</tr>",
        columns
            .iter()
            .map(|c| format!("<th>{}</th>", esc(c)))
            .collect::<String>()
    );
    for (row, lab) in labs.iter().enumerate() {
        let _ = write!(out, "<tr><th>{}</th>", esc(lab));
        for col in 0..columns.len() {
            let _ = write!(
                out,
                "<td>{}</td>",
                cells.get(&(row, col)).map_or("", String::as_str)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if !failed.is_empty() {
        out.push_str("<h2>Runs without a run directory</h2>\n<ul>\n");
        for (label, error) in failed {
            let _ = writeln!(
                out,
                "<li><span class=\"tag error\">ERROR</span> {}: {}</li>",
                esc(&label),
                esc(&error)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{report, step};
    use super::super::{NotRun, RunProblem, RunProblemKind};
    use super::*;
    use crate::run::result::FailedCheck;

    #[test]
    fn hostile_output_is_text_never_markup() {
        let mut bad = step("<script>alert(1)</script>", Status::Failed);
        bad.stdout = "</pre></details><script>alert(2)</script>\u{0}\u{1b}[31m\u{fffd}\n".into();
        bad.stderr = format!("{}\n", "<".repeat(100_000));
        bad.failures = vec![FailedCheck {
            check: "stdout contains \"<img src=x onerror=alert(3)>\"".into(),
            expected: "the text in the output".into(),
            found: "no occurrence".into(),
            tail: vec!["<b>bold</b>".into()],
        }];
        bad.error = Some("timed out ' \" <".into());
        let html = page(&report(vec![bad]));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>bold"), "{html}");
        assert!(!html.contains('\u{0}'));
        assert!(!html.contains('\u{1b}'));
        assert!(
            html.contains("&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;alert(2)"),
            "{html}"
        );
        // A huge line shows cut, as in the summary: the page stays small.
        assert!(html.len() < 100_000, "{}", html.len());
        // Every tag that opens closes: the hostile text broke no structure.
        for tag in ["details", "pre", "table", "section"] {
            assert_eq!(
                html.matches(&format!("<{tag}")).count(),
                html.matches(&format!("</{tag}>")).count(),
                "<{tag}> balance"
            );
        }
    }

    #[test]
    fn text_adds_no_markup_character() {
        // The fuzz target's check (fuzz/fuzz_targets/report.rs): the same
        // run with `<`, `>`, `"` and `'` made letters in every string has
        // a page with as many `<` and `"`.
        let make = |tame: bool| {
            let t = |s: &str| {
                if tame {
                    s.replace(['<', '>', '"', '\''], "x")
                } else {
                    s.to_owned()
                }
            };
            let mut bad = step(&t("a<b\" onload=\"x"), Status::Failed);
            bad.node = Some(t("n<1>"));
            bad.argv = vec![t("lab-ping"), t("\"><svg onload=alert(1)>")];
            bad.stdout = t("</text></svg><script>\n'\"");
            bad.error = Some(t("' \" <"));
            page(&report(vec![bad]))
        };
        let (hostile, tame) = (make(false), make(true));
        for c in ['<', '"'] {
            assert_eq!(hostile.matches(c).count(), tame.matches(c).count(), "{c}");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = page(&report(vec![step("ping", Status::Passed)]));
        assert!(html.contains("default-src 'none'"));
        for attr in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
            "url(http",
        ] {
            assert!(!html.contains(attr), "{attr} in {html}");
        }
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_failed_step_is_open_and_its_check_shown() {
        let html = page(&report(vec![
            step("pong", Status::Passed),
            step("ping", Status::Failed),
            step("later", Status::Skipped),
        ]));
        assert!(
            html.contains("<span class=\"tag failed\" id=\"outcome\">FAILED</span>"),
            "{html}"
        );
        assert!(
            html.contains("<details class=\"step s-failed\" id=\"step-2\" open>"),
            "{html}"
        );
        assert!(html.contains("<td>stdout contains &quot;3 received&quot;</td><td>the text in the output</td><td>no occurrence</td>"), "{html}");
        assert!(html.contains("Failed: ping."), "{html}");
    }

    #[test]
    fn every_check_is_listed_held_failed_or_not_checked() {
        use crate::run::result::ExpectedCheck;
        let checks = vec![
            ExpectedCheck {
                check: "exit".into(),
                expected: "exit code 0".into(),
            },
            ExpectedCheck {
                check: "stdout contains \"3 received\"".into(),
                expected: "the text in the output".into(),
            },
        ];
        let mut passed = step("pong", Status::Passed);
        passed.checks = checks.clone();
        let mut failed = step("ping", Status::Failed);
        failed.checks = checks.clone();
        let mut skipped = step("later", Status::Skipped);
        skipped.checks = checks;
        let html = page(&report(vec![passed, failed, skipped]));
        assert_eq!(
            html.matches("<tr class=\"held\"><td>exit</td><td>exit code 0</td><td>held</td></tr>")
                .count(),
            2,
            "{html}"
        );
        assert_eq!(html.matches("<tr class=\"failure\"><td>stdout contains &quot;3 received&quot;</td><td>the text in the output</td><td>no occurrence</td></tr>").count(), 1, "{html}");
        assert_eq!(html.matches("<td>not checked</td>").count(), 2, "{html}");
    }

    #[test]
    fn an_interrupted_run_says_it_was_cut_short() {
        let mut r = report(vec![step("ping", Status::Interrupted)]);
        r.outcome = Outcome::Interrupted;
        r.problems = vec![RunProblem::new(
            RunProblemKind::Write,
            "writing x: No space left on device",
        )];
        let html = page(&r);
        assert!(html.contains("This run was cut short"), "{html}");
        assert!(
            html.contains("<b>write</b>: writing x: No space left on device"),
            "{html}"
        );
    }

    #[test]
    fn links_stay_relative_inside_the_run_directory() {
        assert_eq!(
            href(Path::new("steps/01-a b.stdout")),
            "steps/01-a%20b.stdout"
        );
        assert_eq!(href(Path::new("/etc/passwd")), "etc/passwd");
        assert_eq!(
            href(Path::new("nodes/a/x\"><script>")),
            "nodes/a/x%22%3E%3Cscript%3E"
        );
        assert_eq!(href(Path::new("http://x")), "http%3A//x");
    }

    /// A run with everything the page shows: phases, a background sink
    /// and its samples, a link cut and restored, a failed check.
    fn full_report() -> RunReport {
        use crate::report::traffic::{SinkInterval, SinkSummary};
        use crate::report::Timing;
        use crate::run::result::{ExpectedCheck, LinkChange};
        let lab = crate::lab::parse(
            r#"
name: golden
description: a lab drawn for the golden test
nodes: { gen: {}, dut: {}, sink: {} }
links:
  - endpoints:
      - { node: gen, interface: eth1, ipv4: 198.18.4.1/24, impair: { rate: 4mbit } }
      - { node: dut, interface: west }
  - endpoints: ["dut:east", "sink:eth1"]
    ipv4: [198.18.4.3/24, 198.18.4.2/24]
    mtu: 9000
"#,
            Path::new("golden.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let at = |ms: u64| Some(Duration::from_millis(ms));
        let mut sink = step("sink", Status::Passed);
        sink.kind = StepKind::Background;
        sink.node = Some("sink".into());
        sink.argv = vec!["lab-sink".into(), "eth1".into(), "--json".into()];
        sink.start = at(0);
        sink.duration = Duration::from_millis(50);
        let mut cut = step("cut", Status::Passed);
        cut.kind = StepKind::Link;
        cut.node = Some("dut".into());
        cut.argv.clear();
        cut.link = Some(LinkChange {
            interface: "east".into(),
            state: "down".into(),
        });
        cut.start = at(1000);
        let mut restore = cut.clone();
        restore.name = "restore".into();
        restore.link = Some(LinkChange {
            interface: "east".into(),
            state: "up".into(),
        });
        restore.start = at(2000);
        let mut wait = step("sink ends", Status::Failed);
        wait.kind = StepKind::Wait;
        wait.node = Some("sink".into());
        wait.argv.clear();
        wait.waits_for = Some("sink".into());
        wait.start = at(3000);
        wait.checks = vec![
            ExpectedCheck {
                check: "exit".into(),
                expected: "exit code 0".into(),
            },
            ExpectedCheck {
                check: "stdout contains \"3 received\"".into(),
                expected: "the text in the output".into(),
            },
        ];
        let mut skipped = step("later", Status::Skipped);
        skipped.stdout.clear();
        let mut r = report(vec![sink, cut, restore, wait, skipped]);
        r.lab = "golden".into();
        r.topology = Some(crate::report::Topology::of(
            &lab,
            crate::lab::RuntimeKind::Netns,
        ));
        r.phases = ["image", "nodes", "links", "steps", "artifacts", "teardown"]
            .iter()
            .enumerate()
            .map(|(n, name)| Timing {
                name: (*name).into(),
                duration: Duration::from_millis(if *name == "steps" { 3700 } else { 100 }),
                start: at(if n <= 3 {
                    n as u64 * 100
                } else {
                    4000 + (n as u64 - 4) * 100
                }),
            })
            .collect();
        r.duration = Duration::from_millis(4300);
        r.traffic = vec![SinkTraffic {
            step: "sink".into(),
            intervals: (0..30)
                .map(|n| {
                    let cut = (9..19).contains(&n);
                    SinkInterval {
                        start_ms: n as f64 * 100.0,
                        duration_ms: 100.0,
                        received: if cut { 0 } else { 100 },
                        rate: if cut { 0.0 } else { 1000.0 },
                        lost: if n == 19 { 1000 } else { 0 },
                        lost_total: if n >= 19 { 1000 } else { 0 },
                        latency_p50_ms: (!cut).then_some(0.02),
                        latency_p99_ms: (!cut).then_some(0.09),
                        latency_max_ms: (!cut).then_some(0.4),
                    }
                })
                .collect(),
            intervals_left_out: 0,
            summary: Some(SinkSummary {
                received: 2000,
                lost: 1000,
                loss_percent: 33.33,
                rate: 1000.0,
                latency_min_ms: Some(0.01),
                latency_p50_ms: Some(0.02),
                latency_p99_ms: Some(0.09),
                latency_max_ms: Some(0.4),
                latency_histogram: vec![
                    (0.008, 100),
                    (0.016, 700),
                    (0.032, 1150),
                    (0.064, 40),
                    (0.512, 10),
                ],
            }),
        }];
        r
    }

    /// The page's structure, a line per landmark: sections, headings,
    /// steps (status, folded or not), drawings, tables, links.
    fn outline(html: &str) -> String {
        let landmark = regex::Regex::new(
            r#"<(section id="[^"]+"|h[123]>[^<]*|details class="step [^"]*" id="[^"]+"(?: open)?|svg|table class="[^"]+"(?: id="[^"]+")?|div class="[^"]+"|pre class="[^"]+"|a href="[^"]*"|span class="tag [^"]+"[^>]*>[A-Z]+)"#,
        )
        .unwrap();
        landmark
            .captures_iter(html)
            .map(|c| format!("{}\n", &c[1]))
            .collect()
    }

    #[test]
    fn the_page_structure_matches_the_golden_outline() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report-html.outline");
        let got = outline(&page(&full_report()));
        if std::env::var_os("LABCTL_UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            got == want,
            "the page's structure changed; if on purpose, run with LABCTL_UPDATE_GOLDEN=1 and \
             review tests/golden/report-html.outline:\n{got}"
        );
        // What the golden outline must hold, whatever else changes.
        for landmark in [
            "section id=\"topology\"",
            "section id=\"timeline\"",
            "section id=\"traffic\"",
            "div class=\"plot histogram\"",
            "details class=\"step s-failed\" id=\"step-4\" open",
        ] {
            assert!(got.contains(landmark), "{landmark} in {got}");
        }
        assert!(got.matches("svg\n").count() >= 4, "{got}");
    }

    #[test]
    fn the_page_of_many_runs_is_a_matrix_linking_each_run() {
        let mut passed = report(vec![step("ping", Status::Passed)]);
        passed.outcome = Outcome::Passed;
        passed.run_dir = "runs/icmp-0a0b-20261207T000000".into();
        let mut on_xdp = report(vec![step("ping", Status::Failed)]);
        on_xdp.datalink = Some(crate::lab::DatalinkKind::AfXdp);
        on_xdp.run_dir = "runs/icmp-0c0d-20261207T000001".into();
        let ends = [
            RunEnd::Ran(Box::new(passed)),
            RunEnd::Ran(Box::new(on_xdp)),
            RunEnd::NotRun(NotRun {
                lab: "icmp".into(),
                datalink: Some(crate::lab::DatalinkKind::Netmap),
                reason: "no /dev/netmap <here>".into(),
            }),
        ];
        let html = page_many(&ends);
        assert!(
            html.contains("<th>as written</th><th>af_xdp</th><th>netmap</th>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"../icmp-0a0b-20261207T000000/report.html\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"../icmp-0c0d-20261207T000001/report.html\""),
            "{html}"
        );
        assert!(html.contains("no /dev/netmap &lt;here&gt;"), "{html}");
        assert_eq!(html.matches("<tr><th>icmp</th>").count(), 1, "{html}");
    }
}
