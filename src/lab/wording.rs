//! The wording of the structural pass: how a place in a lab file is named
//! ("endpoint 2 of link 1"), what a key takes in the lab's own words, the
//! keys other tools use for labctl's, and the nearest known word for a
//! typo. The walker ([`super::structure`]) is generic over the schema; only
//! this file knows the lab format's nouns.

use std::borrow::Cow;

use serde_json::Value as Json;
use serde_saphyr::Location;

use super::impairment;
use super::schema::type_names;
use super::yaml::{Node, Seg, Value};

/// A key written twice, in the words of where it is.
pub(super) fn duplicate_message(tree: &Node, key: &str, first: Location, path: &[Seg]) -> String {
    let first = format!("first at line {}, column {}", first.line(), first.column());
    match path {
        [Seg::Key(k)] if k == "nodes" => format!("node {key:?} is defined twice ({first})"),
        [Seg::Key(k)] if k == "hosts" => format!("host {key:?} is defined twice ({first})"),
        _ => format!(
            "key `{key}` is written twice {} ({first}; keys are unique in a mapping)",
            place(tree, path)
        ),
    }
}

/// Names the value at `path`: "node `a`", "`mtu` of link 1".
pub(super) fn noun(tree: &Node, path: &[Seg]) -> String {
    use Seg::{Index, Key};
    match path {
        [] => "the file".to_owned(),
        [Key(k)] => format!("`{k}`"),
        [Key(n), Key(name)] if n == "nodes" => format!("node {name:?}"),
        [Key(h), Key(name)] if h == "hosts" => format!("host {name:?}"),
        [Key(n), Key(name), Key(r), Index(i)] if n == "nodes" && r == "routes" => {
            format!("route {} of node {name:?}", i + 1)
        }
        [Key(l), Index(i)] if l == "links" => format!("link {}", i + 1),
        [Key(l), Index(i), Key(e), Index(j)] if l == "links" && e == "endpoints" => {
            format!("endpoint {} of link {}", j + 1, i + 1)
        }
        [Key(s), Index(i)] if s == "steps" => step_noun(tree, *i),
        [Key(s), Index(i), Key(x), Key(stream), Index(j)] if s == "steps" && x == "expect" => {
            format!("{stream} check {} of {}", j + 1, step_noun(tree, *i))
        }
        [init @ .., Key(k)] => format!("`{k}` of {}", noun(tree, init)),
        [init @ .., Index(i)] => format!("item {} of {}", i + 1, noun(tree, init)),
    }
}

/// The subject of a sentence about the value at `path`.
pub(super) fn subject(tree: &Node, path: &[Seg]) -> String {
    if path.is_empty() {
        "the file".to_owned()
    } else {
        noun(tree, path)
    }
}

/// Where a key sits: "in node `a`", "at the top level".
pub(super) fn place(tree: &Node, path: &[Seg]) -> String {
    if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {}", noun(tree, path))
    }
}

/// "step `ping`" when the step has a readable name, else "step 3".
pub(super) fn step_noun(tree: &Node, index: usize) -> String {
    let name =
        match &tree.value.get("steps").map(|s| &s.value) {
            Some(Value::List(steps)) => steps
                .get(index)
                .and_then(|s| s.value.get("name"))
                .and_then(|n| match &n.value {
                    Value::Text(t) if !t.is_empty() && t.len() <= 40 => Some(t.clone()),
                    _ => None,
                }),
            _ => None,
        };
    match name {
        Some(name) => format!("step {name:?}"),
        None => format!("step {}", index + 1),
    }
}

pub(super) fn type_words(schema: &Json) -> Vec<&'static str> {
    let Some(types) = type_names(schema) else {
        return Vec::new();
    };
    let mut words = Vec::new();
    for t in &types {
        let word = match *t {
            "string" => "a string",
            // Text fields also take numbers and booleans: "a string" says it.
            "number" | "boolean" if types.contains(&"string") => continue,
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "true or false",
            "array" => "a list",
            "object" => "a mapping",
            _ => continue,
        };
        words.push(word);
    }
    words
}

