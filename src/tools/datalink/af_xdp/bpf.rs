//! The eBPF side of the af_xdp datalink, straight on the bpf(2) syscall:
//! an XSKMAP holding our socket, a six-instruction XDP program that
//! redirects every frame into it, and a BPF link that attaches the program
//! to the interface.
//!
//! The link is what keeps a lab clean: the program stays attached only as
//! long as the link's file descriptor is open, so it goes away when the
//! tool exits, however it exits (SIGKILL and panics included). A tool
//! pins nothing, so it leaves nothing for anyone to detach. labctl itself
//! (on the host, for a Docker node without CAP_BPF) pins the map where the
//! node finds it, and the link where only the host does
//! (`super::host`); it removes both at teardown.
//!
//! Numbers and layouts are those of include/uapi/linux/bpf.h; the tests at
//! the bottom check every offset against that header.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) use crate::bpf::LoadError;
use crate::bpf::{
    fd_from, name, sys_bpf, Insn, Program, BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_IMM, BPF_JMP,
    BPF_K, BPF_LD, BPF_LDX, BPF_MEM, BPF_MOV, BPF_W,
};

// enum bpf_cmd
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_OBJ_PIN: libc::c_int = 6;
const BPF_OBJ_GET: libc::c_int = 7;
const BPF_LINK_CREATE: libc::c_int = 28;
// BPF_MAP_UPDATE_ELEM flags: only if the key has no value yet.
const BPF_NOEXIST: u64 = 1;
// enum bpf_map_type
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
// enum bpf_prog_type
const BPF_PROG_TYPE_XDP: u32 = 6;
// enum bpf_attach_type
const BPF_XDP: u32 = 37;
// The bpf_redirect_map helper, by its number in __BPF_FUNC_MAPPER.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
// enum xdp_action
const XDP_PASS: i32 = 2;
// include/uapi/linux/if_link.h
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
// ld_imm64 with this source register loads a map by file descriptor.
const BPF_PSEUDO_MAP_FD: u8 = 1;
// offsetof(struct xdp_md, rx_queue_index)
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

// Instruction encoding (classes, sizes and modes shared with classic BPF).
const PROGRAM_NAME: &[u8] = b"labctl_xsk";
const MAP_NAME: &[u8] = b"labctl_xsks";

/// The XDP program:
///
/// ```text
/// r2 = *(u32 *)(r1 + offsetof(xdp_md, rx_queue_index))
/// r1 = map[xsk_map_fd]                  ; ld_imm64, two slots
/// r3 = XDP_PASS                         ; what to do when the map has no socket
/// call bpf_redirect_map                 ; r0 = XDP_REDIRECT, or r3
/// exit
/// ```
///
/// The fallback is XDP_PASS (what libxdp's default program does too): a
/// frame is taken away from the kernel only when our socket is in the map
/// for its queue, so a half-set-up or closing datalink never black-holes
/// the interface. The socket is put in the map before the program is
/// attached and the interface is checked to have a single queue, so while
/// the datalink is open, every frame goes to the socket.
pub(super) fn redirect_program(xsk_map_fd: i32) -> [Insn; 6] {
    [
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        Insn::new(
            BPF_LD | BPF_IMM | BPF_DW,
            1,
            BPF_PSEUDO_MAP_FD,
            0,
            xsk_map_fd,
        ),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, XDP_PASS),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

// The map attributes are bpf.rs's (one layout of union bpf_attr).
use crate::bpf::{MapCreateAttr, MapElemAttr};

/// The BPF_OBJ_PIN / BPF_OBJ_GET part of union bpf_attr.
#[repr(C)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// The BPF_LINK_CREATE part of union bpf_attr (the fields XDP uses).
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// An XSKMAP with one entry: queue 0 -> our socket.
pub(super) struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    pub(super) fn create() -> io::Result<XskMap> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            map_name: name(MAP_NAME),
            ..Default::default()
        };
        let fd = fd_from(sys_bpf(BPF_MAP_CREATE, &mut attr)?)?;
        Ok(XskMap { fd })
    }

    /// The map pinned at `path` in a bpffs (by labctl, on the host), read
    /// and write. Needs no capability (Linux 6.5 or later, or
    /// `kernel.unprivileged_bpf_disabled = 0`): the pin's file
    /// permissions decide.
    pub(super) fn open_pinned(path: &Path) -> io::Result<XskMap> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the pin's path"))?;
        let mut attr = ObjAttr {
            pathname: path.as_ptr() as u64,
            bpf_fd: 0,
            // Read and write.
            file_flags: 0,
        };
        let fd = fd_from(sys_bpf(BPF_OBJ_GET, &mut attr)?)?;
        Ok(XskMap { fd })
    }

    /// Pins the map at `path`, in a bpffs.
    pub(super) fn pin(&self, path: &Path) -> io::Result<()> {
        pin(self.fd.as_fd(), path)
    }

    /// Makes frames of `queue` go to `socket`.
    pub(super) fn insert(&self, queue: u32, socket: BorrowedFd<'_>) -> io::Result<()> {
        self.update(queue, socket, 0)
    }

    /// As [`XskMap::insert`], but fails with EEXIST when `queue` already
    /// has a socket (another process's, in a shared map): the kernel drops
    /// a socket's entries when it is closed, so that one is alive.
    pub(super) fn insert_new(&self, queue: u32, socket: BorrowedFd<'_>) -> io::Result<()> {
        self.update(queue, socket, BPF_NOEXIST)
    }

    fn update(&self, queue: u32, socket: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
        let value: u32 = socket.as_raw_fd() as u32;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: &queue as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags,
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// Empties the entry of `queue`: its frames go to the kernel again.
    pub(super) fn remove(&self, queue: u32) -> io::Result<()> {
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: &queue as *const u32 as u64,
            value: 0,
            flags: 0,
        };
        sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
    }
}

