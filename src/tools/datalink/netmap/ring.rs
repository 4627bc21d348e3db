//! Rings in memory laid out as netmap lays it out.
//!
//! The kernel shares one region with the program: a `netmap_if` per port
//! whose `ring_ofs` locate the rings, each ring a header followed by its
//! slots, and the packet buffers at `ring + buf_ofs + buf_idx * buf_size`.
//! This module finds those pieces in any such region (the real mmap, or a
//! test's own allocation) and bounds-checks every offset and index the
//! kernel gives, so that a wrong value becomes an error, never a stray
//! access. Once a [`Region`] is vouched for, everything here is safe code.
//!
//! Ownership, as netmap defines it: slots `[head, tail)` belong to the
//! program (free slots to fill on TX, received frames on RX), the others to
//! the kernel, which only touches the rings during this program's netmap
//! system calls (ioctl, poll).

use std::ptr::{self, addr_of, addr_of_mut, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use super::abi::{netmap_if, netmap_ring, netmap_slot, NR_RX, NR_TX, NS_MOREFRAG};

/// A value in the shared region that netmap never produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("{what} at offset {offset} does not fit in the {len}-byte netmap region")]
    OutOfRegion {
        what: &'static str,
        offset: i128,
        len: usize,
    },
    #[error("ring at offset {offset} has {num_slots} slots of {buf_size} bytes")]
    BadGeometry {
        offset: usize,
        num_slots: u32,
        buf_size: u32,
    },
    #[error("ring at offset {offset} is a {found} ring where a {expected} ring was expected")]
    WrongDirection {
        offset: usize,
        expected: &'static str,
        found: u16,
    },
    #[error("the ring's {what} is {value}, beyond its {num_slots} slots")]
    IndexOutOfRing {
        what: &'static str,
        value: u32,
        num_slots: u32,
    },
    #[error("slot {slot} points at buffer {buf_idx}, outside the netmap region")]
    BufferOutOfRegion { slot: u32, buf_idx: u32 },
    #[error("slot {slot} holds {len} bytes, more than its {buf_size}-byte buffer")]
    SlotTooLong { slot: u32, len: u16, buf_size: u32 },
    #[error("a {len}-byte frame does not fit in a {buf_size}-byte netmap buffer")]
    FrameTooLarge { len: usize, buf_size: u32 },
}

/// The shared memory of one netmap port.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
}

impl Region {
    /// # Safety
    ///
    /// `base .. base + len` must stay mapped, readable and writable for as
    /// long as this region and every [`Ring`] found through it are used,
    /// and be written by no one else than this program and, for the slots
    /// it owns, the netmap kernel during this program's netmap system
    /// calls. `base` must be aligned to 8 bytes (an mmap is page-aligned).
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Region {
        Region { base, len }
    }

    /// The mapping's size in bytes.
    pub fn size(&self) -> usize {
        self.len
    }

    /// The address of `size` bytes at `offset`, if they lie inside the
    /// region and `offset` is aligned to `align`.
    fn span(
        &self,
        what: &'static str,
        offset: i128,
        size: usize,
        align: usize,
    ) -> Result<usize, RingError> {
        let error = RingError::OutOfRegion {
            what,
            offset,
            len: self.len,
        };
        let start = usize::try_from(offset).map_err(|_| error.clone())?;
        let end = start.checked_add(size).ok_or_else(|| error.clone())?;
        if end > self.len || start % align != 0 {
            return Err(error);
        }
        Ok(start)
    }

    /// # Safety
    /// `offset` must have been checked by [`Region::span`].
    unsafe fn ptr_at<T>(&self, offset: usize) -> *mut T {
        // SAFETY: per the caller, offset lies inside the region.
        unsafe { self.base.as_ptr().add(offset).cast() }
    }