/// The lab's own words for what some keys take.
pub(super) fn expected_here(path: &[Seg]) -> Option<Cow<'static, str>> {
    use Seg::{Index, Key};
    let words = match path {
        [] => "a mapping with name, nodes, links and steps",
        [Key(k)] if k == "name" => "a string: the lab's name, [a-z0-9][a-z0-9-]{0,19}",
        [Key(k)] if k == "nodes" => "a mapping of node names to their settings",
        [Key(n), Key(_)] if n == "nodes" => {
            "a mapping (host, image, cmd, datalink, env, sysctls, kernel, routes, binds, limits, \
             capabilities, privileged) or nothing"
        }
        [Key(k)] if k == "hosts" => "a mapping of host names to their docker and underlay",
        [Key(h), Key(_)] if h == "hosts" => {
            "a mapping with docker, underlay and (for tcp://) tls, such as {docker: \
             \"unix:///var/run/docker.sock\", underlay: 198.19.0.1}"
        }
        [Key(l), Index(_), Key(k)] if l == "links" && k == "vxlan" => {
            "a mapping with vni and port, such as {vni: 1001, port: 4789}"
        }
        [Key(n), Key(_), Key(k)] if n == "nodes" && k == "routes" => {
            "a list of routes such as `- {to: 198.18.2.0/24, via: 198.18.1.254}`"
        }
        [Key(n), Key(_), Key(k), Index(_)] if n == "nodes" && k == "routes" => {
            "a mapping such as {to: 198.18.2.0/24, via: 198.18.1.254}"
        }
        [Key(n), Key(_), Key(k)] if n == "nodes" && k == "cmd" => {
            "a list of strings (the command's argv), such as `[my-lb, --config, /etc/lb.conf]`, \
             or [] to run nothing of the image"
        }
        [Key(n), Key(_), Key(k)] if n == "nodes" && k == "binds" => {
            "a list of HOST:NODE[:ro|:rw] strings, such as `- ./build/myfwd:/usr/local/bin/myfwd`"
        }
        [.., Key(k)] if k == "at_least" || k == "at_most" => "a number, such as 150000 or 0.5",
        [.., Key(k)] if k == "impair" => {
            return Some(Cow::Owned(format!(
                "a mapping with {}, such as {{rate: 100mbit, loss: 1%}}",
                impairment::key_names(|_| true, "or")
            )));
        }
        [.., Key(k)] if k == "endpoints" => "a list of two endpoints",
        [.., Key(e), Index(_)] if e == "endpoints" => {
            "\"node:interface\" or a mapping with node and interface"
        }
        [Key(l), Index(_), Key(k)] if l == "links" && k == "ipv4" => {
            "a list of two CIDR addresses, one per endpoint"
        }
        [.., Key(k)] if k == "exec" => {
            "a list such as [lab-ping, eth1, 198.18.0.2]: an argv, never a shell string"
        }
        [.., Key(k)] if k == "stdout" || k == "stderr" => {
            "a list of checks such as `- match: REGEX` or `- contains: TEXT`"
        }
        [.., Key(k)] if ["timeout", "until", "every"].contains(&k.as_str()) => {
            "a duration such as 200ms, 10s or 2m"
        }
        [Key(s), Index(_), Key(k)] if s == "steps" && k == "name" => {
            "a string such as \"ping\", unique among the steps"
        }
        [.., Key(e), Index(_), Key(k)] if e == "endpoints" && k == "node" => "a node's name",
        [.., Key(e), Index(_), Key(k)] if e == "endpoints" && k == "interface" => {
            "an interface name such as eth1"
        }
        _ => return None,
    };
    Some(Cow::Borrowed(words))
}

