//! Steps: exec, wait or link, nodes, readiness, timeouts, what `wait` may
//! name, the endpoint a link-state step sets, and the checks of `expect`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use regex::Regex;
use serde_saphyr::Location;

use crate::lab::typed::Spanned;

use super::values;
use super::{pos, unknown_hint, Problems};
use crate::lab::model::{
    Action, Bounds, Check, Endpoint, Expect, Link, Node, Pattern, Step, Throughput, Until,
    DEFAULT_STEP_TIMEOUT, DEFAULT_TRIAL, DEFAULT_UNTIL_EVERY,
};
use crate::lab::raw::{RawCheck, RawExpect, RawStep, RawThroughput};

/// The longest timeout a step may have; longer is surely a typo, and keeps
/// deadline arithmetic far from overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// What is known about an earlier step when a later one names it.
struct Earlier {
    at: Location,
    background: bool,
    waited_by: Option<(String, Location)>,
}

/// Every step's name: in file order for hints, and as a set to look
/// names up.
struct StepNames<'a> {
    in_order: Vec<&'a str>,
    set: HashSet<&'a str>,
}

impl<'a> StepNames<'a> {
    fn of(raw: &'a [Spanned<RawStep>]) -> Self {
        let in_order: Vec<&str> = raw
            .iter()
            .filter_map(|s| s.value.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        let set = in_order.iter().copied().collect();
        StepNames { in_order, set }
    }
}

/// What each kind of step does, for messages about a step of none or two.
const KINDS: &str = "exec runs a command, wait ends a background step, link sets a link down or \
                     up, throughput searches the rate a path carries";

pub(super) fn resolve(
    raw: &[Spanned<RawStep>],
    nodes: &[Node],
    links: &[Link],
    problems: &mut Problems,
) -> Vec<Step> {
    let mut earlier: HashMap<String, Earlier> = HashMap::new();
    let all_names = StepNames::of(raw);
    let node_names: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut steps = Vec::new();

    for (index, step) in raw.iter().enumerate() {
        let s = &step.value;
        // A missing name was reported by the structural pass.
        let name = s.name.as_ref().map(|n| n.value.as_str());
        let label = match name {
            Some(name) => format!("{name:?}"),
            None => (index + 1).to_string(),
        };
        if let Some(name) = &s.name {
            check_name(name, &earlier, problems);
        }
        let timeout = timeout(s, &label, problems);
        let until = until(s, &label, problems);
        let kinds: Vec<(&str, Location)> = [
            ("exec", s.exec.as_ref().map(pos)),
            ("wait", s.wait.as_ref().map(pos)),
            ("link", s.link.as_ref().map(pos)),
            ("throughput", s.throughput.as_ref().map(pos)),
        ]
        .into_iter()
        .filter_map(|(kind, at)| at.map(|at| (kind, at)))
        .collect();
        if let Some(state) = s.state.as_ref().filter(|_| s.link.is_none()) {
            problems.at(
                pos(state),
                format!(
                    "state applies to link-state steps; step {label} has no link (add link: \
                     NODE:INTERFACE, or remove state)"
                ),
            );
        }
        let action = match (&s.exec, &s.wait, &s.link, &s.throughput) {
            _ if kinds.len() > 1 => {
                problems.at(
                    kinds[1].1,
                    format!(
                        "step {label} has both {} and {} (expected one: {KINDS})",
                        kinds[0].0, kinds[1].0
                    ),
                );
                None
            }
            (Some(argv), None, None, None) => {
                exec(step, &label, argv, nodes, &node_names, problems)
            }
            (None, Some(target), None, None) => {
                wait(step, &label, target, &mut earlier, &all_names, problems);
                Some(Action::Wait {
                    step: target.value.clone(),
                })
            }
            (None, None, Some(endpoint), None) => set_link(step, &label, endpoint, links, problems),
            (None, None, None, Some(search)) => {
                throughput(step, &label, search, nodes, links, problems)
            }
            _ => {
                problems.at(
                    pos(step),
                    format!(
                        "step {label} has none of exec, wait, link and throughput (expected one: \
                         {KINDS})"
                    ),
                );
                // Its exec may have been left out for its type: the node
                // it names is still checked.
                if let Some(node) = s
                    .node
                    .as_ref()
                    .filter(|n| !node_names.contains(n.value.as_str()))
                {
                    if !nodes.is_empty() {
                        problems.at(
                            pos(node),
                            format!(
                                "step {label} names unknown node {:?} ({})",
                                node.value,
                                unknown_hint(&node.value, nodes.iter().map(|n| n.name.as_str()))
                            ),
                        );
                    }
                }
                None
            }
        };
        // As written, so that a wait on it is judged right even when the
        // step itself has a problem (an unknown node, say).
        let background = s.exec.is_some() && s.background.as_ref().is_some_and(|b| b.value);
        let expect = expect(&label, name, s.expect.as_ref(), background, problems);

        if let Some(written) = &s.name {
            earlier.entry(written.value.clone()).or_insert(Earlier {
                at: pos(written),
                background,
                waited_by: None,
            });
        }
        if let Some(action) = action {
            steps.push(Step {
                name: name.unwrap_or_default().to_owned(),
                action,
                timeout,
                expect,
                until,
            });
        }
    }
    steps
}

fn check_name(name: &Spanned<String>, earlier: &HashMap<String, Earlier>, problems: &mut Problems) {
    let text = &name.value;
    if text.trim().is_empty() {
        problems.at(
            pos(name),
            "a step's name is empty (expected a short text such as \"ping\")",
        );
    } else if text.chars().any(char::is_control) {
        problems.at(
            pos(name),
            format!("step name {text:?} contains control characters (expected one line of text)"),
        );
    }
    if let Some(first) = earlier.get(text) {
        problems.at(
            pos(name),
            format!(
                "step name {text:?} is used twice (first at line {}; wait needs to know which \
                 step it means)",
                first.at.line()
            ),
        );
    }
}

fn timeout(step: &RawStep, label: &str, problems: &mut Problems) -> Duration {
    step.timeout
        .as_ref()
        .and_then(|text| duration("timeout", text, label, problems))
        .unwrap_or(DEFAULT_STEP_TIMEOUT)
}

/// A duration key of a step (`timeout`, `until`, `every`): more than 0,
/// at most 24h.
fn duration(
    key: &str,
    text: &Spanned<String>,
    label: &str,
    problems: &mut Problems,
) -> Option<Duration> {
    let why = match humantime::parse_duration(&text.value) {
        Ok(d) if d.is_zero() => "is zero (expected more than 0)".to_owned(),
        Ok(d) if d > MAX_TIMEOUT => "is longer than 24h".to_owned(),
        Ok(d) => return Some(d),
        Err(_) if text.value.trim().chars().all(|c| c.is_ascii_digit()) => {
            "has no unit (expected a duration such as 200ms, 10s or 2m)".to_owned()
        }
        Err(_) => "is not a duration (expected one such as 200ms, 10s or 2m)".to_owned(),
    };
    problems.at(
        pos(text),
        format!("{key} {:?} of step {label} {why}", text.value),
    );
    None
}

/// `until` and `every`: on foreground exec steps only (the others end
/// once: a background step keeps running, a wait ends it, a link is set),
/// `every` only with `until` and not longer than it.
fn until(step: &RawStep, label: &str, problems: &mut Problems) -> Option<Until> {
    let written = [("until", &step.until), ("every", &step.every)];
    let background = step.background.as_ref().is_some_and(|b| b.value);
    let other = match (&step.exec, &step.wait, &step.link) {
        (Some(_), _, _) if background => Some((
            "runs in the background",
            "; ready waits for a line of its output",
        )),
        (None, Some(_), _) => Some(("waits", "")),
        (None, None, Some(_)) => Some(("sets a link", "")),
        (None, None, None) if step.throughput.is_some() => {
            Some(("searches throughput", "; its trials repeat on their own"))
        }
        _ => None,
    };
    if let Some((other, hint)) = other {
        for (key, text) in written {
            if let Some(text) = text {
                problems.at(
                    pos(text),
                    format!(
                        "{key} applies to foreground exec steps; step {label} {other} (remove \
                         {key}{hint})"
                    ),
                );
            }
        }
        return None;
    }
    let within = step
        .until
        .as_ref()
        .map(|text| duration("until", text, label, problems));
    let every = step
        .every
        .as_ref()
        .map(|text| (text, duration("every", text, label, problems)));
    let within = match (within, &every) {
        (None, None) => return None,
        (None, Some((text, _))) => {
            problems.at(
                pos(*text),
                format!(
                    "every of step {label} is the pause between tries, which needs until (add \
                     until: DURATION, the longest the tries may take, or remove every)"
                ),
            );
            return None;
        }
        (Some(within), _) => within?,
    };
    let every = match every {
        // The default pause, where until is shorter, leaves room for a
        // second try.
        None => DEFAULT_UNTIL_EVERY.min(within),
        Some((_, None)) => return None,
        Some((text, Some(every))) if every > within => {
            problems.at(
                pos(text),
                format!(
                    "every {:?} of step {label} is longer than its until {} (the pause between \
                     tries must fit in until)",
                    text.value,
                    humantime::format_duration(within)
                ),
            );
            return None;
        }
        Some((_, Some(every))) => every,
    };
    Some(Until { within, every })
}

fn exec(
    step: &Spanned<RawStep>,
    label: &str,
    argv: &Spanned<Vec<String>>,
    nodes: &[Node],
    node_names: &HashSet<&str>,
    problems: &mut Problems,
) -> Option<Action> {
    let s = &step.value;
    match argv.value.first() {
        None => problems.at(
            pos(argv),
            format!("exec of step {label} is empty (expected [program, args...])"),
        ),
        Some(program) if program.trim().is_empty() => problems.at(
            pos(argv),
            format!("exec of step {label} has an empty program name"),
        ),
        Some(_) => {}
    }
    if argv.value.iter().any(|arg| values::has_nul(arg)) {
        problems.at(
            pos(argv),
            format!("exec of step {label} contains a NUL character, which no argv can hold"),
        );
    }
    let background = s.background.as_ref().is_some_and(|b| b.value);
    let ready = s.ready.as_ref().and_then(|ready| {
        if !background {
            problems.at(
                pos(ready),
                format!(
                    "ready applies to background steps only (add background: true to step \
                     {label}, or remove ready)"
                ),
            );
        }
        regex(ready, &format!("ready of step {label}"), problems)
    });
    let node = match &s.node {
        None => {
            problems.at(
                pos(step),
                format!("step {label} runs a command but names no node (add node: NAME)"),
            );
            return None;
        }
        Some(node) => node,
    };
    if !node_names.contains(node.value.as_str()) {
        // With no nodes at all, that one problem is reported instead.
        if !nodes.is_empty() {
            problems.at(
                pos(node),
                format!(
                    "step {label} names unknown node {:?} ({})",
                    node.value,
                    unknown_hint(&node.value, nodes.iter().map(|n| n.name.as_str()))
                ),
            );
        }
        return None;
    }
    Some(Action::Exec {
        node: node.value.clone(),
        argv: argv.value.clone(),
        background,
        ready,
    })
}

fn set_link(
    step: &Spanned<RawStep>,
    label: &str,
    endpoint: &Spanned<String>,
    links: &[Link],
    problems: &mut Problems,
) -> Option<Action> {
    let s = &step.value;
    if let Some(node) = &s.node {
        problems.at(
            pos(node),
            format!(
                "step {label} sets a link and runs nothing, so it takes no node (remove node; \
                 link names the node)"
            ),
        );
    }
    if let Some(background) = s.background.as_ref().filter(|b| b.value) {
        problems.at(
            pos(background),
            format!(
                "background applies to exec steps; step {label} sets a link (remove background)"
            ),
        );
    }
    if let Some(ready) = &s.ready {
        problems.at(
            pos(ready),
            format!(
                "ready applies to background exec steps; step {label} sets a link (remove ready)"
            ),
        );
    }
    if let Some(expect) = &s.expect {
        problems.at(
            pos(expect),
            format!(
                "expect applies to exec and wait steps; step {label} sets a link and prints \
                 nothing (remove expect)"
            ),
        );
    }
    let text = &endpoint.value;
    let (node, interface) = lab_endpoint(
        endpoint,
        &format!("link {text:?} of step {label}"),
        &format!("step {label} sets link {text:?}"),
        links,
        problems,
    )
    .map(|(e, _)| (e.node.as_str(), e.interface.as_str()))?;
    // A missing or misspelled state was reported where it was written.
    let Some(state) = &s.state else {
        problems.at(
            pos(step),
            format!("step {label} sets link {text:?} but no state (add state: down or up)"),
        );
        return None;
    };
    Some(Action::SetLink {
        node: node.to_owned(),
        interface: interface.to_owned(),
        state: state.value,
    })
}

/// The endpoint `"node:interface"` of the lab that `text` names, and its
/// link; a problem if it is not one. `what` names the value (`link
/// "x:y" of step "cut"`), `naming` the step that names it.
fn lab_endpoint<'l>(
    text: &Spanned<String>,
    what: &str,
    naming: &str,
    links: &'l [Link],
    problems: &mut Problems,
) -> Option<(&'l Endpoint, &'l Link)> {
    let written = &text.value;
    if !written
        .split_once(':')
        .is_some_and(|(node, interface)| !node.is_empty() && !interface.is_empty())
    {
        problems.at(
            pos(text),
            format!(
                "{what} is not \"node:interface\" (expected an endpoint of the lab, such as \
                 \"client:eth1\")"
            ),
        );
        return None;
    }
    let found = links.iter().find_map(|link| {
        link.endpoints
            .iter()
            .find(|e| e.label() == *written)
            .map(|e| (e, link))
    });
    if found.is_none() {
        let ends: Vec<String> = links
            .iter()
            .flat_map(|l| l.endpoints.iter())
            .map(|e| e.label())
            .collect();
        problems.at(
            pos(text),
            format!(
                "{naming}, which is no endpoint of the lab ({})",
                unknown_hint(written, ends.iter().map(String::as_str))
            ),
        );
    }
    found
}

