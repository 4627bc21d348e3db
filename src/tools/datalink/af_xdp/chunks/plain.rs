//! The UMEM and its four rings in plain memory, the kernel's side played
//! by the caller: a well-behaved kernel ([`PlainXsk::deliver`],
//! [`PlainXsk::transmit`]) for the unit tests, and the raw writes of a
//! hostile one ([`PlainXsk::write_index`], [`PlainXsk::write_entry`],
//! [`PlainXsk::write_umem`]) for the fuzz target `ring_af_xdp`. The code
//! under test is the real [`Chunks`] over the real ring logic; only the
//! memory is not a socket's.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::super::ring::{Consumer, Producer, RingMemory};
use super::super::xsk::{Sizes, FRAME_SIZE};
use super::Chunks;

/// A small UMEM, so indices wrap and chunks run out within a few frames:
/// 4 RX chunks, 4 TX chunks, rings of 8.
const SIZES: Sizes = Sizes {
    frames: 8,
    rx_frames: 4,
    ring: 8,
};

/// The four rings, in the order of [`PlainXsk::write_index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingName {
    Rx,
    Tx,
    Fill,
    Completion,
}

/// Which shared word of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingWord {
    Producer,
    Consumer,
    Flags,
}

impl RingName {
    pub const ALL: [RingName; 4] = [Self::Rx, Self::Tx, Self::Fill, Self::Completion];

    fn entry_size(self) -> usize {
        match self {
            Self::Rx | Self::Tx => size_of::<libc::xdp_desc>(),
            Self::Fill | Self::Completion => size_of::<u64>(),
        }
    }
}

/// Each ring: its three words (8 bytes apart), then its entries.
const RING_HEADER: usize = 64;
const RING_SPAN: usize = RING_HEADER + SIZES.ring as usize * 16;
const UMEM_AT: usize = 4 * RING_SPAN;

/// An AF_XDP socket's shared memory without the socket.
pub struct PlainXsk {
    /// Owns the memory; only `base` is used to reach it.
    _words: Box<[u64]>,
    base: NonNull<u8>,
    chunks: Chunks,
    /// The kernel's own positions: the entries it consumed from the fill
    /// and TX rings, and produced on the RX and completion rings.
    fill_consumed: u32,
    tx_consumed: u32,
    rx_produced: u32,
    completion_produced: u32,
}

impl Default for PlainXsk {
    fn default() -> Self {
        PlainXsk::new()
    }
}

impl PlainXsk {
    pub fn new() -> PlainXsk {
        let bytes = UMEM_AT + SIZES.umem_bytes();
        let mut words = vec![0u64; bytes / 8].into_boxed_slice();
        let base = NonNull::new(words.as_mut_ptr().cast::<u8>()).expect("a Box is never null");
        let ring = |name: RingName| -> (NonNull<AtomicU32>, NonNull<AtomicU32>, NonNull<u8>) {
            let at = Self::ring_at(name);
            // SAFETY: every offset lies inside the allocation (RING_SPAN
            // holds the header and SIZES.ring entries of 16 bytes).
            unsafe {
                (
                    base.add(at).cast(),
                    base.add(at + 8).cast(),
                    base.add(at + RING_HEADER),
                )
            }
        };
        // SAFETY: the memory is 8-aligned (u64s), outlives the rings (it
        // is dropped with self, after `chunks`, which only holds pointers),
        // and the caller's kernel side writes it only between calls.
        let memory = |name: RingName| unsafe {
            let (producer, consumer, entries) = ring(name);
            let flags = base.add(Self::ring_at(name) + 16).cast();
            (producer, consumer, entries, flags)
        };
        // SAFETY: as above; sizes and layout agree.
        let chunks = unsafe {
            let (p, c, e, f) = memory(RingName::Rx);
            let rx = Consumer::new(RingMemory::new(p, c, e.cast(), SIZES.ring).with_flags(f));
            let (p, c, e, f) = memory(RingName::Tx);
            let tx = Producer::new(RingMemory::new(p, c, e.cast(), SIZES.ring).with_flags(f));
            let (p, c, e, f) = memory(RingName::Fill);
            let fill = Producer::new(RingMemory::new(p, c, e.cast(), SIZES.ring).with_flags(f));
            let (p, c, e, f) = memory(RingName::Completion);
            let completion =
                Consumer::new(RingMemory::new(p, c, e.cast(), SIZES.ring).with_flags(f));
            Chunks::new(rx, tx, fill, completion, base.add(UMEM_AT), SIZES)
        };
        PlainXsk {
            _words: words,
            base,
            chunks,
            fill_consumed: 0,
            tx_consumed: 0,
            rx_produced: 0,
            completion_produced: 0,
        }
    }

    fn ring_at(name: RingName) -> usize {
        RING_SPAN * RingName::ALL.iter().position(|n| *n == name).unwrap_or(0)
    }

    /// The UMEM's size, and the largest frame a chunk holds.
    pub const UMEM_BYTES: usize = SIZES.umem_bytes();
    pub const FRAME_SIZE: usize = FRAME_SIZE as usize;
    /// TX chunks: never more can be free.
    pub const TX_CHUNKS: usize = (SIZES.frames - SIZES.rx_frames) as usize;

    fn word(&self, name: RingName, word: RingWord) -> &AtomicU32 {
        let offset = Self::ring_at(name)
            + match word {
                RingWord::Producer => 0,
                RingWord::Consumer => 8,
                RingWord::Flags => 16,
            };
        // SAFETY: a 4-aligned word inside the allocation, alive with self.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast().as_ptr()) }
    }

