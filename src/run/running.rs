//! A started process whose output is collected as it arrives, so the step
//! runner can look at it at any time (readiness) and signal it meanwhile.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::runtime::process::{Control, Launched, Stream};

/// Everything a process printed so far.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Both streams closed.
    pub ended: bool,
}

/// A process whose output a background task collects, so the engine can
/// look at it at any time (readiness) and signal it meanwhile. Clones share
/// the process.
#[derive(Clone)]
pub struct Running {
    pub control: Arc<dyn Control>,
    captured: Arc<Mutex<Captured>>,
    changed: watch::Receiver<u64>,
}

impl Running {
    /// Starts collecting `launched`'s output on a task of its own.
    pub fn collect(launched: Launched) -> Running {
        let Launched {
            mut output,
            control,
        } = launched;
        let captured = Arc::new(Mutex::new(Captured::default()));
        let (tx, changed) = watch::channel(0u64);
        let sink = Arc::clone(&captured);
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(chunk) = output.recv().await {
                {
                    let mut c = lock(&sink);
                    match chunk.stream {
                        Stream::Stdout => c.stdout.extend_from_slice(&chunk.data),
                        Stream::Stderr => c.stderr.extend_from_slice(&chunk.data),
                    }
                }
                n += 1;
                tx.send_replace(n);
            }
            lock(&sink).ended = true;
            tx.send_replace(n + 1);
        });
        Running {
            control,
            captured,
            changed,
        }
    }

    /// A copy of what was printed so far.
    pub fn snapshot(&self) -> Captured {
        lock(&self.captured).clone()
    }

    pub fn ended(&self) -> bool {
        lock(&self.captured).ended
    }

    /// Looks at the output with `f` now and after each new chunk, until `f`
    /// returns `Some` or the output ends (then `f` gets a last look).
    pub async fn watch<T>(&mut self, mut f: impl FnMut(&Captured) -> Option<T>) -> Option<T> {
        loop {
            {
                let c = lock(&self.captured);
                if let Some(t) = f(&c) {
                    return Some(t);
                }
                if c.ended {
                    return None;
                }
            }
            if self.changed.changed().await.is_err() {
                // The collector is gone: one last look.
                return f(&lock(&self.captured));
            }
        }
    }

    /// Waits until the output has ended.
    pub async fn ended_async(&mut self) {
        self.watch(|c| c.ended.then_some(())).await;
    }
}

fn lock(m: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    // A panic while holding this lock cannot leave Captured half-written in
    // a way that matters (appends only), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
