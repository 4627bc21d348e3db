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

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// enum bpf_cmd
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
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
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

const OBJ_NAME_LEN: usize = 16;
const PROGRAM_NAME: &[u8] = b"labctl_xsk";
const MAP_NAME: &[u8] = b"labctl_xsks";
const LICENSE: &CStr = c"Dual MIT/GPL";

/// struct bpf_insn: `regs` holds dst_reg in its low nibble and src_reg in
/// its high nibble (the C bitfields, on a little-endian machine).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
}

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

/// The BPF_MAP_CREATE part of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; OBJ_NAME_LEN],
}

/// The BPF_MAP_*_ELEM part of union bpf_attr.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The BPF_PROG_LOAD part of union bpf_attr (up to expected_attach_type).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

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

fn name(bytes: &[u8]) -> [u8; OBJ_NAME_LEN] {
    let mut name = [0; OBJ_NAME_LEN];
    let len = bytes.len().min(OBJ_NAME_LEN - 1);
    name[..len].copy_from_slice(&bytes[..len]);
    name
}

/// bpf(cmd, attr, sizeof attr). The kernel zero-fills the rest of its
/// larger union, so passing only the part a command uses is fine.
fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    loop {
        // SAFETY: attr points to a live, initialized #[repr(C)] prefix of
        // union bpf_attr of the size given; pointers inside it (insns,
        // license, log buffer, key, value) are valid for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T as *mut libc::c_void,
                std::mem::size_of::<T>() as libc::c_uint,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        // Program loads may be interrupted or ask to be retried.
        if !matches!(err.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
            return Err(err);
        }
    }
}

fn fd_from(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(ret)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bpf() returned no fd"))?;
    // SAFETY: on success these bpf() commands return a new descriptor
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

/// Why the program could not be loaded.
#[derive(Debug)]
pub(super) struct LoadError {
    pub(super) error: io::Error,
    /// The verifier's last line, when it rejected the program.
    pub(super) verifier: Option<String>,
}

/// The loaded redirect program.
pub(super) struct RedirectProgram {
    fd: OwnedFd,
}

impl RedirectProgram {
    pub(super) fn load(map: &XskMap) -> Result<RedirectProgram, LoadError> {
        let insns = redirect_program(map.fd.as_raw_fd());
        match Self::load_with_log(&insns, &mut []) {
            Ok(fd) => Ok(RedirectProgram { fd }),
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => Err(LoadError {
                error,
                verifier: None,
            }),
            Err(error) => {
                // Load again with the verifier's log, to say why.
                let mut log = vec![0u8; 64 * 1024];
                let _ = Self::load_with_log(&insns, &mut log);
                Err(LoadError {
                    error,
                    verifier: last_line(&log),
                })
            }
        }
    }

    fn load_with_log(insns: &[Insn], log: &mut [u8]) -> io::Result<OwnedFd> {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            prog_name: name(PROGRAM_NAME),
            expected_attach_type: BPF_XDP,
            ..Default::default()
        };
        fd_from(sys_bpf(BPF_PROG_LOAD, &mut attr)?)
    }
}

fn last_line(log: &[u8]) -> Option<String> {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
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
    fn instruction_is_eight_bytes_with_registers_in_nibbles() {
        assert_eq!(size_of::<Insn>(), 8);
        let insn = Insn::new(0x61, 2, 1, 16, 0);
        // SAFETY: Insn is #[repr(C)], 8 bytes, no padding.
        let bytes: [u8; 8] = unsafe { std::mem::transmute(insn) };
        assert_eq!(bytes, [0x61, 0x12, 16, 0, 0, 0, 0, 0]);
    }

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

        assert_eq!(offset_of!(ProgLoadAttr, insns), 8);
        assert_eq!(offset_of!(ProgLoadAttr, license), 16);
        assert_eq!(offset_of!(ProgLoadAttr, log_level), 24);
        assert_eq!(offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(offset_of!(ProgLoadAttr, kern_version), 40);
        assert_eq!(offset_of!(ProgLoadAttr, prog_flags), 44);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, prog_ifindex), 64);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<ProgLoadAttr>(), 72);

        assert_eq!(offset_of!(ObjAttr, bpf_fd), 8);
        assert_eq!(offset_of!(ObjAttr, file_flags), 12);
        assert_eq!(size_of::<ObjAttr>(), 16);

        assert_eq!(offset_of!(LinkCreateAttr, target_ifindex), 4);
        assert_eq!(offset_of!(LinkCreateAttr, attach_type), 8);
        assert_eq!(offset_of!(LinkCreateAttr, flags), 12);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
    }

    #[test]
    fn object_names_are_truncated_and_nul_terminated() {
        assert_eq!(&name(b"labctl_xsk")[..11], b"labctl_xsk\0");
        let long = name(b"a_name_longer_than_sixteen");
        assert_eq!(long[15], 0);
        assert_eq!(&long[..15], b"a_name_longer_t");
    }

    #[test]
    fn verifier_log_gives_its_last_line() {
        let log = b"0: R1=ctx() R10=fp0\ninvalid bpf_context access off=99\n\n\0garbage";
        assert_eq!(
            last_line(log).as_deref(),
            Some("invalid bpf_context access off=99")
        );
        assert_eq!(last_line(b"\0"), None);
    }
}