    /// The port whose `netmap_if` is at `offset` (`nr_offset` of the
    /// registration), with its NIC rings located and checked. Host rings
    /// are skipped: labctl binds NIC rings only.
    pub fn interface(&self, offset: u64) -> Result<Interface, RingError> {
        let offset = i128::from(offset);
        let nifp_at = self.span(
            "netmap_if",
            offset,
            size_of::<netmap_if>(),
            align_of::<netmap_if>(),
        )?;
        // SAFETY: span checked that a whole netmap_if lies there, aligned.
        let nifp: *const netmap_if = unsafe { self.ptr_at(nifp_at) };
        // SAFETY: nifp is in bounds and aligned; the kernel wrote these
        // fields at registration and never changes them afterwards.
        let (tx, rx, host_tx, host_rx) = unsafe {
            (
                ptr::read(addr_of!((*nifp).ni_tx_rings)),
                ptr::read(addr_of!((*nifp).ni_rx_rings)),
                ptr::read(addr_of!((*nifp).ni_host_tx_rings)),
                ptr::read(addr_of!((*nifp).ni_host_rx_rings)),
            )
        };
        let ring_count = [tx, host_tx, rx, host_rx]
            .iter()
            .try_fold(0usize, |sum, n| sum.checked_add(*n as usize));
        let ofs_bytes = ring_count.and_then(|n| n.checked_mul(size_of::<isize>()));
        let ofs_size = ofs_bytes.and_then(|b| b.checked_add(size_of::<netmap_if>()));
        let ofs_size = ofs_size.ok_or(RingError::OutOfRegion {
            what: "ring_ofs",
            offset,
            len: self.len,
        })?;
        self.span("ring_ofs", offset, ofs_size, align_of::<netmap_if>())?;
        // ring_ofs: NIC TX, host TX, NIC RX, host RX; each relative to
        // the netmap_if. Indices are below ring_count, which fits.
        let ring_at = |index: usize| -> Result<Ring, RingError> {
            // SAFETY: span checked that all ring_ofs entries are in bounds.
            let ofs = unsafe { ptr::read(addr_of!((*nifp).ring_ofs).cast::<isize>().add(index)) };
            Ring::locate(self, offset + ofs as i128)
        };
        let (tx, rx, first_rx) = (tx as usize, rx as usize, tx as usize + host_tx as usize);
        let tx_rings = (0..tx).map(&ring_at).collect::<Result<Vec<_>, _>>()?;
        let rx_rings = (first_rx..first_rx + rx)
            .map(ring_at)
            .collect::<Result<Vec<_>, _>>()?;
        for ring in &tx_rings {
            ring.expect_direction(NR_TX)?;
        }
        for ring in &rx_rings {
            ring.expect_direction(NR_RX)?;
        }
        Ok(Interface {
            tx: tx_rings,
            rx: rx_rings,
        })
    }
}

/// One port's NIC rings.
#[derive(Debug)]
pub struct Interface {
    pub tx: Vec<Ring>,
    pub rx: Vec<Ring>,
}

/// One received slot: its bytes and flags.
#[derive(Debug, Clone, Copy)]
pub struct RxSlot<'a> {
    pub data: &'a [u8],
    pub flags: u16,
}

/// One TX or RX ring, located and checked.
///
/// `head`, `cur` and `tail` are shared with the kernel. They are accessed
/// as atomics: the kernel reads and writes them inside this thread's
/// syscalls, which already order everything, but the compiler cannot see
/// those writes (they come through the mapping, not through a Rust
/// reference), so a plain load could be cached across a syscall. Loading
/// `tail` with Acquire and storing `head`/`cur` with Release also keeps
/// the buffer copies on the right side of the index updates, and stays
/// correct should the other side ever run on another thread (netmap's
/// sync-kloop, or a test's fake kernel). On x86_64 these compile to plain
/// moves.
#[derive(Debug)]
pub struct Ring {
    header: NonNull<netmap_ring>,
    slots: NonNull<netmap_slot>,
    /// Buffer 0, and how many whole buffers of `buf_size` the region
    /// holds from it (counted once: a slot's check is then a compare, not
    /// a multiplication checked for overflow).
    buffers: NonNull<u8>,
    buffer_count: usize,
    offset: usize,
    num_slots: u32,
    buf_size: u32,
    dir: u16,
}

