//! A `TPACKET_V2` receive ring, for the bulk receivers (lab-sink, lab-gen).
//!
//! `recvmmsg` reads from the socket's queue, which `rmem_max` caps at
//! 212 KiB (a few hundred small frames, a few milliseconds of a flood)
//! without `CAP_NET_ADMIN` to raise it: a sink off the CPU for longer lost
//! frames (docs/performance.md). A ring is memory shared with the kernel,
//! not bounded by `rmem_max`, and the kernel copies each frame into it
//! instead of queueing an skb, so it is cheaper per frame too.
//!
//! V2 rather than the capture's V3 ([`super::ring`]): V2 has one fixed
//! slot per frame, readable as soon as the kernel wrote it, where V3 hands
//! over a block only when it is full or after its retire timeout, which
//! would add up to that timeout to every one-way latency lab-sink measures
//! at low rates.
//!
//! The kernel writes slots in order and stops (drops, counted in
//! `PACKET_STATISTICS`) when the next one is still ours; we read them in
//! order and give each back (`TP_STATUS_KERNEL`) when the next frame is
//! asked for. A slot holds a frame of the interface's MTU; a longer one
//! comes truncated (the tools count it malformed).

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use super::super::Direction;
use super::ring::{map_ring, set_option};

/// The ring's size, whatever the slot size: 8,192 slots of 2 KiB at a
/// 1500-byte MTU, 100 ms of a flood of 80,000 frames a second.
pub const RING_BYTES: usize = 16 << 20;
/// Slots are grouped in blocks of this size (a power-of-two number of
/// pages the kernel allocates in one piece, or falls back to vmalloc).
const BLOCK_BYTES: usize = 128 * 1024;
const MIN_SLOT: usize = 2048;
const MAX_SLOT: usize = BLOCK_BYTES;
/// Where the kernel puts the `sockaddr_ll` of a frame: right after its
/// `tpacket2_hdr`, aligned.
const SOCKADDR_OFFSET: usize =
    mem::size_of::<libc::tpacket2_hdr>().next_multiple_of(libc::TPACKET_ALIGNMENT);
/// What a slot needs beyond the frame: the kernel puts the network header
/// at `TPACKET_ALIGN(TPACKET2_HDRLEN + 16)` and the MAC header before it.
const SLOT_OVERHEAD: usize = (libc::TPACKET2_HDRLEN + 16).next_multiple_of(16);

/// The slot size for an interface of `mtu`: a frame of that MTU (with an
/// Ethernet header and a VLAN tag) fits, in a power of two.
pub fn slot_bytes(mtu: u32) -> usize {
    (mtu as usize + 14 + 4 + SLOT_OVERHEAD)
        .next_power_of_two()
        .clamp(MIN_SLOT, MAX_SLOT)
}

/// A frame in the ring: where it is, and which way it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotFrame {
    pub offset: usize,
    pub len: usize,
    pub direction: Direction,
    /// The kernel's receive time (`CLOCK_REALTIME`), zero when it gave none.
    pub at: Duration,
}

pub struct SlotRing {
    memory: NonNull<u8>,
    /// The mapping's length, to unmap; `None` over memory that is not ours
    /// (the tests).
    mapped: Option<usize>,
    slot_bytes: usize,
    slots: usize,
    /// The slot the kernel fills next, which we read next.
    next: usize,
    /// The slot of the frame last handed out, given back on the next call.
    held: Option<usize>,
}

// SAFETY: the mapping belongs to this value alone (nothing else holds a
// pointer into it), so moving it to another thread moves all access with it.
unsafe impl Send for SlotRing {}

impl SlotRing {
    /// Switches `fd` (an AF_PACKET socket, not bound yet or bound) to
    /// `TPACKET_V2` and maps a receive ring of slots of `slot_bytes`.
    pub fn attach(fd: RawFd, slot_bytes: usize) -> io::Result<SlotRing> {
        let slot_bytes = slot_bytes.clamp(MIN_SLOT, MAX_SLOT).next_power_of_two();
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        set_option(fd, libc::PACKET_VERSION, &version)?;
        let blocks = RING_BYTES / BLOCK_BYTES;
        let slots = RING_BYTES / slot_bytes;
        let request = libc::tpacket_req {
            tp_block_size: BLOCK_BYTES as libc::c_uint,
            tp_block_nr: blocks as libc::c_uint,
            tp_frame_size: slot_bytes as libc::c_uint,
            tp_frame_nr: slots as libc::c_uint,
        };
        set_option(fd, libc::PACKET_RX_RING, &request)?;
        let memory = map_ring(fd, RING_BYTES)?;
        Ok(SlotRing {
            memory,
            mapped: Some(RING_BYTES),
            slot_bytes,
            slots,
            next: 0,
            held: None,
        })
    }

    /// A ring over `slots` slots of `slot_bytes` at `memory` (the tests
    /// play the kernel's side over it).
    ///
    /// # Safety
    /// `memory` must be valid for reads and writes of `slots * slot_bytes`
    /// bytes, aligned for `AtomicU32`, for as long as the ring is used.
    #[cfg(test)]
    unsafe fn over(memory: NonNull<u8>, slots: usize, slot_bytes: usize) -> SlotRing {
        SlotRing {
            memory,
            mapped: None,
            slot_bytes,
            slots,
            next: 0,
            held: None,
        }
    }

