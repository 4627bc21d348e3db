//! Several Docker hosts on one machine, for the multi-host tests: each a
//! network namespace of its own with a [`PrivateDockerd`] (and its
//! containerd) inside, joined by an underlay on 198.19.N.0/24 (/16 on
//! the hosts), N unique per [`Hosts`].
//!
//! The underlay bridge is in a namespace of its own (the "switch"), not in
//! the root namespace: there, br_netfilter sends bridged frames through
//! iptables' FORWARD chain, whose policy the system Docker sets to DROP,
//! and the hosts could not reach each other. The root namespace has a veth
//! into the switch with 198.19.N.254/24 (a /24: several [`Hosts`] side by
//! side each route only their own N), so the test process reaches every
//! host's tcp:// endpoint.
//!
//! Dropping a [`Hosts`] stops every sshd and ssh-agent, every daemon and
//! containerd (waiting for them; a killed daemon is started again first,
//! to remove its containers), deletes every namespace (and with them every veth and the
//! bridge) and every temporary directory. [`Footprint`] lists what of all
//! that still exists, for a test to assert that nothing does.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::dockerd::{spawn_in, stop, DaemonOpts, PrivateDockerd, TcpTls};
use super::unique;

/// The underlay interface's name in each host's namespace.
pub const UNDERLAY_IF: &str = "eth0";
/// The dockerd port with TLS, as Docker documents it.
pub const TLS_PORT: u16 = 2376;
/// The daemons' own bridge, inside each host's namespace (never routed
/// outside it; labctl's containers use `--network none`).
const DAEMON_BRIDGE_CIDR: &str = "198.19.255.1/24";
/// Third octets tried for N: 250 and 251 are taken by the single private
/// daemons (dockerd.rs, ci/chaos), 255 by the daemons' own bridges.
const UNDERLAY_NETS: std::ops::RangeInclusive<u8> = 1..=199;

#[derive(Clone, Debug, Default)]
pub struct HostOpts {
    /// Also listen on tcp://UNDERLAY:2376 with `--tlsverify`; the client's
    /// files are in [`Hosts::tls_dir`].
    pub tls: bool,
    /// Also run an sshd on UNDERLAY:22 (key-only root login, a key made
    /// for this [`Hosts`] held by an ssh-agent of its own): the hosts are
    /// reachable as [`Hosts::ssh_endpoint`] with [`Hosts::ssh_env`].
    pub ssh: bool,
}

/// How a lab file reaches a host, for [`Hosts::hosts_yaml_via`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Unix,
    /// tcp:// with its `tls:` directory (the host needs [`HostOpts::tls`]).
    Tls,
    /// ssh:// (the host needs [`HostOpts::ssh`]; labctl needs [`Hosts::ssh_env`]).
    Ssh,
}

type Slot = std::sync::Mutex<Option<std::process::Child>>;

struct Host {
    name: String,
    netns: String,
    underlay: Ipv4Addr,
    daemon: Option<PrivateDockerd>,
    /// The client's ca.pem, cert.pem, key.pem (DOCKER_CERT_PATH layout).
    tls_dir: Option<PathBuf>,
    sshd: Option<Slot>,
}

pub struct Hosts {
    n: u8,
    /// TLS files (and whatever else the hosts need on disk).
    dir: PathBuf,
    switch: String,
    /// The root namespace's veth into the switch; its name holds N, so
    /// creating it claims N against other [`Hosts`] (other processes too).
    root_if: String,
    hosts: Vec<Host>,
    /// The ssh-agent holding the client's key, when the hosts have sshd.
    agent: Option<Slot>,
}

