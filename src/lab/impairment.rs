//! One impairment, from the lab file to what applies it: the `impair`
//! mapping as written ([`RawImpair`]), the validated [`Impairment`] of
//! one veth end, and [`KEYS`], the one table that says, for each key, how
//! it is written, where it is kept and what applies it. Validation
//! (`resolve`), the runtime's refusals (`runtime/needs.rs`) and the
//! messages are driven by the table, so a new impairment is a field in
//! both types and a row here, its application in `links/impair.rs`, and
//! its words in docs/lab-format.md.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::typed::{Spanned, Text};

/// Impairments of the frames a link carries.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawImpair {
    /// A rate limit in tc's units, such as `100mbit` (tc tbf).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub rate: Option<Spanned<String>>,
    /// Random loss, such as `1%` or `0.5%`.
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub loss: Option<Spanned<String>>,
    /// Added delay, such as `10ms` (needs netem in the host's kernel).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub delay: Option<Spanned<String>>,
    /// Variation of the delay, such as `2ms` (needs netem; only with delay).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub jitter: Option<Spanned<String>>,
    /// Frames sent twice, such as `0.1%` (needs netem).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub duplicate: Option<Spanned<String>>,
    /// Frames sent without the delay, ahead of earlier ones, such as `1%`
    /// (needs netem; only with delay).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub reorder: Option<Spanned<String>>,
    /// Frames with one bit flipped, such as `0.01%` (needs netem).
    #[serde(default)]
    #[schemars(with = "Option<Text>")]
    pub corrupt: Option<Spanned<String>>,
}

/// What happens to the frames an endpoint sends (its egress): the link's
/// `impair`, with the endpoint's own keys over it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Impairment {
    /// Bits per second (tc tbf).
    pub rate: Option<u64>,
    /// The fraction of frames dropped at random, 0.0 to 1.0.
    pub loss: Option<f64>,
    /// Added to every frame (netem).
    pub delay: Option<Duration>,
    /// Varies `delay` by up to this much (netem); only with `delay`.
    pub jitter: Option<Duration>,
    /// The fraction of frames sent twice, 0.0 to 1.0 (netem).
    pub duplicate: Option<f64>,
    /// The fraction of frames sent without the delay, so ahead of frames
    /// delayed before them, 0.0 to 1.0 (netem); only with a `delay`.
    pub reorder: Option<f64>,
    /// The fraction of frames with one bit flipped, 0.0 to 1.0 (netem).
    pub corrupt: Option<f64>,
}

/// How a key's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// A rate in tc's units, such as `100mbit`.
    Rate,
    /// A percentage, such as `1%` or `0.5%`.
    Fraction,
    /// A duration, such as `10ms`.
    Duration,
}

/// A key's value, as validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Bits per second.
    Rate(u64),
    /// 0.0 to 1.0.
    Fraction(f64),
    Duration(Duration),
}

impl fmt::Display for Value {
    /// `100mbit`, `1%`, `10ms`: as the lab file writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Rate(bits) => f.write_str(&format_rate(*bits)),
            Value::Fraction(fraction) => write!(f, "{}%", fraction * 100.0),
            Value::Duration(duration) => write!(f, "{}", humantime::format_duration(*duration)),
        }
    }
}

/// What applies a key on the egress of the impaired end
/// (`links/impair.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedBy {
    /// A tbf qdisc.
    Tbf,
    /// A clsact qdisc with labctl's BPF classifier.
    LossFilter,
    /// A netem qdisc: needs netem in the host's kernel.
    Netem,
}

/// One key of `impair`.
pub struct Key {
    pub name: &'static str,
    pub syntax: Syntax,
    pub applied_by: AppliedBy,
    /// Where the lab file's mapping holds it.
    pub written: fn(&RawImpair) -> Option<&Spanned<String>>,
    /// Where the impairment holds it.
    pub get: fn(&Impairment) -> Option<Value>,
    /// Sets it; a value of another syntax is ignored.
    pub set: fn(&mut Impairment, Value),
}

/// Every key of `impair`, in the order the lab format lists them.
pub const KEYS: [Key; 7] = [
    Key {
        name: "rate",
        syntax: Syntax::Rate,
        applied_by: AppliedBy::Tbf,
        written: |raw| raw.rate.as_ref(),
        get: |i| i.rate.map(Value::Rate),
        set: |i, v| i.rate = v.rate().or(i.rate),
    },
    Key {
        name: "loss",
        syntax: Syntax::Fraction,
        applied_by: AppliedBy::LossFilter,
        written: |raw| raw.loss.as_ref(),
        get: |i| i.loss.map(Value::Fraction),
        set: |i, v| i.loss = v.fraction().or(i.loss),
    },
    Key {
        name: "delay",
        syntax: Syntax::Duration,
        applied_by: AppliedBy::Netem,
        written: |raw| raw.delay.as_ref(),
        get: |i| i.delay.map(Value::Duration),
        set: |i, v| i.delay = v.duration().or(i.delay),
    },
    Key {
        name: "jitter",
        syntax: Syntax::Duration,
        applied_by: AppliedBy::Netem,
        written: |raw| raw.jitter.as_ref(),
        get: |i| i.jitter.map(Value::Duration),
        set: |i, v| i.jitter = v.duration().or(i.jitter),
    },
    Key {
        name: "duplicate",
        syntax: Syntax::Fraction,
        applied_by: AppliedBy::Netem,
        written: |raw| raw.duplicate.as_ref(),
        get: |i| i.duplicate.map(Value::Fraction),
        set: |i, v| i.duplicate = v.fraction().or(i.duplicate),
    },
    Key {
        name: "reorder",
        syntax: Syntax::Fraction,
        applied_by: AppliedBy::Netem,
        written: |raw| raw.reorder.as_ref(),
        get: |i| i.reorder.map(Value::Fraction),
        set: |i, v| i.reorder = v.fraction().or(i.reorder),
    },
    Key {
        name: "corrupt",
        syntax: Syntax::Fraction,
        applied_by: AppliedBy::Netem,
        written: |raw| raw.corrupt.as_ref(),
        get: |i| i.corrupt.map(Value::Fraction),
        set: |i, v| i.corrupt = v.fraction().or(i.corrupt),
    },
];

