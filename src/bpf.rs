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
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// enum bpf_cmd
pub const BPF_MAP_CREATE: libc::c_int = 0;
pub const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
pub const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
pub const BPF_PROG_LOAD: libc::c_int = 5;
/// Also called BPF_PROG_RUN.
pub const BPF_PROG_TEST_RUN: libc::c_int = 10;

// enum bpf_map_type
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
// enum bpf_prog_type, enum bpf_attach_type
pub const BPF_PROG_TYPE_XDP: u32 = 6;
pub const BPF_XDP: u32 = 37;
// enum xdp_action
pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;
pub const XDP_TX: i32 = 3;
/// BPF_PROG_TEST_RUN of an XDP program: transmit (XDP_TX, XDP_REDIRECT)
/// or pass up the stack (XDP_PASS) what it returns (Linux 5.18+).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// The most frames one live-frames batch (`batch_size`) may hold.
pub const TEST_XDP_MAX_BATCH: u32 = 256;
/// Helpers, by their numbers in __BPF_FUNC_MAPPER.
pub const BPF_FUNC_KTIME_GET_NS: i32 = 5;
/// ld_imm64 with this source register loads the address of a map's value
/// (an array of one entry: `imm` is the map's fd, the second slot's
/// `imm` the offset in the value).
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;

// Instruction classes, sizes, modes, sources and operations.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_ALU64: u8 = 0x07;
pub const BPF_W: u8 = 0x00;
pub const BPF_H: u8 = 0x08;
pub const BPF_DW: u8 = 0x18;
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
pub const BPF_ADD: u8 = 0x00;
pub const BPF_SUB: u8 = 0x10;
pub const BPF_DIV: u8 = 0x30;
pub const BPF_LSH: u8 = 0x60;
pub const BPF_AND: u8 = 0x50;
pub const BPF_RSH: u8 = 0x70;
pub const BPF_MOD: u8 = 0x90;
pub const BPF_XOR: u8 = 0xa0;
pub const BPF_MOV: u8 = 0xb0;
/// Byte swap (class BPF_ALU); `imm` is the width, 16, 32 or 64.
pub const BPF_END: u8 = 0xd0;
/// With BPF_END: to big-endian (a swap on this little-endian machine).
pub const BPF_TO_BE: u8 = 0x08;
pub const BPF_JA: u8 = 0x00;
pub const BPF_JEQ: u8 = 0x10;
pub const BPF_JGT: u8 = 0x20;
pub const BPF_JGE: u8 = 0x30;
pub const BPF_JNE: u8 = 0x50;
pub const BPF_JLT: u8 = 0xa0;
pub const BPF_JLE: u8 = 0xb0;
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

/// The few instruction forms the hand-assembled programs (lab-gen's live
/// frames, lab-sink's counter) are written in, and the registers' names.
pub mod asm {
    use super::*;

    pub const R0: u8 = 0;
    pub const R1: u8 = 1;
    pub const R2: u8 = 2;
    pub const R3: u8 = 3;
    pub const R4: u8 = 4;
    pub const R5: u8 = 5;
    pub const R6: u8 = 6;
    pub const R7: u8 = 7;
    pub const R8: u8 = 8;
    pub const R9: u8 = 9;
    /// The read-only frame pointer.
    pub const FP: u8 = 10;

