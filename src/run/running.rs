//! A started process whose output is collected as it arrives, so the step
//! runner can look at it at any time (readiness) and signal it meanwhile.
//!
//! Memory holds a bounded window of each stream (the end of it, see
//! [`super::output::WINDOW_BYTES`]); the whole goes, byte for byte as the
//! process wrote it, to the step's file when one is given. The `ready`
//! regex is matched here, on each line as it completes, so no line needs
//! to stay in memory until someone looks.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use regex::Regex;
use tokio::sync::watch;

use super::output::{LineSplitter, Tail};
use crate::runtime::process::{Control, Launched, Stream};

/// What a process printed so far, as memory keeps it.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// The end of stdout (at most [`super::output::WINDOW_BYTES`]).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// How many bytes of the streams' beginnings `stdout`/`stderr` lack.
    pub stdout_cut: u64,
    pub stderr_cut: u64,
    /// Both streams closed.
    pub ended: bool,
    /// A line (or the partial last line) matched the `ready` regex.
    pub ready: bool,
    /// Writing a stream's file failed (then the file stops there).
    pub write_error: Option<String>,
}

/// Where a process's streams go, besides memory.
#[derive(Debug, Clone, Default)]
pub struct Collect {
    /// The stdout and stderr files (created, or truncated).
    pub files: Option<[PathBuf; 2]>,
    /// Matched against each line of both streams.
    pub ready: Option<Regex>,
    /// Append to the files instead of truncating them (the tries of a step
    /// with `until` follow each other in the step's files).
    pub append: bool,
}

#[derive(Default)]
struct Shared {
    stdout: Tail,
    stderr: Tail,
    ended: bool,
    ready: bool,
    write_error: Option<String>,
}

/// A process whose output a background task collects, so the engine can
/// look at it at any time (readiness) and signal it meanwhile. Clones share
/// the process.
#[derive(Clone)]
pub struct Running {
    pub control: Arc<dyn Control>,
    shared: Arc<Mutex<Shared>>,
    changed: watch::Receiver<u64>,
    files: Option<[PathBuf; 2]>,
    /// Where this process's output starts in each file (after what earlier
    /// tries appended there).
    starts: [u64; 2],
}

/// One stream's file; after an error it takes nothing more.
struct Spool {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Spool {
    /// The file at `path`, created or truncated, or with `append` added
    /// to; and where the new output starts in it.
    fn open(path: &PathBuf, append: bool) -> (Spool, u64, Option<String>) {
        let opened = if append {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|f| Ok((f.metadata()?.len(), f)))
        } else {
            std::fs::File::create(path).map(|f| (0, f))
        };
        match opened {
            Ok((start, file)) => (
                Spool {
                    path: path.clone(),
                    file: Some(file),
                },
                start,
                None,
            ),
            Err(e) => (
                Spool {
                    path: path.clone(),
                    file: None,
                },
                0,
                Some(format!("writing {}: {e}", path.display())),
            ),
        }
    }

    fn write(&mut self, data: &[u8]) -> Option<String> {
        let file = self.file.as_mut()?;
        // Unbuffered: the file always holds everything collected so far,
        // whenever the checks read it.
        match file.write_all(data) {
            Ok(()) => None,
            Err(e) => {
                self.file = None;
                Some(format!("writing {}: {e}", self.path.display()))
            }
        }
    }
}

impl Running {
    /// Starts collecting `launched`'s output into memory only (the window).
    pub fn collect(launched: Launched) -> Running {
        Running::collect_with(launched, Collect::default())
    }

    /// Starts collecting `launched`'s output on a task of its own: each
    /// chunk to its stream's file as it comes, the end of each stream in
    /// memory, each line against `ready`.
    pub fn collect_with(launched: Launched, collect: Collect) -> Running {
        let Launched {
            mut output,
            control,
        } = launched;
        // Opened here rather than in the task, so that where this output
        // starts in the files is known at once.
        let mut shared = Shared::default();
        let mut starts = [0; 2];
        let mut spools: Option<[Spool; 2]> = None;
        if let Some([out, err]) = &collect.files {
            let (o, o_start, e1) = Spool::open(out, collect.append);
            let (e, e_start, e2) = Spool::open(err, collect.append);
            spools = Some([o, e]);
            starts = [o_start, e_start];
            shared.write_error = e1.or(e2);
        }
        let shared = Arc::new(Mutex::new(shared));
        let (tx, changed) = watch::channel(0u64);
        let sink = Arc::clone(&shared);
        let files = collect.files.clone();
        tokio::spawn(async move {
            let mut ready = collect.ready.map(ReadyLines::new);
            let mut n = 0u64;
            while let Some(chunk) = output.recv().await {
                let i = match chunk.stream {
                    Stream::Stdout => 0,
                    Stream::Stderr => 1,
                };
                let error = spools.as_mut().and_then(|s| s[i].write(&chunk.data));
                let hit = ready.as_mut().is_some_and(|r| r.feed(i, &chunk.data));
                {
                    let mut c = lock(&sink);
                    match chunk.stream {
                        Stream::Stdout => c.stdout.push(&chunk.data),
                        Stream::Stderr => c.stderr.push(&chunk.data),
                    }
                    if let Some(error) = error {
                        c.write_error.get_or_insert(error);
                    }
                    c.ready |= hit;
                }
                n += 1;
                tx.send_replace(n);
            }
            let hit = ready.as_mut().is_some_and(ReadyLines::finish);
            drop(spools);
            {
                let mut c = lock(&sink);
                c.ready |= hit;
                c.ended = true;
            }
            tx.send_replace(n + 1);
        });
        Running {
            control,
            shared,
            changed,
            files,
            starts,
        }
    }

