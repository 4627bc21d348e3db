//! A `TPACKET_V3` receive ring on an AF_PACKET socket, for the capture.
//!
//! A socket read with `recvfrom` queues at most `rmem_max` bytes of frames
//! (212 KiB by default, about 270 small frames counting the kernel's
//! per-frame overhead) and setting more needs `CAP_NET_ADMIN`, which a node
//! lacks. Under a few hundred thousand frames a second that queue overflows
//! whenever the capture is off the CPU for a millisecond. A ring is memory
//! shared with the kernel, not bounded by `rmem_max`: the kernel packs frames
//! into blocks and hands a block over when it is full or `RETIRE_TIMEOUT`
//! after its first frame; we read its frames in place and give it back.
//! libpcap (tcpdump) does the same.

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::super::Direction;

/// One block holds any frame, GSO frames of 64 KiB on veth included; it
/// must be a power-of-two number of pages.
const BLOCK_BYTES: usize = 256 * 1024;
const BLOCKS: usize = 16;
/// Only checked by the kernel in V3 (frames are packed, not slotted).
const FRAME_SLOT_BYTES: usize = 2048;
/// How long a block with frames in it waits for more before the kernel
/// hands it over: the delay a quiet capture adds to a frame.
pub const RETIRE_TIMEOUT: Duration = Duration::from_millis(10);
/// Where the kernel puts the `sockaddr_ll` of a frame: right after its
/// `tpacket3_hdr`, aligned (`TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`).
const SOCKADDR_OFFSET: usize =
    mem::size_of::<libc::tpacket3_hdr>().next_multiple_of(libc::TPACKET_ALIGNMENT);

/// A frame in the ring: where it is in the mapping, and which way it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingFrame {
    pub offset: usize,
    pub len: usize,
    pub direction: Direction,
}

/// The block being read, and the next frame in it.
#[derive(Clone, Copy, Debug)]
struct Reading {
    frames_left: u32,
    next_offset: usize,
}

pub struct RxRing {
    map: NonNull<u8>,
    map_len: usize,
    /// The block the kernel will hand over next, or the one being read.
    block: usize,
    reading: Option<Reading>,
}

