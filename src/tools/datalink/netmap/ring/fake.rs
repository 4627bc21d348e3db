//! A netmap region built in ordinary memory, and a fake kernel that plays
//! netmap's part on it: it takes the TX slots between its last position
//! and `head` at a TX sync (the "wire"), fills RX slots from `tail` at an
//! RX sync, moves `tail`, and refuses a `head` or `cur` the real kernel
//! would refuse, and a TX slot whose buffer index or length points outside
//! its buffer (netmap resets such a ring; the fake never reads there). The
//! ring code under test cannot tell it from the kernel.

// Built for the fuzz target too, which uses the region and not the kernel.
#![cfg_attr(not(test), allow(dead_code))]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::VecDeque;
use std::io;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::super::abi::{netmap_if, netmap_ring, netmap_slot, NR_RX, NR_TX};
use super::super::io::KernelSync;
use super::Region;

// The region is laid out as upstream netmap's kernel lays it out (commit
// 89607e14; sys/dev/netmap/netmap_mem2.c and netmap_kern.h), not as the
// binding under test expects it, so that a binding that reads the kernel
// wrongly fails here too:
// - the three pools in a row: netmap_if objects, rings, buffers
//   (`buf_ofs = if_pool + ring_pool - ring offset`, netmap_mem2_rings_create);
// - rings are created in `for_rx_tx` order, RX rings first, and only those
//   the port binds: with NR_REG_ALL_NIC the host rings get no ring and a
//   `ring_ofs` of 0 (netmap_mem2_if_new), though `ni_host_*_rings` say 1;
// - `ring->dir = kring->tx`, the kernel's `enum txrx { NR_RX = 0, NR_TX = 1 }`
//   (netmap_kern.h), written here as literals so that the binding's own
//   constants are checked, not copied;
// - a fresh TX ring has `tail = num_slots - 1`, an RX ring `tail = 0`
//   (netmap_krings_create); buffers 0 and 1 are reserved.

/// `enum txrx` of netmap_kern.h: what the kernel writes in `ring->dir`.
const KERNEL_NR_RX: u16 = 0;
const KERNEL_NR_TX: u16 = 1;

/// The region: the netmap_if pool (one page, the port's netmap_if at 128
/// in it), the ring pool (NIC RX rings, then NIC TX rings, each in a
/// 128-aligned object), then the buffer pool.
pub struct FakeRegion {
    mem: NonNull<u8>,
    layout: Layout,
    tx_rings: u32,
    rx_rings: u32,
    num_slots: u32,
    buf_size: u32,
    /// Buffers in the pool, the two reserved ones included.
    buffers: u32,
    tx_offsets: Vec<usize>,
    rx_offsets: Vec<usize>,
}

