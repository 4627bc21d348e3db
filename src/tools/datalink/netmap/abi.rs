//! The netmap kernel ABI, API version 14, Linux x86_64.
//!
//! Written by hand from netmap's public headers (`sys/net/netmap.h`); no C
//! headers or compiler are involved. Every size, alignment, offset and
//! constant below is checked by the tests at the end of this file against
//! the numbers measured with gcc (`/work/shared/netmap-abi-x86_64.md`), so
//! a drift from the kernel's layout fails the build's tests, not a lab.
//!
//! Only what labctl uses is here: registering a port (`NIOCCTRL` with
//! `NETMAP_REQ_REGISTER`), the shared-memory structures, and the sync
//! ioctls.

// Names follow the C headers so that they can be grepped for there.
#![allow(non_camel_case_types, dead_code)]

use std::mem::size_of;

/// The API version this binding speaks; the kernel accepts 14 to 15.
pub const NETMAP_API: u16 = 14;
pub const NETMAP_MIN_API: u16 = 14;
pub const NETMAP_MAX_API: u16 = 15;

pub const NETMAP_REQ_IFNAMSIZ: usize = 64;
/// `IFNAMSIZ` on Linux: the size of `netmap_if.ni_name`.
pub const IFNAMSIZ: usize = 16;
pub const NM_CACHE_ALIGN: usize = 128;

// nmreq_header.nr_reqtype
pub const NETMAP_REQ_REGISTER: u16 = 1;
pub const NETMAP_REQ_PORT_INFO_GET: u16 = 2;

// nmreq_register.nr_mode
pub const NR_REG_ALL_NIC: u32 = 1;
pub const NR_REG_SW: u32 = 2;
pub const NR_REG_NIC_SW: u32 = 3;
pub const NR_REG_ONE_NIC: u32 = 4;
pub const NR_REG_PIPE_MASTER: u32 = 5;
pub const NR_REG_PIPE_SLAVE: u32 = 6;
pub const NR_REG_NULL: u32 = 7;
pub const NR_REG_ONE_SW: u32 = 8;

// nmreq_register.nr_flags
pub const NR_MONITOR_TX: u64 = 0x100;
pub const NR_MONITOR_RX: u64 = 0x200;
pub const NR_ZCOPY_MON: u64 = 0x400;
pub const NR_EXCLUSIVE: u64 = 0x800;
pub const NR_RX_RINGS_ONLY: u64 = 0x2000;
pub const NR_TX_RINGS_ONLY: u64 = 0x4000;
pub const NR_ACCEPT_VNET_HDR: u64 = 0x8000;
pub const NR_NO_TX_POLL: u64 = 0x20000;

// netmap_slot.flags
pub const NS_BUF_CHANGED: u16 = 0x1;
pub const NS_REPORT: u16 = 0x2;
pub const NS_FORWARD: u16 = 0x4;
pub const NS_NO_LEARN: u16 = 0x8;
pub const NS_INDIRECT: u16 = 0x10;
pub const NS_MOREFRAG: u16 = 0x20;
/// Monitor ports only: the frame was seen on a TX ring of the monitored
/// port (it left the interface).
pub const NS_TXMON: u16 = 0x40;

// netmap_ring.flags
pub const NR_TIMESTAMP: u32 = 0x2;
pub const NR_FORWARD: u32 = 0x4;

// netmap_ring.dir: the kernel writes `ring->dir = kring->tx` (netmap_mem2.c),
// whose values are netmap_kern.h's `enum txrx { NR_RX = 0, NR_TX = 1 }`.
// netmap.h's comment on `dir` ("0: tx, 1: rx") is wrong: with those values
// every open on a real netmap kernel failed.
pub const NR_RX: u16 = 0;
pub const NR_TX: u16 = 1;

/// Linux's `_IOC` encoding (asm-generic/ioctl.h): direction in bits 30-31,
/// argument size in bits 16-29, type in bits 8-15, number in bits 0-7.
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}
const IOC_NONE: u32 = 0;
const IOC_READ_WRITE: u32 = 1 | 2;

