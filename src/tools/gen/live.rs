//! lab-gen's fast path: XDP "live frames" (`BPF_PROG_RUN` with
//! `BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18+).
//!
//! The kernel runs a small XDP program of ours `repeat` times on copies of
//! one template frame and transmits what it returns XDP_TX for out of the
//! interface (through the driver's `ndo_xdp_xmit`): no skb is built, no
//! frame crosses the user/kernel boundary, one system call sends a whole
//! batch. The program stamps each frame as lab-gen's other paths do
//! (`crate::tools::traffic`): it takes the frame's index from its state
//! map ([`state`], one array value reached without a helper call),
//! derives the flow (source port
//! `BASE_PORT + index % flows`) and the flow's sequence number
//! (`index / flows`), writes the send time (`bpf_ktime_get_ns`,
//! CLOCK_MONOTONIC, per frame rather than per batch) and the UDP checksum
//! (the template's sum without those fields, plus them).
//!
//! The state also holds the run's schedule (its count, its end, when the
//! next frame is due), because a call of more than one copy costs ~30 ms
//! here ([`BULK_RUNS`]): the program drops the copies not due, and a call
//! runs a million of them. It is also how lab-gen knows how many frames
//! went: a signal ends a call part of the way, and the state says where.
//!
//! Nothing is attached to the interface and nothing is pinned: the
//! program and the map go with the process, however it ends.
//!
//! What it needs: CAP_BPF and CAP_NET_ADMIN (to load an XDP program), a
//! kernel with live frames, a frame that fits a page (the kernel refuses
//! larger ones), no qdisc of the interface's own (`ndo_xdp_xmit` skips
//! it, as AF_XDP does), and on a veth a peer that takes XDP frames: one
//! with an XDP program (an af_xdp tool, an XDP drop), or with GRO or
//! threaded NAPI on. A veth whose peer does not take them drops them; the
//! generator probes with its first frame and falls back.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::bpf::asm::*;
use crate::bpf::{
    Insn, LoadError, Program, SingleValue, XdpTestRun, BPF_ADD, BPF_ALU, BPF_AND, BPF_CALL,
    BPF_DIV, BPF_DW, BPF_EXIT, BPF_FUNC_KTIME_GET_NS, BPF_F_TEST_XDP_LIVE_FRAMES, BPF_H, BPF_JEQ,
    BPF_JGE, BPF_JGT, BPF_JLE, BPF_JLT, BPF_JMP, BPF_JNE, BPF_K, BPF_LSH, BPF_MOD, BPF_MOV,
    BPF_PROG_TYPE_XDP, BPF_PSEUDO_MAP_VALUE, BPF_RSH, BPF_SUB, BPF_W, BPF_X, BPF_XDP, BPF_XOR,
    XDP_DROP, XDP_TX,
};
use crate::tools::traffic::{Stamp, Template, MIN_FRAME, SENT_AT, SEQ_AT, UDP_AT};

/// The frames one live-frames batch holds: the kernel's default. A veth
/// takes `ndo_xdp_xmit` frames into a ring of 256 per queue, drained by
/// its peer's NAPI after each batch: larger batches would overflow it.
pub const BATCH: u32 = 64;
/// The largest frame the kernel runs live: a page less its headroom
/// (256 + its own page header, 64) and the tail it keeps for an skb's
/// shared info (320).
pub const MAX_FRAME: usize = 4096 - 256 - 64 - 320;
const PROGRAM_NAME: &[u8] = b"labctl_gen";
const STATE_NAME: &[u8] = b"labctl_gen";

/// Why the live path cannot run here: the generator says it in one line
/// and falls back to the datalink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the program needs to stamp a run's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampPlan {
    pub flows: u16,
    pub base_port: u16,
    /// [`Template::sum_without_port_seq_time`] of the run's session.
    pub base_sum: u32,
}