/// The smallest frame lab-gen sends: Ethernet, IPv4 and UDP headers and
/// its 20 bytes of sequence and time stamp.
const MIN_FRAME: u32 = 62;

/// The longest trial; longer is surely a typo (a search runs tens).
const MAX_TRIAL: Duration = Duration::from_secs(10 * 60);

fn throughput(
    step: &Spanned<RawStep>,
    label: &str,
    raw: &Spanned<RawThroughput>,
    nodes: &[Node],
    links: &[Link],
    problems: &mut Problems,
) -> Option<Action> {
    let s = &step.value;
    let what = "searches throughput with labctl's own generator and sink";
    if let Some(node) = &s.node {
        problems.at(
            pos(node),
            format!(
                "step {label} {what}, so it takes no node (remove node; from and to name the \
                 nodes)"
            ),
        );
    }
    if let Some(background) = s.background.as_ref().filter(|b| b.value) {
        problems.at(
            pos(background),
            format!("background applies to exec steps; step {label} {what} (remove background)"),
        );
    }
    if let Some(ready) = &s.ready {
        problems.at(
            pos(ready),
            format!("ready applies to background exec steps; step {label} {what} (remove ready)"),
        );
    }
    let t = &raw.value;
    let end = |key: &str, text: &Option<Spanned<String>>, problems: &mut Problems| {
        let text = text.as_ref()?;
        lab_endpoint(
            text,
            &format!("{key} {:?} of step {label}", text.value),
            &format!("step {label} sends {key} {:?}", text.value),
            links,
            problems,
        )
        .map(|(e, l)| (e, l, pos(text)))
    };
    let from = end("from", &t.from, problems);
    let to = end("to", &t.to, problems);
    let sizes = sizes(t, label, [from, to].iter().flatten().map(|e| e.1), problems);
    let trial = match &t.trial {
        None => Some(DEFAULT_TRIAL),
        Some(text) => duration("trial", text, label, problems).and_then(|d| {
            if d > MAX_TRIAL {
                problems.at(
                    pos(text),
                    format!(
                        "trial {:?} of step {label} is longer than 10m (a search runs tens of \
                         trials)",
                        text.value
                    ),
                );
                return None;
            }
            Some(d)
        }),
    };
    let percentage =
        |key: &str, text: &Spanned<String>, problems: &mut Problems| match values::parse_loss(
            &text.value,
        ) {
            Ok(fraction) => Some(fraction),
            Err(why) => {
                problems.at(
                    pos(text),
                    format!("{key} {:?} of step {label} {why}", text.value),
                );
                None
            }
        };
    let loss = match &t.loss {
        None => Some(0.0),
        Some(text) => percentage("loss", text, problems),
    };
    let partial = match &t.partial {
        None => Some(None),
        Some(text) => match (percentage("partial", text, problems), loss) {
            (Some(partial), Some(loss)) if partial <= loss => {
                problems.at(
                    pos(text),
                    format!(
                        "partial {:?} of step {label} is not more than its loss {}% (PDR, the \
                         partial drop rate, allows more loss than NDR)",
                        text.value,
                        loss * 100.0
                    ),
                );
                None
            }
            (partial, _) => partial.map(Some),
        },
    };
    let (from, to) = (from?, to?);
    let destination = path(label, from, to, nodes, links, problems)?;
    Some(Action::Throughput(Throughput {
        from: (from.0.node.clone(), from.0.interface.clone()),
        to: (to.0.node.clone(), to.0.interface.clone()),
        destination,
        sizes: sizes?,
        trial: trial?,
        loss: loss?,
        partial: partial?,
    }))
}