/// `_IOWR('i', 151, struct nmreq_header)`: every request of the new API.
pub const NIOCCTRL: u32 = ioc(IOC_READ_WRITE, b'i', 151, size_of::<nmreq_header>());
/// `_IO('i', 148)`: push the TX rings' `[hwcur, head)` to the wire.
pub const NIOCTXSYNC: u32 = ioc(IOC_NONE, b'i', 148, 0);
/// `_IO('i', 149)`: pull received frames into the RX rings, release
/// `[hwcur, head)`.
pub const NIOCRXSYNC: u32 = ioc(IOC_NONE, b'i', 149, 0);

/// The header of every `NIOCCTRL` request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nmreq_header {
    pub nr_version: u16,
    pub nr_reqtype: u16,
    pub nr_reserved: u32,
    /// The port name without the `netmap:` prefix, NUL-terminated.
    pub nr_name: [u8; NETMAP_REQ_IFNAMSIZ],
    /// Pointer to an option chain, or 0.
    pub nr_options: u64,
    /// Pointer to the request body (here a `nmreq_register`).
    pub nr_body: u64,
}

/// The body of `NETMAP_REQ_REGISTER`; the kernel fills in the sizes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nmreq_register {
    /// Offset of this port's `netmap_if` in the shared region.
    pub nr_offset: u64,
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub nr_ringid: u16,
    pub nr_mode: u32,
    pub nr_extra_bufs: u32,
    pub nr_flags: u64,
}

/// The body of `NETMAP_REQ_PORT_INFO_GET`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nmreq_port_info_get {
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub pad: [u16; 3],
}

/// The header of a request option (unused by labctl; here for the layout
/// test).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nmreq_option {
    pub nro_next: u64,
    pub nro_reqtype: u32,
    pub nro_status: u32,
    pub nro_size: u64,
}

/// One port's view of the shared region, written by the kernel at
/// registration. `ring_ofs` is a flexible array: TX rings (NIC, then host),
/// then RX rings (NIC, then host), each an offset from this structure.
#[repr(C)]
#[derive(Debug)]
pub struct netmap_if {
    pub ni_name: [u8; IFNAMSIZ],
    pub ni_version: u32,
    pub ni_flags: u32,
    pub ni_tx_rings: u32,
    pub ni_rx_rings: u32,
    pub ni_bufs_head: u32,
    pub ni_host_tx_rings: u32,
    pub ni_host_rx_rings: u32,
    pub ni_spare1: [u32; 3],
    pub ring_ofs: [isize; 0],
}

/// `sem` in `netmap_ring` is aligned to `NM_CACHE_ALIGN` in C, which makes
/// the whole ring 128-aligned and puts the slots at 256.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct CacheAligned<T>(pub T);

/// One TX or RX ring. `slot` is a flexible array of `num_slots` entries.
///
/// `head` and `cur` are written by the program, `tail` by the kernel; see
/// `ring.rs` for how they are accessed.
#[repr(C)]
#[derive(Debug)]
pub struct netmap_ring {
    /// Offset of the buffer area from this ring (may be negative in
    /// principle; buffers live after the rings in practice).
    pub buf_ofs: i64,
    pub num_slots: u32,
    pub nr_buf_size: u32,
    pub ringid: u16,
    /// [`NR_TX`] or [`NR_RX`].
    pub dir: u16,
    pub head: u32,
    pub cur: u32,
    pub tail: u32,
    pub flags: u32,
    pub ts: libc::timeval,
    pub offset_mask: u64,
    pub buf_align: u64,
    pub sem: CacheAligned<[u8; 128]>,
    pub slot: [netmap_slot; 0],
}

/// One buffer descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct netmap_slot {
    pub buf_idx: u32,
    pub len: u16,
    pub flags: u16,
    pub ptr: u64,
}

#[cfg(test)]
mod tests {
    //! Every number of `/work/shared/netmap-abi-x86_64.md`, in its order.

