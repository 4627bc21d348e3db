//! A Docker daemon of a test's own, to kill and restart at will: its own
//! socket, data-root, exec-root, pidfile, config file (the host's
//! /etc/docker/daemon.json is not read), containerd namespaces, and a
//! bridge of its own (never `--bridge=none`, which deletes the host's
//! docker0); no iptables rules. The system daemon is never touched.
//!
//! [`DaemonOpts`] can put containerd and dockerd in a network namespace of
//! their own (a "host" for tests/it/support/hosts.rs) and make dockerd
//! listen on tcp:// with TLS too.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::unique;

/// Where and how a [`PrivateDockerd`] runs; the default is the root
/// network namespace, bridge 198.19.250.1/24, unix socket only.
#[derive(Clone, Debug, Default)]
pub struct DaemonOpts {
    /// A network namespace (its name under /run/netns) that containerd and
    /// dockerd enter before exec (setns only: they keep the root mount
    /// namespace, where their mounts must be for each other and for the
    /// cleanup; `ip netns exec` would give each a mount namespace of its
    /// own). Containers on `--network host` land in it.
    pub netns: Option<String>,
    /// The daemon's bridge address (CIDR); None: 198.19.250.1/24.
    pub bridge_cidr: Option<String>,
    /// Also listen on tcp:// with `--tlsverify`.
    pub tls: Option<TcpTls>,
}

/// A tcp:// listener with TLS: the server side's files.
#[derive(Clone, Debug)]
pub struct TcpTls {
    /// `IP:PORT`
    pub listen: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct PrivateDockerd {
    pub dir: PathBuf,
    pub bridge: String,
    pub opts: DaemonOpts,
    namespace: String,
    /// The running dockerd, waited for once it ends (a zombie would keep
    /// its pid alive, and a restart would refuse the pidfile).
    child: std::sync::Mutex<Option<std::process::Child>>,
    /// containerd, of our own too: it outlives a killed dockerd, as the
    /// system's does, and the restarted daemon finds its containers there.
    containerd: std::sync::Mutex<Option<std::process::Child>>,
}

impl PrivateDockerd {
    /// Starts a daemon, or says why it cannot run here.
    pub fn start() -> Result<PrivateDockerd, String> {
        Self::start_with(DaemonOpts::default())
    }

    /// [`PrivateDockerd::start`] where `opts` say.
    pub fn start_with(opts: DaemonOpts) -> Result<PrivateDockerd, String> {
        if Command::new("dockerd").arg("--version").output().is_err() {
            return Err("dockerd is not installed".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a daemon of the test's own needs root".into());
        }
        // Short: the socket path must fit in sun_path.
        let dir = PathBuf::from(format!("/tmp/{}", unique("lbdd")));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
        // Before 23.0 the daemon's ID comes from a key file, by default
        // /etc/docker/key.json (the system daemon's): one of its own, or
        // every private daemon would share the system's ID. 23.0 keeps a
        // UUID in the data-root and rejects the setting.
        let config = if keeps_id_in_etc() {
            format!(
                "{{\"deprecated-key-path\": \"{}\"}}",
                dir.join("key.json").display()
            )
        } else {
            "{}".to_owned()
        };
        std::fs::write(dir.join("daemon.json"), config).map_err(|e| e.to_string())?;
        let bridge = unique("lbdbr");
        let namespace = unique("lbdns");
        let cidr = opts
            .bridge_cidr
            .clone()
            .unwrap_or_else(|| "198.19.250.1/24".into());
        let daemon = PrivateDockerd {
            dir,
            bridge,
            opts,
            namespace,
            child: std::sync::Mutex::new(None),
            containerd: std::sync::Mutex::new(None),
        };
        for args in [
            vec!["link", "add", &daemon.bridge, "type", "bridge"],
            vec!["addr", "add", &cidr, "dev", &daemon.bridge],
            vec!["link", "set", &daemon.bridge, "up"],
        ] {
            let out = daemon
                .ip()
                .args(&args)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        daemon.run_containerd()?;
        daemon.run()?;
        Ok(daemon)
    }

    /// `unix://…/docker.sock`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn containerd_socket(&self) -> PathBuf {
        self.dir.join("ctd.sock")
    }

    /// `ip`, in the daemon's namespace when it has one.
    fn ip(&self) -> Command {
        let mut ip = Command::new("ip");
        if let Some(ns) = &self.opts.netns {
            ip.args(["-n", ns]);
        }
        ip
    }

    /// Spawns `command`, inside the daemon's namespace when it has one.
    fn spawn(&self, command: &mut Command) -> std::io::Result<std::process::Child> {
        spawn_in(self.opts.netns.as_deref(), command)
    }

    /// The pids of its containerd and (when running) dockerd.
    pub fn pids(&self) -> Vec<i32> {
        [&self.containerd, &self.child]
            .iter()
            .filter_map(|slot| {
                let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                slot.as_ref().map(|c| c.id() as i32)
            })
            .collect()
    }

    fn run_containerd(&self) -> Result<(), String> {
        let d = &self.dir;
        std::fs::write(d.join("containerd.toml"), "version = 2\n").map_err(|e| e.to_string())?;
        let log = std::fs::File::create(d.join("containerd.log")).map_err(|e| e.to_string())?;
        let child = self
            .spawn(
                Command::new("containerd")
                    .arg("--config")
                    .arg(d.join("containerd.toml"))
                    .arg("--address")
                    .arg(self.containerd_socket())
                    .arg("--root")
                    .arg(d.join("ctd-root"))
                    .arg("--state")
                    .arg(d.join("ctd-state"))
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().map_err(|e| e.to_string())?)
                    .stderr(log),
            )
            .map_err(|e| format!("starting containerd: {e}"))?;
        *self.containerd.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.containerd_socket().exists() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("containerd did not make its socket within 30 s".into())
    }

