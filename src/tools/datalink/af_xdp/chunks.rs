//! Which chunk of the UMEM is whose: the RX chunks lent to the kernel
//! through the fill ring and handed back filled on the RX ring, the TX
//! chunks queued on the TX ring and handed back sent on the completion
//! ring.
//!
//! The rings and the UMEM are memory the kernel writes, and a process in
//! the node that maps the same socket could write them too. So nothing
//! read from them is trusted: a descriptor's address and length must lie
//! inside an RX chunk before its bytes are read, a completed address must
//! be a TX chunk the kernel holds before it is written into again, and a
//! producer index that claims more entries than the ring has cannot make
//! a call loop longer than one ring's worth. The fuzz target `ring_af_xdp`
//! plays such a kernel ([`plain`]).

use std::ptr::NonNull;

use super::ring::{Consumer, Producer};
use super::xsk::{Sizes, FRAME_SIZE};

/// The UMEM's chunks and the four rings that pass them to and from the
/// kernel.
pub(super) struct Chunks {
    rx: Consumer<libc::xdp_desc>,
    tx: Producer<libc::xdp_desc>,
    fill: Producer<u64>,
    completion: Consumer<u64>,
    umem: NonNull<u8>,
    sizes: Sizes,
    /// TX chunks (by UMEM offset) free for sending.
    free_tx: Vec<u64>,
    /// Per TX chunk (index from the first TX chunk): free, or with the
    /// kernel. A completion for a chunk already free is not taken twice.
    tx_is_free: Vec<bool>,
    /// Chunks recycled onto the fill ring but not yet published.
    fill_pending: u32,
}

/// The most received chunks held back from the kernel before they are
/// published on the fill ring (a fraction of the smallest RX share, 192).
const FILL_BATCH: u32 = 32;

impl Chunks {
    /// Lends every RX chunk to the kernel (the fill ring) and keeps the
    /// TX chunks.
    ///
    /// # Safety
    /// `umem` must point to `sizes.umem_bytes()` bytes, valid for reads
    /// and writes as long as the value lives, that only the kernel (and
    /// whoever shares the socket) writes meanwhile; the rings likewise
    /// (see `RingMemory::new`).
    pub(super) unsafe fn new(
        rx: Consumer<libc::xdp_desc>,
        tx: Producer<libc::xdp_desc>,
        fill: Producer<u64>,
        completion: Consumer<u64>,
        umem: NonNull<u8>,
        sizes: Sizes,
    ) -> Chunks {
        let tx_chunks = (sizes.frames - sizes.rx_frames) as usize;
        let mut chunks = Chunks {
            rx,
            tx,
            fill,
            completion,
            umem,
            sizes,
            free_tx: (sizes.rx_frames..sizes.frames)
                .map(|i| u64::from(i * FRAME_SIZE))
                .collect(),
            tx_is_free: vec![true; tx_chunks],
            fill_pending: 0,
        };
        for i in 0..sizes.rx_frames {
            chunks.fill.push(u64::from(i * FRAME_SIZE));
        }
        chunks.fill.submit();
        chunks
    }

    fn umem_bytes(&self) -> usize {
        self.sizes.umem_bytes()
    }

    /// Where the RX chunks end (they come first in the UMEM).
    fn rx_bytes(&self) -> u64 {
        u64::from(self.sizes.rx_frames) * u64::from(FRAME_SIZE)
    }

    /// The next received frame, as (UMEM offset, length). The chunk is the
    /// caller's until it hands it back with `recycle`.
    pub(super) fn next_received(&mut self) -> Option<(u64, usize)> {
        // At most a ring's worth per call, whatever the producer index
        // claims: a ring never holds more.
        for _ in 0..self.sizes.ring {
            let Some(desc) = self.rx.pop() else {
                break;
            };
            self.rx.release();
            let len = desc.len as usize;
            if self.frame(desc.addr, len).is_some() {
                return Some((desc.addr, len));
            }
            // A descriptor outside the RX chunks would be a kernel bug
            // (or a writer that is not the kernel): give its chunk back
            // if it names one, rather than trust it.
            if desc.addr < self.rx_bytes() {
                self.recycle(desc.addr);
            }
        }
        // Caught up: hand the kernel the chunks held back.
        self.submit_fill();
        None
    }

    /// How many times the RX ring was found holding new frames: frames
    /// returned by `next_received` after the count moved had all arrived
    /// when it moved.
    pub(super) fn rx_loads(&self) -> u64 {
        self.rx.loads()
    }

