//! The lab file as a generic YAML tree where every value keeps its position.
//!
//! The structural pass ([`super::structure`]) walks this tree against the
//! JSON Schema of the lab file, so it can report every unknown key and every
//! wrong type at once, where serde would stop at the first. serde-saphyr
//! does the parsing (with its limits on depth, aliases and size), and gives
//! each value its line and column through [`Spanned`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Location, MessageFormatter, Options, Spanned};

use super::error::Problem;

/// One YAML value and where it was written.
pub(super) type Node = Spanned<Value>;

/// A YAML value as YAML 1.2 reads it (plain `yes` is text, not a boolean).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    List(Vec<Node>),
    /// Entries in file order, duplicate keys included, so that they can be
    /// reported rather than silently merged.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The key as text, if it is a scalar (YAML allows `1: x` or `true: x`;
    /// an empty key is no key).
    pub(super) fn as_key(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null | Value::List(_) | Value::Map(_) => None,
        }
    }

    /// The value of `key` in a mapping (the first, if written twice).
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.value.as_key().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Options shared by the tree and the typed pass, so that both read the same
/// YAML: YAML 1.2 booleans only (as editors do), no snippets in messages
/// (labctl prints its own `FILE:LINE:COL:` lines).
pub(super) fn options(duplicate_keys: DuplicateKeyPolicy) -> Options {
    let mut options = Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options.duplicate_keys = duplicate_keys;
    // A lab of a few hundred nodes has some thousands of values; an alias
    // bomb is cut off sooner than at the parser's default of 250,000.
    let mut budget = options.budget.clone().unwrap_or_default();
    budget.max_nodes = MAX_NODES;
    options.budget = Some(budget);
    options
}

/// The most YAML values a lab file may hold, aliases expanded.
pub(super) const MAX_NODES: usize = 100_000;

/// Parses `source` into a tree; a syntax error becomes one [`Problem`].
pub(super) fn parse(source: &str) -> Result<Node, Problem> {
    serde_saphyr::from_str_with_options(source, options(DuplicateKeyPolicy::PassThrough))
        .map_err(|e| syntax_problem(&e))
}

/// A YAML error as a problem: its position, and its message without the
/// "at line X" suffix (the position is printed in front).
fn syntax_problem(error: &serde_saphyr::Error) -> Problem {
    let message = match error.without_snippet() {
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "a second YAML document starts here (a lab file holds one document: remove the \
             `---` line or split the file)"
                .to_owned()
        }
        error => format!("invalid YAML: {}", bare_message(error)),
    };
    Problem::at(location(error), message)
}

fn location(error: &serde_saphyr::Error) -> Location {
    error
        .without_snippet()
        .location()
        .unwrap_or(Location::UNKNOWN)
}

fn bare_message(error: &serde_saphyr::Error) -> String {
    serde_saphyr::DefaultMessageFormatter
        .format_message(error.without_snippet())
        .into_owned()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i.into()))
    }

    fn visit_u64<E>(self, i: u64) -> Result<Value, E> {
        Ok(Value::Int(i.into()))
    }

    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u128<E: de::Error>(self, i: u128) -> Result<Value, E> {
        // Beyond i128 no lab key can use it anyway; keep it as text.
        Ok(i128::try_from(i).map_or_else(|_| Value::Text(i.to_string()), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }

    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        // `!!binary` values: only their text form matters to a lab file.
        Ok(Value::Text(String::from_utf8_lossy(b).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

/// One step of the path from the top of the file to a value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Node) -> (u64, u64) {
        (node.referenced.line(), node.referenced.column())
    }

    #[test]
    fn values_keep_their_positions() {
        let tree = parse("name: x\nnodes:\n  a: {}\n  b:\n    image: busybox\n").unwrap();
        let nodes = tree.value.get("nodes").unwrap();
        let Value::Map(entries) = &nodes.value else {
            panic!("{nodes:?}")
        };
        assert_eq!(at(&entries[1].0), (4, 3));
        assert_eq!(at(entries[1].1.value.get("image").unwrap()), (5, 12));
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let tree = parse("a: 1\na: 2\n").unwrap();
        let Value::Map(entries) = &tree.value else {
            panic!("{tree:?}")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn yaml_1_1_booleans_are_text() {
        let tree = parse("a: yes\nb: true\n").unwrap();
        assert_eq!(
            tree.value.get("a").unwrap().value,
            Value::Text("yes".into())
        );
        assert_eq!(tree.value.get("b").unwrap().value, Value::Bool(true));
    }

    #[test]
    fn syntax_errors_have_a_position_and_no_location_suffix() {
        let problem = parse("a: \"unclosed\n").unwrap_err();
        assert_eq!((problem.line, problem.column), (1, 4));
        assert_eq!(problem.message, "invalid YAML: unclosed quote");
    }

    #[test]
    fn a_second_document_is_named_as_such() {
        let problem = parse("name: a\n---\nname: b\n").unwrap_err();
        assert_eq!(problem.line, 3);
        assert!(
            problem.message.contains("second YAML document"),
            "{problem:?}"
        );
    }
}