    /// Starts dockerd (again) and waits until it answers.
    pub fn run(&self) -> Result<(), String> {
        let d = &self.dir;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .map_err(|e| e.to_string())?;
        let plugins = format!("{}-plugins", self.namespace);
        let mut dockerd = Command::new("dockerd");
        if let Some(tls) = &self.opts.tls {
            dockerd
                .arg(format!("--host=tcp://{}", tls.listen))
                .arg("--tlsverify")
                .arg(format!("--tlscacert={}", tls.ca.display()))
                .arg(format!("--tlscert={}", tls.cert.display()))
                .arg(format!("--tlskey={}", tls.key.display()));
        }
        dockerd
            .arg(format!("--config-file={}", d.join("daemon.json").display()))
            .arg(format!("--host={}", self.host()))
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("exec").display()))
            .arg(format!("--pidfile={}", d.join("docker.pid").display()))
            .arg(format!("--bridge={}", self.bridge))
            .arg(format!(
                "--containerd={}",
                self.containerd_socket().display()
            ))
            .arg(format!("--containerd-namespace={}", self.namespace))
            .arg(format!("--containerd-plugins-namespace={plugins}"))
            .args(["--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = self
            .spawn(&mut dockerd)
            .map_err(|e| format!("starting dockerd: {e}"))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        // Generous: under a load of 19 on 2 cores, three daemons took 28 s.
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.docker(&["version"]).status.success() {
                return Ok(());
            }
            let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Ok(Some(status))) = slot.as_mut().map(|c| c.try_wait()) {
                slot.take();
                return Err(format!(
                    "dockerd exited ({status}); its log: {}",
                    self.log_tail()
                ));
            }
            drop(slot);
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(format!(
            "the daemon did not answer within 120 s; its log: {}",
            self.log_tail()
        ))
    }

    /// The daemon's pid, from its pidfile.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("docker.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILL to the daemon (its containers stay up a while, as when the
    /// daemon crashes); waits until its socket stops answering.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && self.docker(&["version"]).status.success() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .expect("run docker")
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

/// Spawns `command` inside network namespace `netns` (a name under
/// /run/netns) when given: setns before exec, nothing else changes (the
/// mount namespace stays the root one, unlike `ip netns exec`).
pub fn spawn_in(
    netns: Option<&str>,
    command: &mut Command,
) -> std::io::Result<std::process::Child> {
    let Some(ns) = netns else {
        return command.spawn();
    };
    // Opened here, held until the child has exec'd; close-on-exec.
    let handle = std::fs::File::open(format!("/run/netns/{ns}"))?;
    let fd = handle.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls setns, which is
    // async-signal-safe, on an fd the parent keeps open.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(handle);
    child
}

/// True for dockerd before 23.0 (see `deprecated-key-path` above).
fn keeps_id_in_etc() -> bool {
    static OLD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OLD.get_or_init(|| {
        // "Docker version 20.10.24+dfsg1, build ..."
        let out = Command::new("dockerd").arg("--version").output();
        let version = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let major = version.ok().and_then(|v| {
            v.split_whitespace()
                .nth(2)?
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()
        });
        major.is_some_and(|m| m < 23)
    })
}

/// SIGTERM to a process of ours, a grace period, SIGKILL; waits for it.
pub fn stop(slot: &std::sync::Mutex<Option<std::process::Child>>) {
    let Some(mut child) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // Whatever the test left: the daemon's containers, the daemon,
        // its containerd (ours: it runs from our exec-root), the bridge, the
        // mounts under our directory, the directory.
        if !self.docker(&["version"]).status.success() {
            // Killed by the test: back up, to remove its containers.
            let _ = self.run();
        }
        if self.docker(&["version"]).status.success() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                self.docker(&["rm", "-f", id]);
            }
        }
        stop(&self.child);
        stop(&self.containerd);
        // Last resort: shims (and their containers' processes) that
        // outlived their daemon, found by our directory in their command
        // line.
        for pid in processes_mentioning(self.dir.to_str().unwrap_or("-")) {
            for child in children_of(pid) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.ip().args(["link", "del", &self.bridge]).output();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(self.dir.to_str().unwrap_or("-")))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn processes_mentioning(text: &str) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(text)
        })
        .collect()
}

/// Direct children of `parent` (from /proc/PID/stat's ppid field).
fn children_of(parent: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}