/// Runs `ip ARGS...`; Err(the command and its stderr) when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Hosts {
    /// `names` e.g. ["a","b","c"]: each host gets a network namespace of
    /// its own, `eth0` into the underlay with 198.19.N.(i+1)/16, lo up, and
    /// a dockerd (with its containerd and a bridge of its own) inside. The
    /// daemons start side by side. Err(reason) when it cannot run here
    /// (a program missing, not root): the test skips with it. Once it can,
    /// a failure to set up panics (the test fails): a skip would hide it.
    pub fn start(names: &[&str], opts: HostOpts) -> Result<Hosts, String> {
        for program in ["dockerd", "containerd", "docker", "ip"] {
            if Command::new(program).arg("--version").output().is_err() {
                return Err(format!("{program} is not installed"));
            }
        }
        if opts.ssh {
            for program in ["ssh", "ssh-agent", "ssh-add", "ssh-keygen"] {
                if which(program).is_none() {
                    return Err(format!("{program} is not installed (openssh-client)"));
                }
            }
            if !Path::new(SSHD).is_file() {
                return Err(format!("{SSHD} is not installed (openssh-server)"));
            }
        }
        if opts.tls && Command::new("openssl").arg("version").output().is_err() {
            return Err("openssl is not installed (it makes the TLS certificates)".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("Docker hosts in namespaces of their own need root".into());
        }
        assert!(
            !names.is_empty() && names.len() <= 253,
            "{} hosts: 1 to 253 can be made",
            names.len()
        );
        Ok(Self::set_up(names, opts).unwrap_or_else(|why| panic!("setting up the hosts: {why}")))
    }

    fn set_up(names: &[&str], opts: HostOpts) -> Result<Hosts, String> {
        let dir = PathBuf::from(format!("/tmp/{}", unique("lbh")));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
        let mut hosts = Hosts {
            n: 0,
            dir,
            switch: unique("lbhsw"),
            root_if: String::new(),
            hosts: Vec::new(),
            agent: None,
        };
        // From here on, a failure drops `hosts`, which removes what exists.
        ip(&["netns", "add", &hosts.switch])?;
        ip(&["-n", &hosts.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hosts.switch, "link", "set", "br0", "up"])?;
        hosts.claim_n()?;
        for (i, name) in names.iter().enumerate() {
            if hosts.hosts.iter().any(|h| h.name == *name) {
                return Err(format!("host {name:?} is named twice"));
            }
            let host = Host {
                name: (*name).to_owned(),
                netns: format!("{}-{name}", unique("lbh")),
                underlay: Ipv4Addr::new(198, 19, hosts.n, i as u8 + 1),
                daemon: None,
                tls_dir: None,
                sshd: None,
            };
            ip(&["netns", "add", &host.netns])?;
            hosts.hosts.push(host);
            let host = &hosts.hosts[i];
            let tmp = unique("lbhv");
            ip(&[
                "link",
                "add",
                &tmp,
                "type",
                "veth",
                "peer",
                "name",
                UNDERLAY_IF,
                "netns",
                &host.netns,
            ])?;
            let port = format!("h{i}");
            ip(&["link", "set", &tmp, "netns", &hosts.switch, "name", &port])?;
            ip(&["-n", &hosts.switch, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hosts.switch, "link", "set", &port, "up"])?;
            let cidr = format!("{}/16", host.underlay);
            ip(&["-n", &host.netns, "addr", "add", &cidr, "dev", UNDERLAY_IF])?;
            ip(&["-n", &host.netns, "link", "set", UNDERLAY_IF, "up"])?;
            ip(&["-n", &host.netns, "link", "set", "lo", "up"])?;
        }
        if opts.tls {
            hosts.make_tls()?;
        }
        // Daemons start side by side: each waits for its containerd and
        // then for its dockerd to answer.
        let started: Vec<Result<PrivateDockerd, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = hosts
                .hosts
                .iter()
                .map(|host| {
                    let daemon_opts = DaemonOpts {
                        netns: Some(host.netns.clone()),
                        bridge_cidr: Some(DAEMON_BRIDGE_CIDR.into()),
                        tls: host.tls_dir.as_ref().map(|client| {
                            let server = client.join("server");
                            TcpTls {
                                listen: format!("{}:{TLS_PORT}", host.underlay),
                                ca: client.join("ca.pem"),
                                cert: server.join("cert.pem"),
                                key: server.join("key.pem"),
                            }
                        }),
                    };
                    scope.spawn(move || PrivateDockerd::start_with(daemon_opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("starting a daemon panicked".into()))
                })
                .collect()
        });
        let mut failed = Vec::new();
        for (host, result) in hosts.hosts.iter_mut().zip(started) {
            match result {
                Ok(daemon) => host.daemon = Some(daemon),
                Err(why) => failed.push(format!("host {}: {why}", host.name)),
            }
        }
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
        if opts.ssh {
            hosts.start_ssh()?;
        }
        Ok(hosts)
    }

    /// Picks N and makes the root namespace's veth into the switch, named
    /// after N: a name another [`Hosts`] already holds fails to be created,
    /// and the next N is tried. An N in use on any root address is skipped.
    fn claim_n(&mut self) -> Result<(), String> {
        let addrs = Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        let addrs = text(&addrs.stdout);
        let span = UNDERLAY_NETS.len();
        let first = std::process::id() as usize % span;
        for k in 0..span {
            let n = *UNDERLAY_NETS.start() + ((first + k) % span) as u8;
            if addrs.contains(&format!(" 198.19.{n}.")) {
                continue;
            }
            let name = format!("lbhul{n}");
            let made = Command::new("ip")
                .args(["link", "add", &name, "type", "veth", "peer", "name", "root"])
                .args(["netns", &self.switch])
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("ip: {e}"))?;
            if !made.success() {
                continue;
            }
            self.n = n;
            self.root_if = name;
            ip(&["-n", &self.switch, "link", "set", "root", "master", "br0"])?;
            ip(&["-n", &self.switch, "link", "set", "root", "up"])?;
            let cidr = format!("198.19.{n}.254/24");
            ip(&["addr", "add", &cidr, "dev", &self.root_if])?;
            ip(&["link", "set", &self.root_if, "up"])?;
            return Ok(());
        }
        Err("no free 198.19.N.0/24 for an underlay (N 1 to 199 all in use)".into())
    }

    /// One CA for all hosts, a server certificate per TLS host (its
    /// underlay address as IP SAN), one client certificate; each host's
    /// client directory gets ca.pem, cert.pem, key.pem, and server/ the
    /// daemon's. EC P-256 keys: quick to make.
    fn make_tls(&mut self) -> Result<(), String> {
        let ca_dir = self.dir.join("ca");
        std::fs::create_dir_all(&ca_dir).map_err(|e| e.to_string())?;
        let ca_key = ca_dir.join("ca-key.pem");
        let ca = ca_dir.join("ca.pem");
        new_key(&ca_key)?;
        openssl(&[
            "req".as_ref(),
            "-x509".as_ref(),
            "-new".as_ref(),
            "-key".as_ref(),
            ca_key.as_os_str(),
            "-subj".as_ref(),
            "/CN=labctl test CA".as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
            "-out".as_ref(),
            ca.as_os_str(),
        ])?;
        let client_key = ca_dir.join("client-key.pem");
        let client = ca_dir.join("client.pem");
        new_key(&client_key)?;
        sign(
            &ca_dir,
            &client_key,
            "/CN=labctl test client",
            "extendedKeyUsage=clientAuth\n",
            &client,
        )?;
        for i in 0..self.hosts.len() {
            let host = &self.hosts[i];
            let client_dir = self.dir.join("tls").join(&host.name);
            let server = client_dir.join("server");
            std::fs::create_dir_all(&server).map_err(|e| e.to_string())?;
            for (from, to) in [
                (&ca, client_dir.join("ca.pem")),
                (&client, client_dir.join("cert.pem")),
                (&client_key, client_dir.join("key.pem")),
            ] {
                std::fs::copy(from, &to).map_err(|e| format!("{to:?}: {e}"))?;
            }
            new_key(&server.join("key.pem"))?;
            sign(
                &ca_dir,
                &server.join("key.pem"),
                &format!("/CN={}", host.underlay),
                &format!(
                    "subjectAltName=IP:{}\nextendedKeyUsage=serverAuth\n",
                    host.underlay
                ),
                &server.join("cert.pem"),
            )?;
            self.hosts[i].tls_dir = Some(client_dir);
        }
        Ok(())
    }

    /// The ssh side: one client key in an ssh-agent of this [`Hosts`], an
    /// sshd per host in its namespace on UNDERLAY:22 that sets
    /// DOCKER_HOST to the host's daemon for every session (so that
    /// `docker system dial-stdio`, what `docker -H ssh://` runs there,
    /// reaches it), and on the client side an ssh_config with the hosts'
    /// keys in a known_hosts of its own and an `ssh` ahead in PATH that
    /// reads it: the Docker CLI runs `ssh` by name and has no way to pass
    /// it options, and ssh reads ~/.ssh of the passwd entry, not $HOME,
    /// so without that wrapper only /root/.ssh could settle host keys.
    fn start_ssh(&mut self) -> Result<(), String> {
        let dir = self.ssh_dir();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| format!("{bin:?}: {e}"))?;
        // sshd insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
        let key = dir.join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "labctl-test", "-f"])
            .arg(&key))?;
        let agent_sock = dir.join("agent.sock");
        let agent = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&agent_sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ssh-agent: {e}"))?;
        self.agent = Some(std::sync::Mutex::new(Some(agent)));
        wait_for(|| agent_sock.exists(), "the ssh-agent's socket")?;
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &agent_sock)
            .arg(&key))?;
        let public =
            std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
        let mut known = String::new();
        for i in 0..self.hosts.len() {
            let host = &self.hosts[i];
            let hdir = dir.join(&host.name);
            std::fs::create_dir_all(&hdir).map_err(|e| e.to_string())?;
            let host_key = hdir.join("host_key");
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key))?;
            let host_pub = std::fs::read_to_string(host_key.with_extension("pub"))
                .map_err(|e| e.to_string())?;
            let mut fields = host_pub.split_whitespace();
            let (kind, blob) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            known.push_str(&format!("{} {kind} {blob}\n", host.underlay));
            let authorized = hdir.join("authorized_keys");
            std::fs::write(&authorized, &public).map_err(|e| e.to_string())?;
            let config = hdir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {}:22\n\
                     HostKey {}\n\
                     PidFile {}\n\
                     AuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     SetEnv DOCKER_HOST={}\n",
                    host.underlay,
                    host_key.display(),
                    hdir.join("sshd.pid").display(),
                    authorized.display(),
                    self.endpoint(&host.name),
                ),
            )
            .map_err(|e| e.to_string())?;
            let log = std::fs::File::create(hdir.join("sshd.log")).map_err(|e| e.to_string())?;
            let child = spawn_in(
                Some(&host.netns),
                Command::new(SSHD)
                    .args(["-D", "-e", "-f"])
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().map_err(|e| e.to_string())?)
                    .stderr(log),
            )
            .map_err(|e| format!("{SSHD}: {e}"))?;
            self.hosts[i].sshd = Some(std::sync::Mutex::new(Some(child)));
            let addr = std::net::SocketAddr::from((self.hosts[i].underlay, 22));
            wait_for(
                || {
                    std::net::TcpStream::connect_timeout(
                        &addr,
                        std::time::Duration::from_millis(200),
                    )
                    .is_ok()
                },
                &format!("sshd on {addr}"),
            )?;
        }
        std::fs::write(dir.join("known_hosts"), known).map_err(|e| e.to_string())?;
        let ssh = which("ssh").ok_or("ssh is not on PATH")?;
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n\
                 \x20 BatchMode yes\n\
                 \x20 StrictHostKeyChecking yes\n\
                 \x20 UserKnownHostsFile {}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 UpdateHostKeys no\n\
                 \x20 IdentityAgent {}\n\
                 \x20 IdentityFile none\n\
                 \x20 PasswordAuthentication no\n",
                dir.join("known_hosts").display(),
                agent_sock.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# ssh with this test's config: its known_hosts, its agent.\nexec {} -F {} \"$@\"\n",
                ssh.display(),
                dir.join("ssh_config").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn ssh_dir(&self) -> PathBuf {
        self.dir.join("ssh")
    }

    /// `ssh://root@198.19.N.x`, for a host started with [`HostOpts::ssh`].
    pub fn ssh_endpoint(&self, name: &str) -> Option<String> {
        let host = self.host(name);
        host.sshd
            .as_ref()
            .map(|_| format!("ssh://root@{}", host.underlay))
    }

    /// What a child process (the docker CLI, labctl) needs to reach the
    /// hosts by ssh: SSH_AUTH_SOCK (the agent with the key) and PATH with
    /// this [`Hosts`]'s `ssh` first (its known_hosts; /root/.ssh is not
    /// read nor written). Empty without [`HostOpts::ssh`].
    pub fn ssh_env(&self) -> Vec<(String, String)> {
        if self.agent.is_none() {
            return Vec::new();
        }
        let dir = self.ssh_dir();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        vec![
            (
                "SSH_AUTH_SOCK".to_owned(),
                dir.join("agent.sock").display().to_string(),
            ),
            (
                "PATH".to_owned(),
                format!("{}:{path}", dir.join("bin").display()),
            ),
        ]
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host named {name:?}"))
    }

    fn daemon(&self, name: &str) -> &PrivateDockerd {
        self.host(name)
            .daemon
            .as_ref()
            .expect("every host of a started Hosts has its daemon")
    }

    /// The hosts' names, in the order given.
    pub fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// The third octet of this underlay: 198.19.N.0/24.
    pub fn n(&self) -> u8 {
        self.n
    }

    /// `unix:///tmp/…/docker.sock`
    pub fn endpoint(&self, name: &str) -> String {
        self.daemon(name).host()
    }

    /// `tcp://198.19.N.x:2376`, for a host started with TLS.
    pub fn tcp_endpoint(&self, name: &str) -> Option<String> {
        let host = self.host(name);
        host.tls_dir
            .as_ref()
            .map(|_| format!("tcp://{}:{TLS_PORT}", host.underlay))
    }

    /// The client's ca.pem, cert.pem and key.pem (for DOCKER_CERT_PATH or
    /// a lab file's `tls:`), for a host started with TLS.
    pub fn tls_dir(&self, name: &str) -> Option<PathBuf> {
        self.host(name).tls_dir.clone()
    }

    pub fn underlay(&self, name: &str) -> Ipv4Addr {
        self.host(name).underlay
    }

    /// The host's network namespace (under /run/netns).
    pub fn netns(&self, name: &str) -> &str {
        &self.host(name).netns
    }

    /// The lab file's `hosts:` block, every host by its unix socket.
    pub fn hosts_yaml(&self) -> String {
        self.hosts_yaml_via(&[])
    }

    /// The lab file's `hosts:` block, host i reached as `via[i]` says (a
    /// TLS host by tcp:// with its `tls:` directory, an ssh one by
    /// ssh://); hosts past the end of `via` by their unix sockets.
    pub fn hosts_yaml_via(&self, via: &[Via]) -> String {
        let mut yaml = String::from("hosts:\n");
        for (i, host) in self.hosts.iter().enumerate() {
            let name = &host.name;
            let (docker, tls) = match via.get(i).copied().unwrap_or(Via::Unix) {
                Via::Unix => (self.endpoint(name), String::new()),
                Via::Tls => (
                    self.tcp_endpoint(name)
                        .expect("the host was started with tls"),
                    format!(
                        ", tls: \"{}\"",
                        self.tls_dir(name).expect("a TLS directory").display()
                    ),
                ),
                Via::Ssh => (
                    self.ssh_endpoint(name)
                        .expect("the host was started with ssh"),
                    String::new(),
                ),
            };
            yaml.push_str(&format!(
                "  {name}: {{ docker: \"{docker}\", underlay: {}{tls} }}\n",
                host.underlay
            ));
        }
        yaml
    }

    /// The docker CLI against that host's unix socket.
    pub fn docker(&self, name: &str, args: &[&str]) -> Output {
        self.daemon(name).docker(args)
    }

    /// SIGKILL to that host's dockerd (its containerd stays, as in
    /// dead_docker.rs); returns once its socket stops answering.
    pub fn kill(&self, name: &str) {
        self.daemon(name).kill()
    }

    /// Starts that host's dockerd again and waits until it answers.
    pub fn restart(&self, name: &str) -> Result<(), String> {
        self.daemon(name).run()
    }

    pub fn log_tail(&self, name: &str) -> String {
        self.daemon(name).log_tail()
    }

    /// What a test left on the hosts, one line each: every container,
    /// volume and network other than Docker's own on every host (images
    /// stay: the tools image is built once per host), every interface in
    /// a host's namespace other than lo, the underlay's and the daemon's
    /// bridge, and a daemon that does not answer (nothing could be seen).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for host in &self.hosts {
            let name = &host.name;
            let daemon = self.daemon(name);
            let listed = |args: &[&str]| -> Result<Vec<String>, String> {
                let out = daemon.docker(args);
                if !out.status.success() {
                    return Err(text(&out.stderr).trim().to_owned());
                }
                Ok(text(&out.stdout).lines().map(str::to_owned).collect())
            };
            match listed(&[
                "ps",
                "-a",
                "--format",
                "{{.Names}} ({{.Image}}, {{.Status}})",
            ]) {
                Ok(lines) => {
                    left.extend(lines.iter().map(|c| format!("host {name}: container {c}")))
                }
                Err(why) => {
                    left.push(format!("host {name}: its daemon does not answer: {why}"));
                    continue;
                }
            }
            for (kind, args) in [
                ("volume", ["volume", "ls", "-q"].as_slice()),
                (
                    "network",
                    ["network", "ls", "--format", "{{.Name}}"].as_slice(),
                ),
            ] {
                match listed(args) {
                    Ok(lines) => left.extend(
                        lines
                            .iter()
                            .filter(|n| {
                                !(kind == "network"
                                    && ["bridge", "host", "none"].contains(&n.as_str()))
                            })
                            .map(|n| format!("host {name}: {kind} {n}")),
                    ),
                    Err(why) => left.push(format!("host {name}: docker {}: {why}", args[0])),
                }
            }
            for iface in interfaces(&host.netns) {
                if iface != "lo" && iface != UNDERLAY_IF && iface != daemon.bridge {
                    left.push(format!("host {name}: interface {iface}"));
                }
            }
        }
        left
    }

    /// Everything this [`Hosts`] made, to check after it is dropped.
    pub fn footprint(&self) -> Footprint {
        let mut netns = vec![self.switch.clone()];
        netns.extend(self.hosts.iter().map(|h| h.netns.clone()));
        let mut dirs = vec![self.dir.clone()];
        let mut pids = Vec::new();
        for daemon in self.hosts.iter().filter_map(|h| h.daemon.as_ref()) {
            dirs.push(daemon.dir.clone());
            pids.extend(daemon.pids());
            pids.extend(daemon.pid());
        }
        for slot in self
            .hosts
            .iter()
            .filter_map(|h| h.sshd.as_ref())
            .chain(self.agent.as_ref())
        {
            let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            pids.extend(slot.as_ref().map(|c| c.id() as i32));
        }
        pids.sort_unstable();
        pids.dedup();
        Footprint {
            netns,
            root_ifs: vec![self.root_if.clone()],
            dirs,
            pids,
        }
    }
}

