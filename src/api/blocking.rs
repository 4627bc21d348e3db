//! The API for code without an async runtime (a plain `#[test]`): a
//! [`BlockingLab`] owns an async runtime and runs each call on it.

use std::time::Duration;

use super::{Error, Impair, Lab, Output, Process, RunningLab, Signal};

/// A running lab driven from blocking code; dropping it tears the lab
/// down, as dropping a [`RunningLab`] does.
///
/// ```no_run
/// use labctl::api::Lab;
/// let lab = Lab::load("labs/icmp.yaml")?.up_blocking()?;
/// let out = lab.exec("pinger", &["lab-ping", "eth1", "198.18.0.2", "--count", "1"])?;
/// println!("{}", out.stdout);
/// # Ok::<(), labctl::api::Error>(())
/// ```
pub struct BlockingLab {
    // Dropped before `runtime`: its teardown does not need that runtime
    // anyway (running.rs), but the tasks of its processes do.
    running: Option<RunningLab>,
    runtime: tokio::runtime::Runtime,
}

impl BlockingLab {
    pub(super) fn up(lab: Lab) -> Result<BlockingLab, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("starting an async runtime: {e}")))?;
        let running = runtime.block_on(lab.up())?;
        Ok(BlockingLab {
            running: Some(running),
            runtime,
        })
    }

    /// The async handle, for what this wrapper does not offer.
    pub fn running(&self) -> &RunningLab {
        self.running.as_ref().expect("present until drop or down")
    }

    /// Runs a future on the lab's own async runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn exec(&self, node: &str, argv: &[&str]) -> Result<Output, Error> {
        self.block_on(async { self.running().node(node)?.exec(argv).await })
    }

    pub fn spawn(&self, node: &str, argv: &[&str]) -> Result<BlockingProcess<'_>, Error> {
        let process = self.block_on(async { self.running().node(node)?.spawn(argv).await })?;
        Ok(BlockingProcess { lab: self, process })
    }

    pub fn link_down(&self, endpoint: &str) -> Result<(), Error> {
        self.block_on(self.running().link_down(endpoint))
    }

    pub fn link_up(&self, endpoint: &str) -> Result<(), Error> {
        self.block_on(self.running().link_up(endpoint))
    }

    pub fn impair(&self, endpoint: &str, impair: Impair) -> Result<(), Error> {
        self.block_on(self.running().impair(endpoint, impair))
    }

    /// Tears the lab down now and says what failed.
    pub fn down(mut self) -> Result<(), Error> {
        match self.running.take() {
            Some(running) => self.runtime.block_on(running.down()),
            None => Ok(()),
        }
    }
}

/// A command started by [`BlockingLab::spawn`].
pub struct BlockingProcess<'a> {
    lab: &'a BlockingLab,
    process: Process,
}

impl BlockingProcess<'_> {
    pub fn wait_for_line(&mut self, regex: &str, timeout: Duration) -> Result<String, Error> {
        self.lab
            .block_on(self.process.wait_for_line(regex, timeout))
    }

    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.lab.block_on(self.process.signal(signal))
    }

    pub fn wait(self) -> Result<Output, Error> {
        self.lab.block_on(self.process.wait())
    }

    pub fn stop(self) -> Result<Output, Error> {
        self.lab.block_on(self.process.stop())
    }
}
