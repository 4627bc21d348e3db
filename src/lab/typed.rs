//! The typed pass: the raw types read from the YAML tree that the
//! structural pass checked, not from the text again.
//!
//! Reading the tree is what lets validation run in one pass: the values
//! the structural pass found of the wrong type (a list for `mtu`, `afxdp`
//! for `datalink`) are left out, as if they were not written, so serde
//! reads the rest and every semantic check still runs. Their problems were
//! reported already; the mappings and lists they were left out of are the
//! structural pass's "suspects", so the resolver's complaints about those
//! as a whole (a step with "none of exec, wait and link") are not echoes
//! of them.
//!
//! [`Spanned`] is the raw types' value-with-position. It is ours rather
//! than serde-saphyr's so that this deserializer can hand positions over
//! through serde's public data model (a struct of a name of our own).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{
    self, value::MapDeserializer, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess,
    SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_saphyr::Location;

use super::yaml::{Node, Value};

/// A value of the lab file and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    /// Where the value is used (for an alias: the `*alias`).
    pub referenced: Location,
}

/// The struct name by which [`Spanned`] asks [`TreeDe`] for a position.
const SPANNED: &str = "labctl::lab::Spanned";
const SPANNED_FIELDS: &[&str] = &["value", "referenced"];

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value with its position")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut value = None;
                let mut referenced = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "value" => value = Some(map.next_value()?),
                        "referenced" => referenced = Some(map.next_value()?),
                        _ => map.next_value::<de::IgnoredAny>().map(|_| ())?,
                    }
                }
                Ok(Spanned {
                    value: value.ok_or_else(|| de::Error::missing_field("value"))?,
                    referenced: referenced.unwrap_or(Location::UNKNOWN),
                })
            }
        }

        deserializer.deserialize_struct(SPANNED, SPANNED_FIELDS, SpannedVisitor(PhantomData))
    }
}

/// Why the typed pass could not read a value: the structural pass let
/// through what serde refuses (a property test holds them together).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TypedError {
    pub message: String,
    pub at: Location,
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TypedError {}

impl de::Error for TypedError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        TypedError {
            message: message.to_string(),
            at: Location::UNKNOWN,
        }
    }
}

impl TypedError {
    /// The error, placed at `at` if nothing deeper placed it.
    fn placed(mut self, at: Location) -> Self {
        if self.at == Location::UNKNOWN {
            self.at = at;
        }
        self
    }
}

/// What is shared by every value of one read.
struct Context<'a> {
    source: &'a str,
    /// The values left out, by address (see [`node_id`]).
    dropped: &'a HashSet<usize>,
}

/// Identifies a node of the tree for as long as the tree lives.
pub(super) fn node_id(node: &Node) -> usize {
    std::ptr::from_ref(node) as usize
}

/// Reads `T` from `tree`, leaving out the `dropped` values; `source` is the
/// text the tree was parsed from (for the text of unquoted numbers).
pub(super) fn from_tree<T: for<'de> Deserialize<'de>>(
    tree: &Node,
    dropped: &HashSet<usize>,
    source: &str,
) -> Result<T, TypedError> {
    let context = Context { source, dropped };
    T::deserialize(TreeDe {
        node: tree,
        context: &context,
    })
}

#[derive(Clone, Copy)]
struct TreeDe<'a, 't> {
    node: &'t Node,
    context: &'a Context<'a>,
}

impl TreeDe<'_, '_> {
    fn at(&self) -> Location {
        self.node.referenced
    }

    /// A scalar as text: strings as they are; numbers and booleans as they
    /// were written (`0x10`, `1.50`), so `exec: [x, 0x10]` passes `0x10`.
    fn text(&self) -> Option<String> {
        let written = || {
            let span = self.node.defined.span();
            let start = usize::try_from(span.byte_offset()?).ok()?;
            let len = usize::try_from(span.byte_len()?).ok()?;
            let text = self.context.source.get(start..start.checked_add(len)?)?;
            (!text.is_empty()).then(|| text.to_owned())
        };
        match &self.node.value {
            Value::Text(t) => Some(t.clone()),
            Value::Int(i) => Some(written().unwrap_or_else(|| i.to_string())),
            Value::Float(f) => Some(written().unwrap_or_else(|| f.to_string())),
            Value::Bool(b) => Some(written().unwrap_or_else(|| b.to_string())),
            Value::Null | Value::List(_) | Value::Map(_) => None,
        }
    }

    fn is_dropped(&self, node: &Node) -> bool {
        self.context.dropped.contains(&node_id(node))
    }
}

