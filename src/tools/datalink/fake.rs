//! A datalink in memory for unit tests: it records what is sent and hands
//! out what a scripted peer answers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Datalink, DatalinkError, Direction, Received, Stats};

/// The peer: given a frame the tool sent, the frames it sends back.
pub type Peer = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>>>;

pub struct FakeLink {
    pub sent: Vec<Vec<u8>>,
    pub inbox: VecDeque<(Vec<u8>, Direction)>,
    /// Once the inbox is empty, what it watched is gone
    /// ([`DatalinkError::Ended`]), as a netmap monitor's port may go.
    pub ends: bool,
    peer: Peer,
    current: Vec<u8>,
}

impl FakeLink {
    pub fn new(peer: Peer) -> Self {
        FakeLink {
            sent: Vec::new(),
            inbox: VecDeque::new(),
            ends: false,
            peer,
            current: Vec::new(),
        }
    }

    /// A link nobody answers on.
    pub fn silent() -> Self {
        FakeLink::new(Box::new(|_| Vec::new()))
    }

    pub fn queue(&mut self, frame: Vec<u8>, direction: Direction) {
        self.inbox.push_back((frame, direction));
    }
}

impl Datalink for FakeLink {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        self.sent.push(frame.to_vec());
        for answer in (self.peer)(frame) {
            self.inbox.push_back((answer, Direction::In));
        }
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let Some((frame, direction)) = self.inbox.pop_front() else {
            if self.ends {
                return Err(DatalinkError::Ended {
                    iface: "fake".into(),
                    why: "the watched port went away".into(),
                });
            }
            // Nothing will come: let the time pass as a real wait would.
            let until = Instant::now() + timeout.min(Duration::from_millis(50));
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            return Ok(None);
        };
        self.current = frame;
        Ok(Some(Received {
            frame: &self.current,
            direction,
        }))
    }

    fn stats(&self) -> Stats {
        Stats { dropped: Some(0) }
    }
}
