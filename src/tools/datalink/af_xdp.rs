//! The af_xdp datalink (to be implemented).

use std::time::Duration;

use super::{Datalink, DatalinkError, DatalinkKind, OpenOptions, Received};

pub struct AfXdp {
    _private: (),
}

impl AfXdp {
    pub fn open(_iface: &str, _options: &OpenOptions) -> Result<Self, DatalinkError> {
        Err(DatalinkError::Unavailable {
            kind: DatalinkKind::AfXdp,
            missing: "not implemented yet".into(),
        })
    }
}

impl Datalink for AfXdp {
    fn describe(&self) -> String {
        DatalinkKind::AfXdp.to_string()
    }

    fn send(&mut self, _frame: &[u8]) -> Result<(), DatalinkError> {
        unreachable!("never opened")
    }

    fn recv(&mut self, _timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        unreachable!("never opened")
    }
}