/// BPF_OBJ_PIN: the object `fd` stays alive as long as the file at `path`
/// (in a bpffs) does.
fn pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the pin's path"))?;
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    sys_bpf(BPF_OBJ_PIN, &mut attr).map(drop)
}

/// The loaded redirect program.
pub(super) struct RedirectProgram {
    fd: OwnedFd,
}

impl RedirectProgram {
    pub(super) fn load(map: &XskMap) -> Result<RedirectProgram, LoadError> {
        let insns = redirect_program(map.fd.as_raw_fd());
        let fd = Program {
            prog_type: BPF_PROG_TYPE_XDP,
            expected_attach_type: BPF_XDP,
            name: PROGRAM_NAME,
            insns: &insns,
        }
        .load()?;
        Ok(RedirectProgram { fd })
    }
}

/// Where the program runs: in the driver, or after the kernel built an
/// skb (generic XDP, any interface, slower).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    Native,
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

/// The program attached to an interface; closing it detaches.
pub(super) struct XdpLink {
    fd: OwnedFd,
}

impl XdpLink {
    pub(super) fn attach(
        program: &RedirectProgram,
        ifindex: u32,
        mode: XdpMode,
    ) -> io::Result<XdpLink> {
        let mut attr = LinkCreateAttr {
            prog_fd: program.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: mode.flags(),
        };
        let fd = fd_from(sys_bpf(BPF_LINK_CREATE, &mut attr)?)?;
        Ok(XdpLink { fd })
    }

    /// Pins the link at `path` (in a bpffs): the program then stays
    /// attached after this process ends, until the pin is removed or the
    /// interface goes.
    pub(super) fn pin(&self, path: &Path) -> io::Result<()> {
        pin(self.fd.as_fd(), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn redirect_program_encodes_as_the_kernel_expects() {
        let program = redirect_program(7);
        // SAFETY: [Insn; 6] is 48 plain bytes.
        let bytes: [u8; 48] = unsafe { std::mem::transmute(program) };
        #[rustfmt::skip]
        let expected: [u8; 48] = [
            0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u32 *)(r1 + 16)
            0x18, 0x11, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // r1 = map_fd 7 (ld_imm64 ...
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   ... upper half)
            0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // r3 = XDP_PASS
            0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, // call bpf_redirect_map (51)
            0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn attr_layouts_match_union_bpf_attr() {
        // Offsets from include/uapi/linux/bpf.h (union bpf_attr).
        assert_eq!(offset_of!(MapCreateAttr, max_entries), 12);
        assert_eq!(offset_of!(MapCreateAttr, numa_node), 24);
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(size_of::<MapCreateAttr>(), 44);

        assert_eq!(offset_of!(MapElemAttr, key), 8);
        assert_eq!(offset_of!(MapElemAttr, value), 16);
        assert_eq!(offset_of!(MapElemAttr, flags), 24);
        assert_eq!(size_of::<MapElemAttr>(), 32);

        assert_eq!(offset_of!(ObjAttr, bpf_fd), 8);
        assert_eq!(offset_of!(ObjAttr, file_flags), 12);
        assert_eq!(size_of::<ObjAttr>(), 16);

        assert_eq!(offset_of!(LinkCreateAttr, target_ifindex), 4);
        assert_eq!(offset_of!(LinkCreateAttr, attach_type), 8);
        assert_eq!(offset_of!(LinkCreateAttr, flags), 12);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
    }
}
