//! Real devices under test: programs nobody here wrote, from Debian's
//! packages (BIRD 2, xdp-tools) and from the pnet crate (its packetdump
//! example), run in labs through the real labctl binary. Each needs what a
//! user's device needs: capabilities beyond its datalink's, time to
//! converge (`until`), its own config (`binds`), its image's own command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::lab::{
    assert_nothing_left, assert_success, busybox_image, docker, stdout, TestLab,
};
use crate::support::run::{repo_lab_text, Run};
use crate::support::skip::{skip_if, skip_without_root};

/// The repository's root, where `labs/` is.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `program` is on PATH; prints why the test is skipped if not.
fn have(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|dir| dir.join(program).is_file());
    !skip_if(
        !found,
        format!("{program} is not installed (Debian's {package}; ci/setup installs it)"),
    )
}

/// A lab file of the repository under a unique name, with `edit`
/// applied to its text.
fn repo_lab(path: &str, prefix: &str, edit: impl Fn(String) -> String) -> TestLab {
    TestLab::new(prefix, &edit(repo_lab_text(Path::new(path))))
}

fn can_run_ospf() -> bool {
    !skip_without_root("the netns runtime") && have("bird", "bird2")
}

/// labs/ospf.yaml as a user runs it: BIRD converges (tried until it has,
/// more than once: the daemons need seconds), pings cross two routers,
/// the cut link is routed around (a third hop), and nothing is left.
#[test]
fn bird_converges_routes_two_hops_and_around_a_cut() {
    if !can_run_ospf() {
        return;
    }
    let lab = repo_lab("labs/ospf.yaml", "ospf", |t| t);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let converged = run.step("ospf converged");
    assert!(
        converged["tries"].as_u64().unwrap_or(0) > 1,
        "OSPF cannot have converged at once: {converged}"
    );
    let two_hops = run.step_stdout("client pings across r1 and r2");
    assert_eq!(two_hops.matches("ttl=62").count(), 3, "{two_hops}");
    let three_hops = run.step_stdout("client pings across r1, r3 and r2");
    assert_eq!(three_hops.matches("ttl=61").count(), 3, "{three_hops}");
    assert_nothing_left(&lab.name);
}

/// The same lab without the capability: BIRD becomes a neighbour but
/// cannot install a route, so convergence never comes; the step fails at
/// its deadline with its tries counted and the last output shown.
#[test]
fn bird_without_net_admin_never_installs_a_route() {
    if !can_run_ospf() {
        return;
    }
    let lab = repo_lab("labs/ospf.yaml", "ospfn", |t| {
        t.replace("capabilities: [NET_ADMIN]", "capabilities: []")
            .replace("until: 30s", "until: 6s")
    });
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let converged = run.step("ospf converged");
    assert_eq!(converged["status"], "failed", "{converged}");
    assert!(converged["tries"].as_u64().unwrap_or(0) > 1, "{converged}");
    let summary = stdout(&run.out);
    assert!(summary.contains("tries"), "{summary}");
    assert_nothing_left(&lab.name);
}