    /// The bytes of a received frame, if the range lies inside one RX
    /// chunk.
    pub(super) fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        let chunk_end = (start / FRAME_SIZE as usize + 1) * FRAME_SIZE as usize;
        if addr >= self.rx_bytes() || end > self.umem_bytes() || end > chunk_end {
            return None;
        }
        // SAFETY: start..end is inside the UMEM (see `new`), in a chunk
        // the kernel handed us and will not write until it is recycled;
        // the slice borrows self, so it cannot outlive the memory.
        Some(unsafe { std::slice::from_raw_parts(self.umem.as_ptr().add(start), len) })
    }

    /// Gives a received chunk back to the kernel for new frames: published
    /// [`FILL_BATCH`] at a time, or when the RX ring is empty, so that a
    /// flood does not write the ring index the kernel reads on every frame.
    pub(super) fn recycle(&mut self, addr: u64) {
        let chunk = addr - addr % u64::from(FRAME_SIZE);
        // The fill ring holds every RX chunk, so it has room unless its
        // consumer index was written by someone else than the kernel;
        // then the chunk is lost to that ring, which is all it can do.
        if self.fill.push(chunk) {
            self.fill_pending += 1;
        }
        if self.fill_pending >= FILL_BATCH {
            self.submit_fill();
        }
    }

    fn submit_fill(&mut self) {
        if self.fill_pending > 0 {
            self.fill.submit();
            self.fill_pending = 0;
        }
    }

    /// Takes back the TX chunks the kernel finished sending: only chunks
    /// it held, each once, at most a ring's worth. A completed address
    /// becomes the place the next frame is written to, so one outside
    /// the TX chunks would be a write outside the UMEM.
    fn reap_completions(&mut self) {
        let mut reaped = false;
        for _ in 0..self.sizes.ring {
            let Some(addr) = self.completion.pop() else {
                break;
            };
            reaped = true;
            let chunk = addr / u64::from(FRAME_SIZE);
            let Some(index) = chunk
                .checked_sub(u64::from(self.sizes.rx_frames))
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            if let Some(free @ false) = self.tx_is_free.get_mut(index) {
                *free = true;
                self.free_tx.push(chunk * u64::from(FRAME_SIZE));
            }
        }
        if reaped {
            self.completion.release();
        }
    }

    /// A free TX chunk, now the kernel's to send from.
    fn take_tx_chunk(&mut self) -> Option<u64> {
        let addr = self.free_tx.pop()?;
        let index = (addr / u64::from(FRAME_SIZE) - u64::from(self.sizes.rx_frames)) as usize;
        self.tx_is_free[index] = false;
        Some(addr)
    }

    /// Copies `frame` into the TX chunk at `addr` and queues it (not yet
    /// submitted). False when the TX ring refused it (full: only when
    /// someone else than the kernel wrote its consumer index); then the
    /// chunk stays free.
    fn queue_at(&mut self, addr: u64, frame: &[u8]) -> bool {
        // SAFETY: addr is the start of a TX chunk inside the UMEM
        // (take_tx_chunk hands out only those) that the kernel does not
        // own; at most one chunk is copied.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.as_ptr().add(addr as usize),
                frame.len().min(FRAME_SIZE as usize),
            )
        };
        let desc = libc::xdp_desc {
            addr,
            len: frame.len() as u32,
            options: 0,
        };
        if self.tx.push(desc) {
            return true;
        }
        let index = (addr / u64::from(FRAME_SIZE) - u64::from(self.sizes.rx_frames)) as usize;
        self.tx_is_free[index] = true;
        self.free_tx.push(addr);
        false
    }

    /// Copies `frame` into a free TX chunk and queues it. Returns false
    /// when no chunk is free (the kernel still holds all of them). The
    /// caller checked that the frame fits a chunk ([`super::xsk::MAX_FRAME`]).
    pub(super) fn queue_for_send(&mut self, frame: &[u8]) -> bool {
        self.queue_batch(&[frame]) == 1
    }

    /// Copies as many of `frames` as there are free TX chunks into them and
    /// queues them with one submit; returns how many. The caller checked
    /// every length.
    pub(super) fn queue_batch(&mut self, frames: &[&[u8]]) -> usize {
        self.reap_completions();
        let mut queued = 0;
        for frame in frames {
            let Some(addr) = self.take_tx_chunk() else {
                break;
            };
            if !self.queue_at(addr, frame) {
                break;
            }
            queued += 1;
        }
        if queued > 0 {
            self.tx.submit();
        }
        queued
    }

    /// Frames queued on the TX ring that the kernel has not taken yet.
    pub(super) fn tx_in_flight(&self) -> u32 {
        self.tx.in_flight()
    }

    /// The TX ring's XDP_RING_NEED_WAKEUP.
    pub(super) fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    /// The fill ring's XDP_RING_NEED_WAKEUP.
    pub(super) fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod plain;

#[cfg(test)]
mod tests {
    use super::plain::{PlainXsk, RingName, RingWord};

    #[test]
    fn frames_go_round_through_a_well_behaved_kernel() {
        let mut xsk = PlainXsk::new();
        for round in 0..20u8 {
            assert!(xsk.deliver(&[round; 60]), "round {round}");
            let (addr, len) = xsk.next_received().expect("a frame");
            assert_eq!(xsk.frame(addr, len), Some(&[round; 60][..]));
            xsk.recycle(addr);
            // Caught up: the recycled chunk goes back on the fill ring.
            assert_eq!(xsk.next_received(), None);
            assert!(xsk.queue_for_send(&[round; 70]));
            assert_eq!(xsk.transmit(), Some(vec![round; 70]));
        }
    }

