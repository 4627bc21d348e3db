//! Labs for the runtime tests: a lab file with a unique name in a temporary
//! directory, labctl run on it, and a guard that destroys the lab when the
//! test ends, even when an assertion failed, then double-checks with
//! `docker` and `ip` that nothing of it is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use super::{bin, unique};

/// A lab file written for one test; destroyed on drop.
pub struct TestLab {
    pub name: String,
    pub file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestLab {
    /// Writes `yaml` with every `{name}` replaced by a fresh lab name that
    /// starts with `prefix`.
    pub fn new(prefix: &str, yaml: &str) -> TestLab {
        Self::named(unique(prefix), yaml)
    }

    pub fn named(name: String, yaml: &str) -> TestLab {
        assert!(name.len() <= 20, "lab name {name} is too long");
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml.replace("{name}", &name)).expect("write lab file");
        TestLab {
            name,
            file,
            _dir: dir,
        }
    }

    pub fn path(&self) -> &str {
        self.file.to_str().expect("utf-8 temp path")
    }

    /// `labctl deploy FILE`, which must succeed.
    pub fn deploy(&self) -> Output {
        let out = labctl(&["deploy", self.path()]);
        assert_success(&out, "labctl deploy");
        out
    }

    pub fn container(&self, node: &str) -> String {
        format!("labctl-{}.{node}", self.name)
    }

    /// The host pid of a node's init.
    pub fn pid(&self, node: &str) -> u32 {
        let out = docker(&["inspect", "-f", "{{.State.Pid}}", &self.container(node)]);
        assert_success(&out, "docker inspect");
        stdout(&out).trim().parse().expect("a pid")
    }

    /// Runs a host program inside a node's network namespace (`nsenter
    /// -n`): /proc/sys/net and `ip` then show the node's view.
    pub fn in_netns(&self, node: &str, argv: &[&str]) -> String {
        let pid = self.pid(node).to_string();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "--"])
            .args(argv)
            .output()
            .expect("run nsenter");
        assert_success(&out, &format!("nsenter {}", argv.join(" ")));
        stdout(&out)
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = labctl(&["destroy", &self.name]);
        remove_leftovers(&self.name);
    }
}

/// Force-removes whatever `labctl destroy` may have missed, so a failing
/// test does not leave containers or veths behind; says so on stderr.
pub fn remove_leftovers(lab: &str) {
    use labctl::runtime::netns::ns;
    let marker = format!("labctl-{lab}-");
    for entry in std::fs::read_dir(ns::STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&marker) {
            eprintln!("test cleanup: removing leftover netns node {name}");
            let _ = ns::remove(&name);
        }
    }
    let containers = containers_of(lab);
    if !containers.is_empty() {
        eprintln!("test cleanup: removing leftover containers {containers:?}");
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        let _ = docker(&args);
    }
    for veth in host_veths_of(lab) {
        eprintln!("test cleanup: removing leftover veth {veth}");
        let _ = Command::new("ip").args(["link", "del", &veth]).output();
    }
    for dir in xdp_pins_of(lab) {
        eprintln!("test cleanup: removing leftover XDP pins {dir}");
        let _ = std::fs::remove_dir_all(Path::new(labctl::runtime::xdp::BPF_ROOT).join(dir));
    }
}

/// Ids of every container, running or not, labelled with lab `lab`.
pub fn containers_of(lab: &str) -> Vec<String> {
    let filter = format!("label=labctl.lab={lab}");
    let out = docker(&["ps", "-a", "-q", "--filter", &filter]);
    assert_success(&out, "docker ps");
    stdout(&out).lines().map(str::to_owned).collect()
}

/// Host interfaces whose alias marks them as lab `lab`'s.
pub fn host_veths_of(lab: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    let marker = format!("alias labctl:{lab}:");
    stdout(&out)
        .lines()
        .filter(|line| line.contains(&marker))
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

/// Whether a netns node's name (`labctl-<instance>.<node>`) is of an
/// instance of lab `lab` (`<lab>` itself or `<lab>-<suffix>`).
pub fn is_of_lab(name: &str, lab: &str) -> bool {
    name.strip_prefix("labctl-")
        .and_then(|rest| rest.strip_prefix(lab))
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// The netns node `node` of the one running instance of lab `lab`.
pub fn netns_node_of(lab: &str, node: &str) -> Option<String> {
    std::fs::read_dir(labctl::runtime::netns::ns::NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| is_of_lab(n, lab) && n.ends_with(&format!(".{node}")))
}

/// What is left of lab `lab` on the host: namespaces, node directories,
/// mounts, veths with its alias.
pub fn netns_leftovers(lab: &str) -> Vec<String> {
    let mut left = Vec::new();
    for dir in [
        labctl::runtime::netns::ns::NETNS_DIR,
        labctl::runtime::netns::ns::STATE_DIR,
    ] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_of_lab(&name, lab) {
                left.push(format!("{dir}/{name}"));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mounts
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .filter_map(|f| f.rsplit('/').next())
                    .any(|f| is_of_lab(f, lab))
            })
            .map(|l| format!("mount {l}")),
    );
    left.extend(host_veths_of(lab).into_iter().map(|v| format!("veth {v}")));
    left
}