impl Ring {
    fn locate(region: &Region, offset: i128) -> Result<Ring, RingError> {
        let at = region.span("netmap_ring", offset, size_of::<netmap_ring>(), 8)?;
        // SAFETY: span checked that a whole ring header lies there, aligned
        // enough for every field.
        let header: *mut netmap_ring = unsafe { region.ptr_at(at) };
        // SAFETY: in bounds; these fields are constant after registration.
        let (num_slots, buf_size, buf_ofs, dir) = unsafe {
            (
                ptr::read(addr_of!((*header).num_slots)),
                ptr::read(addr_of!((*header).nr_buf_size)),
                ptr::read(addr_of!((*header).buf_ofs)),
                ptr::read(addr_of!((*header).dir)),
            )
        };
        // netmap rings have at least 2 slots (one is always kept empty).
        if num_slots < 2 || buf_size == 0 {
            return Err(RingError::BadGeometry {
                offset: at,
                num_slots,
                buf_size,
            });
        }
        let slots_size = (num_slots as usize).checked_mul(size_of::<netmap_slot>());
        let ring_size = slots_size.and_then(|s| s.checked_add(size_of::<netmap_ring>()));
        let ring_size = ring_size.ok_or(RingError::BadGeometry {
            offset: at,
            num_slots,
            buf_size,
        })?;
        region.span("netmap_ring slots", offset, ring_size, 8)?;
        let buffers_at = region.span("buffers", offset + i128::from(buf_ofs), 0, 1)?;
        // SAFETY: all three offsets were checked by span just above.
        let (slots, buffers) = unsafe {
            (
                region.ptr_at::<netmap_slot>(at + size_of::<netmap_ring>()),
                region.ptr_at::<u8>(buffers_at),
            )
        };
        // SAFETY (for the three NonNull): pointers into a region whose base
        // is non-null, at offsets that do not overflow it.
        unsafe {
            Ok(Ring {
                header: NonNull::new_unchecked(header),
                slots: NonNull::new_unchecked(slots),
                buffers: NonNull::new_unchecked(buffers),
                buffer_count: (region.size() - buffers_at) / buf_size as usize,
                offset: at,
                num_slots,
                buf_size,
                dir,
            })
        }
    }

    fn expect_direction(&self, expected: u16) -> Result<(), RingError> {
        if self.dir == expected {
            return Ok(());
        }
        Err(RingError::WrongDirection {
            offset: self.offset,
            expected: if expected == NR_TX { "TX" } else { "RX" },
            found: self.dir,
        })
    }

    pub fn num_slots(&self) -> u32 {
        self.num_slots
    }

    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// The slot after `i`, wrapping at the end of the ring.
    pub fn next(&self, i: u32) -> u32 {
        self.forward(i, 1)
    }

    /// The slot `n` after `i`, wrapping (computed wide: num_slots comes
    /// from the kernel and may be anything up to u32::MAX). What callers
    /// pass (an index and a count of owned slots) wraps with a compare and
    /// a subtraction: a division is a helper call where the CPU is
    /// emulated, and this runs a frame. Anything else takes the modulo.
    fn forward(&self, i: u32, n: u32) -> u32 {
        let at = u64::from(i) + u64::from(n);
        let slots = u64::from(self.num_slots);
        // Less than num_slots in each case, a u32.
        (if at < slots {
            at
        } else if at < 2 * slots {
            at - slots
        } else {
            at % slots
        }) as u32
    }

    fn index(&self, field: *mut u32) -> &AtomicU32 {
        // SAFETY: field points into the ring header, which the Region's
        // contract keeps alive as long as self; u32 and AtomicU32 have the
        // same size and the field is 4-aligned (the header is 8-aligned).
        unsafe { AtomicU32::from_ptr(field) }
    }

    fn checked(&self, what: &'static str, value: u32) -> Result<u32, RingError> {
        if value < self.num_slots {
            Ok(value)
        } else {
            Err(RingError::IndexOutOfRing {
                what,
                value,
                num_slots: self.num_slots,
            })
        }
    }

