//! The multi-host harness itself (tests/it/support/hosts.rs): three Docker
//! hosts in namespaces of their own reach each other on the underlay, each
//! daemon is its own and runs containers, a killed daemon comes back, TLS
//! on tcp:// admits only a client with its certificate, ssh:// works with
//! the harness's agent and known_hosts alone, and nothing is left once the
//! hosts are dropped.

use std::process::Command;
use std::time::Instant;

use crate::support::bin;
use crate::support::hosts::{HostOpts, Hosts, Via};
use crate::support::lab::{assert_success, stderr, stdout};
use crate::support::netns::in_netns;
use crate::support::skip::skip;

fn start(names: &[&str], opts: HostOpts) -> Option<Hosts> {
    match Hosts::start(names, opts) {
        Ok(hosts) => Some(hosts),
        Err(why) => {
            skip(format!("Docker hosts in namespaces cannot run here: {why}"));
            None
        }
    }
}

/// The namespace inode of /proc/PID/ns/net or of a file under /run/netns.
fn netns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .ino()
}

/// An image of lab-init alone (static, FROM scratch; it stays up as PID 1
/// until stopped), built on `host`: nothing can be pulled.
fn build_image(hosts: &Hosts, host: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(bin("lab-init"), dir.path().join("lab-init")).expect("copy lab-init");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY lab-init /lab-init\nENTRYPOINT [\"/lab-init\"]\n",
    )
    .expect("write Dockerfile");
    let tag = "labctl-hosts-harness:1".to_owned();
    let out = hosts.docker(
        host,
        &["build", "-q", "-t", &tag, dir.path().to_str().unwrap()],
    );
    assert_success(&out, &format!("docker build on host {host}"));
    tag
}

fn container_pid(hosts: &Hosts, host: &str, id: &str) -> String {
    let out = hosts.docker(host, &["inspect", "-f", "{{.State.Pid}}", id]);
    assert_success(&out, "docker inspect");
    stdout(&out).trim().to_owned()
}