/// The sizes of a throughput step: at least one, each once, each at
/// least what lab-gen sends and within the MTU of both ends' links.
fn sizes<'l>(
    t: &RawThroughput,
    label: &str,
    end_links: impl Iterator<Item = &'l Link>,
    problems: &mut Problems,
) -> Option<Vec<u32>> {
    // A missing list was reported by the structural pass.
    let list = t.sizes.as_ref()?;
    if list.value.is_empty() {
        problems.at(
            pos(list),
            format!("sizes of step {label} is empty (expected frame sizes such as [64, 1514])"),
        );
        return None;
    }
    // The frame a link carries: its MTU and the Ethernet header.
    let (mtu, link) = end_links
        .map(|l| (l.mtu.unwrap_or(1500), l))
        .min_by_key(|(mtu, _)| *mtu)
        .map_or((1500, None), |(mtu, l)| (mtu, Some(l)));
    let largest = mtu + 14;
    let mut ok = true;
    let mut seen = HashSet::new();
    for size in &list.value {
        let n = size.value;
        let why = if n < MIN_FRAME {
            format!(
                "is less than {MIN_FRAME}, the smallest frame the generator sends (Ethernet, \
                 IPv4 and UDP headers and its 20 bytes of sequence number and time)"
            )
        } else if n > largest {
            let link = link.map_or_else(String::new, |l| {
                format!(
                    " of the link {} - {}",
                    l.endpoints[0].label(),
                    l.endpoints[1].label()
                )
            });
            format!(
                "does not fit the MTU {mtu}{link}: at most {largest} bytes (sizes count the \
                 Ethernet header and no FCS; raise the link's mtu to {} or more)",
                n - 14
            )
        } else if !seen.insert(n) {
            "is listed twice".to_owned()
        } else {
            continue;
        };
        ok = false;
        problems.at(pos(size), format!("size {n} of step {label} {why}"));
    }
    ok.then(|| list.value.iter().map(|s| s.value).collect())
}

