//! A netmap region built in ordinary memory, and a fake kernel that plays
//! netmap's part on it: it takes the TX slots between its last position
//! and `head` at a TX sync (the "wire"), fills RX slots from `tail` at an
//! RX sync, moves `tail`, and refuses a `head` or `cur` the real kernel
//! would refuse. The ring code under test cannot tell it from the kernel.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::VecDeque;
use std::io;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::super::abi::{netmap_if, netmap_ring, netmap_slot, NR_RX, NR_TX};
use super::super::io::KernelSync;
use super::Region;

/// The region: a 128-byte gap, the `netmap_if` and its `ring_ofs`, the
/// rings (NIC TX, one host TX, NIC RX, one host RX) each 128-aligned, then
/// the buffers. Buffer indices start at 2, as netmap reserves 0 and 1.
pub struct FakeRegion {
    mem: NonNull<u8>,
    layout: Layout,
    tx_rings: u32,
    rx_rings: u32,
    num_slots: u32,
    ring_offsets: Vec<usize>,
}

const NIFP_OFFSET: usize = 128;
const FIRST_BUF_IDX: u32 = 2;

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl FakeRegion {
    pub fn new(tx_rings: u32, rx_rings: u32, num_slots: u32, buf_size: u32) -> FakeRegion {
        let total_rings = (tx_rings + 1 + rx_rings + 1) as usize;
        let ofs_end = NIFP_OFFSET + size_of::<netmap_if>() + total_rings * size_of::<isize>();
        let ring_size = round_up(
            size_of::<netmap_ring>() + num_slots as usize * size_of::<netmap_slot>(),
            128,
        );
        let rings_start = round_up(ofs_end, 128);
        let ring_offsets: Vec<usize> = (0..total_rings)
            .map(|i| rings_start + i * ring_size)
            .collect();
        let buffers_start = rings_start + total_rings * ring_size;
        let buffer_count = FIRST_BUF_IDX as usize + total_rings * num_slots as usize;
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
            ring_offsets,
        };
        region.write_interface();
        for (i, &offset) in region.ring_offsets.iter().enumerate() {
            let dir = if i < (tx_rings + 1) as usize {
                NR_TX
            } else {
                NR_RX
            };
            // SAFETY: each ring lies inside the allocation, 128-aligned.
            let ring = unsafe { &mut *region.at::<netmap_ring>(offset) };
            ring.buf_ofs = buffers_start as i64 - offset as i64;
            ring.num_slots = num_slots;
            ring.nr_buf_size = buf_size;
            ring.dir = dir;
            // A TX ring starts with every slot but one free; RX empty.
            ring.tail = if dir == NR_TX { num_slots - 1 } else { 0 };
            for s in 0..num_slots {
                let slot = region.slot_ptr(i, s);
                // SAFETY: slot s of ring i lies inside the allocation.
                unsafe { (*slot).buf_idx = FIRST_BUF_IDX + (i as u32) * num_slots + s };
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
            for (i, &offset) in self.ring_offsets.iter().enumerate() {
                self.ring_ofs_ptr(i)
                    .write(offset as isize - NIFP_OFFSET as isize);
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

    /// The program's view of this memory.
    pub fn region(&self) -> Region {
        // SAFETY: the allocation lives as long as self, which outlives the
        // tests' use of the region; only the test and FakeKernel write it.
        unsafe { Region::new(self.mem, self.layout.size()) }
    }

    pub fn nifp_offset(&self) -> u64 {
        NIFP_OFFSET as u64
    }

    /// Index into `ring_offsets` of NIC ring `ring` of direction `dir`.
    fn ring_number(&self, dir: u16, ring: u32) -> usize {
        if dir == NR_TX {
            ring as usize
        } else {
            (self.tx_rings + 1 + ring) as usize
        }
    }

    pub fn ring_offset(&self, dir: u16, ring: u32) -> usize {
        self.ring_offsets[self.ring_number(dir, ring)]
    }

    fn ring_ptr(&self, dir: u16, ring: u32) -> *mut netmap_ring {
        // SAFETY: a ring written by new().
        unsafe { self.at(self.ring_offset(dir, ring)) }
    }

    fn slot_ptr(&self, ring_number: usize, slot: u32) -> *mut netmap_slot {
        let offset = self.ring_offsets[ring_number] + size_of::<netmap_ring>() + slot as usize * 16;
        // SAFETY: slot < num_slots of a ring inside the allocation.
        unsafe { self.at(offset) }
    }

    pub fn slot(&self, dir: u16, ring: u32, slot: u32) -> netmap_slot {
        // SAFETY: an in-bounds slot; the test is single-threaded.
        unsafe { self.slot_ptr(self.ring_number(dir, ring), slot).read() }
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

    pub fn buffer_of(&self, dir: u16, ring: u32, slot: u32, len: usize) -> Vec<u8> {
        // SAFETY: len <= buf_size in every test.
        unsafe { std::slice::from_raw_parts(self.buffer_ptr(dir, ring, slot), len).to_vec() }
    }

    fn index(&self, dir: u16, ring: u32, field: fn(*mut netmap_ring) -> *mut u32) -> &AtomicU32 {
        // SAFETY: a 4-aligned field of a ring inside the allocation.
        unsafe { AtomicU32::from_ptr(field(self.ring_ptr(dir, ring))) }
    }

    pub fn corrupt_slot_buffer(&self, dir: u16, ring: u32, slot: u32, buf_idx: u32) {
        // SAFETY: an in-bounds slot.
        unsafe { (*self.slot_ptr(self.ring_number(dir, ring), slot)).buf_idx = buf_idx };
    }

    pub fn corrupt_tail(&self, dir: u16, ring: u32, tail: u32) {
        self.index(dir, ring, tail_of)
            .store(tail, Ordering::Release);
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
    }

    /// A frame arrives for RX ring `ring`; it shows up at the next RX sync.
    pub fn deliver(&mut self, ring: u32, frame: &[u8]) {
        self.deliver_with_flags(ring, frame, 0);
    }

    pub fn deliver_with_flags(&mut self, ring: u32, frame: &[u8], flags: u16) {
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
                let len = self.region.slot(NR_TX, ring, at).len as usize;
                self.wire.push(self.region.buffer_of(NR_TX, ring, at, len));
                at = self.next(at);
            }
            let n = self.region.num_slots;
            let k = &mut self.tx[ring as usize];
            k.hwcur = head;
            if self.complete {
                k.hwtail = (head + n - 1) % n;
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
                let slot = self
                    .region
                    .slot_ptr(self.region.ring_number(NR_RX, ring), hwtail);
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
