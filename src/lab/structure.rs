//! The structural pass: the YAML tree walked against the lab file's JSON
//! Schema, reporting every unknown key, duplicate key, missing key and
//! wrong type at once, each at the position of the offending key or value.
//!
//! The walker is generic over the schema (`type`, `properties`,
//! `additionalProperties`, `required`, `items`, `$ref`, `anyOf`/`oneOf`/
//! `allOf`, `const`/`enum`, integer `format`s). It enforces what serde would
//! enforce, so a tree it accepts always deserializes into the raw types (a
//! property test holds it to that). The finer rules that the schema only
//! states for editors (`pattern`, `minimum`, `minItems`, ...) are the
//! resolver's, which words them better. Only this file knows how to name a
//! place in a lab ("endpoint 2 of link 1").

use std::collections::{HashMap, HashSet};

use serde_json::Value as Json;
use serde_saphyr::Location;

use super::error::Problem;
use super::typed::node_id;
use super::yaml::{Node, Value};

/// What the structural pass found.
#[derive(Debug, Default)]
pub(super) struct Structure {
    pub problems: Vec<Problem>,
    /// The values serde cannot read (of the wrong type, out of the range of
    /// their type), by [`node_id`]: the typed pass leaves them out, as if
    /// they were not written, so the semantic checks still run.
    pub dropped: HashSet<usize>,
    /// Mappings and lists that hold an unknown key or a dropped value. The
    /// key was probably meant to be one that is now missing, so the
    /// resolver's complaints about that mapping as a whole ("needs a
    /// node") would only repeat the problem.
    pub suspects: Vec<Location>,
}

/// The keywords the walker enforces. Anything else in the schema is an
/// annotation, or a rule the resolver checks (see [`LEFT_TO_RESOLVER`]); a
/// test holds the schema to these two lists.
#[cfg(test)]
pub(super) const ENFORCED: &[&str] = &[
    "type",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
    "const",
    "enum",
    "format",
];

/// Keywords the walker leaves alone on purpose.
#[cfg(test)]
pub(super) const LEFT_TO_RESOLVER: &[&str] = &[
    "$schema",
    "$comment",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "pattern",
    "propertyNames",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
];

/// Checks `tree` (the whole file) against `schema` (the lab file's).
pub(super) fn check(tree: &Node, schema: &Json) -> Structure {
    let mut walker = Walker {
        schema_root: schema,
        tree_root: tree,
        found: Structure::default(),
    };
    walker.walk(tree, schema, &mut Vec::new());
    walker.found
}

/// One step of the path from the top of the file to a value.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

struct Walker<'a> {
    schema_root: &'a Json,
    tree_root: &'a Node,
    found: Structure,
}