    use std::mem::{align_of, offset_of, size_of};

    use super::*;

    #[test]
    fn constants_match_the_headers() {
        assert_eq!(NETMAP_API, 14);
        assert_eq!((NETMAP_MIN_API, NETMAP_MAX_API), (14, 15));
        assert_eq!(NETMAP_REQ_IFNAMSIZ, 64);
        assert_eq!(NETMAP_REQ_REGISTER, 1);
        assert_eq!(NETMAP_REQ_PORT_INFO_GET, 2);
        assert_eq!(
            [NR_REG_ALL_NIC, NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_NIC],
            [1, 2, 3, 4]
        );
        assert_eq!(
            [
                NR_REG_PIPE_MASTER,
                NR_REG_PIPE_SLAVE,
                NR_REG_NULL,
                NR_REG_ONE_SW
            ],
            [5, 6, 7, 8]
        );
        assert_eq!(
            [NR_MONITOR_TX, NR_MONITOR_RX, NR_ZCOPY_MON, NR_EXCLUSIVE],
            [0x100, 0x200, 0x400, 0x800]
        );
        assert_eq!(
            [
                NR_RX_RINGS_ONLY,
                NR_TX_RINGS_ONLY,
                NR_ACCEPT_VNET_HDR,
                NR_NO_TX_POLL
            ],
            [0x2000, 0x4000, 0x8000, 0x20000]
        );
        assert_eq!(
            [
                NS_BUF_CHANGED,
                NS_REPORT,
                NS_FORWARD,
                NS_NO_LEARN,
                NS_INDIRECT,
                NS_MOREFRAG
            ],
            [0x1, 0x2, 0x4, 0x8, 0x10, 0x20]
        );
        assert_eq!(NS_TXMON, 0x40);
        assert_eq!((NR_TIMESTAMP, NR_FORWARD), (0x2, 0x4));
        assert_eq!(NM_CACHE_ALIGN, 128);
    }

    #[test]
    fn ioctl_numbers_follow_the_linux_encoding() {
        // Computed from _IOWR/_IO with the struct's real size, then compared
        // with what gcc printed for the C macros.
        assert_eq!(NIOCCTRL, 0xc058_6997);
        assert_eq!(NIOCTXSYNC, 0x6994);
        assert_eq!(NIOCRXSYNC, 0x6995);
        // The pieces, so that a wrong size or number is named.
        assert_eq!(NIOCCTRL >> 30, 3, "direction: read and write");
        assert_eq!((NIOCCTRL >> 16) & 0x3fff, 88, "size of nmreq_header");
        assert_eq!((NIOCCTRL >> 8) & 0xff, u32::from(b'i'));
        assert_eq!(NIOCCTRL & 0xff, 151);
    }

    #[test]
    fn nmreq_header_layout() {
        assert_eq!(size_of::<nmreq_header>(), 88);
        assert_eq!(align_of::<nmreq_header>(), 8);
        assert_eq!(offset_of!(nmreq_header, nr_version), 0);
        assert_eq!(offset_of!(nmreq_header, nr_reqtype), 2);
        assert_eq!(offset_of!(nmreq_header, nr_reserved), 4);
        assert_eq!(offset_of!(nmreq_header, nr_name), 8);
        assert_eq!(offset_of!(nmreq_header, nr_options), 72);
        assert_eq!(offset_of!(nmreq_header, nr_body), 80);
    }

    #[test]
    fn nmreq_register_layout() {
        assert_eq!(size_of::<nmreq_register>(), 56);
        assert_eq!(align_of::<nmreq_register>(), 8);
        assert_eq!(offset_of!(nmreq_register, nr_offset), 0);
        assert_eq!(offset_of!(nmreq_register, nr_memsize), 8);
        assert_eq!(offset_of!(nmreq_register, nr_tx_slots), 16);
        assert_eq!(offset_of!(nmreq_register, nr_rx_slots), 20);
        assert_eq!(offset_of!(nmreq_register, nr_tx_rings), 24);
        assert_eq!(offset_of!(nmreq_register, nr_rx_rings), 26);
        assert_eq!(offset_of!(nmreq_register, nr_host_tx_rings), 28);
        assert_eq!(offset_of!(nmreq_register, nr_host_rx_rings), 30);
        assert_eq!(offset_of!(nmreq_register, nr_mem_id), 32);
        assert_eq!(offset_of!(nmreq_register, nr_ringid), 34);
        assert_eq!(offset_of!(nmreq_register, nr_mode), 36);
        assert_eq!(offset_of!(nmreq_register, nr_extra_bufs), 40);
        assert_eq!(offset_of!(nmreq_register, nr_flags), 48);
    }

