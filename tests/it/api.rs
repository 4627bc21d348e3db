//! The library API (`labctl::api`) as root, on the netns runtime: a lab
//! built in code comes up, pings cross, a cut link stops them, an
//! impairment changes while it runs, checks are the lab format's; the
//! lab goes when its handle drops (inside a current-thread tokio runtime,
//! and when a test panics), a crashed run's leftovers go on the next
//! start, and misuse is a typed error.

use std::process::Command;
use std::time::{Duration, Instant};

use labctl::api::{Error, Expect, Impair, Lab, Link, Node, Signal};

use crate::support::lab::netns_leftovers;
use crate::support::skip::skip_without_root;
use crate::support::{bin, unique};

fn skip() -> bool {
    if skip_without_root("the library API") {
        return true;
    }
    let dir = bin("lab-ping").parent().unwrap().to_owned();
    std::env::set_var("LABCTL_TOOLS_DIR", dir);
    false
}

fn pair(name: &str) -> Lab {
    Lab::builder(name)
        .node(Node::new("a"))
        .node(Node::new("b"))
        .link(Link::new("a:eth1", "b:eth1").ipv4("198.18.0.1/24", "198.18.0.2/24"))
        .build()
        .unwrap()
}

const PING: [&str; 8] = [
    "lab-ping",
    "eth1",
    "198.18.0.2",
    "--count",
    "3",
    "--interval",
    "100ms",
    "-W500ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_built_in_code_pings_then_a_cut_link_stops_them() {
    if skip() {
        return;
    }
    let name = unique("ap");
    let running = pair(&name).up().await.unwrap();
    let instance = running.instance().to_owned();
    let mut pong = running
        .node("b")
        .unwrap()
        .spawn(&["lab-pong", "eth1"])
        .await
        .unwrap();
    let line = pong
        .wait_for_line("listening on eth1", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(line.contains("198.18.0.2"), "{line}");
    let a = running.node("a").unwrap();
    let ping = a.exec(&PING).await.unwrap();
    ping.expect(
        &Expect::exit(0)
            .stdout_contains("3 packets transmitted, 3 received, 0% packet loss")
            .stdout_matches(r"^64 bytes from 198\.18\.0\.2", Some(3))
            .unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{ping:?}"));
    // The same check written as in a lab file.
    ping.expect(
        &Expect::parse("stdout:\n  - match: '([0-9]+) received'\n    at_least: 3\n").unwrap(),
    )
    .unwrap();

    running.link_down("a:eth1").await.unwrap();
    let cut = a.exec(&PING).await.unwrap();
    assert_ne!(cut.exit, Some(0), "pings crossed a cut link: {cut:?}");
    assert!(matches!(
        cut.expect(&Expect::exit(0)),
        Err(Error::Check { failed, .. }) if failed.len() == 1
    ));
    running.link_up("a:eth1").await.unwrap();
    a.exec(&PING)
        .await
        .unwrap()
        .expect(&Expect::exit(0))
        .unwrap();

    let answered = pong.stop().await.unwrap();
    assert!(answered.stdout.contains("ICMP echo reply"), "{answered:?}");
    running.down().await.unwrap();
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
}

fn qdiscs(instance: &str, node: &str) -> String {
    let out = Command::new("tc")
        .args([
            "-n",
            &format!("labctl-{instance}.{node}"),
            "qdisc",
            "show",
            "dev",
            "eth1",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_impairment_changes_while_the_lab_runs() {
    if skip() {
        return;
    }
    let lab = pair(&unique("ai")).up_blocking().unwrap();
    let instance = lab.running().instance().to_owned();
    assert!(!qdiscs(&instance, "a").contains("tbf"));
    lab.impair("a:eth1", Impair::new().rate("10mbit")).unwrap();
    let shaped = qdiscs(&instance, "a");
    assert!(
        shaped.contains("tbf") && shaped.contains("10Mbit"),
        "{shaped}"
    );
    assert!(!qdiscs(&instance, "b").contains("tbf"), "only a's egress");
    lab.impair("a:eth1", Impair::new().rate("1mbit")).unwrap();
    assert!(qdiscs(&instance, "a").contains("1Mbit"));
    lab.impair("a:eth1", Impair::new()).unwrap();
    assert!(!qdiscs(&instance, "a").contains("tbf"));
    // A value the lab format refuses is refused here too.
    assert!(matches!(
        lab.impair("a:eth1", Impair::new().rate("fast")),
        Err(Error::Invalid(_))
    ));
    lab.down().unwrap();
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_lab_inside_a_current_thread_runtime_tears_it_down() {
    if skip() {
        return;
    }
    let running = pair(&unique("ad")).up().await.unwrap();
    let instance = running.instance().to_owned();
    let _sleeper = running
        .node("a")
        .unwrap()
        .spawn(&["sleep", "300"])
        .await
        .unwrap();
    assert!(!netns_leftovers(&instance).is_empty());
    let start = Instant::now();
    drop(running);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "drop took {:?}",
        start.elapsed()
    );
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
    // The runtime still runs.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[test]
fn a_test_that_panics_leaves_nothing() {
    if skip() {
        return;
    }
    let name = unique("pn");
    let instance = std::sync::Mutex::new(String::new());
    let panicked = std::panic::catch_unwind(|| {
        let lab = pair(&name).up_blocking().unwrap();
        *instance.lock().unwrap() = lab.running().instance().to_owned();
        panic!("the test fails with the lab up");
    });
    assert!(panicked.is_err());
    let instance = instance.into_inner().unwrap();
    assert!(!instance.is_empty());
    assert_eq!(netns_leftovers(&instance), Vec::<String>::new());
}

#[test]
fn what_a_crashed_run_left_is_removed_on_the_next_start() {
    if skip() {
        return;
    }
    let name = unique("cr");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.yaml");
    std::fs::write(
        &file,
        format!(
            "name: {name}\nruntime: netns\nnodes:\n  a: {{}}\n  b: {{}}\nlinks:\n  - endpoints: \
             [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .unwrap();
    // `labctl deploy` under a fresh-looking instance name: its owner, the
    // deploy process, is gone when it returns, as a crashed test's is.
    let crashed = format!("{name}-dead");
    let out = Command::new(bin("labctl"))
        .args(["deploy", file.to_str().unwrap(), "--name", &crashed])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // And one named as the lab: `labctl deploy`'s own, which stays.
    let kept = Command::new(bin("labctl"))
        .args(["deploy", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(kept.status.success(), "{kept:?}");
    assert!(!netns_leftovers(&crashed).is_empty());
    let lab = Lab::load(&file).unwrap().up_blocking().unwrap();
    assert_eq!(netns_leftovers(&crashed), Vec::<String>::new());
    assert!(crate::support::lab::netns_node_of(&name, "a").is_some());
    lab.down().unwrap();
    // The instance named as the lab, `labctl deploy`'s.
    let removed = Command::new(bin("labctl"))
        .args(["destroy", &name])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(netns_leftovers(&name), Vec::<String>::new());
}

#[test]
fn misuse_is_a_typed_error_never_a_panic() {
    // Without a lab up.
    assert!(matches!(
        Lab::builder("x")
            .link(Link::new("a:eth1", "b:eth1"))
            .build(),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(Lab::from_yaml("name: [1"), Err(Error::Invalid(_))));
    assert!(matches!(
        Lab::load("/nonexistent/lab.yaml"),
        Err(Error::Load(_))
    ));
    assert!(matches!(
        pair("x").instance("Not An Instance"),
        Err(Error::Usage(_))
    ));
    assert!(matches!(Expect::parse("exit: [1]"), Err(Error::Invalid(_))));
    assert!(matches!(
        Expect::exit(0).stdout_matches("(", None),
        Err(Error::Usage(_))
    ));
    if skip() {
        return;
    }
    let lab = pair(&unique("am")).up_blocking().unwrap();
    assert!(matches!(
        lab.exec("nope", &["true"]),
        Err(Error::NoSuchNode { .. })
    ));
    assert!(matches!(lab.exec("a", &[]), Err(Error::Usage(_))));
    assert!(matches!(
        lab.link_down("a:eth9"),
        Err(Error::NoSuchEndpoint { .. })
    ));
    assert!(matches!(
        lab.exec("a", &["/nonexistent/program"]),
        Err(Error::Process(_))
            | Ok(labctl::api::Output {
                exit: Some(127),
                ..
            })
    ));
    let mut quiet = lab.spawn("a", &["sleep", "30"]).unwrap();
    assert!(matches!(
        quiet.wait_for_line("never", Duration::from_millis(200)),
        Err(Error::Timeout { .. })
    ));
    assert!(matches!(
        quiet.wait_for_line("(", Duration::from_millis(200)),
        Err(Error::Usage(_))
    ));
    quiet.signal(Signal::Kill).unwrap();
    let killed = quiet.wait().unwrap();
    assert_eq!(killed.exit, Some(137));
    let mut ended = lab.spawn("a", &["echo", "bye"]).unwrap();
    assert!(matches!(
        ended.wait_for_line("never", Duration::from_secs(10)),
        Err(Error::Ended { exit: Some(0), .. })
    ));
    lab.down().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_api_drives_a_docker_lab() {
    if skip() {
        return;
    }
    let answers = Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if crate::support::skip::skip_if(!answers, "no Docker daemon answers") {
        return;
    }
    let name = unique("adk");
    let running = pair(&name)
        .on(labctl::api::RuntimeKind::Docker)
        .up()
        .await
        .unwrap();
    assert_eq!(running.runtime(), labctl::api::RuntimeKind::Docker);
    assert_eq!(
        crate::support::lab::containers_of(&name).len(),
        2,
        "a container per node"
    );
    let mut pong = running
        .node("b")
        .unwrap()
        .spawn(&["lab-pong", "eth1"])
        .await
        .unwrap();
    pong.wait_for_line("listening on eth1", Duration::from_secs(10))
        .await
        .unwrap();
    let a = running.node("a").unwrap();
    a.exec(&PING)
        .await
        .unwrap()
        .expect(&Expect::exit(0).stdout_contains("3 received"))
        .unwrap();
    running.link_down("a:eth1").await.unwrap();
    assert_ne!(a.exec(&PING).await.unwrap().exit, Some(0));
    running.link_up("a:eth1").await.unwrap();
    running
        .impair("a:eth1", Impair::new().rate("10mbit"))
        .await
        .unwrap();
    a.exec(&PING)
        .await
        .unwrap()
        .expect(&Expect::exit(0))
        .unwrap();
    drop(running);
    assert_eq!(
        crate::support::lab::containers_of(&name),
        Vec::<String>::new()
    );
}