// SAFETY: the mapping belongs to this value alone (nothing else holds a
// pointer into it), so moving it to another thread moves all access with it.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Switches `fd` (an AF_PACKET socket) to `TPACKET_V3` and maps its
    /// receive ring.
    pub fn attach(fd: RawFd) -> io::Result<RxRing> {
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_option(fd, libc::PACKET_VERSION, &version)?;
        let request = libc::tpacket_req3 {
            tp_block_size: BLOCK_BYTES as libc::c_uint,
            tp_block_nr: BLOCKS as libc::c_uint,
            tp_frame_size: FRAME_SLOT_BYTES as libc::c_uint,
            tp_frame_nr: (BLOCK_BYTES / FRAME_SLOT_BYTES * BLOCKS) as libc::c_uint,
            tp_retire_blk_tov: RETIRE_TIMEOUT.as_millis() as libc::c_uint,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(fd, libc::PACKET_RX_RING, &request)?;
        let map_len = BLOCK_BYTES * BLOCKS;
        let map = map_ring(fd, map_len)?;
        Ok(RxRing {
            map,
            map_len,
            block: 0,
            reading: None,
        })
    }

    /// The next frame the kernel handed over, if any. The previous frame's
    /// bytes may be given back to the kernel by this call: the datalink
    /// lends them out only until its next `recv`.
    pub fn next(&mut self) -> Option<RingFrame> {
        loop {
            let reading = match self.reading {
                Some(reading) if reading.frames_left > 0 => reading,
                Some(_) => {
                    self.release_block();
                    continue;
                }
                None => self.open_block()?,
            };
            let offset = reading.next_offset;
            let header = self.frame_header(offset);
            let frame = RingFrame {
                offset: offset + usize::from(header.tp_mac),
                len: header.tp_snaplen as usize,
                direction: self.direction_at(offset),
            };
            self.reading = Some(Reading {
                frames_left: reading.frames_left - 1,
                next_offset: offset + header.tp_next_offset as usize,
            });
            if self.within_block(frame.offset, frame.len) {
                return Some(frame);
            }
            // The kernel never writes such a frame; if it did, skip the
            // block rather than read outside it.
            self.reading = Some(Reading {
                frames_left: 0,
                next_offset: 0,
            });
        }
    }

    /// The bytes of a frame `next` returned.
    pub fn bytes(&self, frame: RingFrame) -> &[u8] {
        // SAFETY: `next` checked that the frame lies inside its block,
        // inside the mapping, and the block stays ours until the next call
        // of `next` (which needs `&mut self`, so this borrow has ended).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(frame.offset), frame.len) }
    }

    /// True when the kernel has frames in the block it is filling, not yet
    /// handed over: a capture draining before its summary waits for them
    /// (at most `RETIRE_TIMEOUT`).
    pub fn kernel_holds_frames(&self) -> bool {
        self.reading.is_none() && self.status(self.block) & libc::TP_STATUS_USER == 0 && {
            // A hint only: the kernel updates it as it fills the block.
            self.block_u32(self.block, mem::offset_of!(libc::tpacket_hdr_v1, num_pkts)) > 0
        }
    }

    fn open_block(&mut self) -> Option<Reading> {
        if self.status(self.block) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let frames = self.block_u32(self.block, mem::offset_of!(libc::tpacket_hdr_v1, num_pkts));
        let first = self.block_u32(
            self.block,
            mem::offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt),
        );
        let reading = Reading {
            frames_left: frames,
            next_offset: self.block * BLOCK_BYTES + first as usize,
        };
        self.reading = Some(reading);
        Some(reading)
    }

    fn release_block(&mut self) {
        self.status_word(self.block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % BLOCKS;
        self.reading = None;
    }

    fn within_block(&self, offset: usize, len: usize) -> bool {
        let block_start = self.block * BLOCK_BYTES;
        offset >= block_start && offset.saturating_add(len) <= block_start + BLOCK_BYTES
    }

    fn frame_header(&self, offset: usize) -> libc::tpacket3_hdr {
        if !self.within_block(offset, mem::size_of::<libc::tpacket3_hdr>()) {
            return zero_header();
        }
        // SAFETY: inside the mapping (checked); an unaligned read because
        // nothing promises the kernel's offsets are aligned for us.
        unsafe {
            self.map
                .as_ptr()
                .add(offset)
                .cast::<libc::tpacket3_hdr>()
                .read_unaligned()
        }
    }

    fn direction_at(&self, frame_offset: usize) -> Direction {
        let pkttype_at = SOCKADDR_OFFSET + mem::offset_of!(libc::sockaddr_ll, sll_pkttype);
        let at = frame_offset + pkttype_at;
        if !self.within_block(at, 1) {
            return Direction::In;
        }
        // SAFETY: inside the mapping (checked).
        let pkttype = unsafe { self.map.as_ptr().add(at).read() };
        if pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        }
    }

    /// The block's status word, shared with the kernel.
    fn status_word(&self, block: usize) -> &AtomicU32 {
        let at = block * BLOCK_BYTES
            + mem::offset_of!(libc::tpacket_block_desc, hdr)
            + mem::offset_of!(libc::tpacket_hdr_v1, block_status);
        // SAFETY: the block descriptor starts every block (page aligned,
        // inside the mapping); the kernel reads and writes the status as an
        // aligned u32, which is what an AtomicU32 is.
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU32>() }
    }

    fn status(&self, block: usize) -> u32 {
        // Acquire: the frames the kernel wrote before handing the block over
        // are visible once the status says so.
        self.status_word(block).load(Ordering::Acquire)
    }

    fn block_u32(&self, block: usize, field_in_header: usize) -> u32 {
        let at =
            block * BLOCK_BYTES + mem::offset_of!(libc::tpacket_block_desc, hdr) + field_in_header;
        // SAFETY: a field of the block descriptor, inside the mapping and
        // aligned like the rest of it (see `status_word`).
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU32>() }.load(Ordering::Relaxed)
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `attach`, unmapped once; no frame
        // borrowed from it outlives `self`.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

fn zero_header() -> libc::tpacket3_hdr {
    // SAFETY: an all-zero tpacket3_hdr is a valid value (plain integers).
    unsafe { mem::zeroed() }
}

/// Maps the receive ring the kernel just allocated for socket `fd`, of
/// exactly `len` bytes (shared, read-write: slots are handed back by
/// writing their status).
pub(super) fn map_ring(fd: RawFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a shared read-write mapping of the socket's ring, of its
    // size; the result is checked below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(map.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))
}

/// setsockopt(fd, SOL_PACKET, option, value).
pub(super) fn set_option<T>(fd: RawFd, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: the option value is a plain C struct or integer that outlives
    // the call, passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            option,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