/// Whether the generator's frames from `from` can reach `to`: both have
/// an address, the links join them (through any nodes in between, the
/// first hop on `from`'s link), and `from`'s node routes the destination
/// out of `from` when it is on another subnet. The destination, if so.
fn path(
    label: &str,
    from: (&Endpoint, &Link, Location),
    to: (&Endpoint, &Link, Location),
    nodes: &[Node],
    links: &[Link],
    problems: &mut Problems,
) -> Option<std::net::Ipv4Addr> {
    let (from, from_link, from_at) = from;
    let (to, to_link, to_at) = to;
    if from.label() == to.label() {
        problems.at(
            to_at,
            format!(
                "step {label} sends from and to the same endpoint {:?} (expected the sink at \
                 the far end of a path, such as the server's interface)",
                to.label()
            ),
        );
        return None;
    }
    let mut ok = true;
    for (key, end, at, does) in [
        ("from", from, from_at, "the generator sends from"),
        (
            "to",
            to,
            to_at,
            "the sink receives at, and the generator sends to",
        ),
    ] {
        if end.ipv4.is_none() {
            ok = false;
            problems.at(
                at,
                format!(
                    "{key} {:?} of step {label} has no ipv4 address, which {does} (add ipv4 to \
                     that endpoint of its link)",
                    end.label()
                ),
            );
        }
    }
    let peer = |end: &Endpoint, link: &'_ Link| {
        link.endpoints
            .iter()
            .find(|e| e.label() != end.label())
            .map(|e| e.node.clone())
            .unwrap_or_default()
    };
    // The nodes the first hop leads to, without going back through the
    // generator's node.
    let start = peer(from, from_link);
    let target = peer(to, to_link);
    let direct = std::ptr::eq(from_link, to_link);
    let mut reached: HashSet<&str> = HashSet::from([start.as_str()]);
    let mut queue = vec![start.as_str()];
    while let Some(node) = queue.pop() {
        for link in links {
            let [a, b] = &link.endpoints;
            for (here, there) in [(a, b), (b, a)] {
                if here.node == node
                    && there.node != from.node
                    && reached.insert(there.node.as_str())
                {
                    queue.push(there.node.as_str());
                }
            }
        }
    }
    if !direct && (target == from.node || !reached.contains(target.as_str())) {
        problems.at(
            to_at,
            format!(
                "step {label} sends from {:?} to {:?}, but no path of links joins them (the \
                 frames leave by {:?}'s link and must arrive by {:?}'s)",
                from.label(),
                to.label(),
                from.label(),
                to.label()
            ),
        );
        return None;
    }
    let (Some(source), Some(destination)) = (from.ipv4, to.ipv4) else {
        return None;
    };
    let destination = destination.addr();
    let routed = source.contains(&destination)
        || nodes.iter().find(|n| n.name == from.node).is_some_and(|n| {
            n.routes
                .iter()
                .any(|r| r.interface == from.interface && r.to.contains(&destination))
        });
    if !routed {
        problems.at(
            to_at,
            format!(
                "step {label} sends from {:?} to {destination}, which is off {}'s subnet {}, \
                 and node {} has no route to it out of {} (add one to its routes, via a next \
                 hop on that subnet)",
                from.label(),
                from.interface,
                source.trunc(),
                from.node,
                from.interface
            ),
        );
        return None;
    }
    ok.then_some(destination)
}