const NIFP_OFFSET: usize = 128;
const IF_POOL_SIZE: usize = 4096;
const FIRST_BUF_IDX: u32 = 2;

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl FakeRegion {
    pub fn new(tx_rings: u32, rx_rings: u32, num_slots: u32, buf_size: u32) -> FakeRegion {
        let nic_rings = (tx_rings + rx_rings) as usize;
        let ring_size = round_up(
            size_of::<netmap_ring>() + num_slots as usize * size_of::<netmap_slot>(),
            128,
        );
        // for_rx_tx: RX first.
        let ring_at = |k: usize| IF_POOL_SIZE + k * ring_size;
        let rx_offsets: Vec<usize> = (0..rx_rings as usize).map(ring_at).collect();
        let tx_offsets: Vec<usize> = (0..tx_rings as usize)
            .map(|i| ring_at(rx_rings as usize + i))
            .collect();
        let buffers_start = round_up(ring_at(nic_rings), 4096);
        let buffer_count = FIRST_BUF_IDX as usize + nic_rings * num_slots as usize;
        let size = buffers_start + buffer_count * buf_size as usize;
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: layout has a non-zero size.
        let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("allocate the fake region");
        let region = FakeRegion {
            mem,
            layout,
            tx_rings,
            rx_rings,
            num_slots,
            buf_size,
            buffers: buffer_count as u32,
            tx_offsets,
            rx_offsets,
        };
        region.write_interface();
        let created = region
            .rx_offsets
            .iter()
            .map(|&o| (o, KERNEL_NR_RX))
            .chain(region.tx_offsets.iter().map(|&o| (o, KERNEL_NR_TX)));
        for (k, (offset, dir)) in created.enumerate() {
            // SAFETY: each ring lies inside the allocation, 128-aligned.
            let ring = unsafe { &mut *region.at::<netmap_ring>(offset) };
            ring.buf_ofs = buffers_start as i64 - offset as i64;
            ring.num_slots = num_slots;
            ring.nr_buf_size = buf_size;
            ring.ringid = (if dir == KERNEL_NR_RX {
                k
            } else {
                k - rx_rings as usize
            }) as u16;
            ring.dir = dir;
            ring.tail = if dir == KERNEL_NR_TX {
                num_slots - 1
            } else {
                0
            };
            for s in 0..num_slots {
                let slot = region.slot_at(offset, s);
                // SAFETY: slot s of this ring lies inside the allocation.
                unsafe { (*slot).buf_idx = FIRST_BUF_IDX + (k as u32) * num_slots + s };
            }
        }
        region
    }

    fn write_interface(&self) {
        // SAFETY: the netmap_if and its ring_ofs lie inside the allocation.
        unsafe {
            let nifp = &mut *self.at::<netmap_if>(NIFP_OFFSET);
            nifp.ni_name[..4].copy_from_slice(b"eth1");
            nifp.ni_version = 14;
            nifp.ni_tx_rings = self.tx_rings;
            nifp.ni_rx_rings = self.rx_rings;
            nifp.ni_host_tx_rings = 1;
            nifp.ni_host_rx_rings = 1;
            // ring_ofs: NIC TX, host TX (not bound: 0), NIC RX, host RX (0).
            let relative = |offset: &usize| *offset as isize - NIFP_OFFSET as isize;
            let tx = self.tx_offsets.iter().map(relative).chain([0]);
            let rx = self.rx_offsets.iter().map(relative).chain([0]);
            for (i, ofs) in tx.chain(rx).enumerate() {
                self.ring_ofs_ptr(i).write(ofs);
            }
        }
    }

    /// # Safety
    /// `offset` must lie inside the allocation, aligned for T.
    unsafe fn at<T>(&self, offset: usize) -> *mut T {
        // SAFETY: per the caller.
        unsafe { self.mem.as_ptr().add(offset).cast() }
    }

    fn ring_ofs_ptr(&self, index: usize) -> *mut isize {
        // SAFETY: within the ring_ofs array written by write_interface.
        unsafe {
            self.at::<u8>(NIFP_OFFSET + size_of::<netmap_if>() + index * 8)
                .cast()
        }
    }

    /// Buffers in the pool, the two reserved ones included: the region
    /// ends with the last of them.
    pub fn buffer_count(&self) -> u32 {
        self.buffers
    }

    /// The program's view of this memory.
    pub fn region(&self) -> Region {
        // SAFETY: the allocation lives as long as self, which outlives the
        // tests' use of the region; only the test and FakeKernel write it.
        unsafe { Region::new(self.mem, self.layout.size()) }
    }

    pub fn nifp_offset(&self) -> u64 {
        NIFP_OFFSET as u64
    }

    /// Where NIC ring `ring` of direction `dir` (the binding's NR_TX or
    /// NR_RX, as the tests name rings) is in the region.
    pub fn ring_offset(&self, dir: u16, ring: u32) -> usize {
        if dir == NR_TX {
            self.tx_offsets[ring as usize]
        } else {
            self.rx_offsets[ring as usize]
        }
    }

    fn ring_ptr(&self, dir: u16, ring: u32) -> *mut netmap_ring {
        // SAFETY: a ring written by new().
        unsafe { self.at(self.ring_offset(dir, ring)) }
    }

    fn slot_at(&self, ring_offset: usize, slot: u32) -> *mut netmap_slot {
        let offset = ring_offset + size_of::<netmap_ring>() + slot as usize * 16;
        // SAFETY: slot < num_slots of a ring inside the allocation.
        unsafe { self.at(offset) }
    }

    fn slot_ptr(&self, dir: u16, ring: u32, slot: u32) -> *mut netmap_slot {
        self.slot_at(self.ring_offset(dir, ring), slot)
    }

    pub fn slot(&self, dir: u16, ring: u32, slot: u32) -> netmap_slot {
        // SAFETY: an in-bounds slot; the test is single-threaded.
        unsafe { self.slot_ptr(dir, ring, slot).read() }
    }

    fn buffer_ptr(&self, dir: u16, ring: u32, slot: u32) -> *mut u8 {
        let ring_ptr = self.ring_ptr(dir, ring);
        // SAFETY: the fake's own, valid buffer indices.
        unsafe {
            let buf_idx = self.slot(dir, ring, slot).buf_idx as isize;
            let size = (*ring_ptr).nr_buf_size as isize;
            ring_ptr
                .cast::<u8>()
                .offset((*ring_ptr).buf_ofs as isize + buf_idx * size)
        }
    }

    /// The first `len` bytes of a slot's buffer; `None` where the kernel
    /// would not read them: a buffer index outside the pool (or a reserved
    /// one), or more than a buffer holds. Never reads outside the region.
    pub fn buffer_of(&self, dir: u16, ring: u32, slot: u32, len: usize) -> Option<Vec<u8>> {
        let buf_idx = self.slot(dir, ring, slot).buf_idx;
        if !(FIRST_BUF_IDX..self.buffers).contains(&buf_idx) || len > self.buf_size as usize {
            return None;
        }
        // SAFETY: a buffer of the pool, and len within it.
        Some(unsafe { std::slice::from_raw_parts(self.buffer_ptr(dir, ring, slot), len).to_vec() })
    }

    pub fn corrupt_slot_len(&self, dir: u16, ring: u32, slot: u32, len: u16) {
        // SAFETY: an in-bounds slot.
        unsafe { (*self.slot_ptr(dir, ring, slot)).len = len };
    }

    fn index(&self, dir: u16, ring: u32, field: fn(*mut netmap_ring) -> *mut u32) -> &AtomicU32 {
        // SAFETY: a 4-aligned field of a ring inside the allocation.
        unsafe { AtomicU32::from_ptr(field(self.ring_ptr(dir, ring))) }
    }

    pub fn corrupt_slot_buffer(&self, dir: u16, ring: u32, slot: u32, buf_idx: u32) {
        // SAFETY: an in-bounds slot.
        unsafe { (*self.slot_ptr(dir, ring, slot)).buf_idx = buf_idx };
    }

    pub fn corrupt_tail(&self, dir: u16, ring: u32, tail: u32) {
        self.index(dir, ring, tail_of)
            .store(tail, Ordering::Release);
    }

    /// Writes `bytes` at `offset`, cut at the region's end: anything a
    /// writer of the shared memory could put anywhere in it.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        let start = offset.min(self.layout.size());
        let len = bytes.len().min(self.layout.size() - start);
        // SAFETY: start..start + len lies inside the allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at::<u8>(start), len) };
    }

    pub fn corrupt_ring_ofs(&self, index: usize, value: isize) {
        // SAFETY: an in-bounds ring_ofs entry.
        unsafe { self.ring_ofs_ptr(index).write(value) };
    }
}