    /// The files the streams go to, if any.
    pub fn files(&self) -> Option<&[PathBuf; 2]> {
        self.files.as_ref()
    }

    /// Where this process's stdout and stderr start in [`Running::files`].
    pub fn starts(&self) -> [u64; 2] {
        self.starts
    }

    /// Whether `other` is a clone of this one (the same process).
    pub fn same(&self, other: &Running) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The first error writing the files, if any.
    pub fn write_error(&self) -> Option<String> {
        lock(&self.shared).write_error.clone()
    }

    /// A copy of what memory holds of the output so far.
    pub fn snapshot(&self) -> Captured {
        captured(&lock(&self.shared))
    }

    pub fn ended(&self) -> bool {
        lock(&self.shared).ended
    }

    /// Looks at the output with `f` now and after each new chunk, until `f`
    /// returns `Some` or the output ends (then `f` gets a last look).
    pub async fn watch<T>(&mut self, mut f: impl FnMut(&Captured) -> Option<T>) -> Option<T> {
        loop {
            {
                let c = captured(&lock(&self.shared));
                if let Some(t) = f(&c) {
                    return Some(t);
                }
                if c.ended {
                    return None;
                }
            }
            if self.changed.changed().await.is_err() {
                // The collector is gone: one last look.
                return f(&captured(&lock(&self.shared)));
            }
        }
    }

    /// Waits until a line matched the `ready` regex given to
    /// [`Running::collect_with`]; `false` if the output ended first.
    pub async fn ready(&mut self) -> bool {
        loop {
            {
                let s = lock(&self.shared);
                if s.ready {
                    return true;
                }
                if s.ended {
                    return false;
                }
            }
            if self.changed.changed().await.is_err() {
                return lock(&self.shared).ready;
            }
        }
    }

    /// Waits until the output has ended.
    pub async fn ended_async(&mut self) {
        loop {
            if lock(&self.shared).ended {
                return;
            }
            if self.changed.changed().await.is_err() {
                return;
            }
        }
    }
}

fn captured(s: &Shared) -> Captured {
    let (stdout, stdout_cut) = s.stdout.kept();
    let (stderr, stderr_cut) = s.stderr.kept();
    Captured {
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
        stdout_cut,
        stderr_cut,
        ended: s.ended,
        ready: s.ready,
        write_error: s.write_error.clone(),
    }
}

/// The `ready` regex against each line of both streams as it completes,
/// and against the partial line so far (a prompt printed without a line
/// break still counts), each line cut at [`super::output::LINE_BYTES`].
struct ReadyLines {
    re: Regex,
    lines: [LineSplitter; 2],
    /// How much of each partial line was already matched (once cut at the
    /// cap it does not grow: no need to match it again).
    tried: [usize; 2],
    hit: bool,
}

impl ReadyLines {
    fn new(re: Regex) -> ReadyLines {
        ReadyLines {
            re,
            lines: Default::default(),
            tried: [0, 0],
            hit: false,
        }
    }

    fn feed(&mut self, i: usize, data: &[u8]) -> bool {
        if self.hit {
            return true;
        }
        let (re, hit) = (&self.re, &mut self.hit);
        let mut completed = false;
        self.lines[i].feed(data, &mut |line| {
            completed = true;
            *hit |= re.is_match(&String::from_utf8_lossy(line));
        });
        if completed {
            self.tried[i] = 0;
        }
        let partial = self.lines[i].partial();
        if !self.hit && !partial.is_empty() && partial.len() != self.tried[i] {
            self.tried[i] = partial.len();
            self.hit = self.re.is_match(&String::from_utf8_lossy(partial));
        }
        self.hit
    }

    fn finish(&mut self) -> bool {
        if !self.hit {
            let (re, hit) = (&self.re, &mut self.hit);
            for lines in &mut self.lines {
                lines.finish(&mut |line| *hit |= re.is_match(&String::from_utf8_lossy(line)));
            }
        }
        self.hit
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding this lock cannot leave the output half-written
    // in a way that matters (appends only), so a poisoned lock is still
    // usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