#[test]
fn three_hosts_reach_each_other_run_containers_survive_a_killed_daemon_and_leave_nothing() {
    let started = Instant::now();
    let Some(hosts) = start(&["a", "b", "c"], HostOpts::default()) else {
        return;
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "3 hosts started in {:.2} s (load {})",
        started.elapsed().as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let n = hosts.n();
    for name in ["a", "b", "c"] {
        let ip = hosts.underlay(name);
        assert_eq!(ip.octets()[..3], [198, 19, n], "{name}: {ip}");
    }
    assert_eq!(hosts.underlay("a").octets()[3], 1);
    assert_eq!(hosts.underlay("c").octets()[3], 3);

    // The underlay: a reaches b and c, and the namespaces are distinct.
    for to in ["b", "c"] {
        let target = hosts.underlay(to).to_string();
        let out = in_netns(
            hosts.netns("a"),
            Command::new("ping").args(["-c1", "-W1", &target]),
        )
        .output()
        .expect("run ping (iputils-ping)");
        assert_success(&out, &format!("ping from a to {to} ({target})"));
    }
    let ns: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|h| netns_inode(&format!("/run/netns/{}", hosts.netns(h))))
        .collect();
    assert!(ns[0] != ns[1] && ns[1] != ns[2] && ns[0] != ns[2], "{ns:?}");
    let root_ns = netns_inode("/proc/self/ns/net");
    assert!(!ns.contains(&root_ns));

    // Three daemons of their own.
    let mut seen = Vec::new();
    for name in ["a", "b", "c"] {
        let out = hosts.docker(name, &["info", "--format", "{{.ID}} {{.DockerRootDir}}"]);
        assert_success(&out, &format!("docker info on {name}"));
        let info = stdout(&out).trim().to_owned();
        let (id, root) = info.split_once(' ').expect("ID and root dir");
        assert!(!id.is_empty());
        assert!(
            seen.iter()
                .all(|(i, r): &(String, String)| i != id && r != root),
            "{name}: {info} repeats one of {seen:?}"
        );
        seen.push((id.to_owned(), root.to_owned()));
    }
    assert!(hosts.hosts_yaml().contains(&format!(
        "  b: {{ docker: \"{}\", underlay: 198.19.{n}.2 }}\n",
        hosts.endpoint("b")
    )));

    // A container of host a's daemon has a namespace of its own; one on
    // `--network host` is in host a's (labctl's helper containers are).
    let image = build_image(&hosts, "a");
    let out = hosts.docker("a", &["run", "-d", &image]);
    assert_success(&out, "docker run on a");
    let own = stdout(&out).trim().to_owned();
    let out = hosts.docker("a", &["run", "-d", "--network", "host", &image]);
    assert_success(&out, "docker run --network host on a");
    let on_host = stdout(&out).trim().to_owned();
    let own_ns = netns_inode(&format!(
        "/proc/{}/ns/net",
        container_pid(&hosts, "a", &own)
    ));
    let host_ns = netns_inode(&format!(
        "/proc/{}/ns/net",
        container_pid(&hosts, "a", &on_host)
    ));
    assert!(!ns.contains(&own_ns) && own_ns != root_ns);
    assert_eq!(host_ns, ns[0], "a --network host container is in host a");

    // leftovers() sees them (and an interface added in a host's namespace),
    // then nothing once they are gone.
    crate::support::netns::ip(&[
        "-n",
        hosts.netns("c"),
        "link",
        "add",
        "stray0",
        "type",
        "bridge",
    ]);
    // (The container on Docker's bridge has a veth in host a: listed too.)
    let left = hosts.leftovers();
    assert!(
        left.iter().any(|l| l == "host c: interface stray0"),
        "{left:#?}"
    );
    assert!(
        left.iter().any(|l| l.starts_with("host a: interface veth")),
        "{left:#?}"
    );
    assert_eq!(
        left.iter()
            .filter(|l| l.starts_with("host a: container "))
            .count(),
        2,
        "{left:#?}"
    );
    crate::support::netns::ip(&["-n", hosts.netns("c"), "link", "del", "stray0"]);
    assert_success(
        &hosts.docker("a", &["rm", "-f", &own, &on_host]),
        "docker rm",
    );
    assert_eq!(hosts.leftovers(), Vec::<String>::new());

    // b killed: it no longer answers (and leftovers says so); restarted,
    // it answers with the same ID.
    hosts.kill("b");
    let out = hosts.docker("b", &["version"]);
    assert!(
        !out.status.success(),
        "b answers after kill: {}",
        stdout(&out)
    );
    let left = hosts.leftovers();
    assert!(
        left.iter()
            .any(|l| l.starts_with("host b: its daemon does not answer")),
        "{left:#?}"
    );
    hosts.restart("b").expect("restart b");
    let out = hosts.docker("b", &["info", "--format", "{{.ID}}"]);
    assert_success(&out, "docker info on b after restart");
    assert_eq!(stdout(&out).trim(), seen[1].0);

    // A container left up on c: the drop removes it along with the rest.
    let image_c = build_image(&hosts, "c");
    assert_success(
        &hosts.docker("c", &["run", "-d", &image_c]),
        "docker run on c",
    );
    let footprint = hosts.footprint();
    // Before the drop the footprint names all there is (or the check
    // after it would prove nothing): 4 namespaces, the root veth, 4
    // directories, 3 containerd and 3 dockerd pids, processes.
    let before = footprint.remaining();
    assert_eq!(footprint.netns.len(), 4);
    assert_eq!(footprint.pids.len(), 6, "{footprint:?}");
    for thing in footprint
        .netns
        .iter()
        .chain(&footprint.root_ifs)
        .map(String::as_str)
        .chain(footprint.dirs.iter().map(|d| d.to_str().unwrap()))
    {
        assert!(
            before.iter().any(|l| l.contains(thing)),
            "{thing} not seen before the drop: {before:#?}"
        );
    }
    let shims = before
        .iter()
        .filter(|l| l.contains("containerd-shim"))
        .count();
    assert_eq!(shims, 1, "{before:#?}");

    let dropping = Instant::now();
    drop(hosts);
    eprintln!(
        "3 hosts dropped in {:.2} s",
        dropping.elapsed().as_secs_f64()
    );
    assert_eq!(footprint.remaining(), Vec::<String>::new());
    let root = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    assert!(
        !stdout(&root).contains(&format!(" 198.19.{n}.")),
        "{}",
        stdout(&root)
    );
}

