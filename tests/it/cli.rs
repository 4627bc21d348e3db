//! First contact (issue 16.6), through the binary: shell completions and
//! man pages generated from the clap definitions, `--version` with the
//! commit, NO_COLOR. (The not-root line is in install.rs, SIGTERM in
//! run.rs and instances.rs.)

use std::path::Path;
use std::process::Command;

use crate::support::bin;
use crate::support::lab::{assert_nothing_left, labctl, stderr, stdout, TestLab, PING_PAIR_LAB};
use crate::support::skip::skip;

/// Every subcommand a user types.
const COMMANDS: [&str; 11] = [
    "run",
    "validate",
    "graph",
    "schema",
    "report",
    "deploy",
    "destroy",
    "inspect",
    "exec",
    "completions",
    "man",
];

fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(format!("part: {program} is not installed"));
    }
    found
}

#[test]
fn bash_completion_is_sourceable_and_completes_the_subcommands_and_flags() {
    let out = labctl(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("labctl.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Source it, then ask the completion function what it offers after
    // `labctl ` and after `labctl run --da`, as bash would.
    let probe = format!(
        "set -e; source {script}; complete -p labctl; \
         COMP_WORDS=(labctl ''); COMP_CWORD=1; _labctl labctl '' labctl; \
         echo \"top: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(labctl run --da); COMP_CWORD=2; _labctl labctl --da run; \
         echo \"run: ${{COMPREPLY[*]}}\"",
        script = script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("bash");
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(said.contains("-F _labctl labctl"), "{said}");
    let top = said.lines().find_map(|l| l.strip_prefix("top: ")).unwrap();
    for command in COMMANDS {
        assert!(
            top.split(' ').any(|w| w == command),
            "{command} not offered: {top}"
        );
    }
    let run = said.lines().find_map(|l| l.strip_prefix("run: ")).unwrap();
    assert_eq!(run, "--datalink", "{said}");
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    for (shell, head, check) in [
        ("zsh", "#compdef labctl", ["zsh", "-n"]),
        ("fish", "complete -c labctl", ["fish", "--no-execute"]),
    ] {
        let out = labctl(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(head), "{shell}: {text}");
        for command in COMMANDS {
            assert!(text.contains(command), "{shell}: {command} missing");
        }
        if have(check[0]) {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("completion");
            std::fs::write(&file, &out.stdout).unwrap();
            let syntax = Command::new(check[0])
                .arg(check[1])
                .arg(&file)
                .output()
                .unwrap();
            assert!(syntax.status.success(), "{shell}: {}", stderr(&syntax));
        }
    }
    let out = labctl(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The rendered text of a roff page, and groff's warnings about it; `None`
/// where neither man nor groff can render it (the structure is still
/// checked by the caller).
fn render(page: &Path) -> Option<(String, String)> {
    if have("groff") {
        // -k: the page is UTF-8 (as man-db's preconv); -ww: every warning;
        // -P-c -P-bou: plain text, no bold or underline.
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-P-c", "-P-bou"])
            .arg(page)
            .output()
            .unwrap();
        assert!(out.status.success(), "groff: {}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.contains(['\u{8}', '\u{1b}']), "{text:?}");
        return Some((unwrap_lines(&text), stderr(&out)));
    }
    if have("man") {
        let out = Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l: {}", stderr(&out));
        return Some((unwrap_lines(&stdout(&out)), stderr(&out)));
    }
    None
}

/// Rendered text as one line: words hyphenated at a line's end joined,
/// runs of blanks made one space.
fn unwrap_lines(text: &str) -> String {
    let mut joined = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match joined.strip_suffix('\u{2010}') {
            Some(cut) => joined.truncate(cut.len()),
            None if !joined.is_empty() => joined.push(' '),
            None => {}
        }
        joined.push_str(line);
    }
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_man_pages_render_with_every_command_and_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = labctl(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let roff = stdout(&out);
    for section in [
        ".TH labctl 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(roff.contains(section), "{section} missing:\n{roff}");
    }
    let page = dir.path().join("labctl.1");
    std::fs::write(&page, &out.stdout).unwrap();
    if let Some((text, warnings)) = render(&page) {
        assert_eq!(warnings, "", "the page renders with warnings");
        for command in COMMANDS {
            assert!(
                text.contains(&format!("labctl-{command}(1)")),
                "{command}:\n{text}"
            );
        }
        assert!(text.contains("EXIT STATUS"), "{text}");
        for code in ["130", "statically", "CAP_NET_ADMIN"] {
            assert!(text.contains(code), "{code}:\n{text}");
        }
    }
    // Each command's own page: its options.
    for command in COMMANDS {
        let out = labctl(&["man", command]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        let roff = stdout(&out);
        assert!(roff.contains(&format!(".TH labctl-{command} 1")), "{roff}");
        let page = dir.path().join(format!("labctl-{command}.1"));
        std::fs::write(&page, &out.stdout).unwrap();
        if let Some((text, warnings)) = render(&page) {
            assert_eq!(warnings, "", "labctl-{command}(1) renders with warnings");
            assert!(text.contains(&format!("labctl {command}")), "{text}");
        }
    }
    let out = labctl(&["man", "runn"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("labctl's commands: run, validate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = labctl(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let line = stdout(&out);
    let version = env!("CARGO_PKG_VERSION");
    // The checkout this test binary was built from, if the package is the
    // top level of one (build.rs falls back to "unknown" elsewhere, and
    // LABCTL_COMMIT overrides it; src/cli/commit.rs tests that).
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(package)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| stdout(&o).trim().to_owned())
    };
    let top_level = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| Path::new(&top).canonicalize().ok())
        .is_some_and(|top| Some(top) == package.canonicalize().ok());
    let head = match option_env!("LABCTL_COMMIT").filter(|c| !c.is_empty()) {
        Some(commit) => Some(commit.to_owned()),
        None if top_level => git(&["rev-parse", "--short=12", "HEAD"]),
        None => None,
    };
    match head {
        // cargo test rebuilds labctl after a commit (build.rs watches HEAD).
        Some(head) => assert_eq!(line, format!("labctl {version} (commit {head})\n")),
        None => assert_eq!(line, format!("labctl {version} (commit unknown)\n")),
    }
}

/// Runs `labctl ARGS` on a pseudo-terminal (util-linux `script`), with
/// `env`; what it wrote to the terminal.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = bin("labctl").display().to_string();
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    script.env_remove("NO_COLOR").env("TERM", "xterm");
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script.output().expect("script (util-linux)");
    stdout(&out)
}

#[test]
fn no_color_means_no_escape_sequences_on_a_terminal() {
    if !have("script") {
        return;
    }
    let tools = bin("lab-ping").parent().unwrap().display().to_string();
    let tools = tools.as_str();
    let runs = tempfile::tempdir().unwrap();
    let runs_dir = runs.path().to_str().unwrap();
    // A run on the netns runtime (no image build), with step progress.
    let lab = TestLab::new("color", PING_PAIR_LAB);
    let run = |env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("LABCTL_TOOLS_DIR", tools));
        on_a_terminal(
            &[
                "run",
                lab.path(),
                "--runtime",
                "netns",
                "--runs-dir",
                runs_dir,
            ],
            &env,
        )
    };
    // Without NO_COLOR the terminal gets escape sequences (clap's styled
    // help, the spinners): the check below can fail.
    let help = on_a_terminal(&["run", "--help"], &[]);
    assert!(help.contains('\u{1b}'), "{help}");
    let plain = on_a_terminal(&["run", "--help"], &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("--datalink"), "{plain}");
    let error = on_a_terminal(&["run", "--bogus"], &[("NO_COLOR", "1")]);
    assert!(
        !error.contains('\u{1b}') && error.contains("--bogus"),
        "{error:?}"
    );

    let colored = run(&[]);
    assert!(colored.contains('\u{1b}'), "{colored:?}");
    let plain = run(&[("NO_COLOR", "1")]);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("[2/2] ping: passed"), "{plain}");
    assert!(plain.contains("2 passed, 0 failed"), "{plain}");
    assert_nothing_left(&lab.name);
}