impl<'a> Walker<'a> {
    fn walk(&mut self, node: &Node, schema: &'a Json, path: &mut Vec<Seg>) {
        let schema = self.deref(schema);
        if schema.get("anyOf").is_some() || schema.get("oneOf").is_some() {
            return self.walk_alternatives(node, schema, path);
        }
        if let Some(all) = schema.get("allOf").and_then(Json::as_array) {
            for part in all {
                self.walk(node, part, path);
            }
        }
        if !accepts_type(schema, &node.value) || !accepts_value(schema, &node.value) {
            return self.wrong_value(node, schema, path);
        }
        match &node.value {
            Value::Map(entries) => self.walk_mapping(node, entries, schema, path),
            Value::List(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.walk(item, item_schema, path);
                        path.pop();
                        self.suspect_if_dropped(node, item);
                    }
                }
            }
            Value::Int(i) => {
                if let Some((min, max)) = integer_range(schema) {
                    if *i < min || *i > max {
                        let message = format!(
                            "{} is {i}, out of range (expected a whole number from {min} to {max})",
                            self.subject(path)
                        );
                        self.drop(node, message);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_mapping(
        &mut self,
        node: &Node,
        entries: &[(Node, Node)],
        schema: &'a Json,
        path: &mut Vec<Seg>,
    ) {
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        let mut seen: HashMap<String, Location> = HashMap::new();
        // Keys that an unknown key was taken for: not reported missing too.
        let mut hinted: Vec<String> = Vec::new();
        for (key_node, value) in entries {
            let Some(key) = key_node.value.as_key() else {
                let message = format!(
                    "a key {} is {} (expected a plain key such as `name`)",
                    self.place(path),
                    found(&key_node.value)
                );
                self.drop(key_node, message);
                self.found.suspects.push(node.referenced);
                continue;
            };
            if let Some(first) = seen.get(&key) {
                let message = self.duplicate_message(&key, *first, path);
                self.note(key_node.referenced, message);
            } else {
                seen.insert(key.clone(), key_node.referenced);
            }
            let value_schema = match properties.and_then(|p| p.get(&key)) {
                Some(s) => s,
                None => match additional {
                    Some(Json::Bool(false)) => {
                        hinted.extend(self.unknown_key(node, key_node, &key, properties, path));
                        continue;
                    }
                    Some(s @ Json::Object(_)) => s,
                    _ => continue,
                },
            };
            path.push(Seg::Key(key));
            self.walk(value, value_schema, path);
            path.pop();
            self.suspect_if_dropped(node, value);
        }
        for required in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            if !seen.contains_key(required) && !hinted.iter().any(|h| h == required) {
                let expected = properties
                    .and_then(|p| p.get(required))
                    .map(|s| {
                        path.push(Seg::Key(required.to_owned()));
                        let e = self.expected(s, path);
                        path.pop();
                        e
                    })
                    .unwrap_or_else(|| "a value".to_owned());
                let message = format!(
                    "missing key `{required}` {} (expected {expected})",
                    self.place(path)
                );
                // Required keys are `Option`s in the raw types: serde reads
                // on, and the resolver skips what is missing.
                self.note(node.referenced, message);
            }
        }
    }

    /// `anyOf`/`oneOf`: the first alternative whose type fits decides; its
    /// own checks then report what is wrong inside.
    fn walk_alternatives(&mut self, node: &Node, schema: &'a Json, path: &mut Vec<Seg>) {
        let alternatives = self.alternatives(schema);
        match alternatives
            .iter()
            .find(|a| accepts_type(a, &node.value) && accepts_value(a, &node.value))
        {
            Some(fitting) => self.walk(node, fitting, path),
            None => self.wrong_value(node, schema, path),
        }
    }

    /// Every alternative of a schema, nested `anyOf`/`oneOf`/`$ref` flattened.
    fn alternatives(&self, schema: &'a Json) -> Vec<&'a Json> {
        let schema = self.deref(schema);
        match schema.get("anyOf").or_else(|| schema.get("oneOf")) {
            Some(Json::Array(list)) => list.iter().flat_map(|s| self.alternatives(s)).collect(),
            _ => vec![schema],
        }
    }

    fn wrong_value(&mut self, node: &Node, schema: &'a Json, path: &[Seg]) {
        let choices = self.constants(schema);
        let mut expected = self.expected(schema, path);
        if let (Some(choices), Value::Text(text)) = (&choices, &node.value) {
            if let Some(near) = nearest(text, choices.iter().map(String::as_str)) {
                expected = format!("{expected}; did you mean {near:?}?");
            }
        }
        let message = format!(
            "{} is {} (expected {expected})",
            self.subject(path),
            found(&node.value)
        );
        self.drop(node, message);
    }

    fn unknown_key(
        &mut self,
        mapping: &Node,
        key_node: &Node,
        key: &str,
        properties: Option<&serde_json::Map<String, Json>>,
        path: &[Seg],
    ) -> Option<String> {
        let known: Vec<&str> = properties
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let meant = synonym(key)
            .filter(|s| known.contains(s))
            .or_else(|| nearest(key, known.iter().copied()));
        // A misspelled synonym ("adresses") still points to the key.
        let meant = meant.or_else(|| {
            nearest(key, SYNONYMS.iter().map(|(word, _)| *word))
                .and_then(synonym)
                .filter(|s| known.contains(s))
        });
        let hint = match meant {
            Some(meant) => format!("did you mean `{meant}`?"),
            None => format!("expected one of: {}", known.join(", ")),
        };
        let message = format!("unknown key `{key}` {} ({hint})", self.place(path));
        self.note(key_node.referenced, message);
        self.found.suspects.push(mapping.referenced);
        meant.map(str::to_owned)
    }

    fn duplicate_message(&self, key: &str, first: Location, path: &[Seg]) -> String {
        let first = format!("first at line {}, column {}", first.line(), first.column());
        match path {
            [Seg::Key(k)] if k == "nodes" => format!("node {key:?} is defined twice ({first})"),
            _ => format!(
                "key `{key}` is written twice {} ({first}; keys are unique in a mapping)",
                self.place(path)
            ),
        }
    }

    fn deref(&self, schema: &'a Json) -> &'a Json {
        let mut schema = schema;
        // Bounded: a schema that refers to itself must not hang the walker.
        for _ in 0..16 {
            let Some(target) = schema
                .get("$ref")
                .and_then(Json::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.schema_root.pointer(pointer))
            else {
                break;
            };
            schema = target;
        }
        schema
    }

    /// The values allowed, when the schema is a choice of constants.
    fn constants(&self, schema: &'a Json) -> Option<Vec<String>> {
        let mut values = Vec::new();
        for alternative in self.alternatives(schema) {
            if let Some(c) = alternative.get("const").and_then(Json::as_str) {
                values.push(c.to_owned());
            } else if let Some(list) = alternative.get("enum").and_then(Json::as_array) {
                values.extend(list.iter().filter_map(Json::as_str).map(str::to_owned));
            } else if !allows_only_null(alternative) {
                return None;
            }
        }
        (!values.is_empty()).then_some(values)
    }

    /// What the schema wants, in words; the lab's own wording where the
    /// generic one would say too little.
    fn expected(&self, schema: &'a Json, path: &[Seg]) -> String {
        if let Some(words) = expected_here(path) {
            return words.to_owned();
        }
        if let Some(choices) = self.constants(schema) {
            return one_of(&choices);
        }
        let mut words: Vec<&str> = Vec::new();
        for alternative in self.alternatives(schema) {
            for word in type_words(alternative) {
                if !words.contains(&word) {
                    words.push(word);
                }
            }
        }
        match words.as_slice() {
            [] => "a value".to_owned(),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }

    /// Reports `node` and leaves it out of the typed pass.
    fn drop(&mut self, node: &Node, message: String) {
        self.found.dropped.insert(node_id(node));
        self.note(node.referenced, message);
    }

    /// `container` lost a value: its other problems may be echoes.
    fn suspect_if_dropped(&mut self, container: &Node, value: &Node) {
        if self.found.dropped.contains(&node_id(value)) {
            self.found.suspects.push(container.referenced);
        }
    }

    fn note(&mut self, at: Location, message: String) {
        self.found.problems.push(Problem::at(at, message));
    }

    /// Names the value at `path`: "node `a`", "`mtu` of link 1".
    fn noun(&self, path: &[Seg]) -> String {
        use Seg::{Index, Key};
        match path {
            [] => "the file".to_owned(),
            [Key(k)] => format!("`{k}`"),
            [Key(n), Key(name)] if n == "nodes" => format!("node {name:?}"),
            [Key(n), Key(name), Key(r), Index(i)] if n == "nodes" && r == "routes" => {
                format!("route {} of node {name:?}", i + 1)
            }
            [Key(l), Index(i)] if l == "links" => format!("link {}", i + 1),
            [Key(l), Index(i), Key(e), Index(j)] if l == "links" && e == "endpoints" => {
                format!("endpoint {} of link {}", j + 1, i + 1)
            }
            [Key(s), Index(i)] if s == "steps" => self.step_noun(*i),
            [Key(s), Index(i), Key(x), Key(stream), Index(j)] if s == "steps" && x == "expect" => {
                format!("{stream} check {} of {}", j + 1, self.step_noun(*i))
            }
            [init @ .., Key(k)] => format!("`{k}` of {}", self.noun(init)),
            [init @ .., Index(i)] => format!("item {} of {}", i + 1, self.noun(init)),
        }
    }

    /// The subject of a sentence about the value at `path`.
    fn subject(&self, path: &[Seg]) -> String {
        if path.is_empty() {
            "the file".to_owned()
        } else {
            self.noun(path)
        }
    }

    /// Where a key sits: "in node `a`", "at the top level".
    fn place(&self, path: &[Seg]) -> String {
        if path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in {}", self.noun(path))
        }
    }

    /// "step `ping`" when the step has a readable name, else "step 3".
    fn step_noun(&self, index: usize) -> String {
        let name = match &self.tree_root.value.get("steps").map(|s| &s.value) {
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
}

fn type_names(schema: &Json) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Json::String(t) => Some(vec![t.as_str()]),
        Json::Array(ts) => Some(ts.iter().filter_map(Json::as_str).collect()),
        _ => None,
    }
}

fn accepts_type(schema: &Json, value: &Value) -> bool {
    let Some(types) = type_names(schema) else {
        return true;
    };
    types.iter().any(|t| match *t {
        "null" => matches!(value, Value::Null),
        "boolean" => matches!(value, Value::Bool(_)),
        "integer" => matches!(value, Value::Int(_)),
        "number" => matches!(value, Value::Int(_) | Value::Float(_)),
        "string" => matches!(value, Value::Text(_)),
        "array" => matches!(value, Value::List(_)),
        "object" => matches!(value, Value::Map(_)),
        _ => false,
    })
}

/// `const` and `enum` on a scalar.
fn accepts_value(schema: &Json, value: &Value) -> bool {
    let same = |c: &Json| match (c, value) {
        (Json::String(c), Value::Text(t)) => c == t,
        (Json::Bool(c), Value::Bool(b)) => c == b,
        (Json::Null, Value::Null) => true,
        (Json::Number(c), Value::Int(i)) => c.as_i64().map(i128::from) == Some(*i),
        _ => false,
    };
    if let Some(c) = schema.get("const") {
        return same(c);
    }
    if let Some(Json::Array(list)) = schema.get("enum") {
        return list.iter().any(same);
    }
    true
}

fn allows_only_null(schema: &Json) -> bool {
    type_names(schema).is_some_and(|t| t == ["null"])
}

/// The range of the Rust integer type behind a schemars `format`.
fn integer_range(schema: &Json) -> Option<(i128, i128)> {
    let range = match schema.get("format")?.as_str()? {
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" => (0, u64::MAX.into()),
        "uint" => (0, usize::MAX as i128),
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" => (i64::MIN.into(), i64::MAX.into()),
        "int" => (isize::MIN as i128, isize::MAX as i128),
        _ => return None,
    };
    Some(range)
}

fn type_words(schema: &Json) -> Vec<&'static str> {
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
fn expected_here(path: &[Seg]) -> Option<&'static str> {
    use Seg::{Index, Key};
    let words = match path {
        [] => "a mapping with name, nodes, links and steps",
        [Key(k)] if k == "name" => "a string: the lab's name, [a-z0-9][a-z0-9-]{0,19}",
        [Key(k)] if k == "nodes" => "a mapping of node names to their settings",
        [Key(n), Key(_)] if n == "nodes" => {
            "a mapping (image, datalink, env, sysctls, kernel, routes, binds, limits, \
             privileged) or nothing"
        }
        [Key(n), Key(_), Key(k)] if n == "nodes" && k == "routes" => {
            "a list of routes such as `- {to: 198.18.2.0/24, via: 198.18.1.254}`"
        }
        [Key(n), Key(_), Key(k), Index(_)] if n == "nodes" && k == "routes" => {
            "a mapping such as {to: 198.18.2.0/24, via: 198.18.1.254}"
        }
        [Key(n), Key(_), Key(k)] if n == "nodes" && k == "binds" => {
            "a list of HOST:NODE[:ro|:rw] strings, such as `- ./build/myfwd:/usr/local/bin/myfwd`"
        }
        [.., Key(k)] if k == "at_least" || k == "at_most" => "a number, such as 150000 or 0.5",
        [.., Key(k)] if k == "impair" => {
            "a mapping with rate, loss, delay or jitter, such as {rate: 100mbit, loss: 1%}"
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
        [.., Key(k)] if k == "timeout" => "a duration such as 200ms, 10s or 2m",
        [Key(s), Index(_), Key(k)] if s == "steps" && k == "name" => {
            "a string such as \"ping\", unique among the steps"
        }
        [.., Key(e), Index(_), Key(k)] if e == "endpoints" && k == "node" => "a node's name",
        [.., Key(e), Index(_), Key(k)] if e == "endpoints" && k == "interface" => {
            "an interface name such as eth1"
        }
        _ => return None,
    };
    Some(words)
}

/// Keys people bring from other tools, and the key labctl calls that.
const SYNONYMS: &[(&str, &str)] = &[
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

fn synonym(key: &str) -> Option<&'static str> {
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

fn one_of(choices: &[String]) -> String {
    match choices {
        [] => "a value".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What was found, for messages: `"big"`, `3`, `a list`, `empty`.
fn found(value: &Value) -> String {
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

    /// Every keyword of every schema object, with where it was found.
    fn keywords<'s>(schema: &'s Json, at: String, out: &mut Vec<(String, &'s str)>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        for (keyword, value) in object {
            out.push((at.clone(), keyword.as_str()));
            let children: Vec<(String, &Json)> = match keyword.as_str() {
                "properties" | "definitions" => value
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (format!("{at}/{k}"), v)).collect())
                    .unwrap_or_default(),
                "anyOf" | "oneOf" | "allOf" => value
                    .as_array()
                    .map(|a| a.iter().map(|v| (format!("{at}/{keyword}"), v)).collect())
                    .unwrap_or_default(),
                "items" | "additionalProperties" | "propertyNames" => {
                    vec![(format!("{at}/{keyword}"), value)]
                }
                _ => Vec::new(),
            };
            for (child_at, child) in children {
                keywords(child, child_at, out);
            }
        }
    }

    #[test]
    fn the_walker_knows_every_keyword_of_the_schema() {
        let schema = crate::lab::schema::lab_schema();
        let mut found = Vec::new();
        keywords(&schema, String::new(), &mut found);
        assert!(found.len() > 50, "walked too little: {found:?}");
        for (at, keyword) in found {
            assert!(
                ENFORCED.contains(&keyword) || LEFT_TO_RESOLVER.contains(&keyword),
                "schema keyword {keyword:?} at {at:?} is neither enforced by the walker nor \
                 left to the resolver on purpose"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let schema = crate::lab::schema::lab_schema();
        let text = schema.to_string();
        let walker = Walker {
            schema_root: &schema,
            tree_root: &Node::new(Value::Null, Location::UNKNOWN, Location::UNKNOWN),
            found: Structure::default(),
        };
        for reference in text.split("\"$ref\":\"").skip(1) {
            let reference = &reference[..reference.find('"').unwrap_or(0)];
            let target = serde_json::json!({ "$ref": reference });
            assert!(
                walker.deref(&target).get("$ref").is_none(),
                "{reference} does not resolve"
            );
        }
    }

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
}