fn wait(
    step: &Spanned<RawStep>,
    label: &str,
    target: &Spanned<String>,
    earlier: &mut HashMap<String, Earlier>,
    all_names: &StepNames<'_>,
    problems: &mut Problems,
) {
    let s = &step.value;
    let wanted = &target.value;
    if let Some(node) = &s.node {
        problems.at(
            pos(node),
            format!(
                "step {label} waits and runs nothing, so it takes no node (remove node; the \
                 node is the one of step {wanted:?})"
            ),
        );
    }
    if let Some(background) = s.background.as_ref().filter(|b| b.value) {
        problems.at(
            pos(background),
            format!("background applies to exec steps; step {label} waits (remove background)"),
        );
    }
    if let Some(ready) = &s.ready {
        problems.at(
            pos(ready),
            format!("ready applies to background exec steps; step {label} waits (remove ready)"),
        );
    }
    let why = match earlier.get_mut(wanted.as_str()) {
        None if Some(wanted.as_str()) == s.name.as_ref().map(|n| n.value.as_str()) => {
            "which is this very step".to_owned()
        }
        None if all_names.set.contains(wanted.as_str()) => {
            "which comes later (steps run in order: wait for a step above this one)".to_owned()
        }
        None => format!(
            "which is not a step ({})",
            unknown_hint(wanted, all_names.in_order.iter().copied())
        ),
        Some(target) if !target.background => format!(
            "which is not a background step (add background: true to step {wanted:?}, or \
             remove this step: a foreground step has ended before the next one starts)"
        ),
        Some(Earlier {
            waited_by: Some((other, at)),
            ..
        }) => format!(
            "which step {other} already waits for (line {}); a step ends once",
            at.line()
        ),
        Some(target) => {
            target.waited_by = Some((label.to_owned(), pos(step)));
            return;
        }
    };
    problems.at(
        pos(target),
        format!("step {label} waits for {wanted:?}, {why}"),
    );
}