/// The program's state, one map value that userspace writes before a run
/// and reads after it (little-endian `u64`s at these offsets).
pub mod state {
    /// The index of the next frame: frames stamped so far.
    pub const NEXT: i16 = 0;
    /// No frame is stamped at or past this index (`--count`).
    pub const LIMIT: i16 = 8;
    /// Nor at or after this CLOCK_MONOTONIC time (`--duration`).
    pub const END_NS: i16 = 16;
    /// When the next frame is due (paced); earlier runs drop.
    pub const NEXT_DUE_NS: i16 = 24;
    /// Nanoseconds between frames (`1e9 / --rate`), whole part; 0: unpaced.
    pub const INTERVAL_NS: i16 = 32;
    /// Its fraction, in 2^-32 ns.
    pub const INTERVAL_FRAC: i16 = 40;
    /// The fractions accumulated so far.
    pub const FRAC_ACC: i16 = 48;
    /// How far behind its schedule the program may fall before it
    /// forgives the debt (the pacer's 20 ms).
    pub const DEPTH_NS: i16 = 56;
    /// When the last frame was stamped (written by the program).
    pub const LAST_NS: i16 = 64;
    pub const SIZE: usize = 72;
}

/// Where a jump goes, patched once the program is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Drop,
    Advance,
    Stamp,
}