/// An image of BIRD built here from the host's files (no registry): the
/// bird binary, birdc and the libraries they load, over the busybox image.
/// Its CMD starts the daemon, as an image from a registry would.
fn bird_image() -> String {
    let tag = "labctl-test-bird:1".to_owned();
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("root");
    let mut files: Vec<PathBuf> = vec!["/usr/sbin/bird".into(), "/usr/sbin/birdc".into()];
    for program in ["/usr/sbin/bird", "/usr/sbin/birdc"] {
        let out = Command::new("ldd").arg(program).output().expect("run ldd");
        assert_success(&out, "ldd");
        for line in stdout(&out).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)".
            let path = line.split("=>").last().unwrap().split_whitespace().next();
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                files.push(path.into());
            }
        }
    }
    for file in &files {
        let target = root.join(file.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        // Follow symlinks: the image gets the library itself.
        std::fs::copy(file, &target).unwrap_or_else(|e| panic!("copy {file:?}: {e}"));
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\n\
             COPY root/ /\n\
             RUN [\"/bin/mkdir\", \"-p\", \"/etc/bird\", \"/run/bird\"]\n\
             CMD [\"bird\", \"-f\", \"-s\", \"/run/bird/bird.ctl\"]\n",
            busybox_image()
        ),
    )
    .unwrap();
    let out = docker(&["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
    assert_success(&out, "docker build of the bird image");
    tag
}

/// The OSPF triangle with its routers as containers of a BIRD image built
/// here: the image's own command runs the daemon, the node's binds give it
/// its config, `capabilities` lets it install routes.
#[test]
fn bird_in_containers_of_a_local_image_converges() {
    if !have("bird", "bird2") {
        return;
    }
    let image = bird_image();
    let lab = repo_lab("labs/ospf.yaml", "ospfd", |t| {
        let mut out = String::new();
        let mut skip_bird_step = false;
        for line in t.lines() {
            // No bird steps: the image's CMD starts the daemon.
            if line.starts_with("  - name: r") && line.ends_with(" bird") {
                skip_bird_step = true;
                continue;
            }
            if skip_bird_step {
                if line.starts_with("    ") {
                    continue;
                }
                skip_bird_step = false;
            }
            let line = if line.starts_with("runtime: netns") {
                "runtime: docker".to_owned()
            } else if line == "  r1: &router" {
                format!("  r1: &router\n    image: {image}")
            } else {
                line.replace("/lab/out/bird.ctl", "/run/bird/bird.ctl")
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let text = std::fs::read_to_string(&lab.file).unwrap();
    assert!(!text.contains("exec: [bird,"), "{text}");
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert!(run.step("ospf converged")["tries"].as_u64().unwrap_or(0) >= 1);
    let three_hops = run.step_stdout("client pings across r1, r3 and r2");
    assert_eq!(three_hops.matches("ttl=61").count(), 3, "{three_hops}");
    // The daemon the image started logged to the node's console, and was
    // stopped by labctl at the end (not a failure).
    let console =
        std::fs::read_to_string(run.run_dir().join("nodes/r1/console.log")).expect("r1's console");
    assert!(console.contains("Started"), "{console}");
    assert!(console.contains("lab-init: "), "{console}");
    assert_nothing_left(&lab.name);
}

/// pnet's own `packetdump` example, built statically from the pnet crate
/// labctl itself depends on, as a user builds their program
/// (docs/testing-your-code.md), into `target/pnet-packetdump`.
fn packetdump() -> PathBuf {
    let metadata = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(repo().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert_success(&metadata, "cargo metadata");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pnet")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("pnet among labctl's dependencies")
        .to_owned();
    // A copy: cargo writes nothing into the registry's sources.
    let source = tempfile::tempdir().expect("temporary directory");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(Path::new(&manifest).parent().unwrap())
        .arg(source.path().join("pnet"))
        .output()
        .expect("run cp");
    assert_success(&copied, "copying pnet's sources");
    let target = repo().join("target/pnet-packetdump");
    let built = Command::new(env!("CARGO"))
        .current_dir(source.path().join("pnet"))
        .args(["build", "--quiet", "--release", "--example", "packetdump"])
        .args(["--features", "std", "--target", "x86_64-unknown-linux-gnu"])
        .arg("--target-dir")
        .arg(&target)
        // pnet's own lints are not ours to keep (as for any dependency).
        .env(
            "RUSTFLAGS",
            "--cap-lints warn -C target-feature=+crt-static",
        )
        .output()
        .expect("run cargo build");
    assert_success(&built, "building pnet's packetdump example");
    target.join("x86_64-unknown-linux-gnu/release/examples/packetdump")
}

/// Someone else's pnet program bound into a node beside lab-pong, as
/// docs/testing-your-code.md shows: it sees every echo request and reply.
#[test]
fn pnet_packetdump_bound_into_a_node_sees_every_echo() {
    let dump = packetdump();
    let lab = TestLab::new(
        "pdump",
        &format!(
            r#"
name: {{name}}
nodes:
  pinger: {{}}
  ponger:
    binds: ["{dump}:/usr/local/bin/packetdump"]
links:
  - endpoints: ["pinger:eth1", "ponger:eth1"]
    ipv4: ["198.18.0.1/24", "198.18.0.2/24"]
steps:
  - name: dump
    node: ponger
    exec: [/usr/local/bin/packetdump, eth1]
    background: true
  - name: pong
    node: ponger
    exec: [lab-pong, eth1]
    background: true
    ready: "listening on eth1"
  - name: ping
    node: pinger
    exec: [lab-ping, eth1, 198.18.0.2, --count, "3", --interval, 200ms]
  - name: pong answered
    wait: pong
  - name: dump saw the echoes
    wait: dump
    expect:
      exit: 130                     # it has no SIGINT handler
      stdout:
        - match: '^\[eth1\]: ICMP echo request 198\.18\.0\.1 -> 198\.18\.0\.2 '
          count: 3
        - match: '^\[eth1\]: ICMP echo reply 198\.18\.0\.2 -> 198\.18\.0\.1 '
          count: 3
"#,
            dump = dump.display()
        ),
    );
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_nothing_left(&lab.name);
}

/// labs/xdp-filter.yaml: Debian's xdp-filter, loaded by the node itself
/// with the capabilities the lab names, drops the denied port only (the
/// lab's own checks: the sink sees the allowed flow whole and no frame of
/// the denied one, xdp-filter counted them); its pins lived in the node's
/// own BPF filesystem, which is gone with the lab.
#[test]
fn xdp_filter_drops_the_denied_port_and_leaves_nothing_pinned() {
    if skip_without_root("the netns runtime") || !have("xdp-filter", "xdp-tools") {
        return;
    }
    let lab = repo_lab("labs/xdp-filter.yaml", "xdpf", |t| t);
    let run = Run::of(&lab, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let status = run.step_stdout("xdp-filter counted the drops");
    assert!(status.contains("XDP_DROP"), "{status}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&lab.name)),
        "a mount of the lab is left: {mounts}"
    );
    assert_nothing_left(&lab.name);

    // Without PERFMON the verifier refuses xdp-filter's program: the step
    // that loads it fails, and nothing is dropped.
    let weaker = repo_lab("labs/xdp-filter.yaml", "xdpw", |t| {
        t.replace("[BPF, NET_ADMIN, PERFMON]", "[BPF, NET_ADMIN]")
    });
    let run = Run::of(&weaker, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert_eq!(run.step("load xdp-filter")["status"], "failed");
    assert_nothing_left(&weaker.name);
}