    /// The RX ring's loads that find frames are af_xdp's syncs (lab-sink
    /// reads its clock once a load): frames the kernel wrote before a load
    /// come with it, frames written after the next.
    #[test]
    fn a_load_of_the_rx_ring_counts_once_for_the_frames_it_found() {
        let mut xsk = PlainXsk::new();
        assert_eq!(xsk.next_received(), None);
        assert_eq!(xsk.rx_loads(), 0, "an empty ring is no load");
        for byte in 0..3u8 {
            assert!(xsk.deliver(&[byte; 60]));
        }
        let (first, _) = xsk.next_received().unwrap();
        assert_eq!(xsk.rx_loads(), 1);
        // Written while the first three are read: the next load's.
        assert!(xsk.deliver(&[3; 60]));
        let (second, _) = xsk.next_received().unwrap();
        let (third, _) = xsk.next_received().unwrap();
        assert_eq!(xsk.rx_loads(), 1, "the three came with one load");
        let (fourth, len) = xsk.next_received().unwrap();
        assert_eq!(xsk.rx_loads(), 2);
        assert_eq!(xsk.frame(fourth, len), Some(&[3; 60][..]));
        for addr in [first, second, third, fourth] {
            xsk.recycle(addr);
        }
        assert_eq!(xsk.next_received(), None);
        assert_eq!(xsk.rx_loads(), 2);
    }

    #[test]
    fn a_batch_takes_the_free_tx_chunks_and_the_wakeup_flags_are_read() {
        let mut xsk = PlainXsk::new();
        let frames: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
        assert_eq!(xsk.queue_batch(&frames), PlainXsk::TX_CHUNKS);
        assert_eq!(xsk.tx_in_flight(), PlainXsk::TX_CHUNKS as u32);
        assert_eq!(
            xsk.queue_batch(&frames),
            0,
            "every TX chunk is the kernel's"
        );
        assert_eq!(xsk.transmit(), Some(b"a".to_vec()));
        assert_eq!(xsk.tx_in_flight(), PlainXsk::TX_CHUNKS as u32 - 1);
        assert_eq!(xsk.queue_batch(&frames[4..]), 1);
        assert_eq!(xsk.needs_wakeup(), (false, false));
        xsk.write_index(RingName::Tx, RingWord::Flags, libc::XDP_RING_NEED_WAKEUP);
        assert_eq!(xsk.needs_wakeup(), (true, false));
    }

    /// Found by reading for the fuzz target: a completed address was taken
    /// as a free TX chunk unchecked, and the next frame was copied there,
    /// outside the UMEM; a completion producer index far ahead made one
    /// call take four billion entries into the free list.
    #[test]
    fn completions_outside_the_tx_chunks_or_twice_are_not_taken() {
        let mut xsk = PlainXsk::new();
        assert!(xsk.queue_for_send(b"first"));
        assert_eq!(xsk.free_tx(), PlainXsk::TX_CHUNKS - 1);
        // A completion far outside the UMEM, one inside an RX chunk, and
        // a TX chunk that is free already (the first; frames go out from
        // the last).
        let beyond = (PlainXsk::UMEM_BYTES * 1000) as u64;
        xsk.write_entry(RingName::Completion, 0, beyond, 0);
        xsk.write_entry(RingName::Completion, 1, 0, 0);
        let free_chunk = (PlainXsk::UMEM_BYTES / 2) as u64;
        xsk.write_entry(RingName::Completion, 2, free_chunk, 0);
        xsk.write_index(RingName::Completion, RingWord::Producer, 3);
        assert!(xsk.queue_for_send(b"second"));
        assert_eq!(xsk.free_tx(), PlainXsk::TX_CHUNKS - 2);

        // A producer index four billion entries ahead: one call takes at
        // most a ring's worth, and never more chunks than there are.
        xsk.write_index(RingName::Completion, RingWord::Producer, u32::MAX);
        for _ in 0..4 {
            xsk.queue_for_send(b"more");
            assert!(xsk.free_tx() <= PlainXsk::TX_CHUNKS);
        }
    }

    #[test]
    fn received_descriptors_outside_the_rx_chunks_are_skipped() {
        let mut xsk = PlainXsk::new();
        // Past the UMEM, across a chunk's end, inside a TX chunk.
        let tx_chunk = (PlainXsk::UMEM_BYTES - PlainXsk::FRAME_SIZE) as u64;
        let descs = [
            (u64::MAX - 2, 60),
            (PlainXsk::FRAME_SIZE as u64 - 10, 60),
            (tx_chunk, 60),
        ];
        for (i, (addr, len)) in descs.into_iter().enumerate() {
            xsk.write_entry(RingName::Rx, i as u32, addr, len);
        }
        xsk.write_index(RingName::Rx, RingWord::Producer, descs.len() as u32);
        assert_eq!(xsk.next_received(), None);
        // A producer index claiming four billion frames: one call returns.
        xsk.write_index(RingName::Rx, RingWord::Producer, u32::MAX);
        let _ = xsk.next_received();
    }
}