impl Value {
    fn rate(self) -> Option<u64> {
        match self {
            Value::Rate(bits) => Some(bits),
            _ => None,
        }
    }

    fn fraction(self) -> Option<f64> {
        match self {
            Value::Fraction(fraction) => Some(fraction),
            _ => None,
        }
    }

    fn duration(self) -> Option<Duration> {
        match self {
            Value::Duration(duration) => Some(duration),
            _ => None,
        }
    }
}

/// The names of the keys `which` selects, as a list in words: `a, b or
/// c` (`last` is "or" or "and").
pub fn key_names(which: impl Fn(&Key) -> bool, last: &str) -> String {
    let names: Vec<&str> = KEYS.iter().filter(|k| which(k)).map(|k| k.name).collect();
    match names.split_last() {
        None => String::new(),
        Some((only, [])) => (*only).to_owned(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
    }
}

/// The keys that need netem, in words (`delay, jitter, ... or corrupt`).
pub fn netem_key_names(last: &str) -> String {
    key_names(|k| k.applied_by == AppliedBy::Netem, last)
}

impl Impairment {
    /// Each key it sets, with its value, in [`KEYS`]' order.
    pub fn values(&self) -> impl Iterator<Item = (&'static Key, Value)> + '_ {
        KEYS.iter().filter_map(|k| Some((k, (k.get)(self)?)))
    }

    /// Whether applying it needs netem in the host's kernel.
    pub fn needs_netem(&self) -> bool {
        self.values().any(|(k, _)| k.applied_by == AppliedBy::Netem)
    }

    pub fn is_empty(&self) -> bool {
        *self == Impairment::default()
    }

    /// Only its keys that `applied_by` applies (netem's, for netem's
    /// messages).
    pub fn only(&self, applied_by: AppliedBy) -> Impairment {
        let mut only = Impairment::default();
        for (key, value) in self.values().filter(|(k, _)| k.applied_by == applied_by) {
            (key.set)(&mut only, value);
        }
        only
    }

    /// `self`, with `over`'s keys in their place where `over` has them.
    pub fn under(mut self, over: &Impairment) -> Impairment {
        for (key, value) in over.values() {
            (key.set)(&mut self, value);
        }
        self
    }

    /// What a key needs of another that this impairment lacks, by the key
    /// that needs it. A jitter needs a delay to vary, and a reorder a delay
    /// for the reordered frames to skip (netem reorders by sending them at
    /// once).
    pub fn missing(&self) -> Vec<(&'static str, String)> {
        let mut missing = Vec::new();
        if let (Some(jitter), None) = (self.jitter, self.delay) {
            missing.push((
                "jitter",
                format!(
                    "jitter {} has no delay to vary (add delay, such as delay: 10ms)",
                    humantime::format_duration(jitter)
                ),
            ));
        }
        if let (Some(reorder), None | Some(Duration::ZERO)) = (self.reorder, self.delay) {
            missing.push((
                "reorder",
                format!(
                    "reorder {}% has no delay to skip (netem reorders by sending those frames \
                     without the delay; add delay, such as delay: 10ms)",
                    reorder * 100.0
                ),
            ));
        }
        missing
    }
}

impl fmt::Display for Impairment {
    /// `rate 100mbit, loss 1%, delay 10ms, jitter 2ms, duplicate 1%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .values()
            .map(|(key, value)| format!("{} {value}", key.name))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// A rate in tc's units: `100mbit`, `1500kbit`, `7bit`.
pub fn format_rate(bits: u64) -> String {
    for (unit, scale) in [
        ("tbit", 1_000_000_000_000),
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
    ] {
        if bits >= scale && bits % scale == 0 {
            return format!("{}{unit}", bits / scale);
        }
    }
    format!("{bits}bit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_from_its_own_field_and_kept_in_its_own() {
        for (n, key) in KEYS.iter().enumerate() {
            let value = match key.syntax {
                Syntax::Rate => Value::Rate(1000 + n as u64),
                Syntax::Fraction => Value::Fraction(n as f64 / 100.0),
                Syntax::Duration => Value::Duration(Duration::from_millis(n as u64 + 1)),
            };
            let mut impairment = Impairment::default();
            (key.set)(&mut impairment, value);
            let set: Vec<_> = impairment.values().map(|(k, v)| (k.name, v)).collect();
            assert_eq!(set, [(key.name, value)]);
        }
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn the_keys_are_listed_in_words() {
        assert_eq!(
            netem_key_names("or"),
            "delay, jitter, duplicate, reorder or corrupt"
        );
        assert_eq!(key_names(|k| k.name == "rate", "or"), "rate");
    }
}
