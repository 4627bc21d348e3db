//! `labctl run` on a test's lab with its reports and run directory in a
//! temporary folder, read back: the exit code, JUnit, report.json, a
//! step's entry and output; and the repository's labs under fresh names.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::lab::{labctl, stderr, stdout, TestLab};

/// `#[test] fn docker()` and `#[test] fn netns()` in a module named after
/// the test body, which takes the runtime's name.
#[macro_export]
macro_rules! on_both_runtimes {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[test]
            fn docker() {
                super::$body("docker");
            }
            #[test]
            fn netns() {
                super::$body("netns");
            }
        }
    )*};
}

/// One `labctl run`, with `--junit` and `--json` copies beside its runs.
pub struct Run {
    pub out: Output,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn of(lab: &TestLab, extra: &[&str]) -> Run {
        let dir = tempfile::tempdir().expect("temporary directory");
        let runs = dir.path().join("runs");
        let junit = dir.path().join("junit.xml");
        let json = dir.path().join("report.json");
        let mut args = vec![
            "run",
            lab.path(),
            "--runs-dir",
            runs.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = labctl(&args);
        Run { out, dir }
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn junit(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("junit.xml")).expect("JUnit report")
    }

    pub fn json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("report.json")).expect("JSON");
        serde_json::from_str(&text).expect("valid JSON")
    }

    /// The report.json entry of the step named `name`.
    pub fn step(&self, name: &str) -> serde_json::Value {
        self.json()["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name} in report.json"))
            .clone()
    }

    /// The run directory labctl made (the only one under runs/).
    pub fn run_dir(&self) -> PathBuf {
        let runs = self.dir.path().join("runs");
        let mut dirs: Vec<_> = std::fs::read_dir(&runs)
            .expect("runs dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run directory in {runs:?}");
        dirs.pop().unwrap()
    }

    /// Everything step `name` printed on stdout (its file in the run
    /// directory, named as labctl names it).
    pub fn step_stdout(&self, name: &str) -> String {
        let steps = self.run_dir().join("steps");
        let [first, _] = labctl::run::output::step_files(Path::new(""), 0, name);
        let first = first.to_string_lossy().into_owned();
        // `NN-<slug>.stdout` without its number.
        let suffix = first.trim_start_matches("01");
        let file = std::fs::read_dir(&steps)
            .expect("steps dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no stdout of step {name} in {steps:?}"));
        std::fs::read_to_string(file).expect("step stdout")
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            stdout(&self.out),
            stderr(&self.out)
        )
    }
}

/// A lab file of the repository (`labs/x.yaml`) with its name replaced by
/// `{name}`, so tests can run it side by side under unique names, and its
/// relative binds (`- ./x:/y`, `["../x:/y"]`) pointing at the lab's folder
/// from the copy.
pub fn repo_lab_text(path: &Path) -> String {
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    };
    let text = std::fs::read_to_string(&path).expect("read lab file");
    let dir = path
        .parent()
        .expect("the lab's folder")
        .display()
        .to_string();
    text.lines()
        .map(|line| {
            if line.starts_with("name:") {
                return "name: {name}".to_owned();
            }
            let trimmed = line.trim_start();
            if let Some(rel) = trimmed
                .strip_prefix("- ")
                .filter(|r| r.starts_with("./") || r.starts_with("../"))
            {
                let indent = &line[..line.len() - trimmed.len()];
                return format!("{indent}- {dir}/{rel}");
            }
            line.replace("\"./", &format!("\"{dir}/./"))
                .replace("\"../", &format!("\"{dir}/../"))
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
