//! What the fuzz targets share: an in-memory datalink that hands a tool
//! the fuzzer's frames, the checks on the tools' `--json` output, and
//! JUnit validation against tests/schemas/junit-10.xsd (libxml2, the
//! library xmllint is made of, in process).

use std::collections::VecDeque;
use std::time::Duration;

use labctl::tools::datalink::{Datalink, DatalinkError, Direction, Received, Stats};

pub mod xsd;

/// How a send to a [`MemLink`] ends, chosen by the fuzzer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Taken,
    /// ENETDOWN: the link is down.
    LinkDown,
    /// ENOBUFS: a qdisc dropped it.
    QueueDrop,
    /// Anything else (EMSGSIZE).
    Refused,
}

impl SendOutcome {
    fn result(self) -> Result<(), DatalinkError> {
        let errno = match self {
            SendOutcome::Taken => return Ok(()),
            SendOutcome::LinkDown => libc_errno::ENETDOWN,
            SendOutcome::QueueDrop => libc_errno::ENOBUFS,
            SendOutcome::Refused => libc_errno::EMSGSIZE,
        };
        Err(DatalinkError::Io {
            op: "send",
            iface: "fuzz0".into(),
            source: std::io::Error::from_raw_os_error(errno),
        })
    }
}

/// The errnos used here (the fuzz crate does not depend on libc).
mod libc_errno {
    pub const ENETDOWN: i32 = 100;
    pub const ENOBUFS: i32 = 105;
    pub const EMSGSIZE: i32 = 90;
}

/// A datalink whose received frames are the fuzzer's: once they are all
/// read, what it watched is gone ([`DatalinkError::Ended`]), so a tool's
/// loop ends without waiting. Sends are recorded; the fuzzer decides, in
/// turn, how each ends.
pub struct MemLink {
    pub inbox: VecDeque<(Vec<u8>, Direction)>,
    pub sent: Vec<Vec<u8>>,
    pub send_outcomes: VecDeque<SendOutcome>,
    /// Once the inbox is empty: gone ([`DatalinkError::Ended`]), or
    /// nothing more yet (`Ok(None)`, lab-fwd's target).
    pub ends: bool,
    current: Vec<u8>,
}

impl MemLink {
    pub fn new(frames: impl IntoIterator<Item = (Vec<u8>, Direction)>) -> MemLink {
        MemLink {
            inbox: frames.into_iter().collect(),
            sent: Vec::new(),
            send_outcomes: VecDeque::new(),
            ends: true,
            current: Vec::new(),
        }
    }
}

impl Datalink for MemLink {
    fn describe(&self) -> String {
        "fuzz".into()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        let outcome = self.send_outcomes.pop_front().unwrap_or(SendOutcome::Taken);
        outcome.result()?;
        self.sent.push(frame.to_vec());
        Ok(())
    }

    /// Several frames a call, as AF_XDP and netmap take them, keeping the
    /// contract: a failure after some frames is reported by the next call.
    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        let mut sent = 0;
        for frame in frames {
            let outcome = self.send_outcomes.pop_front().unwrap_or(SendOutcome::Taken);
            if outcome != SendOutcome::Taken {
                if sent > 0 {
                    self.send_outcomes.push_front(outcome);
                    return Ok(sent);
                }
                return outcome.result().map(|()| 0);
            }
            self.sent.push(frame.to_vec());
            sent += 1;
        }
        Ok(sent)
    }

    fn recv(&mut self, _timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let Some((frame, direction)) = self.inbox.pop_front() else {
            if !self.ends {
                return Ok(None);
            }
            return Err(DatalinkError::Ended {
                iface: "fuzz0".into(),
                why: "the fuzzer's frames are all read".into(),
            });
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

/// Checks a tool's `--json` output: one JSON object per line, each naming
/// its event; returns the events' names.
pub fn json_events(output: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(output).expect("--json output is UTF-8");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("--json line does not parse ({e}): {line:?}"));
            value["event"]
                .as_str()
                .unwrap_or_else(|| panic!("--json line without an event: {line:?}"))
                .to_owned()
        })
        .collect()
}