fn expect(
    label: &str,
    name: Option<&str>,
    raw: Option<&Spanned<RawExpect>>,
    background: bool,
    problems: &mut Problems,
) -> Expect {
    let Some(raw) = raw else {
        return Expect::default();
    };
    if background {
        problems.at(
            pos(raw),
            format!(
                "expect of step {label} would never be checked: a background step's output is \
                 checked by the step that waits for it (move expect to a step with wait: {})",
                name.unwrap_or(label)
            ),
        );
    }
    let e = &raw.value;
    let exit = match &e.exit {
        Some(exit) if !(0..=255).contains(&exit.value) => {
            problems.at(
                pos(exit),
                format!(
                    "exit {} of step {label} is not an exit code (expected 0 to 255)",
                    exit.value
                ),
            );
            0
        }
        Some(exit) => exit.value,
        None => 0,
    };
    Expect {
        exit,
        stdout: checks(label, "stdout", &e.stdout, problems),
        stderr: checks(label, "stderr", &e.stderr, problems),
    }
}

fn checks(
    label: &str,
    stream: &str,
    raw: &[Spanned<RawCheck>],
    problems: &mut Problems,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (i, check) in raw.iter().enumerate() {
        let c = &check.value;
        let which = format!("{stream} check {} of step {label}", i + 1);
        let pattern = match (&c.matches, &c.contains) {
            (Some(re), None) => regex(re, &which, problems).map(Pattern::Match),
            (None, Some(text)) => {
                for (key, bound) in [("at_least", &c.at_least), ("at_most", &c.at_most)] {
                    if let Some(bound) = bound {
                        problems.at(
                            pos(bound),
                            format!(
                                "{key} applies to match checks only, not to contains in {which} \
                                 (a bound reads the number in a match's first capture group, \
                                 such as match: 'sent ([0-9]+) frames')"
                            ),
                        );
                    }
                }
                if let Some(count) = &c.count {
                    problems.at(
                        pos(count),
                        format!(
                            "count applies to match checks only, not to contains in {which} \
                             (contains looks for a substring of the whole output; to count \
                             lines, use match with an escaped regex, such as \
                             match: '3 packets transmitted')"
                        ),
                    );
                }
                Some(Pattern::Contains(text.value.clone()))
            }
            (Some(_), Some(_)) => {
                problems.at(
                    pos(check),
                    format!("{which} has both match and contains (expected one per check)"),
                );
                None
            }
            (None, None) => {
                problems.at(
                    pos(check),
                    format!("{which} has neither match nor contains (expected one of them)"),
                );
                None
            }
        };
        let bounds = bounds(c, &which, pattern.as_ref(), problems);
        if let Some(pattern) = pattern {
            checks.push(Check {
                pattern,
                count: c.count.as_ref().map(|n| n.value),
                bounds,
            });
        }
    }
    checks
}

