//! The structural pass: the YAML tree walked against the lab file's JSON
//! Schema, reporting every unknown key, duplicate key, missing key and
//! wrong type at once, each at the position of the offending key or value.
//!
//! The walker is generic over the schema (`type`, `properties`,
//! `additionalProperties`, `required`, `items`, `$ref`, `anyOf`/`oneOf`/
//! `allOf`, `const`/`enum`, integer `format`s). It enforces what serde would
//! enforce, and marks what serde could not read, so the typed pass can leave
//! it out (a property test holds the two together). The finer rules that
//! the schema only states for editors (`pattern`, `minimum`, `minItems`,
//! ...) are the resolver's, which words them better. The words for places
//! and keys of a lab ("endpoint 2 of link 1") are in [`super::wording`].

use std::collections::{HashMap, HashSet};

use serde_json::Value as Json;
use serde_saphyr::Location;

use super::error::Problem;
use super::schema::type_names;
use super::typed::node_id;
use super::wording;
use super::yaml::{Node, Seg, Value};

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
                            wording::subject(self.tree_root, path)
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
                    wording::place(self.tree_root, path),
                    wording::found(&key_node.value)
                );
                self.drop(key_node, message);
                self.found.suspects.push(node.referenced);
                continue;
            };
            if let Some(first) = seen.get(&key) {
                let message = wording::duplicate_message(self.tree_root, &key, *first, path);
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
                    wording::place(self.tree_root, path)
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
            if let Some(near) = wording::nearest(text, choices.iter().map(String::as_str)) {
                expected = format!("{expected}; did you mean {near:?}?");
            }
        }
        let message = format!(
            "{} is {} (expected {expected})",
            wording::subject(self.tree_root, path),
            wording::found(&node.value)
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
        let meant = wording::synonym(key)
            .filter(|s| known.contains(s))
            .or_else(|| wording::nearest(key, known.iter().copied()));
        // A misspelled synonym ("adresses") still points to the key.
        let meant = meant.or_else(|| {
            wording::nearest(key, wording::SYNONYMS.iter().map(|(word, _)| *word))
                .and_then(wording::synonym)
                .filter(|s| known.contains(s))
        });
        let hint = match meant {
            Some(meant) => format!("did you mean `{meant}`?"),
            None => format!("expected one of: {}", known.join(", ")),
        };
        let message = format!(
            "unknown key `{key}` {} ({hint})",
            wording::place(self.tree_root, path)
        );
        self.note(key_node.referenced, message);
        self.found.suspects.push(mapping.referenced);
        meant.map(str::to_owned)
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
        if let Some(words) = wording::expected_here(path) {
            return words.into_owned();
        }
        if let Some(choices) = self.constants(schema) {
            return wording::one_of(&choices);
        }
        let mut words: Vec<&str> = Vec::new();
        for alternative in self.alternatives(schema) {
            for word in wording::type_words(alternative) {
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
}
