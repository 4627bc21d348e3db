//! The AF_XDP socket: its UMEM (the packet buffer shared with the kernel),
//! its four rings, and the frame bookkeeping on top of them.
//!
//! The UMEM of lab-ping and lab-pong is 1 MiB: 256 chunks of 4 KiB, 192
//! lent to the kernel for receiving (through the fill ring) and 64 for
//! sending. That fits the default 8 MiB locked-memory limit several times
//! over, so the socket works without CAP_IPC_LOCK as long as this user has
//! not locked much else (the kernel counts UMEMs per user, across
//! containers sharing a uid); with CAP_IPC_LOCK the limit does not apply.
//! lab-capture's is 16 MiB ([`Sizes::CAPTURE`]): 192 frames are half a
//! millisecond of a flood, and a capture off the CPU for longer than that
//! dropped 2% of one (docs/performance.md). A 4 KiB chunk holds
//! frames up to 3840 bytes (the kernel keeps 256 bytes of headroom);
//! larger frames would need multi-buffer AF_XDP, which labs do not use.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use super::chunks::Chunks;
use super::ring::{Consumer, Producer, RingMemory};

pub(super) const FRAME_SIZE: u32 = 4096;

/// How many chunks the UMEM has and how they are shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sizes {
    /// Chunks in the UMEM.
    pub(super) frames: u32,
    /// Chunks lent to the kernel for receiving; the rest are for sending.
    pub(super) rx_frames: u32,
    /// Entries of every ring: room for all the frames that can be in it.
    pub(super) ring: u32,
}

impl Sizes {
    /// lab-ping and lab-pong: 1 MiB.
    pub(super) const TOOL: Sizes = Sizes {
        frames: 256,
        rx_frames: 192,
        ring: 256,
    };
    /// lab-capture: 16 MiB, 15,360 frames to receive into (40 ms of a
    /// flood of 370,000 frames a second).
    pub(super) const CAPTURE: Sizes = Sizes {
        frames: 4096,
        rx_frames: 3840,
        ring: 4096,
    };

    /// lab-gen and lab-sink: 32 MiB, 6,144 frames to receive into (30 ms
    /// of 200,000 frames a second: with 2,048 a sink off the CPU for 10 ms
    /// on a busy machine dropped frames at half lab-gen's top rate) and
    /// 2,048 to send from, so a batch of many frames goes out per kick.
    pub(super) const BULK: Sizes = Sizes {
        frames: 8192,
        rx_frames: 6144,
        ring: 8192,
    };

    pub(super) const fn umem_bytes(self) -> usize {
        (FRAME_SIZE * self.frames) as usize
    }

    /// The rings hold every frame that can be in them; a power of two, as
    /// the kernel requires.
    const fn fit(self) -> bool {
        self.rx_frames <= self.ring
            && self.frames - self.rx_frames <= self.ring
            && self.ring.is_power_of_two()
    }
}
/// What the kernel reserves in front of a received frame (XDP_PACKET_HEADROOM).
const KERNEL_HEADROOM: u32 = 256;
/// The largest frame the socket can receive or send.
pub(super) const MAX_FRAME: usize = (FRAME_SIZE - KERNEL_HEADROOM) as usize;

// Checked at build time: the UMEM fits the default 8 MiB memlock limit
// with room for others, the rings hold every frame that can be in them,
// and a frame of a 1500-byte MTU fits a chunk.
const _: () = assert!(Sizes::TOOL.umem_bytes() * 4 <= 8 << 20);
const _: () = assert!(Sizes::TOOL.fit() && Sizes::CAPTURE.fit() && Sizes::BULK.fit());
const _: () = assert!(MAX_FRAME >= 1514);

/// The step of the socket's setup that failed, to explain the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Socket,
    RegisterUmem,
    Rings,
    MapRings,
    Bind,
}

#[derive(Debug)]
pub(super) struct SetupError {
    pub(super) step: Step,
    pub(super) error: io::Error,
}

fn at(step: Step) -> impl FnOnce(io::Error) -> SetupError {
    move |error| SetupError { step, error }
}