    fn entry_ptr(&self, name: RingName, index: u32) -> *mut u8 {
        let slot = (index % SIZES.ring) as usize;
        // SAFETY: slot < ring entries, inside the ring's span.
        unsafe {
            self.base
                .add(Self::ring_at(name) + RING_HEADER + slot * name.entry_size())
                .as_ptr()
        }
    }

    // The program's side: the real code.

    /// [`Chunks::next_received`]; the frame stays the caller's until
    /// [`PlainXsk::recycle`].
    pub fn next_received(&mut self) -> Option<(u64, usize)> {
        self.chunks.next_received()
    }

    pub fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.chunks.frame(addr, len)
    }

    pub fn rx_loads(&self) -> u64 {
        self.chunks.rx_loads()
    }

    pub fn recycle(&mut self, addr: u64) {
        self.chunks.recycle(addr)
    }

    /// `frame` must fit a chunk, as the datalink checks before it calls.
    pub fn queue_for_send(&mut self, frame: &[u8]) -> bool {
        self.chunks.queue_for_send(frame)
    }

    pub fn queue_batch(&mut self, frames: &[&[u8]]) -> usize {
        self.chunks.queue_batch(frames)
    }

    pub fn tx_in_flight(&self) -> u32 {
        self.chunks.tx_in_flight()
    }

    pub fn needs_wakeup(&self) -> (bool, bool) {
        (
            self.chunks.tx_needs_wakeup(),
            self.chunks.fill_needs_wakeup(),
        )
    }

    /// TX chunks free for sending right now (never more than
    /// [`PlainXsk::TX_CHUNKS`]).
    pub fn free_tx(&self) -> usize {
        self.chunks.free_tx.len()
    }

    // A well-behaved kernel.

    /// Receives `frame` as the kernel does in copy mode: into the next
    /// chunk of the fill ring, described on the RX ring. False when the
    /// fill ring is empty or the RX ring full (the frame is dropped).
    pub fn deliver(&mut self, frame: &[u8]) -> bool {
        let fill_produced = self.word(RingName::Fill, RingWord::Producer);
        if self.fill_consumed == fill_produced.load(Ordering::Acquire) {
            return false;
        }
        let rx_consumed = self.word(RingName::Rx, RingWord::Consumer);
        if self
            .rx_produced
            .wrapping_sub(rx_consumed.load(Ordering::Acquire))
            >= SIZES.ring
        {
            return false;
        }
        // SAFETY: an 8-aligned entry of the fill ring.
        let addr = unsafe {
            self.entry_ptr(RingName::Fill, self.fill_consumed)
                .cast::<u64>()
                .read()
        };
        self.fill_consumed = self.fill_consumed.wrapping_add(1);
        self.word(RingName::Fill, RingWord::Consumer)
            .store(self.fill_consumed, Ordering::Release);
        let len = frame.len().min(FRAME_SIZE as usize);
        self.write_umem(addr as usize, &frame[..len]);
        self.write_entry(RingName::Rx, self.rx_produced, addr, len as u32);
        self.rx_produced = self.rx_produced.wrapping_add(1);
        self.word(RingName::Rx, RingWord::Producer)
            .store(self.rx_produced, Ordering::Release);
        true
    }

    /// Sends the next frame of the TX ring as the kernel does: its bytes,
    /// and its chunk back on the completion ring.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        let tx_produced = self.word(RingName::Tx, RingWord::Producer);
        if self.tx_consumed == tx_produced.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: an 8-aligned xdp_desc entry of the TX ring.
        let desc = unsafe {
            self.entry_ptr(RingName::Tx, self.tx_consumed)
                .cast::<libc::xdp_desc>()
                .read()
        };
        self.tx_consumed = self.tx_consumed.wrapping_add(1);
        self.word(RingName::Tx, RingWord::Consumer)
            .store(self.tx_consumed, Ordering::Release);
        let start = (desc.addr as usize).min(SIZES.umem_bytes());
        let end = start
            .saturating_add(desc.len as usize)
            .min(SIZES.umem_bytes());
        // SAFETY: start..end lies inside the UMEM.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.base.add(UMEM_AT + start).as_ptr(), end - start)
                .to_vec()
        };
        self.write_entry(RingName::Completion, self.completion_produced, desc.addr, 0);
        self.completion_produced = self.completion_produced.wrapping_add(1);
        self.word(RingName::Completion, RingWord::Producer)
            .store(self.completion_produced, Ordering::Release);
        Some(bytes)
    }

    // A hostile writer: any value anywhere in the shared memory.

    /// Writes a ring's producer, consumer or flags word.
    pub fn write_index(&mut self, name: RingName, word: RingWord, value: u32) {
        self.word(name, word).store(value, Ordering::Release);
    }

    /// Writes entry `index` (modulo the ring's size) of a ring: an
    /// address and, on the RX and TX rings, a length.
    pub fn write_entry(&mut self, name: RingName, index: u32, addr: u64, len: u32) {
        let at = self.entry_ptr(name, index);
        // SAFETY: an 8-aligned entry of the right type inside the ring.
        unsafe {
            match name {
                RingName::Rx | RingName::Tx => at.cast::<libc::xdp_desc>().write(libc::xdp_desc {
                    addr,
                    len,
                    options: 0,
                }),
                RingName::Fill | RingName::Completion => at.cast::<u64>().write(addr),
            }
        }
    }

    /// Writes bytes into the UMEM at `offset`, cut at its end.
    pub fn write_umem(&mut self, offset: usize, bytes: &[u8]) {
        let start = offset.min(SIZES.umem_bytes());
        let len = bytes.len().min(SIZES.umem_bytes() - start);
        // SAFETY: start..start + len lies inside the UMEM.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.add(UMEM_AT + start).as_ptr(),
                len,
            )
        };
    }
}
