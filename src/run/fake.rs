//! A scripted stand-in for the Docker runtime, for the engine's tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use super::process::{Chunk, Control, Launched, Launcher, ProcessError, Signal, Stream};

/// What a fake program does.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Printed in order, each after its delay.
    pub lines: Vec<(Duration, Stream, String)>,
    /// Exit code when the lines are done (unless `forever`).
    pub exit: i64,
    /// Keep running after the lines until signalled.
    pub forever: bool,
    /// On SIGINT: print this, then exit with this code. `None`: ignore it.
    pub on_interrupt: Option<(String, i64)>,
}

impl Script {
    pub fn prints(lines: &[&str]) -> Script {
        Script {
            lines: lines
                .iter()
                .map(|l| (Duration::from_millis(5), Stream::Stdout, format!("{l}\n")))
                .collect(),
            ..Default::default()
        }
    }

    pub fn exits(mut self, code: i64) -> Script {
        self.exit = code;
        self
    }

    /// Runs until SIGINT, then prints `last` and exits 0.
    pub fn until_interrupt(mut self, last: &str) -> Script {
        self.forever = true;
        self.on_interrupt = Some((format!("{last}\n"), 0));
        self
    }

    /// Runs until SIGKILL.
    pub fn stubborn(mut self) -> Script {
        self.forever = true;
        self.on_interrupt = None;
        self
    }

    pub fn after(mut self, delay: Duration) -> Script {
        if let Some(first) = self.lines.first_mut() {
            first.0 = delay;
        }
        self
    }
}

/// Programs by name (argv[0]); records the signals each one received.
#[derive(Default)]
pub struct FakeLauncher {
    scripts: HashMap<String, Script>,
    pub signals: Arc<Mutex<Vec<(String, Signal)>>>,
}

impl FakeLauncher {
    pub fn with(mut self, program: &str, script: Script) -> Self {
        self.scripts.insert(program.to_owned(), script);
        self
    }

    pub fn signals_to(&self, program: &str) -> Vec<Signal> {
        self.signals
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == program)
            .map(|(_, s)| *s)
            .collect()
    }
}

struct FakeControl {
    program: String,
    signals: mpsc::UnboundedSender<Signal>,
    log: Arc<Mutex<Vec<(String, Signal)>>>,
    exit: watch::Receiver<Option<i64>>,
}

impl Control for FakeControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        self.log
            .lock()
            .unwrap()
            .push((self.program.clone(), signal));
        let _ = self.signals.send(signal);
        async { Ok(()) }.boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        let mut exit = self.exit.clone();
        async move {
            loop {
                if let Some(code) = *exit.borrow() {
                    return Ok(code);
                }
                exit.changed()
                    .await
                    .map_err(|_| ProcessError::ExitCode("fake process vanished".into()))?;
            }
        }
        .boxed()
    }
}

impl Launcher for FakeLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        let program = argv.first().cloned().unwrap_or_default();
        let script = self.scripts.get(&program).cloned();
        let log = Arc::clone(&self.signals);
        async move {
            let script = script.ok_or_else(|| ProcessError::Launch {
                node: node.to_owned(),
                argv: argv.to_vec(),
                reason: "no such program".into(),
            })?;
            let (out_tx, out_rx) = mpsc::channel(64);
            let (sig_tx, sig_rx) = mpsc::unbounded_channel();
            let (exit_tx, exit_rx) = watch::channel(None);
            tokio::spawn(play(script, out_tx, sig_rx, exit_tx));
            Ok(Launched {
                output: out_rx,
                control: Arc::new(FakeControl {
                    program,
                    signals: sig_tx,
                    log,
                    exit: exit_rx,
                }),
            })
        }
        .boxed()
    }
}

async fn play(
    script: Script,
    out: mpsc::Sender<Chunk>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exit: watch::Sender<Option<i64>>,
) {
    let send = |stream, text: String| {
        let out = out.clone();
        async move {
            let _ = out
                .send(Chunk {
                    stream,
                    data: text.into_bytes(),
                })
                .await;
        }
    };
    let code = 'run: {
        for (delay, stream, line) in script.lines.clone() {
            tokio::select! {
                () = tokio::time::sleep(delay) => send(stream, line).await,
                Some(sig) = signals.recv() => {
                    if let Some(code) = react(&script, sig, &send).await { break 'run code; }
                }
            }
        }
        if !script.forever {
            break 'run script.exit;
        }
        loop {
            match signals.recv().await {
                Some(sig) => {
                    if let Some(code) = react(&script, sig, &send).await {
                        break 'run code;
                    }
                }
                None => break 'run 137,
            }
        }
    };
    // The exit code is known before the output closes, as with Docker.
    exit.send_replace(Some(code));
    drop(out);
}

async fn react<F, Fut>(script: &Script, sig: Signal, send: &F) -> Option<i64>
where
    F: Fn(Stream, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    match (sig, &script.on_interrupt) {
        (Signal::Kill, _) => Some(137),
        (Signal::Interrupt, Some((last, code))) => {
            send(Stream::Stdout, last.clone()).await;
            Some(*code)
        }
        (Signal::Interrupt, None) => None,
    }
}