/// `at_least` / `at_most` of a match check: finite, in order, and a
/// capture group to read the number from.
fn bounds(
    check: &RawCheck,
    which: &str,
    pattern: Option<&Pattern>,
    problems: &mut Problems,
) -> Option<Bounds> {
    if check.at_least.is_none() && check.at_most.is_none() {
        return None;
    }
    let mut finite = |key: &str, bound: &Option<Spanned<f64>>| {
        let bound = bound.as_ref()?;
        if bound.value.is_finite() {
            return Some((bound.value, pos(bound)));
        }
        problems.at(
            pos(bound),
            format!("{key} of {which} is not a finite number (expected one such as 150000 or 0.5)"),
        );
        None
    };
    let at_least = finite("at_least", &check.at_least);
    let at_most = finite("at_most", &check.at_most);
    if let (Some((low, at)), Some((high, _))) = (at_least, at_most) {
        if low > high {
            problems.at(
                at,
                format!(
                    "at_least {low} is more than at_most {high} in {which}, so no number can \
                     pass (swap them)"
                ),
            );
        }
    }
    let Some(Pattern::Match(re)) = pattern else {
        return None;
    };
    if re.captures_len() < 2 {
        if let Some(text) = &check.matches {
            problems.at(
                pos(text),
                format!(
                    "match {:?} of {which} has no capture group, so at_least and at_most have \
                     no number to read (put the number in parentheses, such as 'sent ([0-9]+) \
                     frames')",
                    text.value
                ),
            );
        }
        return None;
    }
    Some(Bounds {
        at_least: at_least.map(|b| b.0),
        at_most: at_most.map(|b| b.0),
    })
}

/// Compiles a regex, reporting the regex crate's own reason on failure.
fn regex(pattern: &Spanned<String>, what: &str, problems: &mut Problems) -> Option<Regex> {
    match Regex::new(&pattern.value) {
        Ok(re) => Some(re),
        Err(regex::Error::Syntax(detail)) => {
            // The last line of the crate's report says what is wrong.
            let why = detail.lines().last().unwrap_or("invalid").trim();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            problems.at(
                pos(pattern),
                format!("invalid regex {:?} in {what}: {why}", pattern.value),
            );
            None
        }
        Err(e) => {
            problems.at(
                pos(pattern),
                format!("regex {:?} in {what} is too large: {e}", pattern.value),
            );
            None
        }
    }
}