/// Checks a tool's human output: text, every event on whole lines.
pub fn human_lines(output: &[u8]) {
    let text = std::str::from_utf8(output).expect("human output is UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
}

/// One frame of a tool target's input.
#[derive(Clone, Debug)]
pub struct Record {
    pub frame: Vec<u8>,
    pub direction: Direction,
    /// How a send the tool makes in answer ends.
    pub outcome: SendOutcome,
    /// Microseconds since the previous frame (lab-sink's clock).
    pub after_us: u16,
}

/// The input of the tool targets, simple enough to write seeds from
/// captured frames (fuzz/seeds/make.py): one byte of options for the
/// target, then records of
///
/// | bytes | what |
/// |---|---|
/// | 1 | bit 0: the frame went out (else in); bit 1: fix its IPv4, UDP and ICMP checksums first (so that mutations reach past them); bits 2-3: how the answer's send ends |
/// | 2 | the frame's length, big-endian |
/// | 2 | microseconds since the previous frame, big-endian |
/// | n | the frame (cut at the input's end) |
pub fn records(data: &[u8]) -> (u8, Vec<Record>) {
    let Some((&options, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut records = Vec::new();
    while rest.len() >= 5 {
        let flags = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let after_us = u16::from_be_bytes([rest[3], rest[4]]);
        rest = &rest[5..];
        let len = len.min(rest.len());
        let mut frame = rest[..len].to_vec();
        rest = &rest[len..];
        if flags & 2 != 0 {
            fix_checksums(&mut frame);
        }
        records.push(Record {
            frame,
            direction: if flags & 1 != 0 {
                Direction::Out
            } else {
                Direction::In
            },
            outcome: match (flags >> 2) & 3 {
                0 => SendOutcome::Taken,
                1 => SendOutcome::LinkDown,
                2 => SendOutcome::QueueDrop,
                _ => SendOutcome::Refused,
            },
            after_us,
        });
    }
    (options, records)
}

fn sum16(bytes: &[u8], mut sum: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Makes the IPv4 header checksum, and the UDP or ICMP checksum of an
/// untagged Ethernet/IPv4 frame right, as far as its bytes go; any other
/// frame is left as it is.
pub fn fix_checksums(frame: &mut [u8]) {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = usize::from(frame[ETH] & 0x0f) * 4;
    if ihl < 20 || frame.len() < ETH + ihl {
        return;
    }
    frame[ETH + 10..ETH + 12].fill(0);
    let header = fold(sum16(&frame[ETH..ETH + ihl], 0));
    frame[ETH + 10..ETH + 12].copy_from_slice(&header.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]));
    let end = (ETH + total).min(frame.len());
    let at = ETH + ihl;
    if end < at {
        return;
    }
    match frame[ETH + 9] {
        // ICMP: over the ICMP message.
        1 if end >= at + 4 => {
            frame[at + 2..at + 4].fill(0);
            let sum = fold(sum16(&frame[at..end], 0));
            frame[at + 2..at + 4].copy_from_slice(&sum.to_be_bytes());
        }
        // UDP: over the pseudo-header and the datagram.
        17 if end >= at + 8 => {
            // Over the length the UDP header says, where it fits.
            let said = usize::from(u16::from_be_bytes([frame[at + 4], frame[at + 5]]));
            let end = if (8..=end - at).contains(&said) {
                at + said
            } else {
                end
            };
            frame[at + 6..at + 8].fill(0);
            let mut pseudo = sum16(&frame[ETH + 12..ETH + 20], 0);
            pseudo += 17 + (end - at) as u32;
            let mut sum = fold(sum16(&frame[at..end], pseudo));
            if sum == 0 {
                sum = 0xffff;
            }
            frame[at + 6..at + 8].copy_from_slice(&sum.to_be_bytes());
        }
        _ => {}
    }
}