    /// The next frame the kernel wrote, if any. The previous frame's slot
    /// goes back to the kernel here: the datalink lends a frame out only
    /// until its next `recv`.
    pub fn next(&mut self) -> Option<SlotFrame> {
        if let Some(held) = self.held.take() {
            self.release(held);
        }
        loop {
            let slot = self.next;
            // Acquire: what the kernel wrote before handing the slot over
            // is visible once the status says so.
            if self.status(slot).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return None;
            }
            self.next = (slot + 1) % self.slots;
            let header = self.header(slot);
            let start = usize::from(header.tp_mac);
            let len = header.tp_snaplen as usize;
            if start >= SOCKADDR_OFFSET && start.saturating_add(len) <= self.slot_bytes {
                self.held = Some(slot);
                return Some(SlotFrame {
                    offset: slot * self.slot_bytes + start,
                    len,
                    direction: self.direction(slot),
                    at: Duration::new(u64::from(header.tp_sec), header.tp_nsec.min(999_999_999)),
                });
            }
            // The kernel never writes such a slot; if it did, skip it
            // rather than read outside it.
            self.release(slot);
        }
    }

    /// The bytes of a frame `next` returned.
    pub fn bytes(&self, frame: SlotFrame) -> &[u8] {
        // SAFETY: `next` checked that the frame lies inside its slot,
        // inside the mapping, and the slot stays ours until the next call
        // of `next` (which needs `&mut self`, so this borrow has ended).
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr().add(frame.offset), frame.len) }
    }

    /// The kernel's receive time of a frame, where it gave one.
    pub fn received_at(frame: SlotFrame) -> Option<SystemTime> {
        (!frame.at.is_zero()).then(|| SystemTime::UNIX_EPOCH + frame.at)
    }

    fn release(&self, slot: usize) {
        // Release: our reads of the frame happen before the kernel may
        // write the slot again.
        self.status(slot)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    /// The slot's status word, shared with the kernel.
    fn status(&self, slot: usize) -> &AtomicU32 {
        let at = slot * self.slot_bytes + mem::offset_of!(libc::tpacket2_hdr, tp_status);
        // SAFETY: every slot starts with its tpacket2_hdr (slots are
        // aligned: power-of-two sizes from 2 KiB in page-aligned blocks);
        // the kernel reads and writes the status as an aligned u32.
        unsafe { &*self.memory.as_ptr().add(at).cast::<AtomicU32>() }
    }

    fn header(&self, slot: usize) -> libc::tpacket2_hdr {
        // SAFETY: the header lies at the start of the slot, inside the
        // memory; the slot is ours (its status said so).
        unsafe {
            self.memory
                .as_ptr()
                .add(slot * self.slot_bytes)
                .cast::<libc::tpacket2_hdr>()
                .read()
        }
    }

    fn direction(&self, slot: usize) -> Direction {
        let at = slot * self.slot_bytes
            + SOCKADDR_OFFSET
            + mem::offset_of!(libc::sockaddr_ll, sll_pkttype);
        // SAFETY: inside the slot (SOCKADDR_OFFSET + a sockaddr_ll is far
        // below the smallest slot).
        let pkttype = unsafe { self.memory.as_ptr().add(at).read() };
        if pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        }
    }
}

impl Drop for SlotRing {
    fn drop(&mut self) {
        if let Some(len) = self.mapped {
            // SAFETY: the mapping made in `attach`, unmapped once; no frame
            // borrowed from it outlives `self`.
            unsafe {
                libc::munmap(self.memory.as_ptr().cast(), len);
            }
        }
    }
}