    pub fn head(&self) -> Result<u32, RingError> {
        // SAFETY: computing a field address of the checked header.
        let field = unsafe { addr_of_mut!((*self.header.as_ptr()).head) };
        self.checked("head", self.index(field).load(Ordering::Acquire))
    }

    #[cfg(test)]
    pub fn cur(&self) -> Result<u32, RingError> {
        // SAFETY: computing a field address of the checked header.
        let field = unsafe { addr_of_mut!((*self.header.as_ptr()).cur) };
        self.checked("cur", self.index(field).load(Ordering::Acquire))
    }

    pub fn tail(&self) -> Result<u32, RingError> {
        // SAFETY: computing a field address of the checked header.
        let field = unsafe { addr_of_mut!((*self.header.as_ptr()).tail) };
        self.checked("tail", self.index(field).load(Ordering::Acquire))
    }

    /// Hands every slot before `new_head` back to the kernel (filled TX
    /// slots to send, consumed RX slots to refill), and moves the wake-up
    /// point with it. The kernel acts on it at the next sync.
    fn advance_to(&mut self, new_head: u32) {
        // SAFETY: computing field addresses of the checked header.
        let (cur, head) = unsafe {
            let header = self.header.as_ptr();
            (addr_of_mut!((*header).cur), addr_of_mut!((*header).head))
        };
        self.index(cur).store(new_head, Ordering::Release);
        self.index(head).store(new_head, Ordering::Release);
    }

    /// The slots the program owns, `[head, tail)`: free slots on a TX
    /// ring, received frames on an RX ring.
    pub fn owned(&self) -> Result<u32, RingError> {
        let (head, tail) = (self.head()?, self.tail()?);
        // head and tail are both < num_slots, so this never wraps twice.
        Ok(self.forward(tail, self.num_slots - head))
    }

    pub fn is_empty(&self) -> Result<bool, RingError> {
        Ok(self.owned()? == 0)
    }

    /// TX: every frame handed to the kernel has left (the kernel keeps one
    /// slot, so all are free when `next(tail) == head`).
    pub fn transmissions_complete(&self) -> Result<bool, RingError> {
        Ok(self.next(self.tail()?) == self.head()?)
    }

    fn slot(&self, index: u32) -> *mut netmap_slot {
        debug_assert!(index < self.num_slots);
        // SAFETY: index < num_slots (every caller checks), and locate
        // checked that num_slots slots follow the header.
        unsafe { self.slots.as_ptr().add(index as usize) }
    }

    /// The buffer of slot `index` (which the program owns), checked
    /// against the region.
    fn buffer(&self, index: u32) -> Result<(*mut u8, *mut netmap_slot), RingError> {
        let slot = self.slot(index);
        // SAFETY: slot is in bounds; the program owns it, so the kernel
        // does not write it now.
        let buf_idx = unsafe { ptr::read_volatile(addr_of!((*slot).buf_idx)) };
        if (buf_idx as usize) < self.buffer_count {
            // SAFETY: buffer buf_idx, all buf_size bytes of it, lies inside
            // the region (buffer_count whole buffers do).
            let buffer = unsafe {
                self.buffers
                    .as_ptr()
                    .add(buf_idx as usize * self.buf_size as usize)
            };
            Ok((buffer, slot))
        } else {
            Err(RingError::BufferOutOfRegion {
                slot: index,
                buf_idx,
            })
        }
    }

    /// TX: copies `frame` into the slot at `head` and hands it to the
    /// kernel (head and cur advance). `Ok(false)` when no slot is free.
    /// The frame only leaves at the next TX sync.
    pub fn push(&mut self, frame: &[u8]) -> Result<bool, RingError> {
        let too_large = RingError::FrameTooLarge {
            len: frame.len(),
            buf_size: self.buf_size,
        };
        let len = u16::try_from(frame.len()).map_err(|_| too_large.clone())?;
        if frame.len() > self.buf_size as usize {
            return Err(too_large);
        }
        if self.is_empty()? {
            return Ok(false);
        }
        let head = self.head()?;
        let (buffer, slot) = self.buffer(head)?;
        // SAFETY: buffer has buf_size >= frame.len() bytes inside the
        // region, owned by the program (head < tail); slot likewise.
        unsafe {
            ptr::copy_nonoverlapping(frame.as_ptr(), buffer, frame.len());
            ptr::write_volatile(addr_of_mut!((*slot).len), len);
            ptr::write_volatile(addr_of_mut!((*slot).flags), 0);
        }
        self.advance_to(self.next(head));
        Ok(true)
    }

