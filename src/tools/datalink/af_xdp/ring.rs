//! The producer/consumer logic of the four AF_XDP rings, over any memory.
//!
//! An AF_XDP ring is a power-of-two array of entries with two free-running
//! u32 indices, `producer` and `consumer`, shared between user space and
//! the kernel. Each side owns one index and only reads the other. The
//! indices wrap at 2^32, never at the ring size: `producer - consumer`
//! (wrapping) is the number of filled entries, and an index is turned into
//! a slot with `index & (size - 1)`.
//!
//! User space produces on the fill and TX rings and consumes the RX and
//! completion rings. The kernel documents the ordering protocol in
//! net/xdp/xsk_queue.h:
//!
//! ```text
//! producer:  if (LOAD ->consumer) { STORE $data; STORE.rel ->producer }
//! consumer:  LOAD.acq ->producer; LOAD $data; STORE.rel ->consumer
//! ```
//!
//! So: the index of the other side is loaded with Acquire (its entries, or
//! the slots it freed, are then visible to us), and ours is published with
//! Release (our entry writes, or our reads of the slots we free, happen
//! before the other side sees the new index). The kernel relies on a
//! control dependency for the producer's load of `consumer`; Rust has no
//! such notion, so that load is an Acquire too (as libxdp does).
//!
//! The real rings are mmap'ed from the socket (see `xsk.rs`); the tests at
//! the bottom play the kernel's side over plain memory.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where one ring lives: the two indices and `size` entries.
pub(super) struct RingMemory<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    entries: NonNull<T>,
    size: u32,
    /// The ring's flags word (XDP_RING_NEED_WAKEUP), where it was mapped.
    flags: Option<NonNull<AtomicU32>>,
}

impl<T> RingMemory<T> {
    /// # Safety
    /// `producer` and `consumer` must point to the ring's indices and
    /// `entries` to its `size` properly aligned `T`s, all valid for reads
    /// and writes for as long as the ring is used. `size` must be a power
    /// of two. Only the other side (the kernel) may access them meanwhile.
    pub(super) unsafe fn new(
        producer: NonNull<AtomicU32>,
        consumer: NonNull<AtomicU32>,
        entries: NonNull<T>,
        size: u32,
    ) -> Self {
        debug_assert!(size.is_power_of_two());
        RingMemory {
            producer,
            consumer,
            entries,
            size,
            flags: None,
        }
    }

    /// # Safety
    /// `flags` must point to the ring's flags word, valid for reads as
    /// long as the ring is used.
    pub(super) unsafe fn with_flags(mut self, flags: NonNull<AtomicU32>) -> Self {
        self.flags = Some(flags);
        self
    }

