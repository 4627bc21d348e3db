//! A tool running in the background in a network namespace: its stdout
//! read line by line as it comes, so a test waits for a readiness line
//! ("listening on", "capturing on") instead of sleeping. Dropping it kills
//! the process if the test failed before stopping it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::in_netns;

pub struct Running {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

/// What a finished tool left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Running {
    /// Starts `program ARGS...` in `netns` with `env` set.
    pub fn spawn(netns: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut command = Command::new(program);
        command.args(args).envs(env.iter().copied());
        let name = format!("{} {}", program.display(), args.join(" "));
        Self::start(name, in_netns(netns, &command))
    }

    /// Starts `command` as it is (e.g. `docker exec` into a lab's node).
    pub fn start(name: String, mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a tool in its namespace");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Running {
            name,
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits until a stdout line contains `text`; panics (with everything
    /// seen so far) after `timeout`.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> String {
        self.wait_until(
            &format!("line with {text:?}"),
            |line| line.contains(text),
            timeout,
        )
    }

    /// Waits until a stdout line (one already seen included) is as `is`
    /// asks, `what` in words; panics (with everything seen so far) after
    /// `timeout`.
    pub fn wait_until(
        &mut self,
        what: &str,
        is: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|line| is(line)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if is(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{}: no {what} within {timeout:?} (exited: {status:?}); stdout so far: {:#?}",
                        self.name, self.seen
                    );
                }
            }
        }
    }

    /// The tool's process id (`ip netns exec` execs the tool itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGINT`).
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits for the tool to exit by itself (panics after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for a tool") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; stdout so far: {:#?}",
                self.name,
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader ends at EOF, which the exit brings.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stderr = self
            .stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        Finished {
            status,
            stdout: std::mem::take(&mut self.seen),
            stderr,
        }
    }

    /// Sends `signal` and waits for the exit.
    pub fn stop(self, signal: i32) -> Finished {
        self.signal(signal);
        self.finish(Duration::from_secs(10))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
