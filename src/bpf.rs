//! The bpf(2) syscall, bare: instruction encoding, the program-load
//! attributes and loading with the verifier's log. Below every other
//! module: the af_xdp datalink (`tools::datalink::af_xdp::bpf`: its XDP
//! program, XSKMAP and link) and the loss impairment (`links::impair`: a
//! tc classifier) both load their programs through it.
//!
//! Numbers and layouts are those of include/uapi/linux/bpf.h; the tests at
//! the bottom check every offset against that header.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

// enum bpf_cmd
pub const BPF_PROG_LOAD: libc::c_int = 5;

// Instruction classes, sizes, modes, sources and operations.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_ALU64: u8 = 0x07;
pub const BPF_W: u8 = 0x00;
pub const BPF_DW: u8 = 0x18;
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
pub const BPF_MOV: u8 = 0xb0;
pub const BPF_JLT: u8 = 0xa0;
pub const BPF_CALL: u8 = 0x80;
pub const BPF_EXIT: u8 = 0x90;

pub const OBJ_NAME_LEN: usize = 16;
/// GPL-compatible, so the programs may call every helper they use.
pub const LICENSE: &CStr = c"Dual MIT/GPL";

/// struct bpf_insn: `regs` holds dst_reg in its low nibble and src_reg in
/// its high nibble (the C bitfields, on a little-endian machine).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
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

/// An object name: truncated to fit, NUL-terminated.
pub fn name(bytes: &[u8]) -> [u8; OBJ_NAME_LEN] {
    let mut name = [0; OBJ_NAME_LEN];
    let len = bytes.len().min(OBJ_NAME_LEN - 1);
    name[..len].copy_from_slice(&bytes[..len]);
    name
}

/// bpf(cmd, attr, sizeof attr). The kernel zero-fills the rest of its
/// larger union, so passing only the part a command uses is fine. `T`
/// must be the `#[repr(C)]` prefix of union bpf_attr that `cmd` reads,
/// with every pointer in it valid for the call.
pub(crate) fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
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

/// The descriptor a successful bpf() command returned.
pub(crate) fn fd_from(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(ret)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bpf() returned no fd"))?;
    // SAFETY: on success these bpf() commands return a new descriptor
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What to load: a program of `prog_type` (with `expected_attach_type`,
/// 0 where the type takes none) named `name`.
pub struct Program<'a> {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub name: &'a [u8],
    pub insns: &'a [Insn],
}

/// Why a program could not be loaded.
#[derive(Debug)]
pub struct LoadError {
    pub error: io::Error,
    /// The verifier's last line, when it rejected the program.
    pub verifier: Option<String>,
}

impl Program<'_> {
    /// Loads the program; when the verifier refuses it, loads it again
    /// with the verifier's log to say why (a refusal for lack of
    /// privilege has no log to read).
    pub fn load(&self) -> Result<OwnedFd, LoadError> {
        match self.load_with_log(&mut []) {
            Ok(fd) => Ok(fd),
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => Err(LoadError {
                error,
                verifier: None,
            }),
            Err(error) => {
                let mut log = vec![0u8; 64 * 1024];
                let _ = self.load_with_log(&mut log);
                Err(LoadError {
                    error,
                    verifier: last_line(&log),
                })
            }
        }
    }

    fn load_with_log(&self, log: &mut [u8]) -> io::Result<OwnedFd> {
        let mut attr = ProgLoadAttr {
            prog_type: self.prog_type,
            insn_cnt: self.insns.len() as u32,
            insns: self.insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            prog_name: name(self.name),
            expected_attach_type: self.expected_attach_type,
            ..Default::default()
        };
        fd_from(sys_bpf(BPF_PROG_LOAD, &mut attr)?)
    }
}

/// The verifier log's last line that says something.
pub fn last_line(log: &[u8]) -> Option<String> {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
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
    fn prog_load_attr_matches_union_bpf_attr() {
        // Offsets from include/uapi/linux/bpf.h (union bpf_attr).
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