/// The stamping program, for the state map `state_fd` (see [`state`]):
///
/// ```text
/// r9 = r1 ; call bpf_ktime_get_ns ; r6 = r0   ; the send time
/// r2 = ctx->data ; r3 = ctx->data_end
/// if r2 + 62 > r3 goto drop                   ; (never: frames are 62 or more)
/// r1 = &state ; r7 = state.next
/// if r7 >= state.limit goto drop ; if r6 >= state.end_ns goto drop
/// r3 = state.interval_ns ; if r3 == 0 goto stamp          ; unpaced
/// r4 = state.next_due_ns ; if r6 < r4 goto drop           ; not due yet
/// if r6 - state.depth_ns > r4: r4 = r6 - state.depth_ns   ; forgive old debt
/// advance: state.next_due_ns = r4 + r3 + carry of state.frac_acc += frac
/// stamp: state.next = r7 + 1 ; state.last_ns = r6
/// r8 = r7 / flows ; r7 = r7 % flows + base_port   ; seq, port
/// r8 = (u32) r8
/// r5 = base_sum + port + seq's two words + time's four words
/// fold r5 to 16 bits three times ; r5 ^= 0xffff ; 0 -> 0xffff
/// store port, seq, time, checksum, big-endian ; return XDP_TX
/// drop: return XDP_DROP
/// ```
///
/// A run that is not due yet, past its limit or its end drops the copy
/// without numbering it: the kernel's loop is the pacing's spin.
pub fn program(state_fd: i32, plan: StampPlan) -> Vec<Insn> {
    let mut a = Assembler::default();
    for insn in [
        alu64_x(BPF_MOV, R9, R1),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_KTIME_GET_NS),
        alu64_x(BPF_MOV, R6, R0),
        load(BPF_W, R2, R9, 0),
        load(BPF_W, R3, R9, 4),
        alu64_x(BPF_MOV, R4, R2),
        alu64_k(BPF_ADD, R4, MIN_FRAME as i32),
    ] {
        a.op(insn);
    }
    a.jump(
        Insn::new(BPF_JMP | BPF_JGT | BPF_X, R4, R3, 0, 0),
        Label::Drop,
    );
    for insn in Insn::ld_imm64(R1, BPF_PSEUDO_MAP_VALUE, state_fd, 0) {
        a.op(insn);
    }
    a.op(load(BPF_DW, R7, R1, state::NEXT));
    a.op(load(BPF_DW, R4, R1, state::LIMIT));
    a.jump(
        Insn::new(BPF_JMP | BPF_JGE | BPF_X, R7, R4, 0, 0),
        Label::Drop,
    );
    a.op(load(BPF_DW, R4, R1, state::END_NS));
    a.jump(
        Insn::new(BPF_JMP | BPF_JGE | BPF_X, R6, R4, 0, 0),
        Label::Drop,
    );
    a.op(load(BPF_DW, R3, R1, state::INTERVAL_NS));
    a.jump(
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, R3, 0, 0, 0),
        Label::Stamp,
    );
    a.op(load(BPF_DW, R4, R1, state::NEXT_DUE_NS));
    a.jump(
        Insn::new(BPF_JMP | BPF_JLT | BPF_X, R6, R4, 0, 0),
        Label::Drop,
    );
    a.op(alu64_x(BPF_MOV, R5, R6));
    a.op(load(BPF_DW, R8, R1, state::DEPTH_NS));
    a.op(alu64_x(BPF_SUB, R5, R8));
    a.jump(
        Insn::new(BPF_JMP | BPF_JLE | BPF_X, R5, R4, 0, 0),
        Label::Advance,
    );
    a.op(alu64_x(BPF_MOV, R4, R5));
    a.label(Label::Advance);
    for insn in [
        alu64_x(BPF_ADD, R4, R3),
        load(BPF_DW, R5, R1, state::FRAC_ACC),
        load(BPF_DW, R8, R1, state::INTERVAL_FRAC),
        alu64_x(BPF_ADD, R5, R8),
        alu64_x(BPF_MOV, R8, R5),
        alu64_k(BPF_RSH, R8, 32),
        alu64_x(BPF_ADD, R4, R8),
        alu64_k(BPF_LSH, R5, 32),
        alu64_k(BPF_RSH, R5, 32),
        store(BPF_DW, R1, state::FRAC_ACC, R5),
        store(BPF_DW, R1, state::NEXT_DUE_NS, R4),
    ] {
        a.op(insn);
    }
    a.label(Label::Stamp);
    for insn in [
        alu64_x(BPF_MOV, R8, R7),
        alu64_k(BPF_ADD, R8, 1),
        store(BPF_DW, R1, state::NEXT, R8),
        store(BPF_DW, R1, state::LAST_NS, R6),
        alu64_x(BPF_MOV, R8, R7),
    ] {
        a.op(insn);
    }
    if plan.flows > 1 {
        a.op(alu64_k(BPF_DIV, R8, i32::from(plan.flows)));
        a.op(alu64_k(BPF_MOD, R7, i32::from(plan.flows)));
    } else {
        a.op(alu64_k(BPF_MOV, R7, 0));
    }
    for insn in [
        alu64_k(BPF_ADD, R7, i32::from(plan.base_port)),
        // The 32-bit sequence number (a 32-bit move zero-extends).
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, R8, R8, 0, 0),
        alu64_k(BPF_MOV, R5, plan.base_sum as i32),
        alu64_x(BPF_ADD, R5, R7),
        alu64_x(BPF_MOV, R4, R8),
        alu64_k(BPF_AND, R4, 0xffff),
        alu64_x(BPF_ADD, R5, R4),
        alu64_x(BPF_MOV, R4, R8),
        alu64_k(BPF_RSH, R4, 16),
        alu64_x(BPF_ADD, R5, R4),
    ] {
        a.op(insn);
    }
    for shift in [0, 16, 32, 48] {
        a.op(alu64_x(BPF_MOV, R4, R6));
        if shift > 0 {
            a.op(alu64_k(BPF_RSH, R4, shift));
        }
        if shift < 48 {
            a.op(alu64_k(BPF_AND, R4, 0xffff));
        }
        a.op(alu64_x(BPF_ADD, R5, R4));
    }
    for _ in 0..3 {
        for insn in [
            alu64_x(BPF_MOV, R4, R5),
            alu64_k(BPF_RSH, R4, 16),
            alu64_k(BPF_AND, R5, 0xffff),
            alu64_x(BPF_ADD, R5, R4),
        ] {
            a.op(insn);
        }
    }
    for insn in [
        alu64_k(BPF_XOR, R5, 0xffff),
        // 0 means "no checksum" in UDP over IPv4: its other form.
        Insn::new(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 1, 0),
        alu64_k(BPF_MOV, R5, 0xffff),
        to_be(R7, 16),
        store(BPF_H, R2, UDP_AT as i16, R7),
        to_be(R8, 32),
        store(BPF_W, R2, SEQ_AT as i16, R8),
        to_be(R6, 64),
        store(BPF_DW, R2, SENT_AT as i16, R6),
        to_be(R5, 16),
        store(BPF_H, R2, (UDP_AT + 6) as i16, R5),
        alu64_k(BPF_MOV, R0, XDP_TX),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ] {
        a.op(insn);
    }
    a.label(Label::Drop);
    a.op(alu64_k(BPF_MOV, R0, XDP_DROP));
    a.op(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    a.finish()
}

/// What userspace sets before a run (see [`state`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub next: u64,
    pub limit: u64,
    pub end_ns: u64,
    pub next_due_ns: u64,
    pub interval_ns: u64,
    pub interval_frac: u64,
    pub frac_acc: u64,
    pub depth_ns: u64,
    pub last_ns: u64,
}

