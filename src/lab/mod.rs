//! The lab file: parse the YAML, check it, and turn it into a [`Lab`].

mod model;

pub use model::*;