    /// TX: fills up to `max` free slots from `head` in place, each with
    /// `len` bytes that `fill(nth, buffer)` writes straight into the
    /// slot's buffer (no copy in between), and hands them all to the
    /// kernel with one move of `head` and `cur`. Returns how many were
    /// filled (0 when no slot is free). They only leave at the next TX
    /// sync. A buffer holds whatever was in it before (a native pipe swaps
    /// buffers with its peer), so `fill` writes all `len` bytes.
    pub fn fill(
        &mut self,
        max: u32,
        len: usize,
        mut fill: impl FnMut(u32, &mut [u8]),
    ) -> Result<u32, RingError> {
        let too_large = RingError::FrameTooLarge {
            len,
            buf_size: self.buf_size,
        };
        let slot_len = u16::try_from(len).map_err(|_| too_large.clone())?;
        if len > self.buf_size as usize {
            return Err(too_large);
        }
        let count = self.owned()?.min(max);
        let head = self.head()?;
        let mut index = head;
        for nth in 0..count {
            let (buffer, slot) = self.buffer(index)?;
            // SAFETY: buffer has buf_size >= len bytes inside the region,
            // owned by the program (within [head, tail)), and nothing else
            // refers to it while `fill` runs; slot likewise.
            unsafe {
                fill(nth, std::slice::from_raw_parts_mut(buffer, len));
                ptr::write_volatile(addr_of_mut!((*slot).len), slot_len);
                ptr::write_volatile(addr_of_mut!((*slot).flags), 0);
            }
            index = self.next(index);
        }
        if count > 0 {
            self.advance_to(index);
        }
        Ok(count)
    }