fn head_of(ring: *mut netmap_ring) -> *mut u32 {
    // SAFETY: only a field address is computed.
    unsafe { addr_of_mut!((*ring).head) }
}
fn cur_of(ring: *mut netmap_ring) -> *mut u32 {
    // SAFETY: only a field address is computed.
    unsafe { addr_of_mut!((*ring).cur) }
}
fn tail_of(ring: *mut netmap_ring) -> *mut u32 {
    // SAFETY: only a field address is computed.
    unsafe { addr_of_mut!((*ring).tail) }
}

impl Drop for FakeRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout.
        unsafe { dealloc(self.mem.as_ptr(), self.layout) };
    }
}

/// The kernel's side of each ring: where it last saw `head` (hwcur) and
/// where its own slots start (hwtail), as netmap's kring keeps them.
struct KRing {
    hwcur: u32,
    hwtail: u32,
}

pub struct FakeKernel<'r> {
    region: &'r FakeRegion,
    tx: Vec<KRing>,
    rx: Vec<KRing>,
    wire: Vec<Vec<u8>>,
    pending: Vec<VecDeque<(Vec<u8>, u16)>>,
    complete: bool,
    complete_per_sync: Option<u32>,
    /// Whether a TX sync leaves other bytes in the buffers it took, as a
    /// native veth (netmap pipes) may: it lends each sent buffer to the
    /// peer's RX slot and takes back whatever buffer that slot holds when
    /// the peer releases it, so a slot need not keep what was written.
    swap_buffers: bool,
    pub txsyncs: usize,
    pub rxsyncs: usize,
    pub polls: usize,
}