#[test]
fn tls_endpoint_answers_a_client_with_its_certificate_and_refuses_one_without() {
    let Some(hosts) = start(
        &["a", "b"],
        HostOpts {
            tls: true,
            ..HostOpts::default()
        },
    ) else {
        return;
    };
    let tcp = hosts.tcp_endpoint("a").expect("a tcp endpoint");
    assert_eq!(tcp, format!("tcp://{}:2376", hosts.underlay("a")));
    let tls = hosts.tls_dir("a").expect("a TLS directory");
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(tls.join(file).is_file(), "{file} in {tls:?}");
    }
    // No DOCKER_* from the environment, no ~/.docker: only what is given.
    let docker = |cert_path: &std::path::Path| {
        let config = tempfile::tempdir().unwrap();
        Command::new("docker")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOCKER_CONFIG", config.path())
            .env("DOCKER_CERT_PATH", cert_path)
            .args([
                "--tlsverify",
                "-H",
                &tcp,
                "version",
                "--format",
                "{{.Server.Version}}",
            ])
            .output()
            .expect("run docker")
    };
    let out = docker(&tls);
    assert_success(&out, &format!("docker --tlsverify -H {tcp} version"));
    let unix = hosts.docker("a", &["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(stdout(&out), stdout(&unix));

    // The same CA, no client certificate: the daemon refuses the handshake.
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(tls.join("ca.pem"), bare.path().join("ca.pem")).unwrap();
    let out = docker(bare.path());
    assert!(
        !out.status.success(),
        "answered without a client certificate"
    );
    assert!(
        stderr(&out).contains("certificate"),
        "refused for another reason: {}",
        stderr(&out)
    );
    // And the explicit flags, as the brief's command line has them.
    let out = Command::new("docker")
        .arg("--tlsverify")
        .arg("--tlscacert")
        .arg(tls.join("ca.pem"))
        .arg("--tlscert")
        .arg(tls.join("cert.pem"))
        .arg("--tlskey")
        .arg(tls.join("key.pem"))
        .args(["-H", &tcp, "version"])
        .output()
        .unwrap();
    assert_success(&out, "docker --tlsverify --tlscacert ... version");
    // b listens too, on its own address; the remote hosts block names both.
    let yaml = hosts.hosts_yaml_via(&[Via::Tls]);
    assert!(yaml.contains(&format!("docker: \"{tcp}\"")), "{yaml}");
    assert!(
        yaml.contains(&format!("tls: \"{}\"", tls.display())),
        "{yaml}"
    );
    let footprint = hosts.footprint();
    drop(hosts);
    assert_eq!(footprint.remaining(), Vec::<String>::new());
}

#[test]
fn ssh_endpoint_answers_plain_ssh_and_docker_without_touching_root_ssh() {
    let root_ssh = std::path::Path::new("/root/.ssh");
    let had_root_ssh = root_ssh.exists();
    let t0 = Instant::now();
    let Some(hosts) = start(
        &["a", "c"],
        HostOpts {
            ssh: true,
            ..HostOpts::default()
        },
    ) else {
        return;
    };
    eprintln!(
        "2 hosts with sshd started in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let endpoint = hosts.ssh_endpoint("c").expect("an ssh endpoint");
    let ip = hosts.underlay("c");
    assert_eq!(endpoint, format!("ssh://root@{ip}"));
    let env = hosts.ssh_env();
    assert_eq!(env.len(), 2, "{env:?}");
    // Only PATH and what ssh_env gives: no agent or config of the caller's.
    let command = |program: &str, with_env: bool| {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent");
        if with_env {
            c.envs(env.iter().map(|(k, v)| (k, v)));
        }
        c
    };

    // Plain ssh: a session on c, in c's namespace, with c's DOCKER_HOST.
    let out = command("ssh", true)
        .args([
            &format!("root@{ip}"),
            "echo $DOCKER_HOST; readlink /proc/self/ns/net",
        ])
        .output()
        .unwrap();
    assert_success(&out, &format!("ssh root@{ip}"));
    let said = stdout(&out);
    let mut lines = said.lines();
    assert_eq!(lines.next(), Some(hosts.endpoint("c").as_str()), "{said}");
    let c_ns = netns_inode(&format!("/run/netns/{}", hosts.netns("c")));
    assert_eq!(
        lines.next(),
        Some(format!("net:[{c_ns}]").as_str()),
        "{said}"
    );

    // docker -H ssh://: host c's daemon (its ID, not a's).
    let version = |with_env: bool| {
        command("docker", with_env)
            .env("DOCKER_CONFIG", hosts.netns("c")) // a path that does not exist: no config
            .args(["-H", &endpoint, "info", "--format", "{{.ID}}"])
            .output()
            .unwrap()
    };
    let t1 = Instant::now();
    let out = version(true);
    eprintln!(
        "docker -H {endpoint} info in {:.2} s",
        t1.elapsed().as_secs_f64()
    );
    assert_success(&out, &format!("docker -H {endpoint} info"));
    let by_unix = hosts.docker("c", &["info", "--format", "{{.ID}}"]);
    assert_eq!(stdout(&out), stdout(&by_unix));
    let of_a = hosts.docker("a", &["info", "--format", "{{.ID}}"]);
    assert_ne!(stdout(&out), stdout(&of_a));

    // Without ssh_env: no known host key, no key: refused.
    let out = version(false);
    assert!(!out.status.success(), "answered without ssh_env");
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(root_ssh.exists(), had_root_ssh, "/root/.ssh was touched");
    assert!(hosts
        .hosts_yaml_via(&[Via::Unix, Via::Ssh])
        .contains(&format!(
            "  c: {{ docker: \"{endpoint}\", underlay: {ip} }}\n"
        )));

    let footprint = hosts.footprint();
    assert_eq!(footprint.pids.len(), 7, "{footprint:?}");
    let t2 = Instant::now();
    drop(hosts);
    eprintln!("dropped in {:.2} s", t2.elapsed().as_secs_f64());
    assert_eq!(footprint.remaining(), Vec::<String>::new());
}