/// An mmap'ed area, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::checked(ptr, len)
    }

    fn ring(fd: BorrowedFd<'_>, len: usize, offset: libc::off_t) -> io::Result<Mapping> {
        // SAFETY: maps a ring the kernel allocated for this socket; the
        // kernel checks `len` against the ring's size.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::checked(ptr, len)
    }

    fn checked(ptr: *mut libc::c_void, len: usize) -> io::Result<Mapping> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr as *mut u8).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// A pointer `offset` bytes in, if `size` bytes fit there.
    fn at<T>(&self, offset: u64, count: usize) -> io::Result<NonNull<T>> {
        let end = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(count.checked_mul(size_of::<T>())?));
        match end {
            Some(end) if end <= self.len && offset as usize % std::mem::align_of::<T>() == 0 => {
                // SAFETY: offset + count * size_of::<T>() is within the mapping.
                Ok(unsafe { self.ptr.add(offset as usize) }.cast())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ring offset {offset} does not fit the {}-byte mapping",
                    self.len
                ),
            )),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value created and owns.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value is a live T of the size given.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            value as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// getsockopt(SOL_XDP) into a zeroed T; returns it and the length the
/// kernel filled.
fn getsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int) -> io::Result<(T, usize)> {
    // SAFETY: T is one of the plain-integer libc XDP structs, for which
    // all-zero bytes are a valid value.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: value is a live, writable T of `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            &mut value as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if ret == 0 {
        Ok((value, len as usize))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A bound AF_XDP socket with its UMEM and rings.
///
/// Field order is drop order: the ring mappings go first, then the socket
/// (which unbinds it and releases the kernel's hold on the UMEM), then the
/// UMEM itself.
pub(super) struct XskSocket {
    chunks: Chunks,
    _ring_mappings: [Mapping; 4],
    fd: OwnedFd,
    /// Reached through `chunks`; kept to be unmapped last.
    _umem: Mapping,
    zero_copy: bool,
    /// Bound with XDP_USE_NEED_WAKEUP: the kernel says when it needs a
    /// system call to look at the TX or fill ring (kernels before 5.4
    /// refuse the flag; then every send is kicked).
    need_wakeup: bool,
}

impl XskSocket {
    /// Creates the socket and binds it to queue 0 of `ifindex`, zero-copy
    /// where the driver supports it, copy mode otherwise.
    pub(super) fn open(ifindex: u32, sizes: Sizes) -> Result<XskSocket, SetupError> {
        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(at(Step::Socket)(io::Error::last_os_error()));
        }
        // SAFETY: socket() returned a new descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let umem_bytes = sizes.umem_bytes();
        let umem = Mapping::anonymous(umem_bytes).map_err(at(Step::RegisterUmem))?;
        // SAFETY: xdp_umem_reg is plain integers.
        let mut reg: libc::xdp_umem_reg = unsafe { std::mem::zeroed() };
        reg.addr = umem.ptr.as_ptr() as u64;
        reg.len = umem_bytes as u64;
        reg.chunk_size = FRAME_SIZE;
        reg.headroom = 0;
        setsockopt(fd.as_fd(), libc::XDP_UMEM_REG, &reg).map_err(at(Step::RegisterUmem))?;

        for ring in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(fd.as_fd(), ring, &(sizes.ring as libc::c_int)).map_err(at(Step::Rings))?;
        }
        let (rx, tx, fill, completion, mappings) =
            map_rings(fd.as_fd(), sizes.ring).map_err(at(Step::MapRings))?;

        // SAFETY: the UMEM mapping holds sizes.umem_bytes() bytes and the
        // socket keeps it (and the rings' mappings) as long as `chunks`.
        let chunks = unsafe { Chunks::new(rx, tx, fill, completion, umem.ptr, sizes) };
        let mut socket = XskSocket {
            chunks,
            _ring_mappings: mappings,
            fd,
            _umem: umem,
            zero_copy: false,
            need_wakeup: true,
        };
        socket.bind(ifindex).map_err(at(Step::Bind))?;
        Ok(socket)
    }

    /// Binds without forcing a mode: the kernel tries zero-copy and falls
    /// back to copy mode by itself when the driver cannot (veth cannot).
    /// XDP_OPTIONS then says which one we got. Queue 0 only: the caller
    /// checked that the interface has no other. With XDP_USE_NEED_WAKEUP
    /// where the kernel knows it, so that no wake-up call is wasted.
    fn bind(&mut self, ifindex: u32) -> io::Result<()> {
        match self.bind_with(ifindex, libc::XDP_USE_NEED_WAKEUP) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.need_wakeup = false;
                self.bind_with(ifindex, 0)
            }
            bound => bound,
        }
    }

    fn bind_with(&mut self, ifindex: u32, flags: u16) -> io::Result<()> {
        // SAFETY: sockaddr_xdp is plain integers.
        let mut addr: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        addr.sxdp_family = libc::AF_XDP as u16;
        addr.sxdp_ifindex = ifindex;
        addr.sxdp_queue_id = 0;
        addr.sxdp_flags = flags;
        // SAFETY: addr is a live sockaddr_xdp of the size given.
        let ret = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                &addr as *const libc::sockaddr_xdp as *const libc::sockaddr,
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        let (options, _) = getsockopt::<libc::xdp_options>(self.fd.as_fd(), libc::XDP_OPTIONS)?;
        self.zero_copy = options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0;
        Ok(())
    }

    pub(super) fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The next received frame, as (UMEM offset, length). The chunk is the
    /// caller's until it hands it back with `recycle`.
    pub(super) fn next_received(&mut self) -> Option<(u64, usize)> {
        self.chunks.next_received()
    }

    /// [`Chunks::rx_loads`](super::chunks::Chunks::rx_loads).
    pub(super) fn rx_loads(&self) -> u64 {
        self.chunks.rx_loads()
    }

    /// The bytes of a frame in the UMEM, if the range is inside one RX
    /// chunk.
    pub(super) fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.chunks.frame(addr, len)
    }

    /// Gives a received chunk back to the kernel for new frames.
    pub(super) fn recycle(&mut self, addr: u64) {
        self.chunks.recycle(addr)
    }

    /// Copies `frame` into a free TX chunk and queues it. Returns false
    /// when no chunk is free (the kernel still holds all of them).
    pub(super) fn queue_for_send(&mut self, frame: &[u8]) -> bool {
        self.chunks.queue_for_send(frame)
    }

    /// Copies as many of `frames` as there are free TX chunks into them and
    /// queues them with one submit; returns how many. The caller checked
    /// every length.
    pub(super) fn queue_batch(&mut self, frames: &[&[u8]]) -> usize {
        self.chunks.queue_batch(frames)
    }

    /// Frames queued on the TX ring that the kernel has not taken yet.
    pub(super) fn tx_in_flight(&self) -> u32 {
        self.chunks.tx_in_flight()
    }

    /// True when the kernel needs `kick_tx` to send what is on the TX
    /// ring: always in copy mode, where it sends inside that call; in
    /// zero-copy mode only when the driver sleeps.
    pub(super) fn tx_needs_kick(&self) -> bool {
        !self.need_wakeup || self.chunks.tx_needs_wakeup()
    }

    /// True when the driver waits for a system call before it fills the
    /// RX ring again (zero-copy with an empty fill ring; never in copy
    /// mode, where frames are copied in as they arrive).
    pub(super) fn rx_needs_kick(&self) -> bool {
        self.need_wakeup && self.chunks.fill_needs_wakeup()
    }

    /// A non-blocking receive call: wakes the driver (zero-copy), and
    /// busy-polls the device queue when `SO_BUSY_POLL` is set.
    pub(super) fn kick_rx(&self) -> io::Result<()> {
        // SAFETY: recvfrom with no buffer; AF_XDP delivers frames through
        // the RX ring, never through the call.
        let ret = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Asks the kernel to transmit what is on the TX ring. In copy mode
    /// it does so inside this call.
    pub(super) fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: sendto with no buffer; AF_XDP requires MSG_DONTWAIT.
        let ret = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// rx_dropped + rx_ring_full from XDP_STATISTICS.
    pub(super) fn rx_drops(&self) -> Option<u64> {
        let (stats, len) =
            getsockopt::<libc::xdp_statistics>(self.fd.as_fd(), libc::XDP_STATISTICS).ok()?;
        // Kernels before 5.9 fill only the first three fields (and then
        // count a full ring in rx_dropped).
        if len >= size_of::<libc::xdp_statistics>() {
            Some(stats.rx_dropped + stats.rx_ring_full)
        } else {
            Some(stats.rx_dropped)
        }
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

type Rings = (
    Consumer<libc::xdp_desc>,
    Producer<libc::xdp_desc>,
    Producer<u64>,
    Consumer<u64>,
    [Mapping; 4],
);

/// mmaps the four rings at the offsets the kernel gives.
fn map_rings(fd: BorrowedFd<'_>, ring_size: u32) -> io::Result<Rings> {
    let (off, len) = getsockopt::<libc::xdp_mmap_offsets>(fd, libc::XDP_MMAP_OFFSETS)?;
    if len < size_of::<libc::xdp_mmap_offsets>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel's AF_XDP ring layout is older than Linux 5.4",
        ));
    }
    let n = ring_size as usize;
    let rx_map = Mapping::ring(
        fd,
        off.rx.desc as usize + n * size_of::<libc::xdp_desc>(),
        libc::XDP_PGOFF_RX_RING,
    )?;
    let tx_map = Mapping::ring(
        fd,
        off.tx.desc as usize + n * size_of::<libc::xdp_desc>(),
        libc::XDP_PGOFF_TX_RING,
    )?;
    let fill_map = Mapping::ring(
        fd,
        off.fr.desc as usize + n * size_of::<u64>(),
        libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
    )?;
    let completion_map = Mapping::ring(
        fd,
        off.cr.desc as usize + n * size_of::<u64>(),
        libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
    )?;
    let rx = Consumer::new(ring_memory(&rx_map, &off.rx, ring_size)?);
    let tx = Producer::new(ring_memory(&tx_map, &off.tx, ring_size)?);
    let fill = Producer::new(ring_memory(&fill_map, &off.fr, ring_size)?);
    let completion = Consumer::new(ring_memory(&completion_map, &off.cr, ring_size)?);
    Ok((
        rx,
        tx,
        fill,
        completion,
        [rx_map, tx_map, fill_map, completion_map],
    ))
}