impl Schedule {
    /// Unpaced and unlimited from frame `next` on.
    pub fn unpaced(next: u64) -> Schedule {
        Schedule {
            next,
            limit: u64::MAX,
            end_ns: u64::MAX,
            ..Schedule::default()
        }
    }

    /// At `rate` frames per second from `start_ns` (frame `next` due
    /// then), catching up at most `depth_ns` of debt.
    pub fn paced(next: u64, rate: f64, start_ns: u64, depth_ns: u64) -> Schedule {
        let interval = 1e9 / rate;
        let whole = interval.floor();
        Schedule {
            next,
            limit: u64::MAX,
            end_ns: u64::MAX,
            next_due_ns: start_ns,
            // At least 1: 0 means unpaced (a rate above 1e9/s is that).
            interval_ns: (whole as u64).max(1),
            interval_frac: ((interval - whole) * 4_294_967_296.0) as u64 & 0xffff_ffff,
            frac_acc: 0,
            depth_ns,
            last_ns: 0,
        }
    }

    pub fn to_bytes(self) -> [u8; state::SIZE] {
        let mut bytes = [0u8; state::SIZE];
        for (at, value) in [
            (state::NEXT, self.next),
            (state::LIMIT, self.limit),
            (state::END_NS, self.end_ns),
            (state::NEXT_DUE_NS, self.next_due_ns),
            (state::INTERVAL_NS, self.interval_ns),
            (state::INTERVAL_FRAC, self.interval_frac),
            (state::FRAC_ACC, self.frac_acc),
            (state::DEPTH_NS, self.depth_ns),
            (state::LAST_NS, self.last_ns),
        ] {
            let at = at as usize;
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Schedule {
        let field = |at: i16| {
            let at = at as usize;
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        Schedule {
            next: field(state::NEXT),
            limit: field(state::LIMIT),
            end_ns: field(state::END_NS),
            next_due_ns: field(state::NEXT_DUE_NS),
            interval_ns: field(state::INTERVAL_NS),
            interval_frac: field(state::INTERVAL_FRAC),
            frac_acc: field(state::FRAC_ACC),
            depth_ns: field(state::DEPTH_NS),
            last_ns: field(state::LAST_NS),
        }
    }
}

/// The loaded program, its state and the template, for one interface.
pub struct LiveFrames {
    program: OwnedFd,
    state: SingleValue,
    template: Vec<u8>,
    ifindex: u32,
    /// What the state holds (after the last run, or as last written).
    schedule: Schedule,
    /// A socket to ask the interface's flags on (SIOCGIFFLAGS).
    flags_socket: OwnedFd,
    iface: String,
}

/// Why a run did not go.
#[derive(Debug)]
pub enum SendError {
    /// The interface is down (or has no carrier): nothing was run.
    LinkDown,
    /// The run failed (a signal: EINTR, part of the way).
    Failed(io::Error),
}

impl LiveFrames {
    /// Loads the program for frames built from `template` (a frame of the
    /// run's flow 0, stamped with its session) out of `iface`.
    pub fn open(
        iface: &str,
        ifindex: u32,
        template: &Template,
        session: u32,
        plan: StampPlan,
    ) -> Result<LiveFrames, Unavailable> {
        if template.len() > MAX_FRAME {
            return Err(Unavailable(format!(
                "{}-byte frames are larger than the kernel runs live ({MAX_FRAME} at most)",
                template.len()
            )));
        }
        let state = SingleValue::create(STATE_NAME, state::SIZE).map_err(|e| {
            Unavailable(match e.raw_os_error() {
                Some(libc::EPERM) => {
                    "creating a BPF map needs CAP_BPF (and CAP_NET_ADMIN for the XDP program)"
                        .to_owned()
                }
                _ => format!("creating a BPF map: {e}"),
            })
        })?;
        let insns = program(state.fd(), plan);
        let program = Program {
            prog_type: BPF_PROG_TYPE_XDP,
            expected_attach_type: BPF_XDP,
            name: PROGRAM_NAME,
            insns: &insns,
        }
        .load()
        .map_err(|e| Unavailable(load_failure(&e)))?;
        let mut frame = Vec::new();
        template.stamp_into(
            Stamp {
                session,
                seq: 0,
                sent_ns: 0,
            },
            &mut frame,
        );
        // SAFETY: a plain socket call; the descriptor is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Unavailable(format!(
                "a socket to read {iface}'s state: {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: socket() returned a new descriptor nothing else owns.
        let flags_socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut live = LiveFrames {
            program,
            state,
            template: frame,
            ifindex,
            schedule: Schedule::default(),
            flags_socket,
            iface: iface.to_owned(),
        };
        live.set_schedule(Schedule::unpaced(0))
            .map_err(|e| Unavailable(format!("setting the program's state: {e}")))?;
        Ok(live)
    }

    /// Sets what the next runs do.
    pub fn set_schedule(&mut self, schedule: Schedule) -> io::Result<()> {
        self.state.write(&schedule.to_bytes())?;
        self.schedule = schedule;
        Ok(())
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The index of the next frame: frames stamped so far.
    pub fn next(&self) -> u64 {
        self.schedule.next
    }

    /// Has the kernel run the program `runs` times: each run stamps and
    /// transmits a frame, or drops its copy (not due yet, past the limit
    /// or the end). Afterwards (also after a signal cut it short) the
    /// state says how many frames went.
    pub fn run(&mut self, runs: u32) -> Result<(), SendError> {
        if !self.link_is_up() {
            return Err(SendError::LinkDown);
        }
        let result = XdpTestRun {
            program: self.program.as_fd(),
            data: &self.template,
            data_out: None,
            ingress_ifindex: self.ifindex,
            repeat: runs,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: runs.clamp(1, BATCH),
        }
        .run();
        if let Ok(bytes) = self.state.read() {
            self.schedule = Schedule::from_bytes(&bytes);
        }
        result.map(drop).map_err(SendError::Failed)
    }

    /// True when the interface is up and has its carrier (on a veth: the
    /// peer is up too); a frame sent otherwise would be dropped unseen.
    pub fn link_is_up(&self) -> bool {
        // SAFETY: an all-zero ifreq is valid.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = self.iface.as_bytes();
        if name.len() >= request.ifr_name.len() {
            return false;
        }
        for (to, from) in request.ifr_name.iter_mut().zip(name) {
            *to = *from as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of the
        // ifreq it is given, which lives across the call.
        let rc = unsafe {
            libc::ioctl(
                self.flags_socket.as_raw_fd(),
                libc::SIOCGIFFLAGS,
                &mut request,
            )
        };
        let wanted = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        // SAFETY: on success the kernel filled the flags member.
        rc == 0 && unsafe { request.ifr_ifru.ifru_flags } & wanted == wanted
    }
}

fn load_failure(error: &LoadError) -> String {
    match (error.error.raw_os_error(), &error.verifier) {
        (Some(libc::EPERM), _) => {
            "loading an XDP program needs CAP_BPF and CAP_NET_ADMIN".to_owned()
        }
        (_, Some(line)) => format!("the verifier refused the program: {line}"),
        (_, None) => format!("loading the XDP program: {}", error.error),
    }
}

/// What a failed live run says about the kernel: the flag unknown (before
/// 5.18) or the interface unable to take XDP frames.
pub fn run_failure(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EINVAL) => {
            "the kernel refused a live-frames run (BPF_F_TEST_XDP_LIVE_FRAMES needs Linux 5.18 or later)"
                .to_owned()
        }
        Some(libc::EOPNOTSUPP) => "the interface cannot send XDP frames".to_owned(),
        // Upstream never says EPERM here once the program is loaded; a
        // hardened kernel that turns the flag off does (seen on 6.18).
        Some(libc::EPERM) => {
            "this kernel refuses live-frames runs (BPF_F_TEST_XDP_LIVE_FRAMES: permission denied, though the program loaded)"
                .to_owned()
        }
        _ => format!("a live-frames run failed: {error}"),
    }
}

/// Runs a call makes where one call runs many: a call costs a fixed
/// ~25-35 ms on this kernel under load (measured: 0.02-0.1 ms with
/// `repeat` 1, 22-40 ms with 2 or more, whatever the batch; see
/// docs/performance.md), so a call must run long to be worth it. At
/// 1-3 Mpps a million runs take 0.3-1 s; a paced run drops the copies
/// that are not due yet, at some 20-50 ns each.
pub const BULK_RUNS: u32 = 1 << 20;
/// Paced at this rate or below, lab-gen makes one call per frame (0.02 to
/// 0.1 ms each), paced from user space, instead of having the kernel spin
/// through a schedule: a spin costs a whole CPU whatever the rate.
pub const PER_FRAME_MAX_RATE: f64 = 10_000.0;

#[cfg(test)]
mod tests;

/// The veth driver's own count of the XDP frames it handed to its peer
/// (`tx_queue_N_xdp_xmit`) and of those the peer's ring had no room for
/// (`tx_queue_N_xdp_xmit_errors`), summed over the queues, from the
/// driver's ethtool statistics (`ethtool -S`, which needs no privilege).
/// Other drivers name theirs otherwise: `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XmitCounts {
    pub xmit: u64,
    pub errors: u64,
}

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// More statistics than this is not a veth.
const MAX_STATS: usize = 4096;

impl LiveFrames {
    /// The interface's XDP transmit counts, where its driver keeps them.
    pub fn xmit_counts(&self) -> Option<XmitCounts> {
        let count = self.ethtool_stats_count()?;
        let names = self.ethtool_names(count)?;
        let values = self.ethtool_values(count)?;
        let mut counts = XmitCounts::default();
        let mut found = false;
        for (name, value) in names.iter().zip(values) {
            if !name.starts_with("tx_queue_") {
                continue;
            }
            if name.ends_with("_xdp_xmit") {
                counts.xmit += value;
                found = true;
            } else if name.ends_with("_xdp_xmit_errors") {
                counts.errors += value;
            }
        }
        found.then_some(counts)
    }

    fn ethtool(&self, data: *mut u8) -> bool {
        // SAFETY: an all-zero ifreq is valid.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = self.iface.as_bytes();
        if name.len() >= request.ifr_name.len() {
            return false;
        }
        for (to, from) in request.ifr_name.iter_mut().zip(name) {
            *to = *from as libc::c_char;
        }
        request.ifr_ifru.ifru_data = data as *mut libc::c_char;
        // SAFETY: SIOCETHTOOL reads the command at ifr_data and writes no
        // more than that command's structure, which the callers size.
        let rc = unsafe {
            libc::ioctl(
                self.flags_socket.as_raw_fd(),
                libc::SIOCETHTOOL,
                &mut request,
            )
        };
        rc == 0
    }

    fn ethtool_stats_count(&self) -> Option<usize> {
        // struct ethtool_sset_info with one data word.
        let mut info = [0u32; 5];
        info[0] = ETHTOOL_GSSET_INFO;
        let mask = 1u64 << ETH_SS_STATS;
        info[2] = mask as u32;
        info[3] = (mask >> 32) as u32;
        if !self.ethtool(info.as_mut_ptr() as *mut u8) {
            return None;
        }
        let count = info[4] as usize;
        (info[2] as u64 & mask != 0 && count > 0 && count <= MAX_STATS).then_some(count)
    }

    fn ethtool_names(&self, count: usize) -> Option<Vec<String>> {
        // struct ethtool_gstrings: cmd, string_set, len, then the names.
        let mut buffer = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
        buffer[0] = ETHTOOL_GSTRINGS;
        buffer[1] = ETH_SS_STATS;
        buffer[2] = count as u32;
        if !self.ethtool(buffer.as_mut_ptr() as *mut u8) || buffer[2] as usize != count {
            return None;
        }
        let bytes: Vec<u8> = buffer[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
        Some(
            bytes
                .chunks(ETH_GSTRING_LEN)
                .map(|name| {
                    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                    String::from_utf8_lossy(&name[..end]).into_owned()
                })
                .collect(),
        )
    }

    fn ethtool_values(&self, count: usize) -> Option<Vec<u64>> {
        // struct ethtool_stats: cmd, n_stats, then the values.
        let mut buffer = vec![0u64; 1 + count];
        buffer[0] = u64::from(ETHTOOL_GSTATS) | ((count as u64) << 32);
        if !self.ethtool(buffer.as_mut_ptr() as *mut u8) || (buffer[0] >> 32) as usize != count {
            return None;
        }
        Some(buffer[1..].to_vec())
    }
}
