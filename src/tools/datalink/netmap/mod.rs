//! The netmap datalink (to be implemented).

mod abi;

use std::time::Duration;

use super::{Datalink, DatalinkError, DatalinkKind, OpenOptions, Received};

pub struct Netmap {
    _private: (),
}

impl Netmap {
    pub fn open(_iface: &str, _options: &OpenOptions) -> Result<Self, DatalinkError> {
        Err(DatalinkError::Unavailable {
            kind: DatalinkKind::Netmap,
            missing: "not implemented yet".into(),
        })
    }
}

impl Datalink for Netmap {
    fn describe(&self) -> String {
        DatalinkKind::Netmap.to_string()
    }

    fn send(&mut self, _frame: &[u8]) -> Result<(), DatalinkError> {
        unreachable!("never opened")
    }

    fn recv(&mut self, _timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        unreachable!("never opened")
    }
}