/// Interface names in `netns` (without their `@peer`).
pub fn interfaces(netns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", netns, "-o", "link", "show"])
        .output()
        .expect("run ip");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

fn openssl(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            text(&out.stderr).trim()
        ))
    }
}

fn new_key(path: &Path) -> Result<(), String> {
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "EC".as_ref(),
        "-pkeyopt".as_ref(),
        "ec_paramgen_curve:P-256".as_ref(),
        "-out".as_ref(),
        path.as_os_str(),
    ])
}

/// A certificate for `key`, signed by the CA in `ca_dir`, with the
/// extensions `ext` (openssl's extfile syntax).
fn sign(ca_dir: &Path, key: &Path, subject: &str, ext: &str, out: &Path) -> Result<(), String> {
    let csr = out.with_extension("csr");
    let extfile = out.with_extension("ext");
    std::fs::write(&extfile, ext).map_err(|e| e.to_string())?;
    openssl(&[
        "req".as_ref(),
        "-new".as_ref(),
        "-key".as_ref(),
        key.as_os_str(),
        "-subj".as_ref(),
        subject.as_ref(),
        "-out".as_ref(),
        csr.as_os_str(),
    ])?;
    let serial = format!("{}", std::process::id() as u64 * 1000 + rand_u16() as u64);
    openssl(&[
        "x509".as_ref(),
        "-req".as_ref(),
        "-in".as_ref(),
        csr.as_os_str(),
        "-CA".as_ref(),
        ca_dir.join("ca.pem").as_os_str(),
        "-CAkey".as_ref(),
        ca_dir.join("ca-key.pem").as_os_str(),
        "-set_serial".as_ref(),
        serial.as_ref(),
        "-days".as_ref(),
        "2".as_ref(),
        "-extfile".as_ref(),
        extfile.as_os_str(),
        "-out".as_ref(),
        out.as_os_str(),
    ])
}