    /// `dst op= imm`, 64 bits.
    pub fn alu64_k(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
    }
    /// `dst op= src`, 64 bits.
    pub fn alu64_x(op: u8, dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
    }
    pub fn mov_k(dst: u8, imm: i32) -> Insn {
        alu64_k(BPF_MOV, dst, imm)
    }
    pub fn mov_x(dst: u8, src: u8) -> Insn {
        alu64_x(BPF_MOV, dst, src)
    }
    /// `dst = *(size *)(src + off)`.
    pub fn load(size: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = src`.
    pub fn store(size: u8, dst: u8, off: i16, src: u8) -> Insn {
        Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0)
    }
    /// `dst = htobe<bits>(dst)`.
    pub fn to_be(dst: u8, bits: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits)
    }
    /// A call of kernel helper number `helper`.
    pub fn call(helper: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
    }

    /// A program being written: instructions, and jumps to labels (`L`,
    /// the program's own enum) whose offsets [`Assembler::finish`] fills in.
    pub struct Assembler<L> {
        insns: Vec<Insn>,
        fixups: Vec<(usize, L)>,
        labels: Vec<(L, usize)>,
    }

    impl<L> Default for Assembler<L> {
        fn default() -> Self {
            Assembler {
                insns: Vec::new(),
                fixups: Vec::new(),
                labels: Vec::new(),
            }
        }
    }

    impl<L: PartialEq> Assembler<L> {
        pub fn op(&mut self, insn: Insn) {
            self.insns.push(insn);
        }
        pub fn ops(&mut self, insns: &[Insn]) {
            self.insns.extend_from_slice(insns);
        }
        /// `insn`, a jump whose offset goes to `to`.
        pub fn jump(&mut self, insn: Insn, to: L) {
            self.fixups.push((self.insns.len(), to));
            self.insns.push(insn);
        }
        /// `if reg op imm goto to`.
        pub fn jk(&mut self, op: u8, reg: u8, imm: i32, to: L) {
            self.jump(Insn::new(BPF_JMP | op | BPF_K, reg, 0, 0, imm), to);
        }
        /// `if reg op src goto to`.
        pub fn jx(&mut self, op: u8, reg: u8, src: u8, to: L) {
            self.jump(Insn::new(BPF_JMP | op | BPF_X, reg, src, 0, 0), to);
        }
        pub fn goto(&mut self, to: L) {
            self.jump(Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0), to);
        }
        /// Places `label` at the next instruction.
        pub fn label(&mut self, label: L) {
            self.labels.push((label, self.insns.len()));
        }
        /// The instructions, every jump's offset filled in.
        pub fn finish(mut self) -> Vec<Insn> {
            for (at, to) in &self.fixups {
                let target = self
                    .labels
                    .iter()
                    .find(|(label, _)| label == to)
                    .map(|(_, at)| *at)
                    .expect("every label is placed");
                self.insns[*at].off = (target as i64 - *at as i64 - 1) as i16;
            }
            self.insns
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

/// bpf(cmd, attr, sizeof attr), once, whatever it returns.
fn sys_bpf_once<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: as in sys_bpf.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
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

impl Insn {
    /// The two slots of `dst = imm64` loading something by `src`'s
    /// pseudo meaning (a map's fd and an offset).
    pub const fn ld_imm64(dst: u8, src: u8, imm: i32, next_imm: i32) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, src, 0, imm),
            Insn::new(0, 0, 0, 0, next_imm),
        ]
    }
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

/// The BPF_MAP_CREATE part of union bpf_attr (up to map_name).
#[repr(C)]
#[derive(Default)]
pub struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    pub map_name: [u8; OBJ_NAME_LEN],
}

/// The BPF_MAP_*_ELEM part of union bpf_attr.
#[repr(C)]
pub struct MapElemAttr {
    pub map_fd: u32,
    pub _pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}

/// An array map of one entry of `size` bytes: a program's state, which
/// it reaches without a helper call ([`BPF_PSEUDO_MAP_VALUE`]) and
/// userspace reads and writes whole.
pub struct SingleValue {
    fd: OwnedFd,
    size: usize,
}

impl SingleValue {
    pub fn create(name_bytes: &[u8], size: usize) -> io::Result<SingleValue> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: size as u32,
            max_entries: 1,
            map_name: name(name_bytes),
            ..Default::default()
        };
        let fd = fd_from(sys_bpf(BPF_MAP_CREATE, &mut attr)?)?;
        Ok(SingleValue { fd, size })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn read(&self) -> io::Result<Vec<u8>> {
        let key: u32 = 0;
        let mut value = vec![0u8; self.size];
        let mut attr = MapElemAttr {
            map_fd: self.fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: value.as_mut_ptr() as u64,
            flags: 0,
        };
        sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
        Ok(value)
    }

    /// Writes the value: `bytes` must be the map's size.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a value of another size than the map's",
            ));
        }
        let key: u32 = 0;
        let mut attr = MapElemAttr {
            map_fd: self.fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: bytes.as_ptr() as u64,
            flags: 0,
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }
}

/// struct xdp_md, the context of an XDP program (what a test run takes
/// as `ctx_in`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// The BPF_PROG_TEST_RUN part of union bpf_attr (`test`).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// One BPF_PROG_TEST_RUN of an XDP program.
pub struct XdpTestRun<'a> {
    pub program: BorrowedFd<'a>,
    /// The frame the program is given (in live mode: the template every
    /// frame starts from).
    pub data: &'a [u8],
    /// Where the program's frame is written back (not in live mode).
    pub data_out: Option<&'a mut [u8]>,
    pub ingress_ifindex: u32,
    pub repeat: u32,
    /// 0, or [`BPF_F_TEST_XDP_LIVE_FRAMES`].
    pub flags: u32,
    /// Frames per batch in live mode (0: the kernel's 64).
    pub batch_size: u32,
}

impl XdpTestRun<'_> {
    /// Runs the program; returns its last return value.
    pub fn run(self) -> io::Result<u32> {
        let md = XdpMd {
            data_end: self.data.len() as u32,
            ingress_ifindex: self.ingress_ifindex,
            ..Default::default()
        };
        let (data_out, data_size_out) = match self.data_out {
            Some(out) => (out.as_mut_ptr() as u64, out.len() as u32),
            None => (0, 0),
        };
        let mut attr = TestRunAttr {
            prog_fd: self.program.as_raw_fd() as u32,
            data_size_in: self.data.len() as u32,
            data_size_out,
            data_in: self.data.as_ptr() as u64,
            data_out,
            repeat: self.repeat,
            ctx_size_in: std::mem::size_of::<XdpMd>() as u32,
            ctx_in: &md as *const XdpMd as u64,
            flags: self.flags,
            batch_size: self.batch_size,
            ..Default::default()
        };
        // Not retried on EINTR: a signal stops a live run part of the way
        // (the caller learns how far from its program's own counter), and
        // running the whole `repeat` again would send too many frames.
        sys_bpf_once(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok(attr.retval)
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
    fn test_run_and_map_attrs_match_union_bpf_attr() {
        // struct { ... } test, of include/uapi/linux/bpf.h.
        assert_eq!(offset_of!(TestRunAttr, data_size_in), 8);
        assert_eq!(offset_of!(TestRunAttr, data_in), 16);
        assert_eq!(offset_of!(TestRunAttr, data_out), 24);
        assert_eq!(offset_of!(TestRunAttr, repeat), 32);
        assert_eq!(offset_of!(TestRunAttr, ctx_size_in), 40);
        assert_eq!(offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(offset_of!(TestRunAttr, flags), 64);
        assert_eq!(offset_of!(TestRunAttr, cpu), 68);
        assert_eq!(offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(size_of::<TestRunAttr>(), 80);
        assert_eq!(size_of::<XdpMd>(), 24);
        assert_eq!(offset_of!(XdpMd, ingress_ifindex), 12);
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(offset_of!(MapElemAttr, value), 16);
    }

    #[test]
    fn ld_imm64_takes_two_slots() {
        let [first, second] = Insn::ld_imm64(1, BPF_PSEUDO_MAP_VALUE, 7, 0);
        assert_eq!((first.code, first.regs, first.imm), (0x18, 0x21, 7));
        assert_eq!((second.code, second.regs, second.imm), (0, 0, 0));
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