/// Keys people bring from other tools, and the key labctl calls that.
pub(super) const SYNONYMS: &[(&str, &str)] = &[
    ("cmd", "exec"),
    ("command", "exec"),
    ("run", "exec"),
    ("args", "exec"),
    ("argv", "exec"),
    ("ip", "ipv4"),
    ("ips", "ipv4"),
    ("addr", "ipv4"),
    ("address", "ipv4"),
    ("addresses", "ipv4"),
    ("ipv4_address", "ipv4"),
    ("environment", "env"),
    ("sysctl", "sysctls"),
    ("interfaces", "endpoints"),
    ("ends", "endpoints"),
    ("iface", "interface"),
    ("ifname", "interface"),
    ("intf", "interface"),
    ("output", "stdout"),
    ("exit_code", "exit"),
    ("exitcode", "exit"),
    ("status", "exit"),
    ("rc", "exit"),
    ("regex", "match"),
    ("matches", "match"),
    ("pattern", "match"),
    ("bg", "background"),
    ("daemon", "background"),
    ("detach", "background"),
    ("wait_for", "wait"),
    ("stop", "wait"),
    ("ready_on", "ready"),
    ("ready_regex", "ready"),
    ("route", "routes"),
    ("gateway", "via"),
    ("gw", "via"),
    ("nexthop", "via"),
    ("dest", "to"),
    ("destination", "to"),
    ("mounts", "binds"),
    ("volumes", "binds"),
    ("bind", "binds"),
    ("netem", "impair"),
    ("impairment", "impair"),
    ("impairments", "impair"),
    ("bandwidth", "rate"),
    ("drop", "loss"),
    ("latency", "delay"),
    ("min", "at_least"),
    ("max", "at_most"),
    ("minimum", "at_least"),
    ("maximum", "at_most"),
    ("pids_limit", "pids"),
    ("mem", "memory"),
];

pub(super) fn synonym(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    SYNONYMS
        .iter()
        .find(|(word, _)| *word == key)
        .map(|(_, meant)| *meant)
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub(super) fn nearest<'k>(word: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let word = word.to_ascii_lowercase();
    let limit = |k: &str| if k.len() <= 4 { 1 } else { 2 };
    known
        // Cheap first: a word much longer or shorter is no typo of it.
        .filter(|k| k.len().abs_diff(word.len()) <= limit(k))
        .map(|k| (strsim::osa_distance(&word, &k.to_ascii_lowercase()), k))
        .filter(|(distance, k)| *distance <= limit(k) && *distance < k.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

pub(super) fn one_of(choices: &[String]) -> String {
    match choices {
        [] => "a value".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What was found, for messages: `"big"`, `3`, `a list`, `empty`.
pub(super) fn found(value: &Value) -> String {
    match value {
        Value::Null => "empty".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(t) => {
            let shown: String = t.chars().take(40).collect();
            let more = if shown.len() < t.len() { "..." } else { "" };
            format!("\"{}\"{more}", shown.escape_debug())
        }
        Value::List(_) => "a list".to_owned(),
        Value::Map(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_word() {
        let keys = ["image", "datalink", "env", "sysctls"];
        assert_eq!(nearest("imgae", keys.into_iter()), Some("image"));
        assert_eq!(nearest("Image", keys.into_iter()), Some("image"));
        assert_eq!(nearest("sysctl", keys.into_iter()), Some("sysctls"));
        assert_eq!(nearest("envv", keys.into_iter()), Some("env"));
        assert_eq!(nearest("flavour", keys.into_iter()), None);
        assert_eq!(nearest("e", keys.into_iter()), None);
    }

    #[test]
    fn places_are_named_in_the_lab_formats_words() {
        let tree = crate::lab::yaml::parse("steps:\n  - name: ping\n").unwrap();
        let path = |segs: &[(&str, usize)]| -> Vec<Seg> {
            segs.iter()
                .map(|(k, i)| {
                    if k.is_empty() {
                        Seg::Index(*i)
                    } else {
                        Seg::Key((*k).to_owned())
                    }
                })
                .collect()
        };
        assert_eq!(
            noun(
                &tree,
                &path(&[("links", 0), ("", 1), ("endpoints", 0), ("", 1)])
            ),
            "endpoint 2 of link 2"
        );
        assert_eq!(
            noun(&tree, &path(&[("steps", 0), ("", 0)])),
            "step \"ping\""
        );
        assert_eq!(
            noun(
                &tree,
                &path(&[("nodes", 0), ("a", 0), ("routes", 0), ("", 2)])
            ),
            "route 3 of node \"a\""
        );
        assert_eq!(place(&tree, &[]), "at the top level");
    }
}