/// Asserts that no container, label, veth, namespace, node directory or
/// mount of lab `lab` is left, on either runtime.
pub fn assert_nothing_left(lab: &str) {
    assert_eq!(
        netns_leftovers(lab),
        Vec::<String>::new(),
        "netns nodes of {lab} left"
    );
    assert_eq!(
        containers_of(lab),
        Vec::<String>::new(),
        "containers of {lab} left"
    );
    assert_eq!(
        host_veths_of(lab),
        Vec::<String>::new(),
        "veths of {lab} left"
    );
    assert_eq!(
        xdp_pins_of(lab),
        Vec::<String>::new(),
        "XDP pins of {lab} left"
    );
}

/// The node directories labctl keeps XDP pins in for lab `lab` (every
/// instance), under /run/labctl/bpf.
pub fn xdp_pins_of(lab: &str) -> Vec<String> {
    let prefix = format!("labctl:{lab}:");
    let mut left: Vec<String> = std::fs::read_dir(labctl::runtime::xdp::BPF_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    left.sort();
    left
}

pub fn labctl(args: &[&str]) -> Output {
    labctl_command(args).output().expect("run labctl")
}

pub fn labctl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("labctl"));
    cmd.args(args);
    cmd
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// Whether this Docker daemon (and its kernel) can grant CAP_BPF, as
/// labctl decides it: where not, af_xdp nodes need `privileged: true`.
pub fn docker_grants_cap_bpf() -> bool {
    docker_host_support().cap_bpf()
}

/// What this Docker daemon (and its kernel) lets labctl grant, as labctl
/// decides it.
pub fn docker_host_support() -> labctl::runtime::privilege::HostSupport {
    let out = docker(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.KernelVersion}}",
    ]);
    assert_success(&out, "docker version");
    let text = stdout(&out);
    let (engine, kernel) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    labctl::runtime::privilege::HostSupport::docker(engine, kernel)
}

/// How a non-privileged af_xdp Docker node gets AF_XDP on this host.
pub fn docker_af_xdp_grant() -> labctl::runtime::privilege::AfXdpGrant {
    docker_host_support().af_xdp_grant(false)
}

/// `docker inspect` of one object, parsed.
pub fn docker_inspect(name: &str) -> serde_json::Value {
    let out = docker(&["inspect", name]);
    assert_success(&out, "docker inspect");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    all[0].clone()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// A second image that is not the tools image: busybox from the host
/// (busybox-static), FROM scratch, built once per test process. Nothing
/// can be pulled on the test machines.
pub fn busybox_image() -> String {
    static BUILT: Mutex<Option<String>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tag) = built.as_ref() {
        return tag.clone();
    }
    let tag = "labctl-test-busybox:1".to_owned();
    let dir = tempfile::tempdir().expect("temporary directory");
    let busybox = which("busybox");
    std::fs::copy(&busybox, dir.path().join("busybox")).expect("copy busybox");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         CMD [\"sh\"]\n",
    )
    .expect("write Dockerfile");
    let dir_arg = dir.path().to_str().expect("utf-8 temp path");
    let out = docker(&["build", "-q", "-t", &tag, dir_arg]);
    assert_success(&out, "docker build of the busybox image");
    *built = Some(tag.clone());
    tag
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH (ci/setup installs it)"))
}

/// Two nodes, lab-pong on one, two pings from the other that must all come
/// back: the smallest lab that passes, for tests about runs and reports.
pub const PING_PAIR_LAB: &str = "\
name: {name}
nodes:
  a: {}
  b: {}
links:
  - endpoints: [\"a:eth1\", \"b:eth1\"]
    ipv4: [\"198.18.9.1/24\", \"198.18.9.2/24\"]
steps:
  - name: pong
    node: b
    exec: [lab-pong, eth1]
    background: true
    ready: \"listening on eth1\"
  - name: ping
    node: a
    exec: [lab-ping, eth1, 198.18.9.2, --count, \"2\", --interval, 100ms]
    timeout: 10s
    expect:
      stdout:
        - contains: \"2 packets transmitted, 2 received, 0% packet loss\"
";