impl<'de> Deserializer<'de> for TreeDe<'_, '_> {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        let at = self.at();
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => visitor.visit_i128(*i),
            },
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Text(t) => visitor.visit_str(t),
            Value::List(items) => visitor.visit_seq(Items {
                items: items.iter(),
                de: self,
            }),
            Value::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                seen: HashSet::new(),
                value: None,
                de: self,
            }),
        }
        .map_err(|e| e.placed(at))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.text() {
            Some(text) => visitor
                .visit_string(text)
                .map_err(|e: TypedError| e.placed(self.at())),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        if name == SPANNED {
            return visitor.visit_map(SpannedFields { de: self, next: 0 });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.text() {
            Some(text) => visitor
                .visit_enum(text.into_deserializer())
                .map_err(|e: TypedError| e.placed(self.at())),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map
    }
}

/// A list's items, the dropped ones left out.
struct Items<'a, 't, I> {
    items: I,
    de: TreeDe<'a, 't>,
}

impl<'de, 't, I: Iterator<Item = &'t Node>> SeqAccess<'de> for Items<'_, 't, I> {
    type Error = TypedError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TypedError> {
        let de = self.de;
        match self.items.by_ref().find(|item| !de.is_dropped(item)) {
            Some(node) => seed.deserialize(TreeDe { node, ..de }).map(Some),
            None => Ok(None),
        }
    }
}

/// A mapping's entries: the dropped ones left out, and a key written twice
/// read once, the first time (the structural pass reported the second).
struct Entries<'a, 't, I> {
    entries: I,
    seen: HashSet<String>,
    value: Option<&'t Node>,
    de: TreeDe<'a, 't>,
}

impl<'de, 't, I: Iterator<Item = &'t (Node, Node)>> MapAccess<'de> for Entries<'_, 't, I> {
    type Error = TypedError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypedError> {
        let de = self.de;
        for (key, value) in self.entries.by_ref() {
            if de.is_dropped(key) || de.is_dropped(value) {
                continue;
            }
            let Some(text) = key.value.as_key() else {
                continue;
            };
            if !self.seen.insert(text) {
                continue;
            }
            self.value = Some(value);
            return seed.deserialize(TreeDe { node: key, ..de }).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TypedError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(TreeDe { node, ..self.de })
    }
}

/// The two fields of a [`Spanned`]: the value, then its position.
struct SpannedFields<'a, 't> {
    de: TreeDe<'a, 't>,
    next: u8,
}

impl<'de> MapAccess<'de> for SpannedFields<'_, '_> {
    type Error = TypedError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypedError> {
        let Some(key) = SPANNED_FIELDS.get(usize::from(self.next)) else {
            return Ok(None);
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TypedError> {
        self.next += 1;
        if self.next == 1 {
            return seed.deserialize(self.de);
        }
        // serde-saphyr's Location reads itself from `line` and `column`.
        let at = self.de.at();
        seed.deserialize(MapDeserializer::new(
            [("line", at.line()), ("column", at.column())].into_iter(),
        ))
    }
}

/// Text in the file. A number or `true`/`false` written without quotes is
/// read as its text, so `[lab-ping, eth1, --count, 3]` and `KEY: 1` work.
pub struct Text;

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::yaml;

    #[derive(Debug, Deserialize)]
    struct Sample {
        n: Spanned<u32>,
        list: Vec<Spanned<String>>,
        #[serde(default)]
        gone: Option<Spanned<u32>>,
        kind: Spanned<crate::lab::LinkState>,
    }

    #[test]
    fn values_keep_their_positions_and_their_written_text() {
        let source = "n: 7\nlist: [a, 0x10, 1.50, true]\nkind: down\nn: 8\n";
        let tree = yaml::parse(source).unwrap();
        let sample: Sample = from_tree(&tree, &HashSet::new(), source).unwrap();
        assert_eq!(sample.n.value, 7, "the first of a key written twice");
        assert_eq!(
            (sample.n.referenced.line(), sample.n.referenced.column()),
            (1, 4)
        );
        let texts: Vec<&str> = sample.list.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(texts, ["a", "0x10", "1.50", "true"]);
        assert_eq!(sample.list[1].referenced.column(), 11);
        assert_eq!(sample.kind.value, crate::lab::LinkState::Down);
        assert!(sample.gone.is_none());
    }

    #[test]
    fn dropped_values_are_left_out() {
        let source = "n: 7\nlist: [a, [b], c]\nkind: down\ngone: [1]\n";
        let tree = yaml::parse(source).unwrap();
        assert!(from_tree::<Sample>(&tree, &HashSet::new(), source).is_err());
        let Value::Map(entries) = &tree.value else {
            panic!()
        };
        let Value::List(items) = &entries[1].1.value else {
            panic!()
        };
        let dropped = HashSet::from([node_id(&items[1]), node_id(&entries[3].1)]);
        let sample: Sample = from_tree(&tree, &dropped, source).unwrap();
        let texts: Vec<&str> = sample.list.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(texts, ["a", "c"]);
        assert!(sample.gone.is_none());
    }

    #[test]
    fn errors_carry_the_position_of_the_value() {
        let source = "n: x\nlist: []\nkind: down\n";
        let tree = yaml::parse(source).unwrap();
        let err = from_tree::<Sample>(&tree, &HashSet::new(), source).unwrap_err();
        assert_eq!((err.at.line(), err.at.column()), (1, 4), "{err:?}");
    }
}