fn ring_memory<T>(
    map: &Mapping,
    off: &libc::xdp_ring_offset,
    size: u32,
) -> io::Result<RingMemory<T>> {
    let producer = map.at::<AtomicU32>(off.producer, 1)?;
    let consumer = map.at::<AtomicU32>(off.consumer, 1)?;
    let entries = map.at::<T>(off.desc, size as usize)?;
    let flags = map.at::<AtomicU32>(off.flags, 1)?;
    // SAFETY: the four pointers were checked to lie inside the ring's
    // mapping, which the XskSocket keeps alive as long as the ring; the
    // kernel is the only other party touching it.
    Ok(unsafe { RingMemory::new(producer, consumer, entries, size).with_flags(flags) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn libc_xdp_structs_match_linux_if_xdp_h() {
        assert_eq!(size_of::<libc::sockaddr_xdp>(), 16);
        assert_eq!(offset_of!(libc::sockaddr_xdp, sxdp_ifindex), 4);
        assert_eq!(offset_of!(libc::sockaddr_xdp, sxdp_queue_id), 8);
        assert_eq!(size_of::<libc::xdp_ring_offset>(), 32);
        assert_eq!(size_of::<libc::xdp_mmap_offsets>(), 128);
        assert_eq!(offset_of!(libc::xdp_mmap_offsets, fr), 64);
        assert_eq!(offset_of!(libc::xdp_umem_reg, chunk_size), 16);
        assert_eq!(offset_of!(libc::xdp_umem_reg, flags), 24);
        assert_eq!(size_of::<libc::xdp_desc>(), 16);
        assert_eq!(offset_of!(libc::xdp_desc, len), 8);
        assert_eq!(size_of::<libc::xdp_statistics>(), 48);
        assert_eq!(libc::SOL_XDP, 283);
        assert_eq!(libc::AF_XDP, 44);
        assert_eq!(libc::XDP_UMEM_REG, 4);
        assert_eq!(libc::XDP_PGOFF_TX_RING, 0x8000_0000);
        assert_eq!(libc::XDP_UMEM_PGOFF_COMPLETION_RING, 0x1_8000_0000);
    }
}