/// Distinct serials for the certificates of one CA.
fn rand_u16() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The daemons side by side: each removes its containers, stops
        // dockerd and containerd and waits for them, unmounts, removes its
        // directory (PrivateDockerd's Drop), inside namespaces that still
        // exist.
        for slot in self.hosts.iter().filter_map(|h| h.sshd.as_ref()) {
            stop(slot);
        }
        if let Some(agent) = &self.agent {
            stop(agent);
        }
        let daemons: Vec<PrivateDockerd> = self
            .hosts
            .iter_mut()
            .filter_map(|h| h.daemon.take())
            .collect();
        std::thread::scope(|scope| {
            for daemon in daemons {
                scope.spawn(move || drop(daemon));
            }
        });
        // Deleting the namespaces deletes the veths and the bridge in them,
        // and so the peers of those veths.
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &host.netns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .stderr(Stdio::null())
            .status();
        if !self.root_if.is_empty() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.root_if])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a [`Hosts`] made: its namespaces, its root veth, its directories,
/// its daemons' and containerds' pids.
#[derive(Clone, Debug)]
pub struct Footprint {
    pub netns: Vec<String>,
    pub root_ifs: Vec<String>,
    pub dirs: Vec<PathBuf>,
    pub pids: Vec<i32>,
}

impl Footprint {
    /// What of it still exists, one line each: a namespace, an interface
    /// in the root namespace, a directory, a mount under one, a process
    /// (one of the recorded pids, or any process naming one of the
    /// directories: shims, containers' processes).
    pub fn remaining(&self) -> Vec<String> {
        let mut left = Vec::new();
        let listed = Command::new("ip").args(["netns", "list"]).output();
        let listed = listed.map(|o| text(&o.stdout)).unwrap_or_default();
        for ns in &self.netns {
            let named = listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str()));
            if named || Path::new("/run/netns").join(ns).exists() {
                left.push(format!("network namespace {ns}"));
            }
        }
        let root = interfaces_root();
        for iface in &self.root_ifs {
            if root.contains(iface) {
                left.push(format!("interface {iface} in the root namespace"));
            }
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for dir in &self.dirs {
            if dir.exists() {
                left.push(format!("directory {}", dir.display()));
            }
            let d = dir.to_string_lossy();
            for m in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)) {
                if m.starts_with(d.as_ref()) {
                    left.push(format!("mount {m}"));
                }
            }
        }
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = text(&cmdline).replace('\0', " ");
            // A recorded pid counts while it is still a daemon (not reused).
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let recorded = self.pids.contains(&pid) && PROGRAMS.contains(&comm.trim());
            let naming = self
                .dirs
                .iter()
                .any(|d| cmdline.contains(d.to_string_lossy().as_ref()));
            if recorded || naming {
                left.push(format!("process {pid}: {}", cmdline.trim()));
            }
        }
        left
    }
}

/// What a recorded pid runs while it is still ours.
const PROGRAMS: [&str; 4] = ["dockerd", "containerd", "sshd", "ssh-agent"];

const SSHD: &str = "/usr/sbin/sshd";

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs `command`; Err(its stderr) when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?}: {}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            text(&out.stderr).trim()
        ))
    }
}

/// Polls `ready` for up to 20 s.
fn wait_for(ready: impl Fn() -> bool, what: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(format!("no {what} within 20 s"))
}

fn interfaces_root() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}
