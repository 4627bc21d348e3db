//! The forwarder between a client and a server, in a lab built with
//! labctl's Rust API: pings cross it, and stop when a link is cut.
//!
//! `cargo test` works as an ordinary user: the test enters a user
//! namespace of its own first (labctl::rootless::enter, which needs the
//! process to still have one thread, hence this `main` instead of
//! libtest's), and the lab runs there, on network namespaces it owns.
//! labctl's packet tools (lab-ping, lab-pong) must be built: labctl finds
//! them in LABCTL_TOOLS_DIR, or beside a `labctl` on PATH.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use labctl::api::{Error, Expect, Lab, Link, Node, RunningLab};

/// The forwarder, built by cargo for this test. A netns node sees the
/// host's files, so it runs from where cargo put it.
const FORWARDER: &str = env!("CARGO_BIN_EXE_l2-forwarder");

fn lab() -> Result<Lab, Error> {
    Lab::builder("l2fwd")
        .node(Node::new("client"))
        .node(Node::new("fwd"))
        .node(Node::new("server"))
        .link(Link::new("client:eth1", "fwd:west").ipv4_a("198.18.4.1/24"))
        .link(Link::new("fwd:east", "server:eth1").ipv4_b("198.18.4.2/24"))
        .build()
}

const PING: [&str; 8] = [
    "lab-ping",
    "eth1",
    "198.18.4.2",
    "--count",
    "5",
    "--interval",
    "50ms",
    "-W500ms",
];

async fn pings_cross_the_forwarder(lab: &RunningLab) -> Result<(), Error> {
    let mut fwd = lab.node("fwd")?.spawn(&[FORWARDER, "west", "east"]).await?;
    fwd.wait_for_line(
        "^forwarding between west and east$",
        Duration::from_secs(10),
    )
    .await?;
    let checked = checks(lab).await;
    if checked.is_err() {
        // What the forwarder said, with the failure.
        if let Ok(out) = fwd.stop().await {
            eprintln!(
                "l2-forwarder: exit {:?}\n{}{}",
                out.exit, out.stdout, out.stderr
            );
        }
    }
    checked
}

async fn checks(lab: &RunningLab) -> Result<(), Error> {
    let mut pong = lab.node("server")?.spawn(&["lab-pong", "eth1"]).await?;
    pong.wait_for_line("listening on eth1", Duration::from_secs(10))
        .await?;
    let client = lab.node("client")?;
    client.exec(&PING).await?.expect(&Expect::parse(
        "exit: 0\nstdout:\n  - contains: '5 packets transmitted, 5 received, 0% packet loss'\n",
    )?)?;

    // Cut the forwarder's east side: every ping is lost.
    lab.link_down("fwd:east").await?;
    let cut = client.exec(&PING).await?;
    cut.expect(&Expect::parse(
        "exit: 1\nstdout:\n  - match: '([0-9.]+)% packet loss'\n    at_least: 100\n",
    )?)
    .or_else(|e| match cut.exit {
        // lab-ping may fail earlier (no ARP answer), which is loss too.
        Some(code) if code != 0 => Ok(()),
        _ => Err(e),
    })?;

    lab.link_up("fwd:east").await?;
    client.exec(&PING).await?.expect(&Expect::exit(0))?;
    Ok(())
}

fn main() -> ExitCode {
    // Before any thread: as an ordinary user, into a user namespace of
    // this process's own; as root, nothing changes.
    if let Err(e) = labctl::rootless::enter() {
        eprintln!("forwarding: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("an async runtime");
    let started = Instant::now();
    let mut phases = String::new();
    let outcome = runtime.block_on(async {
        let lab = lab()?.up().await?;
        phases += &format!("up {:.2}s", started.elapsed().as_secs_f64());
        let checks = Instant::now();
        let passed = pings_cross_the_forwarder(&lab).await;
        phases += &format!(", checks {:.2}s", checks.elapsed().as_secs_f64());
        // Dropped here, pass or fail: the lab goes.
        let down = Instant::now();
        drop(lab);
        phases += &format!(", down {:.2}s", down.elapsed().as_secs_f64());
        passed
    });
    match outcome {
        Ok(()) => {
            println!(
                "test pings_cross_the_forwarder ... ok ({:.2}s: {phases})",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("test pings_cross_the_forwarder ... FAILED\n{e}");
            ExitCode::FAILURE
        }
    }
}