    /// RX: the `nth` received slot after `head`, if there are that many.
    /// Its bytes stay valid until [`Ring::release`] gives it back.
    pub fn received(&self, nth: u32) -> Result<Option<RxSlot<'_>>, RingError> {
        if nth >= self.owned()? {
            return Ok(None);
        }
        let head = self.head()?;
        let index = self.forward(head, nth);
        let (buffer, slot) = self.buffer(index)?;
        // SAFETY: the slot is owned by the program (within [head, tail)).
        let (len, flags) = unsafe {
            (
                ptr::read_volatile(addr_of!((*slot).len)),
                ptr::read_volatile(addr_of!((*slot).flags)),
            )
        };
        if u32::from(len) > self.buf_size {
            return Err(RingError::SlotTooLong {
                slot: index,
                len,
                buf_size: self.buf_size,
            });
        }
        // SAFETY: len <= buf_size bytes of a buffer inside the region; the
        // kernel does not write slots the program owns, and the borrow of
        // self keeps release() (the only way to give it back) away.
        let data = unsafe { std::slice::from_raw_parts(buffer, len as usize) };
        Ok(Some(RxSlot { data, flags }))
    }

    /// RX: hands up to `max` received single-slot frames from `head` to
    /// `each`, in order, then gives all their slots back with one move of
    /// `head` and `cur`; returns how many. Stops before a frame over
    /// several slots (NS_MOREFRAG), which the caller joins.
    ///
    /// Generic in `each`, so that the caller's closure is inlined into the
    /// loop: a call and return a frame are dear where the CPU is emulated
    /// (an indirect jump under TCG is a lookup).
    pub fn take_received(
        &mut self,
        max: u32,
        mut each: impl FnMut(RxSlot<'_>),
    ) -> Result<u32, RingError> {
        let count = self.owned()?.min(max);
        let head = self.head()?;
        let mut index = head;
        let mut taken = 0;
        while taken < count {
            let (buffer, slot) = self.buffer(index)?;
            // SAFETY: the slot is owned by the program (within [head, tail)).
            let (len, flags) = unsafe {
                (
                    ptr::read_volatile(addr_of!((*slot).len)),
                    ptr::read_volatile(addr_of!((*slot).flags)),
                )
            };
            if flags & NS_MOREFRAG != 0 {
                break;
            }
            if u32::from(len) > self.buf_size {
                return Err(RingError::SlotTooLong {
                    slot: index,
                    len,
                    buf_size: self.buf_size,
                });
            }
            // SAFETY: len <= buf_size bytes of a buffer inside the region;
            // the kernel does not write slots the program owns, and the
            // slice does not outlive this call, before the slot goes back.
            let data = unsafe { std::slice::from_raw_parts(buffer, len as usize) };
            each(RxSlot { data, flags });
            taken += 1;
            index = self.next(index);
        }
        if taken > 0 {
            self.advance_to(index);
        }
        Ok(taken)
    }

    /// RX: gives the first `count` received slots back to the kernel.
    pub fn release(&mut self, count: u32) -> Result<(), RingError> {
        let count = count.min(self.owned()?);
        let head = self.head()?;
        self.advance_to(self.forward(head, count));
        Ok(())
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(super) mod fake;

#[cfg(test)]
mod tests {
    use super::fake::{FakeKernel, FakeRegion};
    use super::*;

    #[test]
    fn finds_the_rings_where_ring_ofs_says() {
        let region = FakeRegion::new(2, 3, 8, 64);
        let nifp = region.region().interface(region.nifp_offset()).unwrap();
        assert_eq!((nifp.tx.len(), nifp.rx.len()), (2, 3));
        for ring in nifp.tx.iter().chain(&nifp.rx) {
            assert_eq!((ring.num_slots(), ring.buf_size()), (8, 64));
        }
        // The RX rings come after the host TX ring in ring_ofs.
        assert_eq!(nifp.rx[0].offset, region.ring_offset(NR_RX, 0));
        assert_eq!(nifp.tx[1].offset, region.ring_offset(NR_TX, 1));
    }

    #[test]
    fn a_fresh_tx_ring_offers_all_but_one_slot_and_a_fresh_rx_ring_is_empty() {
        let region = FakeRegion::new(1, 1, 8, 64);
        let nifp = region.region().interface(region.nifp_offset()).unwrap();
        assert_eq!(nifp.tx[0].owned().unwrap(), 7);
        assert!(nifp.tx[0].transmissions_complete().unwrap());
        assert!(nifp.rx[0].is_empty().unwrap());
        assert!(nifp.rx[0].received(0).unwrap().is_none());
    }

    #[test]
    fn push_fills_the_head_slot_and_moves_head_and_cur() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let tx = &mut nifp.tx[0];
        assert!(tx.push(b"first").unwrap());
        assert_eq!((tx.head().unwrap(), tx.cur().unwrap()), (1, 1));
        assert_eq!(region.slot(NR_TX, 0, 0).len, 5);
        assert_eq!(region.buffer_of(NR_TX, 0, 0, 5).unwrap(), b"first");
        assert_eq!(tx.owned().unwrap(), 2);
        assert!(!tx.transmissions_complete().unwrap());
    }

    #[test]
    fn without_a_sync_the_kernel_sees_nothing() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        assert!(nifp.tx[0].push(b"forgotten").unwrap());
        assert!(
            kernel.wire().is_empty(),
            "nothing leaves before the TX sync"
        );
        kernel.txsync_now().unwrap();
        assert_eq!(kernel.wire(), [b"forgotten".to_vec()]);
    }

    /// The fake kernel sends nothing from outside a slot's buffer, as
    /// netmap resets such a ring: a binding that got the slot wrong fails
    /// here instead of reading other memory.
    #[test]
    fn the_fake_kernel_refuses_a_slot_beyond_its_buffer() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        assert!(nifp.tx[0].push(b"x").unwrap());
        region.corrupt_slot_len(NR_TX, 0, 0, 65);
        let err = kernel.txsync_now().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        region.corrupt_slot_len(NR_TX, 0, 0, 1);
        region.corrupt_slot_buffer(NR_TX, 0, 0, 1);
        assert!(kernel.txsync_now().is_err(), "a reserved buffer was sent");
        assert!(kernel.wire().is_empty());
    }

    #[test]
    fn a_full_tx_ring_refuses_until_the_kernel_frees_slots() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        kernel.complete_transmissions(false);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let tx = &mut nifp.tx[0];
        for frame in [b"a", b"b", b"c"] {
            assert!(tx.push(frame).unwrap());
        }
        assert_eq!(tx.owned().unwrap(), 0);
        assert!(
            !tx.push(b"d").unwrap(),
            "one slot always stays with the kernel"
        );
        kernel.txsync_now().unwrap();
        assert!(!tx.push(b"d").unwrap(), "sent but not yet completed");
        kernel.complete_transmissions(true);
        kernel.txsync_now().unwrap();
        assert!(tx.transmissions_complete().unwrap());
        assert!(tx.push(b"d").unwrap());
        kernel.txsync_now().unwrap();
        assert_eq!(kernel.wire(), [b"a", b"b", b"c", b"d"].map(|f| f.to_vec()));
    }

    #[test]
    fn tx_indices_wrap_around() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let tx = &mut nifp.tx[0];
        let frames: Vec<Vec<u8>> = (0..11u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        for frame in &frames {
            assert!(tx.push(frame).unwrap());
            kernel.txsync_now().unwrap();
        }
        assert_eq!(tx.head().unwrap(), 11 % 4);
        assert_eq!(tx.cur().unwrap(), 11 % 4);
        assert!(tx.transmissions_complete().unwrap());
        assert_eq!(kernel.wire(), frames);
    }

    #[test]
    fn rx_slots_are_read_from_head_and_released_with_wrap_around() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let rx = &mut nifp.rx[0];
        let mut seen = Vec::new();
        for round in 0..5u8 {
            kernel.deliver(0, &[round, 1]);
            kernel.deliver(0, &[round, 2]);
            kernel.rxsync_now().unwrap();
            assert_eq!(rx.owned().unwrap(), 2);
            while let Some(slot) = rx.received(0).unwrap() {
                seen.push(slot.data.to_vec());
                rx.release(1).unwrap();
            }
            assert_eq!(rx.head().unwrap(), rx.tail().unwrap());
            assert_eq!(rx.cur().unwrap(), rx.head().unwrap());
        }
        let expected: Vec<Vec<u8>> = (0..5u8).flat_map(|r| [vec![r, 1], vec![r, 2]]).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_full_rx_ring_holds_num_slots_minus_one_frames() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        for i in 0..5u8 {
            kernel.deliver(0, &[i]);
        }
        kernel.rxsync_now().unwrap();
        let rx = &mut nifp.rx[0];
        assert_eq!(rx.owned().unwrap(), 3);
        assert_eq!(rx.received(2).unwrap().unwrap().data, [2]);
        assert!(rx.received(3).unwrap().is_none());
        rx.release(3).unwrap();
        kernel.rxsync_now().unwrap();
        assert_eq!(rx.received(0).unwrap().unwrap().data, [3]);
        assert_eq!(rx.received(1).unwrap().unwrap().data, [4]);
    }

    #[test]
    fn frames_larger_than_a_buffer_are_refused() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let err = nifp.tx[0].push(&[0; 65]).unwrap_err();
        assert_eq!(
            err,
            RingError::FrameTooLarge {
                len: 65,
                buf_size: 64
            }
        );
        assert_eq!(nifp.tx[0].head().unwrap(), 0);
    }

    /// `next` and `forward` wrap as the modulo does: for every index and
    /// count of slots a caller may pass (without a division), and for any
    /// index at all.
    #[test]
    fn indices_wrap_as_the_modulo_does() {
        for num_slots in [2, 3, 4, 7, 16] {
            let region = FakeRegion::new(1, 1, num_slots, 64);
            let nifp = region.region().interface(region.nifp_offset()).unwrap();
            let ring = &nifp.rx[0];
            // Any index, not only a ring's (the fuzz target asks that).
            for i in [num_slots, 3 * num_slots + 1, u32::MAX - 1, u32::MAX] {
                let wrapped = ((u64::from(i) + 1) % u64::from(num_slots)) as u32;
                assert_eq!(ring.next(i), wrapped, "next({i}) of {num_slots}");
            }
            for i in 0..num_slots {
                assert_eq!(
                    ring.next(i),
                    (i + 1) % num_slots,
                    "next({i}) of {num_slots}"
                );
                for n in 0..=num_slots {
                    assert_eq!(
                        ring.forward(i, n),
                        (i + n) % num_slots,
                        "{i} + {n} of {num_slots}"
                    );
                }
            }
        }
    }

    /// The last whole buffer of the region is a slot's to use; the one
    /// after it would be memory outside the region.
    #[test]
    fn a_slot_may_use_every_buffer_of_the_region_and_none_beyond() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut kernel = FakeKernel::new(&region);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        let last = region.buffer_count() - 1;
        region.corrupt_slot_buffer(NR_TX, 0, 0, last);
        assert!(nifp.tx[0].push(b"last").unwrap());
        kernel.txsync_now().unwrap();
        assert_eq!(kernel.wire(), [b"last".to_vec()]);
        region.corrupt_slot_buffer(NR_TX, 0, 1, last + 1);
        assert_eq!(
            nifp.tx[0].push(b"x"),
            Err(RingError::BufferOutOfRegion {
                slot: 1,
                buf_idx: last + 1
            })
        );
    }

    #[test]
    fn kernel_values_outside_the_region_are_errors() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let mut nifp = region.region().interface(region.nifp_offset()).unwrap();
        region.corrupt_slot_buffer(NR_TX, 0, 0, u32::MAX);
        assert!(matches!(
            nifp.tx[0].push(b"x"),
            Err(RingError::BufferOutOfRegion {
                slot: 0,
                buf_idx: u32::MAX
            })
        ));
        region.corrupt_tail(NR_RX, 0, 4);
        assert!(matches!(
            nifp.rx[0].owned(),
            Err(RingError::IndexOutOfRing {
                what: "tail",
                value: 4,
                ..
            })
        ));
        assert!(matches!(
            region.region().interface(region.region().size() as u64),
            Err(RingError::OutOfRegion {
                what: "netmap_if",
                ..
            })
        ));
    }

    /// What the fuzz target `ring_netmap` does at random: a value
    /// written anywhere in the region, here a ring's tail, is checked when
    /// it is read.
    #[test]
    fn a_tail_written_through_the_region_is_checked_when_read() {
        let region = FakeRegion::new(1, 1, 4, 64);
        let nifp = region.region().interface(region.nifp_offset()).unwrap();
        let tail = region.ring_offset(NR_RX, 0) + std::mem::offset_of!(netmap_ring, tail);
        region.write(tail, &9u32.to_ne_bytes());
        assert!(matches!(
            nifp.rx[0].received(0),
            Err(RingError::IndexOutOfRing {
                what: "tail",
                value: 9,
                ..
            })
        ));
        // Cut at the region's end, never past it.
        region.write(region.region().size() - 2, &[1, 2, 3, 4]);
    }

    #[test]
    fn a_ring_offset_outside_the_region_is_an_error() {
        let region = FakeRegion::new(1, 1, 4, 64);
        // Entry 1 is the host TX ring, which is never looked at; entry 2 is
        // the first RX ring.
        region.corrupt_ring_ofs(1, isize::MAX / 2);
        assert!(region.region().interface(region.nifp_offset()).is_ok());
        region.corrupt_ring_ofs(2, isize::MAX / 2);
        assert!(matches!(
            region.region().interface(region.nifp_offset()),
            Err(RingError::OutOfRegion {
                what: "netmap_ring",
                ..
            })
        ));
    }
}