impl<'r> FakeKernel<'r> {
    pub fn new(region: &'r FakeRegion) -> FakeKernel<'r> {
        let n = region.num_slots;
        FakeKernel {
            region,
            tx: (0..region.tx_rings)
                .map(|_| KRing {
                    hwcur: 0,
                    hwtail: n - 1,
                })
                .collect(),
            rx: (0..region.rx_rings)
                .map(|_| KRing {
                    hwcur: 0,
                    hwtail: 0,
                })
                .collect(),
            wire: Vec::new(),
            pending: (0..region.rx_rings).map(|_| VecDeque::new()).collect(),
            complete: true,
            complete_per_sync: None,
            swap_buffers: false,
            txsyncs: 0,
            rxsyncs: 0,
            polls: 0,
        }
    }

    /// Frames that left through a TX ring, in order.
    pub fn wire(&self) -> &[Vec<u8>] {
        &self.wire
    }

    /// Whether a TX sync also reports the frames it took as completed
    /// (frees their slots); a NIC may do that lazily.
    pub fn complete_transmissions(&mut self, complete: bool) {
        self.complete = complete;
        self.complete_per_sync = None;
    }

    /// Each TX sync completes at most `frames` of those it holds, as a
    /// peer that reads slowly lets them go.
    pub fn complete_at_most(&mut self, frames: u32) {
        self.complete = true;
        self.complete_per_sync = Some(frames);
    }

    /// TX syncs leave other bytes in the buffers they took (a pipe's swap).
    pub fn swap_buffers(&mut self, swap: bool) {
        self.swap_buffers = swap;
    }

    /// A frame arrives for RX ring `ring`; it shows up at the next RX sync.
    pub fn deliver(&mut self, ring: u32, frame: &[u8]) {
        self.deliver_with_flags(ring, frame, 0);
    }

    pub fn deliver_with_flags(&mut self, ring: u32, frame: &[u8], flags: u16) {
        assert!(
            frame.len() <= self.region.buf_size as usize,
            "a {}-byte frame does not fit a {}-byte netmap buffer",
            frame.len(),
            self.region.buf_size
        );
        self.pending[ring as usize].push_back((frame.to_vec(), flags));
    }

    fn next(&self, i: u32) -> u32 {
        (i + 1) % self.region.num_slots
    }

    /// Slots from `from` forward to `to`.
    fn distance(&self, from: u32, to: u32) -> u32 {
        (to + self.region.num_slots - from) % self.region.num_slots
    }

    /// netmap's prologue check: the program may only move head and cur
    /// forward within the slots it owned, `[hwcur, hwtail]`.
    fn check_indices(&self, dir: u16, ring: u32, k: &KRing) -> io::Result<(u32, u32)> {
        let head = self
            .region
            .index(dir, ring, head_of)
            .load(Ordering::Acquire);
        let cur = self.region.index(dir, ring, cur_of).load(Ordering::Acquire);
        let owned = self.distance(k.hwcur, k.hwtail);
        let valid = head < self.region.num_slots
            && cur < self.region.num_slots
            && self.distance(k.hwcur, head) <= owned
            && self.distance(k.hwcur, cur) <= owned
            && self.distance(k.hwcur, head) <= self.distance(k.hwcur, cur);
        if valid {
            Ok((head, cur))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ring {ring}: head {head} cur {cur} outside [{}, {}]",
                    k.hwcur, k.hwtail
                ),
            ))
        }
    }

    pub fn txsync_now(&mut self) -> io::Result<()> {
        self.txsyncs += 1;
        for ring in 0..self.region.tx_rings {
            let k = &self.tx[ring as usize];
            let (head, _) = self.check_indices(NR_TX, ring, k)?;
            let mut at = k.hwcur;
            while at != head {
                let slot = self.region.slot(NR_TX, ring, at);
                // netmap resets a ring with a bad buffer index or length
                // rather than send from outside the buffer.
                let frame = self
                    .region
                    .buffer_of(NR_TX, ring, at, usize::from(slot.len))
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "ring {ring}: slot {at} has buffer {} and length {}",
                                slot.buf_idx, slot.len
                            ),
                        )
                    })?;
                if self.swap_buffers {
                    let buffer = self.region.buffer_ptr(NR_TX, ring, at);
                    // SAFETY: the kernel owns the slot now; its buffer is
                    // buf_size bytes of the region.
                    unsafe { std::ptr::write_bytes(buffer, 0xee, self.region.buf_size as usize) };
                }
                self.wire.push(frame);
                at = self.next(at);
            }
            let n = self.region.num_slots;
            let k = &mut self.tx[ring as usize];
            k.hwcur = head;
            if self.complete {
                let all = (head + n - 1) % n;
                k.hwtail = match self.complete_per_sync {
                    None => all,
                    Some(frames) => {
                        let held = (all + n - k.hwtail) % n;
                        (k.hwtail + frames.min(held)) % n
                    }
                };
            }
            let hwtail = k.hwtail;
            self.region
                .index(NR_TX, ring, tail_of)
                .store(hwtail, Ordering::Release);
        }
        Ok(())
    }

    pub fn rxsync_now(&mut self) -> io::Result<()> {
        self.rxsyncs += 1;
        for ring in 0..self.region.rx_rings {
            let (head, _) = self.check_indices(NR_RX, ring, &self.rx[ring as usize])?;
            self.rx[ring as usize].hwcur = head;
            loop {
                let hwtail = self.rx[ring as usize].hwtail;
                if self.next(hwtail) == head {
                    break;
                }
                let Some((frame, flags)) = self.pending[ring as usize].pop_front() else {
                    break;
                };
                let buffer = self.region.buffer_ptr(NR_RX, ring, hwtail);
                let slot = self.region.slot_ptr(NR_RX, ring, hwtail);
                // SAFETY: the kernel owns slot hwtail; frames fit buffers.
                unsafe {
                    std::ptr::copy_nonoverlapping(frame.as_ptr(), buffer, frame.len());
                    (*slot).len = frame.len() as u16;
                    (*slot).flags = flags;
                }
                self.rx[ring as usize].hwtail = self.next(hwtail);
            }
            let hwtail = self.rx[ring as usize].hwtail;
            self.region
                .index(NR_RX, ring, tail_of)
                .store(hwtail, Ordering::Release);
        }
        Ok(())
    }

    fn any_rx_ready(&self) -> bool {
        (0..self.region.rx_rings).any(|r| {
            let ring = self.region.ring_ptr(NR_RX, r);
            // SAFETY: a ring of the region; head/tail fields are in bounds.
            unsafe { (*ring).head != (*ring).tail }
        })
    }

    fn any_tx_free(&self) -> bool {
        (0..self.region.tx_rings).any(|r| {
            let ring = self.region.ring_ptr(NR_TX, r);
            // SAFETY: a ring of the region; head/tail fields are in bounds.
            unsafe { (*ring).head != (*ring).tail }
        })
    }
}

/// poll() never waits here: what the fake kernel has is there at once.
impl KernelSync for FakeKernel<'_> {
    fn txsync(&mut self) -> io::Result<()> {
        self.txsync_now()
    }

    fn rxsync(&mut self) -> io::Result<()> {
        self.rxsync_now()
    }

    fn poll_rx(&mut self, _timeout: Duration) -> io::Result<bool> {
        self.polls += 1;
        self.rxsync_now()?;
        Ok(self.any_rx_ready())
    }

    fn poll_tx(&mut self, _timeout: Duration) -> io::Result<bool> {
        self.polls += 1;
        self.txsync_now()?;
        Ok(self.any_tx_free())
    }
}