    /// True when the kernel asks to be woken (a system call) before it
    /// looks at this ring again: XDP_RING_NEED_WAKEUP, set only on a socket
    /// bound with XDP_USE_NEED_WAKEUP.
    fn needs_wakeup(&self) -> bool {
        self.flags.is_some_and(|flags| {
            // SAFETY: valid for the ring's lifetime (see `with_flags`).
            let flags = unsafe { flags.as_ref() };
            flags.load(Ordering::Acquire) & libc::XDP_RING_NEED_WAKEUP != 0
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: valid for the ring's lifetime (see `new`).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn slot(&self, index: u32) -> NonNull<T> {
        let slot = (index & (self.size - 1)) as usize;
        // SAFETY: slot < size, and `entries` holds `size` entries.
        unsafe { self.entries.add(slot) }
    }
}

/// The side of a ring where user space adds entries (fill, TX).
pub(super) struct Producer<T> {
    ring: RingMemory<T>,
    /// Our next index: entries before it are written, those from the
    /// published producer index on are not yet visible to the kernel.
    local_producer: u32,
    /// The kernel's consumer index as last loaded; refreshed only when the
    /// ring looks full, to keep the shared cache line quiet.
    cached_consumer: u32,
}

impl<T: Copy> Producer<T> {
    pub(super) fn new(ring: RingMemory<T>) -> Self {
        let local_producer = ring.producer().load(Ordering::Relaxed);
        let cached_consumer = ring.consumer().load(Ordering::Acquire);
        Producer {
            ring,
            local_producer,
            cached_consumer,
        }
    }

    /// How many entries can be pushed now.
    pub(super) fn free(&mut self) -> u32 {
        let used = self.local_producer.wrapping_sub(self.cached_consumer);
        if used < self.ring.size {
            return self.ring.size - used;
        }
        self.cached_consumer = self.ring.consumer().load(Ordering::Acquire);
        self.ring
            .size
            .saturating_sub(self.local_producer.wrapping_sub(self.cached_consumer))
    }

    /// Writes one entry; it stays invisible to the kernel until `submit`.
    /// Returns false, writing nothing, when the ring is full.
    pub(super) fn push(&mut self, entry: T) -> bool {
        if self.free() == 0 {
            return false;
        }
        // SAFETY: the slot is ours: the kernel consumed it (free() > 0)
        // and does not read past the published producer index.
        unsafe { self.ring.slot(self.local_producer).write(entry) };
        self.local_producer = self.local_producer.wrapping_add(1);
        true
    }

    /// Publishes every pushed entry to the kernel.
    pub(super) fn submit(&mut self) {
        self.ring
            .producer()
            .store(self.local_producer, Ordering::Release);
    }

    /// See [`RingMemory::needs_wakeup`].
    pub(super) fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    /// Entries published but not yet consumed by the kernel.
    pub(super) fn in_flight(&self) -> u32 {
        let consumer = self.ring.consumer().load(Ordering::Acquire);
        self.ring
            .producer()
            .load(Ordering::Relaxed)
            .wrapping_sub(consumer)
    }
}

/// The side of a ring where user space takes entries (RX, completion).
pub(super) struct Consumer<T> {
    ring: RingMemory<T>,
    /// Our next index: entries before it are read.
    local_consumer: u32,
    /// The kernel's producer index as last loaded.
    cached_producer: u32,
    /// Loads of the producer index that found new entries: every entry
    /// of one load had been produced by then (a receive time read after
    /// it is after each of their arrivals).
    loads: u64,
}

impl<T: Copy> Consumer<T> {
    pub(super) fn new(ring: RingMemory<T>) -> Self {
        let local_consumer = ring.consumer().load(Ordering::Relaxed);
        let cached_producer = ring.producer().load(Ordering::Acquire);
        Consumer {
            ring,
            local_consumer,
            cached_producer,
            loads: 0,
        }
    }

    /// Reads the next entry, if the kernel produced one. The slot stays
    /// reserved until `release`.
    pub(super) fn pop(&mut self) -> Option<T> {
        if self.local_consumer == self.cached_producer {
            self.cached_producer = self.ring.producer().load(Ordering::Acquire);
            if self.local_consumer == self.cached_producer {
                return None;
            }
            self.loads += 1;
        }
        // SAFETY: the kernel published this slot (Acquire above) and will
        // not rewrite it before we release it.
        let entry = unsafe { self.ring.slot(self.local_consumer).read() };
        self.local_consumer = self.local_consumer.wrapping_add(1);
        Some(entry)
    }

    /// How many loads of the producer index found new entries so far.
    pub(super) fn loads(&self) -> u64 {
        self.loads
    }

    /// Hands every popped slot back to the kernel.
    pub(super) fn release(&mut self) {
        self.ring
            .consumer()
            .store(self.local_consumer, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A ring in plain memory; the test plays the kernel through it.
    struct TestRing {
        producer: AtomicU32,
        consumer: AtomicU32,
        entries: Vec<Cell<u64>>,
    }

    impl TestRing {
        fn new(size: u32, start: u32) -> Self {
            TestRing {
                producer: AtomicU32::new(start),
                consumer: AtomicU32::new(start),
                entries: (0..size).map(|_| Cell::new(0)).collect(),
            }
        }

        fn memory(&self) -> RingMemory<u64> {
            let entries = NonNull::new(self.entries.as_ptr() as *mut u64).unwrap();
            // SAFETY: the test ring outlives every ring built on it; the
            // indices are atomics and the entries cells (Cell<u64> has the
            // layout of u64), so writes through shared references are fine.
            unsafe {
                RingMemory::new(
                    NonNull::from(&self.producer),
                    NonNull::from(&self.consumer),
                    entries,
                    self.entries.len() as u32,
                )
            }
        }

        fn mask(&self) -> u32 {
            self.entries.len() as u32 - 1
        }

        /// The kernel consuming one entry of a ring user space produces.
        fn kernel_take(&self) -> Option<u64> {
            let consumer = self.consumer.load(Ordering::Relaxed);
            let producer = self.producer.load(Ordering::Acquire);
            if consumer == producer {
                return None;
            }
            let entry = self.entries[(consumer & self.mask()) as usize].get();
            self.consumer
                .store(consumer.wrapping_add(1), Ordering::Release);
            Some(entry)
        }

        /// The kernel producing one entry of a ring user space consumes.
        fn kernel_put(&self, entry: u64) -> bool {
            let consumer = self.consumer.load(Ordering::Acquire);
            let producer = self.producer.load(Ordering::Relaxed);
            if producer.wrapping_sub(consumer) == self.entries.len() as u32 {
                return false;
            }
            self.entries[(producer & self.mask()) as usize].set(entry);
            self.producer
                .store(producer.wrapping_add(1), Ordering::Release);
            true
        }
    }

    #[test]
    fn the_need_wakeup_flag_is_read_from_the_ring() {
        let mem = TestRing::new(4, 0);
        let flags = AtomicU32::new(0);
        let plain = Producer::new(mem.memory());
        assert!(!plain.needs_wakeup(), "no flags word: never asks");
        // SAFETY: `flags` outlives the ring.
        let flagged = Producer::new(unsafe { mem.memory().with_flags(NonNull::from(&flags)) });
        assert!(!flagged.needs_wakeup());
        flags.store(libc::XDP_RING_NEED_WAKEUP, Ordering::Release);
        assert!(flagged.needs_wakeup());
    }

    #[test]
    fn producer_fills_to_capacity_then_refuses() {
        let mem = TestRing::new(4, 0);
        let mut fill = Producer::new(mem.memory());
        assert_eq!(fill.free(), 4);
        for addr in [10, 11, 12, 13] {
            assert!(fill.push(addr));
        }
        assert!(!fill.push(14), "a full ring takes nothing more");
        assert_eq!(mem.kernel_take(), None, "nothing is visible before submit");
        fill.submit();
        assert_eq!(fill.in_flight(), 4);
        assert_eq!(mem.kernel_take(), Some(10));
        assert_eq!(fill.free(), 1, "the slot the kernel consumed is free again");
        assert!(fill.push(14));
        assert!(!fill.push(15));
    }

    #[test]
    fn producer_wraps_its_indices_past_u32_max() {
        let mem = TestRing::new(4, u32::MAX - 1);
        let mut tx = Producer::new(mem.memory());
        let mut seen = Vec::new();
        for addr in 0..20u64 {
            assert!(tx.push(addr));
            tx.submit();
            seen.push(mem.kernel_take().unwrap());
        }
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(
            mem.producer.load(Ordering::Relaxed),
            (u32::MAX - 1).wrapping_add(20)
        );
        assert_eq!(tx.in_flight(), 0);
    }

    #[test]
    fn consumer_sees_nothing_on_an_empty_ring() {
        let mem = TestRing::new(8, 0);
        let mut rx = Consumer::new(mem.memory());
        assert_eq!(rx.pop(), None);
        rx.release();
        assert_eq!(mem.consumer.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn consumer_reads_in_order_and_frees_slots_on_release() {
        let mem = TestRing::new(2, 0);
        let mut completion = Consumer::new(mem.memory());
        assert!(mem.kernel_put(7));
        assert!(mem.kernel_put(8));
        assert!(!mem.kernel_put(9), "the kernel sees a full ring");
        assert_eq!(completion.pop(), Some(7));
        assert!(
            !mem.kernel_put(9),
            "a popped slot is not free before release"
        );
        completion.release();
        assert!(mem.kernel_put(9));
        assert_eq!(completion.pop(), Some(8));
        assert_eq!(completion.pop(), Some(9));
        assert_eq!(completion.pop(), None);
    }

    #[test]
    fn consumer_wraps_its_indices_past_u32_max() {
        let mem = TestRing::new(4, u32::MAX - 2);
        let mut rx = Consumer::new(mem.memory());
        for round in 0..10u64 {
            for i in 0..4 {
                assert!(mem.kernel_put(round * 4 + i));
            }
            for i in 0..4 {
                assert_eq!(rx.pop(), Some(round * 4 + i));
            }
            assert_eq!(rx.pop(), None);
            rx.release();
        }
        assert_eq!(
            mem.consumer.load(Ordering::Relaxed),
            (u32::MAX - 2).wrapping_add(40)
        );
    }
}
