//! The lab file as written: serde types with source positions.
//!
//! These types mirror the YAML one to one (both endpoint forms, optional
//! keys) and never leave the `lab` module: [`super::parse`] checks them and
//! turns them into the validated [`super::Lab`]. The JSON Schema that
//! `labctl schema` prints is generated from these same types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::tools::datalink::DatalinkKind;

/// A lab file, version 1.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "labctl lab file")]
pub struct RawLab {
    /// Names every container, veth and label of the lab:
    /// `[a-z0-9][a-z0-9-]{0,19}`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The lab's default datalink (default: af_packet).
    #[serde(default)]
    #[schemars(with = "Option<DatalinkKind>")]
    pub datalink: Option<Spanned<DatalinkKind>>,
    /// Nodes by name, in the order they are written.
    #[serde(default, deserialize_with = "ordered_map")]
    #[schemars(with = "BTreeMap<String, Option<RawNode>>")]
    pub nodes: Vec<(Spanned<String>, Option<RawNode>)>,
    #[serde(default)]
    #[schemars(with = "Vec<RawLink>")]
    pub links: Vec<Spanned<RawLink>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Vec<Spanned<RawStep>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// A local image; without it the node runs the tools image.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// Overrides the lab's datalink for this node's interfaces.
    #[serde(default)]
    #[schemars(with = "Option<DatalinkKind>")]
    pub datalink: Option<Spanned<DatalinkKind>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// Two endpoints: `"node:interface"` strings, or one mapping each.
    #[schemars(with = "Vec<RawEndpoint>")]
    pub endpoints: Vec<Spanned<RawEndpoint>>,
    /// One CIDR address per brief endpoint, in the same order.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub ipv4: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub mtu: Option<Spanned<u32>>,
}

/// One end of a link.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawEndpoint {
    /// `"node:interface"`.
    Brief(String),
    Extended(RawEndpointMap),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndpointMap {
    pub node: String,
    pub interface: String,
    /// A CIDR address, e.g. `198.19.0.1/24`.
    #[serde(default)]
    pub ipv4: Option<String>,
    /// e.g. `"02:00:00:00:01:01"`.
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub datalink: Option<DatalinkKind>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub node: Option<Spanned<String>>,
    /// The command as an argv list, never a shell string.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    #[serde(default)]
    pub background: bool,
    /// A regex on the step's output; the next step starts once it matches.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ready: Option<Spanned<String>>,
    /// `200ms`, `10s`, `2m` (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Ends the background step of that name and checks its output.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub wait: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// The exit code (default 0).
    #[serde(default)]
    pub exit: Option<i64>,
    #[serde(default)]
    #[schemars(with = "Vec<RawCheck>")]
    pub stdout: Vec<Spanned<RawCheck>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawCheck>")]
    pub stderr: Vec<Spanned<RawCheck>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// A regex applied to each line.
    #[serde(rename = "match", default)]
    pub matches: Option<String>,
    /// A substring of the whole output.
    #[serde(default)]
    pub contains: Option<String>,
    /// Exactly this many lines match.
    #[serde(default)]
    pub count: Option<usize>,
}

/// A YAML mapping as a list of entries, keeping the file's order (and each
/// key's position) where a map type would sort or hash them.
fn ordered_map<'de, D, K, V>(deserializer: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);

    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<K, V> {
        type Value = Vec<(K, V)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a mapping")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_map(Entries(std::marker::PhantomData))
}