    #[test]
    fn small_request_layouts() {
        assert_eq!(size_of::<nmreq_port_info_get>(), 32);
        assert_eq!(size_of::<nmreq_option>(), 24);
    }

    #[test]
    fn netmap_if_layout() {
        assert_eq!(size_of::<netmap_if>(), 56);
        assert_eq!(align_of::<netmap_if>(), 8);
        assert_eq!(offset_of!(netmap_if, ni_name), 0);
        assert_eq!(size_of::<[u8; IFNAMSIZ]>(), 16);
        assert_eq!(offset_of!(netmap_if, ni_version), 16);
        assert_eq!(offset_of!(netmap_if, ni_flags), 20);
        assert_eq!(offset_of!(netmap_if, ni_tx_rings), 24);
        assert_eq!(offset_of!(netmap_if, ni_rx_rings), 28);
        assert_eq!(offset_of!(netmap_if, ni_bufs_head), 32);
        assert_eq!(offset_of!(netmap_if, ni_host_tx_rings), 36);
        assert_eq!(offset_of!(netmap_if, ni_host_rx_rings), 40);
        assert_eq!(offset_of!(netmap_if, ni_spare1), 44);
        assert_eq!(offset_of!(netmap_if, ring_ofs), 56);
        assert_eq!(size_of::<isize>(), 8, "ring_ofs entries are ssize_t");
    }

    #[test]
    fn netmap_ring_layout() {
        assert_eq!(size_of::<netmap_ring>(), 256);
        assert_eq!(align_of::<netmap_ring>(), 128);
        assert_eq!(offset_of!(netmap_ring, buf_ofs), 0);
        assert_eq!(offset_of!(netmap_ring, num_slots), 8);
        assert_eq!(offset_of!(netmap_ring, nr_buf_size), 12);
        assert_eq!(offset_of!(netmap_ring, ringid), 16);
        assert_eq!(offset_of!(netmap_ring, dir), 18);
        assert_eq!(offset_of!(netmap_ring, head), 20);
        assert_eq!(offset_of!(netmap_ring, cur), 24);
        assert_eq!(offset_of!(netmap_ring, tail), 28);
        assert_eq!(offset_of!(netmap_ring, flags), 32);
        assert_eq!(offset_of!(netmap_ring, ts), 40);
        assert_eq!(size_of::<libc::timeval>(), 16);
        assert_eq!(offset_of!(netmap_ring, offset_mask), 56);
        assert_eq!(offset_of!(netmap_ring, buf_align), 64);
        assert_eq!(offset_of!(netmap_ring, sem), 128);
        assert_eq!(size_of::<CacheAligned<[u8; 128]>>(), 128);
        assert_eq!(offset_of!(netmap_ring, slot), 256);
        // The kernel's enum txrx, not netmap.h's comment on `dir`.
        assert_eq!((NR_RX, NR_TX), (0, 1));
    }

    #[test]
    fn netmap_slot_layout() {
        assert_eq!(size_of::<netmap_slot>(), 16);
        assert_eq!(align_of::<netmap_slot>(), 8);
        assert_eq!(offset_of!(netmap_slot, buf_idx), 0);
        assert_eq!(offset_of!(netmap_slot, len), 4);
        assert_eq!(offset_of!(netmap_slot, flags), 6);
        assert_eq!(offset_of!(netmap_slot, ptr), 8);
    }
}
