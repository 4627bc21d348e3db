//! Bounded memory through the real binary and the real daemon: a step
//! printing ~200 MB (one long line, and many lines) and a 3 GB sparse file
//! in /lab/out. The run completes, the checks hold, the files keep the
//! exact bytes. (Peak RSS is measured in ci/bench, group `memory`, not
//! asserted here.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::lab::{assert_nothing_left, busybox_image, labctl, stderr, stdout, TestLab};

/// `labctl run` with its run directory under a temporary folder.
fn run(lab: &TestLab) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runs = dir.path().join("runs");
    let out = labctl(&["run", lab.path(), "--runs-dir", runs.to_str().unwrap()]);
    (out, dir)
}

fn run_dir(dir: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .expect("runs dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run directory");
    dirs.pop().unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Reads `path` in pieces and hands each to `f` with its offset.
fn each_piece(path: &Path, mut f: impl FnMut(u64, &[u8])) -> u64 {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return at;
        }
        f(at, &buf[..n]);
        at += n as u64;
    }
}

const LINE_BYTES: u64 = 200_000_000;
const LINES: u64 = 2_000_000;
/// 99 `y` and a line break: 100 bytes a line, 200 MB in all.
const Y_LINE: &str = "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy";

#[test]
fn a_step_printing_200_mb_keeps_its_exact_bytes_and_its_checks_hold() {
    let yaml = format!(
        r#"name: {{name}}
nodes:
  box: {{ image: "{image}" }}
steps:
  - name: long line
    node: box
    exec: [sh, -c, 'head -c {LINE_BYTES} /dev/zero | tr "\0" x; echo END']
    timeout: 5m
    expect:
      stdout:
        - contains: xxxEND
        # A line is matched over its first 64 KiB: all x.
        - match: '^x+$'
          count: 1
  - name: many lines
    node: box
    exec: [sh, -c, 'echo first; yes {Y_LINE} | head -n {LINES}; echo last; echo oops >&2']
    timeout: 5m
    expect:
      stdout:
        - match: '^y+$'
          count: {LINES}
        - match: '^(first|last)$'
          count: 2
        - contains: "first\nyyy"
      stderr:
        - match: '^oops$'
  - name: binary
    node: box
    exec: [sh, -c, 'printf "\377\376bin\000\200\r\n"; printf "\303\050end" >&2']
    expect:
      stdout:
        - contains: bin
"#,
        image = busybox_image()
    );
    let lab = TestLab::new("mbig", &yaml);
    let (out, dir) = run(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let run = run_dir(dir.path());
    let steps = run.join("steps");

    // One long line: every byte as printed.
    let mut bad = None;
    let size = each_piece(&steps.join("01-long_line.stdout"), |at, piece| {
        for (i, b) in piece.iter().enumerate() {
            let pos = at + i as u64;
            let want = match pos.checked_sub(LINE_BYTES) {
                None => b'x',
                Some(k) => b"END\n"[k as usize],
            };
            if *b != want && bad.is_none() {
                bad = Some(pos);
            }
        }
    });
    assert_eq!(size, LINE_BYTES + 4);
    assert_eq!(bad, None, "long line differs at byte {bad:?}");

    // Many lines: first, LINES lines of y, last.
    let mut expected = b"first\n".to_vec();
    let y = format!("{Y_LINE}\n");
    let mut mismatch = None;
    let size = each_piece(&steps.join("02-many_lines.stdout"), |at, piece| {
        for (i, b) in piece.iter().enumerate() {
            let pos = at + i as u64;
            let want = if pos < 6 {
                expected[pos as usize]
            } else if pos < 6 + LINES * 100 {
                y.as_bytes()[((pos - 6) % 100) as usize]
            } else {
                b"last\n"[(pos - 6 - LINES * 100) as usize]
            };
            if *b != want && mismatch.is_none() {
                mismatch = Some(pos);
            }
        }
    });
    expected.clear();
    assert_eq!(size, 6 + LINES * 100 + 5);
    assert_eq!(mismatch, None, "many lines differ at byte {mismatch:?}");

    // Binary output is kept raw, not made valid UTF-8.
    assert_eq!(
        std::fs::read(steps.join("03-binary.stdout")).unwrap(),
        b"\xff\xfebin\x00\x80\r\n"
    );
    assert_eq!(
        std::fs::read(steps.join("03-binary.stderr")).unwrap(),
        b"\xc3\x28end"
    );

    // The report holds the end of each output and says how much is cut.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let long = &report["steps"][0];
    assert!(long["stdout"].as_str().unwrap().ends_with("xxxEND\n"));
    let kept = long["stdout"].as_str().unwrap().len() as u64;
    assert!(kept <= 64 * 1024, "{kept} bytes kept in the report");
    assert_eq!(
        long["stdout_truncated_bytes"].as_u64(),
        Some(LINE_BYTES + 4 - kept)
    );
    assert!(report["steps"][2].get("stdout_truncated_bytes").is_none());
    assert_nothing_left(&lab.name);
}

#[test]
fn a_3_gb_sparse_file_in_lab_out_is_copied_whole_and_stays_sparse() {
    use std::os::unix::fs::MetadataExt;
    let yaml = format!(
        r#"name: {{name}}
nodes:
  box: {{ image: "{image}" }}
steps:
  - name: sparse
    node: box
    exec: [sh, -c, 'echo head > /lab/out/big && truncate -s 3G /lab/out/big && echo end >> /lab/out/big']
"#,
        image = busybox_image()
    );
    let lab = TestLab::new("msparse", &yaml);
    let (out, dir) = run(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let big = run_dir(dir.path()).join("nodes/box/big");
    let meta = std::fs::metadata(&big).expect("the big file was copied");
    assert_eq!(meta.len(), (3 << 30) + 4);
    // The holes stayed holes on the host.
    assert!(meta.blocks() * 512 < 64 << 20, "{} blocks", meta.blocks());
    let mut file = std::fs::File::open(&big).unwrap();
    let mut head = [0u8; 5];
    file.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head\n");
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::End(-4)).unwrap();
    let mut tail = [0u8; 4];
    file.read_exact(&mut tail).unwrap();
    assert_eq!(&tail, b"end\n");
    assert_nothing_left(&lab.name);
}