/// The MTU of `iface` (SIOCGIFMTU on any socket), if the kernel says.
pub fn mtu(fd: RawFd, iface: &str) -> Option<u32> {
    // SAFETY: an all-zero ifreq is a valid value.
    let mut request: libc::ifreq = unsafe { mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return None;
    }
    for (to, from) in request.ifr_name.iter_mut().zip(name) {
        *to = *from as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the name and writes ifru_mtu of the live
    // ifreq passed.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut request) };
    if rc != 0 {
        return None;
    }
    // SAFETY: SIOCGIFMTU filled the union's mtu member.
    u32::try_from(unsafe { request.ifr_ifru.ifru_mtu }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOT: usize = 2048;

    /// Plain memory for a ring of `slots`, and the kernel's side of it.
    struct Kernel {
        memory: Vec<u64>,
        next: usize,
        slots: usize,
    }

    impl Kernel {
        fn new(slots: usize) -> Kernel {
            Kernel {
                memory: vec![0; slots * SLOT / 8],
                next: 0,
                slots,
            }
        }

        fn ring(&mut self) -> SlotRing {
            let memory = NonNull::new(self.memory.as_mut_ptr().cast::<u8>()).unwrap();
            // SAFETY: the Vec outlives every ring of a test and is u64-aligned.
            unsafe { SlotRing::over(memory, self.slots, SLOT) }
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the Vec's own bytes.
            unsafe {
                std::slice::from_raw_parts_mut(
                    self.memory.as_mut_ptr().cast::<u8>(),
                    self.memory.len() * 8,
                )
            }
        }

        fn status(&mut self, slot: usize) -> u32 {
            let at = slot * SLOT;
            u32::from_ne_bytes(self.bytes()[at..at + 4].try_into().unwrap())
        }

        /// Writes `frame` into the next slot as the kernel does; false when
        /// that slot is still the reader's (the kernel drops the frame).
        fn write(&mut self, frame: &[u8], mac: u16, pkttype: u8) -> bool {
            let slot = self.next;
            if self.status(slot) != libc::TP_STATUS_KERNEL {
                return false;
            }
            let base = slot * SLOT;
            let mac_at = usize::from(mac);
            let bytes = self.bytes();
            bytes[base + 4..base + 8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
            bytes[base + 8..base + 12].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
            bytes[base + 12..base + 14].copy_from_slice(&mac.to_ne_bytes());
            bytes[base + 16..base + 20].copy_from_slice(&7u32.to_ne_bytes());
            let pkttype_at =
                base + SOCKADDR_OFFSET + mem::offset_of!(libc::sockaddr_ll, sll_pkttype);
            bytes[pkttype_at] = pkttype;
            let end = (base + mac_at + frame.len()).min(base + SLOT);
            let copied = end.saturating_sub(base + mac_at);
            bytes[base + mac_at..end].copy_from_slice(&frame[..copied]);
            bytes[base..base + 4].copy_from_slice(&libc::TP_STATUS_USER.to_ne_bytes());
            self.next = (slot + 1) % self.slots;
            true
        }
    }

    #[test]
    fn frames_come_out_in_order_and_slots_go_back_one_call_later() {
        let mut kernel = Kernel::new(4);
        let mut ring = kernel.ring();
        assert_eq!(ring.next(), None);
        assert!(kernel.write(b"first", 66, libc::PACKET_HOST));
        assert!(kernel.write(b"second", 66, libc::PACKET_OUTGOING));
        let first = ring.next().unwrap();
        assert_eq!(ring.bytes(first), b"first");
        assert_eq!(first.direction, Direction::In);
        assert_eq!(first.at, Duration::from_secs(7));
        // Lent out: the slot is still the reader's.
        assert_eq!(kernel.status(0), libc::TP_STATUS_USER);
        let second = ring.next().unwrap();
        assert_eq!(ring.bytes(second), b"second");
        assert_eq!(second.direction, Direction::Out);
        assert_eq!(kernel.status(0), libc::TP_STATUS_KERNEL);
        assert_eq!(ring.next(), None);
        assert_eq!(kernel.status(1), libc::TP_STATUS_KERNEL);
    }

    #[test]
    fn a_full_ring_makes_the_kernel_drop_until_the_reader_catches_up_and_it_wraps() {
        let mut kernel = Kernel::new(4);
        let mut ring = kernel.ring();
        for i in 0..4u8 {
            assert!(kernel.write(&[i; 20], 66, libc::PACKET_HOST));
        }
        assert!(!kernel.write(&[9; 20], 66, libc::PACKET_HOST), "ring full");
        let mut seen = Vec::new();
        for round in 0..3u8 {
            while let Some(frame) = ring.next() {
                seen.push(ring.bytes(frame)[0]);
            }
            for i in 0..4u8 {
                assert!(kernel.write(&[10 * (round + 1) + i; 20], 66, libc::PACKET_HOST));
            }
        }
        assert_eq!(
            seen,
            [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23],
            "in order across the wrap"
        );
    }

    #[test]
    fn a_slot_claiming_bytes_beyond_itself_is_skipped_not_read() {
        let mut kernel = Kernel::new(4);
        let mut ring = kernel.ring();
        assert!(kernel.write(b"bad", 2046, libc::PACKET_HOST)); // 2046 + 3 > 2048
        assert!(kernel.write(b"bad", 4, libc::PACKET_HOST)); // inside the header
        assert!(kernel.write(b"good", 66, libc::PACKET_HOST));
        let frame = ring.next().unwrap();
        assert_eq!(ring.bytes(frame), b"good");
        assert_eq!(kernel.status(0), libc::TP_STATUS_KERNEL);
        assert_eq!(kernel.status(1), libc::TP_STATUS_KERNEL);
    }

    #[test]
    fn slots_fit_a_frame_of_the_mtu() {
        assert_eq!(slot_bytes(1500), 2048);
        assert_eq!(slot_bytes(9000), 16384);
        assert_eq!(slot_bytes(65535), MAX_SLOT);
        assert_eq!(slot_bytes(68), MIN_SLOT);
        for mtu in [1500, 1920, 9000] {
            assert!(
                slot_bytes(mtu) >= mtu as usize + 14 + SLOT_OVERHEAD,
                "{mtu}"
            );
        }
    }
}
