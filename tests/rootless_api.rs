//! The library API without root: this test binary, run by root, creates an
//! ordinary user and runs itself again as that user; the child enters its
//! user namespace first thing in `main` (`labctl::rootless::enter`, which
//! needs a single-threaded process: hence no libtest harness here), then
//! drives a lab through `labctl::api`: pings cross, a cut link stops them,
//! a lab that needs root is refused, and nothing is left on the host.
//!
//! Not root and not the child: skipped, visibly.

#[path = "it/support/user.rs"]
mod user;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use labctl::api::{Error, Expect, Lab, Link, Node};

const CHILD: &str = "LABCTL_ROOTLESS_API_CHILD";

fn main() -> ExitCode {
    match std::env::var(CHILD).as_deref() {
        Ok("without-enter") => return without_enter(),
        Ok(_) => return child(),
        Err(_) => {}
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: rootless_api: creating an ordinary user for it needs root");
        return ExitCode::SUCCESS;
    }
    let ids = match user::test_user() {
        Ok(ids) => ids,
        Err(reason) => {
            eprintln!("skipped: rootless_api: {reason}");
            return ExitCode::SUCCESS;
        }
    };
    let dir = user::UserDir::new(ids);
    let me = std::env::current_exe().expect("the test's own path");
    let tools = Path::new(env!("CARGO_BIN_EXE_labctl")).parent().unwrap();
    for mode in ["rootless", "without-enter"] {
        let out = user::as_user(ids, dir.path(), &me, &[])
            .env(CHILD, mode)
            .env("LABCTL_TOOLS_DIR", tools)
            .output()
            .expect("running the test as the user");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let left = user::processes_of(ids.0);
        if !out.status.success() || !left.is_empty() {
            eprintln!(
                "rootless_api ({mode}) failed: {:?}; processes left: {left:?}",
                out.status
            );
            return ExitCode::FAILURE;
        }
    }
    println!("test rootless_api ... ok");
    ExitCode::SUCCESS
}

/// As the ordinary user, without `enter`: `up` says what to do, typed.
fn without_enter() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lab = Lab::builder("no-enter")
        .node(Node::new("a"))
        .build()
        .unwrap();
    match runtime.block_on(lab.up()) {
        Err(e @ Error::NotPrivileged(_)) if e.to_string().contains("rootless::enter()") => {
            println!("rootless api: without enter(), up() is NotPrivileged and says what to call");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rootless_api: expected NotPrivileged, got {e}");
            ExitCode::FAILURE
        }
        Ok(_) => {
            eprintln!("rootless_api: a lab came up without root or enter()");
            ExitCode::FAILURE
        }
    }
}

/// As the ordinary user: a single thread until `enter` returns.
fn child() -> ExitCode {
    match labctl::rootless::enter() {
        Ok(labctl::rootless::Mode::Rootless) => {}
        other => {
            eprintln!("expected a rootless process, got {other:?}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(scenario()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rootless_api: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn scenario() -> Result<(), Error> {
    let lab = Lab::builder("rootless-api")
        .node(Node::new("a"))
        .node(Node::new("b"))
        .link(Link::new("a:eth1", "b:eth1").ipv4("198.18.0.1/24", "198.18.0.2/24"))
        .build()?;
    let running = lab.up().await?;
    let mut pong = running.node("b")?.spawn(&["lab-pong", "eth1"]).await?;
    pong.wait_for_line("listening on eth1", Duration::from_secs(10))
        .await?;
    let ping = [
        "lab-ping",
        "eth1",
        "198.18.0.2",
        "--count",
        "2",
        "--interval",
        "100ms",
        "-W500ms",
    ];
    let a = running.node("a")?;
    a.exec(&ping)
        .await?
        .expect(&Expect::exit(0).stdout_contains("2 received"))?;
    running.link_down("a:eth1").await?;
    let cut = a.exec(&ping).await?;
    if cut.exit == Some(0) {
        return Err(Error::Usage(format!("pings crossed a cut link: {cut:?}")));
    }
    running.down().await?;
    // A lab that needs root is refused before anything is made.
    let xdp = Lab::builder("rootless-xdp")
        .node(Node::new("a"))
        .node(Node::new("b").datalink(labctl::api::DatalinkKind::AfXdp))
        .link(Link::new("a:eth1", "b:eth1"))
        .build()?;
    match xdp.up().await {
        Err(Error::NeedsRoot(line)) if line.contains("nodes b use af_xdp") => {}
        Err(e) => return Err(e),
        Ok(_) => return Err(Error::Usage("an af_xdp lab came up rootless".into())),
    }
    println!("rootless api: pings crossed, the cut link stopped them, af_xdp refused");
    Ok(())
}
