//! lab-sink's fast path: counting in an XDP program on its interface.
//!
//! The sink's user-space path costs about 1 µs of CPU per frame (waking
//! up, the copy into a UMEM or a ring, parsing, both checksums) and loses
//! what overflows its ring while it is off the CPU. Here the kernel runs a
//! hand-assembled program of ours on every frame, in the driver (native
//! XDP on a veth: no skb, and the frames lab-gen sends on XDP live frames
//! arrive straight in it): a lab-gen frame for our address is counted in
//! maps and dropped, anything else goes on to the kernel (`XDP_PASS`),
//! where the sink's af_packet datalink sees the ARP requests it answers.
//! Nothing waits on lab-sink's process: it reads the maps every interval
//! and at the end.
//!
//! What the program keeps:
//!
//! - per flow (a hash map keyed by source address, source and destination
//!   port and session, [`MAX_FLOWS`] of them): the highest number seen,
//!   the flow's start, a bitmap of the [`WINDOW`] numbers below the
//!   highest, and received / unique / duplicates / reordered, with the
//!   rules of [`super::seq`] (the start rule included) but a window of 64
//!   numbers instead of 4,096: a duplicate more than 64 numbers late is
//!   taken for a late original, as one more than 4,096 late is there;
//! - totals (one array value, [`state`]): received, unique, expected (the
//!   sum of the flows' `highest - start + 1`, kept as they move, so the
//!   lost count is `expected - unique` at any moment), duplicates,
//!   reordered, untracked, the first and last arrival, the latency's
//!   minimum and maximum (exact);
//! - the latency histogram (one array value of [`BUCKETS`] counters):
//!   log-linear buckets, 16 per power of two (exact below 32 ns, within
//!   1/32 of the value above). Percentiles come from it: within about 3%
//!   where the user-space path has hdrhistogram's 0.1%.
//!
//! What it checks: Ethernet type, IPv4 without options, UDP, not a
//! fragment, our address, the lengths (IP total length within the frame,
//! UDP length within the IP packet, room for the stamp) and the magic. It
//! does not verify the checksums (the user-space path does): a veth does
//! not corrupt frames; through a link that does (a corrupting impairment),
//! use `--path datalink`.
//!
//! The updates are plain loads and stores, not atomic: the program runs
//! for one receive queue at a time, so the interface must have one
//! (checked). `--count` is kept in the program: frames past it are
//! dropped uncounted, so the counts stop exactly there.
//!
//! Attached through a BPF link (`BPF_LINK_CREATE`): the program goes when
//! the link's descriptor closes, however lab-sink ends (SIGKILL
//! included). Nothing is pinned.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::bpf::asm::*;
use crate::bpf::{
    fd_from, name, sys_bpf, Insn, MapCreateAttr, MapElemAttr, Program, SingleValue, BPF_ADD,
    BPF_AND, BPF_DW, BPF_EXIT, BPF_FUNC_KTIME_GET_NS, BPF_H, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JLE,
    BPF_JLT, BPF_JMP, BPF_JNE, BPF_LSH, BPF_PROG_TYPE_XDP, BPF_PSEUDO_MAP_VALUE, BPF_RSH, BPF_SUB,
    BPF_W, BPF_XDP, XDP_DROP, XDP_PASS,
};
use crate::tools::traffic::MAGIC;

/// The most flows counted one by one (as the user-space path).
pub const MAX_FLOWS: u32 = super::MAX_FLOWS as u32;
/// How far back a flow's bitmap tells duplicates from late frames.
pub const WINDOW: u64 = 64;
/// The latency histogram's buckets (16 per power of two up to 2^64 ns).
pub const BUCKETS: usize = 1024;

const PROGRAM_NAME: &[u8] = b"labctl_sink";

// Not in bpf.rs (only this program uses them).
const BPF_OR: u8 = 0x40;
const BPF_ARSH: u8 = 0xc0;
const BPF_JSGE: u8 = 0x70;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_int = 4;
const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_MAP_UPDATE_ELEM: i32 = 2;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_NOEXIST: i32 = 1;

/// The totals, one array value (little-endian `u64`s at these offsets).
pub mod state {
    pub const RECEIVED: i16 = 0;
    pub const UNIQUE: i16 = 8;
    pub const EXPECTED: i16 = 16;
    pub const DUPLICATES: i16 = 24;
    pub const REORDERED: i16 = 32;
    pub const UNTRACKED: i16 = 40;
    pub const FIRST_NS: i16 = 48;
    pub const LAST_NS: i16 = 56;
    pub const LAT_MIN: i16 = 64;
    pub const LAT_MAX: i16 = 72;
    /// Written by lab-sink: no frame is counted at or past this many.
    pub const LIMIT: i16 = 80;
    pub const SIZE: usize = 88;
}

/// One flow's value in the hash map.
pub mod flow {
    pub const HIGHEST: i16 = 0;
    pub const START: i16 = 8;
    pub const BITMAP: i16 = 16;
    pub const RECEIVED: i16 = 24;
    pub const UNIQUE: i16 = 32;
    pub const DUPLICATES: i16 = 40;
    pub const REORDERED: i16 = 48;
    pub const SIZE: usize = 56;
}
/// The key: source address, source port, destination port (as on the
/// wire), session (as on the wire).
pub const KEY_SIZE: usize = 12;

// Frame offsets (Ethernet, IPv4 without options, UDP, stamp).
const ETHERTYPE: i16 = 12;
const IP: i16 = 14;
const IP_TOTAL_LEN: i16 = 16;
const IP_FRAG: i16 = 20;
const IP_PROTO: i16 = 23;
const IP_SRC: i16 = 26;
const IP_DST: i16 = 30;
const UDP_PORTS: i16 = 34;
const UDP_LEN: i16 = 38;
const MAGIC_AT: i16 = 42;
const SESSION_AT: i16 = 46;
const SEQ_AT: i16 = 50;
const SENT_AT: i16 = 54;
const STAMP_END: i32 = 62;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Pass,
    Drop,
    Have,
    Untracked,
    Existing,
    FirstStart,
    Widened,
    Ahead,
    Late,
    Dup,
    UseWidened,
    Shifted,
    Latency,
    LatPositive,
    SetMin,
    MinDone,
    MaxDone,
    FirstSet,
    Msb(u8),
    Bucket,
}

type Asm = Assembler<Label>;

/// The counter's read-modify-writes of its map values.
trait Counters {
    fn inc(&mut self, reg: u8, off: i16);
    fn add(&mut self, reg: u8, off: i16, src: u8);
}

impl Counters for Asm {
    /// `*(u64 *)(reg + off) += 1`, through r5.
    fn inc(&mut self, reg: u8, off: i16) {
        self.op(load(BPF_DW, R5, reg, off));
        self.op(alu64_k(BPF_ADD, R5, 1));
        self.op(store(BPF_DW, reg, off, R5));
    }
    /// `*(u64 *)(reg + off) += src`, through r5.
    fn add(&mut self, reg: u8, off: i16, src: u8) {
        self.op(load(BPF_DW, R5, reg, off));
        self.op(alu64_x(BPF_ADD, R5, src));
        self.op(store(BPF_DW, reg, off, R5));
    }
}

/// The maps the program uses, by descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Maps {
    pub state: i32,
    pub histogram: i32,
    pub flows: i32,
}

/// The counting program for `ip` (see the module's documentation).
///
/// ```text
/// parse: pass unless IPv4/UDP to ip, no options, no fragment, lengths, magic
/// r8 = &state ; if state.received >= state.limit: drop
/// key (stack fp-16..fp-4) = src, ports, session ; r6 = seq ; r7 = sent
/// state.received++
/// r9 = lookup(flows, key) ; none: insert zeros (NOEXIST), lookup again
/// none still (full): state.untracked++, state.unique++, goto latency
/// flow.received++ ; first: highest = seq, start = seq < 4096 ? 0 : seq,
///   bitmap = 1, unique = 1, expected += seq - start + 1
/// else widen seq by highest ; ahead: shift bitmap, expected += by ;
///   within 64 behind: bit set: duplicate, else set it: late ;
///   further: late ; late: unique++, reordered++, start = min(start, seq)
/// latency: now - sent (1 at least) ; min, max, first, last ;
///   bucket = now - sent < 32 ? it : (msb - 3) * 16 + next 4 bits
///   histogram[bucket]++ ; drop
/// ```
pub fn program(ip: Ipv4Addr, maps: Maps) -> Vec<Insn> {
    let mut a = Asm::default();
    // r2 = data, r3 = data_end
    a.op(load(BPF_W, R2, R1, 0));
    a.op(load(BPF_W, R3, R1, 4));
    a.op(mov_x(R4, R2));
    a.op(alu64_k(BPF_ADD, R4, STAMP_END));
    a.jx(BPF_JGT, R4, R3, Label::Pass);
    // Ethernet type 0x0800 (as loaded little-endian: 0x0008).
    a.op(load(BPF_H, R4, R2, ETHERTYPE));
    a.jk(BPF_JNE, R4, 0x0008, Label::Pass);
    // Version 4, a 20-byte header.
    a.op(load(0x10, R4, R2, IP)); // BPF_B
    a.jk(BPF_JNE, R4, 0x45, Label::Pass);
    a.op(load(0x10, R4, R2, IP_PROTO));
    a.jk(BPF_JNE, R4, 17, Label::Pass);
    // Not a fragment: flags MF and the offset (0x3fff big-endian).
    a.op(load(BPF_H, R4, R2, IP_FRAG));
    a.op(alu64_k(BPF_AND, R4, 0xff3f));
    a.jk(BPF_JNE, R4, 0, Label::Pass);
    a.op(load(BPF_W, R4, R2, IP_DST));
    a.jk(
        BPF_JNE,
        R4,
        u32::from_ne_bytes(ip.octets()) as i32,
        Label::Pass,
    );
    a.op(load(BPF_W, R4, R2, MAGIC_AT));
    a.jk(BPF_JNE, R4, u32::from_ne_bytes(MAGIC) as i32, Label::Pass);
    // Lengths: 48 <= total <= frame - 14 ; 28 <= udp <= total - 20.
    a.op(load(BPF_H, R4, R2, IP_TOTAL_LEN));
    a.op(to_be(R4, 16));
    a.jk(BPF_JLT, R4, 48, Label::Pass);
    a.op(mov_x(R5, R3));
    a.op(alu64_x(BPF_SUB, R5, R2));
    a.op(alu64_k(BPF_SUB, R5, 14));
    a.jx(BPF_JGT, R4, R5, Label::Pass);
    a.op(load(BPF_H, R5, R2, UDP_LEN));
    a.op(to_be(R5, 16));
    a.jk(BPF_JLT, R5, 28, Label::Pass);
    a.op(alu64_k(BPF_SUB, R4, 20));
    a.jx(BPF_JGT, R5, R4, Label::Pass);
    // The limit.
    a.ops(&Insn::ld_imm64(R8, BPF_PSEUDO_MAP_VALUE, maps.state, 0));
    a.op(load(BPF_DW, R4, R8, state::RECEIVED));
    a.op(load(BPF_DW, R5, R8, state::LIMIT));
    a.jx(BPF_JGE, R4, R5, Label::Drop);
    // The key, the number, the send time.
    a.op(load(BPF_W, R4, R2, IP_SRC));
    a.op(store(BPF_W, FP, -16, R4));
    a.op(load(BPF_W, R4, R2, UDP_PORTS));
    a.op(store(BPF_W, FP, -12, R4));
    a.op(load(BPF_W, R4, R2, SESSION_AT));
    a.op(store(BPF_W, FP, -8, R4));
    a.op(load(BPF_W, R6, R2, SEQ_AT));
    a.op(to_be(R6, 32));
    a.op(load(BPF_DW, R7, R2, SENT_AT));
    a.op(to_be(R7, 64));
    a.inc(R8, state::RECEIVED);
    // The flow.
    a.ops(&Insn::ld_imm64(R1, BPF_PSEUDO_MAP_FD, maps.flows, 0));
    a.op(mov_x(R2, FP));
    a.op(alu64_k(BPF_ADD, R2, -16));
    a.op(call(BPF_FUNC_MAP_LOOKUP_ELEM));
    a.jk(BPF_JNE, R0, 0, Label::Have);
    a.op(mov_k(R1, 0));
    for slot in 0..(flow::SIZE as i16 / 8) {
        a.op(store(BPF_DW, FP, -72 + slot * 8, R1));
    }
    a.ops(&Insn::ld_imm64(R1, BPF_PSEUDO_MAP_FD, maps.flows, 0));
    a.op(mov_x(R2, FP));
    a.op(alu64_k(BPF_ADD, R2, -16));
    a.op(mov_x(R3, FP));
    a.op(alu64_k(BPF_ADD, R3, -72));
    a.op(mov_k(R4, BPF_NOEXIST));
    a.op(call(BPF_FUNC_MAP_UPDATE_ELEM));
    a.ops(&Insn::ld_imm64(R1, BPF_PSEUDO_MAP_FD, maps.flows, 0));
    a.op(mov_x(R2, FP));
    a.op(alu64_k(BPF_ADD, R2, -16));
    a.op(call(BPF_FUNC_MAP_LOOKUP_ELEM));
    a.jk(BPF_JNE, R0, 0, Label::Have);
    a.label(Label::Untracked);
    a.inc(R8, state::UNTRACKED);
    a.inc(R8, state::UNIQUE);
    a.goto(Label::Latency);

    a.label(Label::Have);
    a.op(mov_x(R9, R0));
    a.op(load(BPF_DW, R1, R9, flow::RECEIVED));
    a.op(mov_x(R2, R1));
    a.op(alu64_k(BPF_ADD, R2, 1));
    a.op(store(BPF_DW, R9, flow::RECEIVED, R2));
    a.jk(BPF_JNE, R1, 0, Label::Existing);
    // The flow's first frame.
    a.op(store(BPF_DW, R9, flow::HIGHEST, R6));
    a.op(mov_k(R2, 0));
    a.jk(BPF_JLT, R6, super::seq::WINDOW as i32, Label::FirstStart);
    a.op(mov_x(R2, R6));
    a.label(Label::FirstStart);
    a.op(store(BPF_DW, R9, flow::START, R2));
    a.op(mov_k(R3, 1));
    a.op(store(BPF_DW, R9, flow::BITMAP, R3));
    a.op(store(BPF_DW, R9, flow::UNIQUE, R3));
    a.op(mov_x(R3, R6));
    a.op(alu64_x(BPF_SUB, R3, R2));
    a.op(alu64_k(BPF_ADD, R3, 1));
    a.add(R8, state::EXPECTED, R3);
    a.inc(R8, state::UNIQUE);
    a.goto(Label::Latency);

    a.label(Label::Existing);
    // Widen: r3 = highest + (s32)(seq - (u32)highest); on underflow, seq.
    a.op(load(BPF_DW, R1, R9, flow::HIGHEST));
    a.op(mov_x(R2, R6));
    a.op(alu64_x(BPF_SUB, R2, R1));
    a.op(alu64_k(BPF_LSH, R2, 32));
    a.op(alu64_k(BPF_ARSH, R2, 32));
    a.op(mov_x(R3, R1));
    a.op(alu64_x(BPF_ADD, R3, R2));
    a.jk(BPF_JSGE, R2, 0, Label::UseWidened);
    a.jx(BPF_JGT, R3, R1, Label::Widened);
    a.label(Label::UseWidened);
    a.op(mov_x(R6, R3));
    a.label(Label::Widened);
    a.jx(BPF_JGT, R6, R1, Label::Ahead);
    // Behind (or equal): r2 = highest - seq.
    a.op(mov_x(R2, R1));
    a.op(alu64_x(BPF_SUB, R2, R6));
    a.jk(BPF_JGE, R2, WINDOW as i32, Label::Late);
    a.op(mov_k(R3, 1));
    a.op(alu64_x(BPF_LSH, R3, R2));
    a.op(load(BPF_DW, R4, R9, flow::BITMAP));
    a.op(mov_x(R5, R4));
    a.op(alu64_x(BPF_AND, R5, R3));
    a.jk(BPF_JNE, R5, 0, Label::Dup);
    a.op(alu64_x(BPF_OR, R4, R3));
    a.op(store(BPF_DW, R9, flow::BITMAP, R4));
    a.label(Label::Late);
    a.inc(R9, flow::UNIQUE);
    a.inc(R9, flow::REORDERED);
    a.inc(R8, state::UNIQUE);
    a.inc(R8, state::REORDERED);
    a.op(load(BPF_DW, R3, R9, flow::START));
    a.jx(BPF_JGE, R6, R3, Label::Latency);
    a.op(alu64_x(BPF_SUB, R3, R6));
    a.add(R8, state::EXPECTED, R3);
    a.op(store(BPF_DW, R9, flow::START, R6));
    a.goto(Label::Latency);
    a.label(Label::Dup);
    a.inc(R9, flow::DUPLICATES);
    a.inc(R8, state::DUPLICATES);
    a.goto(Label::Latency);
    a.label(Label::Ahead);
    // r2 = by how much.
    a.op(mov_x(R2, R6));
    a.op(alu64_x(BPF_SUB, R2, R1));
    a.add(R8, state::EXPECTED, R2);
    a.op(load(BPF_DW, R4, R9, flow::BITMAP));
    a.op(alu64_x(BPF_LSH, R4, R2));
    a.jk(BPF_JLT, R2, WINDOW as i32, Label::Shifted);
    a.op(mov_k(R4, 0));
    a.label(Label::Shifted);
    a.op(alu64_k(BPF_OR, R4, 1));
    a.op(store(BPF_DW, R9, flow::BITMAP, R4));
    a.op(store(BPF_DW, R9, flow::HIGHEST, R6));
    a.inc(R9, flow::UNIQUE);
    a.inc(R8, state::UNIQUE);

    // The latency: r6 = now - sent, at least 1.
    a.label(Label::Latency);
    a.op(call(BPF_FUNC_KTIME_GET_NS));
    a.op(load(BPF_DW, R1, R8, state::FIRST_NS));
    a.jk(BPF_JNE, R1, 0, Label::FirstSet);
    a.op(store(BPF_DW, R8, state::FIRST_NS, R0));
    a.label(Label::FirstSet);
    a.op(store(BPF_DW, R8, state::LAST_NS, R0));
    a.op(mov_k(R6, 1));
    a.jx(BPF_JLE, R0, R7, Label::LatPositive);
    a.op(mov_x(R6, R0));
    a.op(alu64_x(BPF_SUB, R6, R7));
    a.label(Label::LatPositive);
    a.op(load(BPF_DW, R1, R8, state::LAT_MIN));
    a.jk(BPF_JEQ, R1, 0, Label::SetMin);
    a.jx(BPF_JLE, R1, R6, Label::MinDone);
    a.label(Label::SetMin);
    a.op(store(BPF_DW, R8, state::LAT_MIN, R6));
    a.label(Label::MinDone);
    a.op(load(BPF_DW, R1, R8, state::LAT_MAX));
    a.jx(BPF_JGE, R1, R6, Label::MaxDone);
    a.op(store(BPF_DW, R8, state::LAT_MAX, R6));
    a.label(Label::MaxDone);
    // The bucket: below 32 the value; else (msb - 3) * 16 + the 4 bits
    // after the most significant one.
    a.op(mov_x(R2, R6));
    a.jk(BPF_JLT, R6, 32, Label::Bucket);
    a.op(mov_k(R3, 0)); // msb
    a.op(mov_x(R4, R6)); // what is left to look at
    a.op(mov_k(R5, 1));
    a.op(alu64_k(BPF_LSH, R5, 32));
    a.jx(BPF_JLT, R4, R5, Label::Msb(32));
    a.op(alu64_k(BPF_RSH, R4, 32));
    a.op(alu64_k(BPF_ADD, R3, 32));
    a.label(Label::Msb(32));
    for bits in [16u8, 8, 4, 2, 1] {
        a.jk(BPF_JLT, R4, 1 << bits, Label::Msb(bits));
        a.op(alu64_k(BPF_RSH, R4, i32::from(bits)));
        a.op(alu64_k(BPF_ADD, R3, i32::from(bits)));
        a.label(Label::Msb(bits));
    }
    // r2 = (lat >> (msb - 4)) & 15 ; r3 = (msb - 3) * 16
    a.op(mov_x(R4, R3));
    a.op(alu64_k(BPF_SUB, R4, 4));
    a.op(alu64_x(BPF_RSH, R2, R4));
    a.op(alu64_k(BPF_AND, R2, 15));
    a.op(alu64_k(BPF_SUB, R3, 3));
    a.op(alu64_k(BPF_LSH, R3, 4));
    a.op(alu64_x(BPF_ADD, R2, R3));
    a.label(Label::Bucket);
    a.op(alu64_k(BPF_AND, R2, BUCKETS as i32 - 1));
    a.op(alu64_k(BPF_LSH, R2, 3));
    a.ops(&Insn::ld_imm64(R1, BPF_PSEUDO_MAP_VALUE, maps.histogram, 0));
    a.op(alu64_x(BPF_ADD, R1, R2));
    a.inc(R1, 0);
    a.label(Label::Drop);
    a.op(mov_k(R0, XDP_DROP));
    a.op(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    a.label(Label::Pass);
    a.op(mov_k(R0, XDP_PASS));
    a.op(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    a.finish()
}

/// The bucket of a latency, as the program computes it.
pub fn bucket_of(latency_ns: u64) -> usize {
    if latency_ns < 32 {
        return latency_ns as usize;
    }
    let msb = 63 - latency_ns.leading_zeros() as u64;
    (((msb - 3) << 4) + ((latency_ns >> (msb - 4)) & 15)) as usize
}

/// The latencies a bucket holds: `[low, high)`.
pub fn bucket_range(bucket: usize) -> (u64, u64) {
    if bucket < 32 {
        return (bucket as u64, bucket as u64 + 1);
    }
    let msb = (bucket >> 4) as u32 + 3;
    let sub = (bucket & 15) as u64;
    let step = 1u64 << (msb - 4);
    let low = (16 + sub) << (msb - 4);
    (low, low.saturating_add(step))
}

/// Why the XDP path cannot count here: lab-sink says it in one line and
/// counts in user space (or, with `--path xdp`, exits 3 saying why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The totals, as read from the state map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub received: u64,
    pub unique: u64,
    pub expected: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub untracked: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub latency_min: u64,
    pub latency_max: u64,
}

impl Totals {
    pub fn lost(&self) -> u64 {
        // `unique` includes the untracked flows' frames, `expected` not.
        self.expected
            .saturating_sub(self.unique.saturating_sub(self.untracked))
    }
}

/// One flow, as read from the flow map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCounts {
    pub source: Ipv4Addr,
    pub source_port: u16,
    pub port: u16,
    pub session: u32,
    pub received: u64,
    pub unique: u64,
    pub expected: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

fn word(bytes: &[u8], at: i16) -> u64 {
    let at = at as usize;
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The program, its maps and its link: counting while alive; dropping it
/// detaches the program (the link's descriptor closes).
pub struct XdpCounter {
    state: SingleValue,
    histogram: SingleValue,
    flows: OwnedFd,
    program: OwnedFd,
    link: Option<OwnedFd>,
    /// Native (in the driver) or generic.
    pub mode: &'static str,
}

/// The BPF_LINK_CREATE part of union bpf_attr (the fields XDP uses).
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

impl XdpCounter {
    /// Loads the program counting frames to `ip` and attaches it to
    /// `ifindex` (native XDP, else generic), counting up to `limit`.
    pub fn attach(
        iface: &str,
        ifindex: u32,
        ip: Ipv4Addr,
        limit: Option<u64>,
    ) -> Result<XdpCounter, Unavailable> {
        let queues = std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count()
            })
            .unwrap_or(1);
        if queues > 1 {
            return Err(Unavailable(format!(
                "{iface} has {queues} receive queues (the counting program keeps its counts for one)"
            )));
        }
        let mut counter = XdpCounter::load(ip, limit)?;
        let mut errors = Vec::new();
        for (flags, mode) in [
            (XDP_FLAGS_DRV_MODE, "native"),
            (XDP_FLAGS_SKB_MODE, "generic"),
        ] {
            let mut attr = LinkCreateAttr {
                prog_fd: counter.program.as_raw_fd() as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags,
            };
            match sys_bpf(BPF_LINK_CREATE, &mut attr).and_then(fd_from) {
                Ok(link) => {
                    counter.link = Some(link);
                    counter.mode = mode;
                    return Ok(counter);
                }
                Err(e) => errors.push(e),
            }
        }
        // EBUSY: a program in that mode already; EEXIST: one in the other.
        let taken = errors
            .iter()
            .any(|e| matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST)));
        Err(Unavailable(if taken {
            format!("{iface} already has an XDP program (an af_xdp tool?)")
        } else {
            format!(
                "cannot attach the counting program to {iface} ({})",
                errors.last().expect("two tries")
            )
        }))
    }

    /// Loads the program and its maps, attached nowhere (tests run it
    /// with `BPF_PROG_TEST_RUN`).
    pub fn load(ip: Ipv4Addr, limit: Option<u64>) -> Result<XdpCounter, Unavailable> {
        let map_error = |what: &str, e: io::Error| {
            Unavailable(format!(
                "cannot create the {what} map ({e}; CAP_BPF and CAP_NET_ADMIN needed)"
            ))
        };
        let state =
            SingleValue::create(b"labctl_sink", state::SIZE).map_err(|e| map_error("state", e))?;
        let histogram = SingleValue::create(b"labctl_sink_lat", BUCKETS * 8)
            .map_err(|e| map_error("histogram", e))?;
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_HASH,
            key_size: KEY_SIZE as u32,
            value_size: flow::SIZE as u32,
            max_entries: MAX_FLOWS,
            map_name: name(b"labctl_flows"),
            ..Default::default()
        };
        let flows = sys_bpf(crate::bpf::BPF_MAP_CREATE, &mut attr)
            .and_then(fd_from)
            .map_err(|e| map_error("flow", e))?;
        let mut initial = vec![0u8; state::SIZE];
        let at = state::LIMIT as usize;
        initial[at..at + 8].copy_from_slice(&limit.unwrap_or(u64::MAX).to_le_bytes());
        state.write(&initial).map_err(|e| map_error("state", e))?;
        let insns = program(
            ip,
            Maps {
                state: state.fd(),
                histogram: histogram.fd(),
                flows: flows.as_raw_fd(),
            },
        );
        let loaded = Program {
            prog_type: BPF_PROG_TYPE_XDP,
            expected_attach_type: BPF_XDP,
            name: PROGRAM_NAME,
            insns: &insns,
        }
        .load()
        .map_err(|e| {
            Unavailable(match e.verifier {
                Some(line) => format!("the kernel refused the counting program: {line}"),
                None => format!("cannot load the counting program ({})", e.error),
            })
        })?;
        Ok(XdpCounter {
            state,
            histogram,
            flows,
            program: loaded,
            link: None,
            mode: "not attached",
        })
    }

    /// The loaded program.
    pub fn program(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.program.as_fd()
    }

    /// Detaches the program (the counts stay readable).
    pub fn detach(&mut self) {
        self.link = None;
    }

    pub fn totals(&self) -> io::Result<Totals> {
        let v = self.state.read()?;
        Ok(Totals {
            received: word(&v, state::RECEIVED),
            unique: word(&v, state::UNIQUE),
            expected: word(&v, state::EXPECTED),
            duplicates: word(&v, state::DUPLICATES),
            reordered: word(&v, state::REORDERED),
            untracked: word(&v, state::UNTRACKED),
            first_ns: word(&v, state::FIRST_NS),
            last_ns: word(&v, state::LAST_NS),
            latency_min: word(&v, state::LAT_MIN),
            latency_max: word(&v, state::LAT_MAX),
        })
    }

    /// The latency histogram's counters, bucket by bucket.
    pub fn histogram(&self) -> io::Result<Vec<u64>> {
        let v = self.histogram.read()?;
        Ok(v.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Every flow in the map.
    pub fn flows(&self) -> io::Result<Vec<FlowCounts>> {
        let mut flows = Vec::new();
        let mut key = [0u8; KEY_SIZE];
        let mut next = [0u8; KEY_SIZE];
        let mut first = true;
        loop {
            let mut attr = MapElemAttr {
                map_fd: self.flows.as_raw_fd() as u32,
                _pad: 0,
                key: if first { 0 } else { key.as_ptr() as u64 },
                value: next.as_mut_ptr() as u64,
                flags: 0,
            };
            match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Err(e) => return Err(e),
            }
            first = false;
            key = next;
            let mut value = [0u8; flow::SIZE];
            let mut attr = MapElemAttr {
                map_fd: self.flows.as_raw_fd() as u32,
                _pad: 0,
                key: key.as_ptr() as u64,
                value: value.as_mut_ptr() as u64,
                flags: 0,
            };
            sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
            let highest = word(&value, flow::HIGHEST);
            let start = word(&value, flow::START);
            let received = word(&value, flow::RECEIVED);
            flows.push(FlowCounts {
                source: Ipv4Addr::new(key[0], key[1], key[2], key[3]),
                source_port: u16::from_be_bytes([key[4], key[5]]),
                port: u16::from_be_bytes([key[6], key[7]]),
                session: u32::from_be_bytes([key[8], key[9], key[10], key[11]]),
                received,
                unique: word(&value, flow::UNIQUE),
                expected: if received == 0 {
                    0
                } else {
                    highest - start + 1
                },
                duplicates: word(&value, flow::DUPLICATES),
                reordered: word(&value, flow::REORDERED),
            });
        }
        Ok(flows)
    }
}

const BPF_LINK_CREATE: libc::c_int = 28;

/// Records histogram counters (or the difference of two readings) into an
/// hdrhistogram at each bucket's middle, kept within `[min, max]`.
pub fn record_buckets(
    into: &mut hdrhistogram::Histogram<u64>,
    now: &[u64],
    before: Option<&[u64]>,
    min: u64,
    max: u64,
) {
    for (bucket, &count) in now.iter().enumerate() {
        let count = count - before.map_or(0, |b| b[bucket]);
        if count == 0 {
            continue;
        }
        let (low, high) = bucket_range(bucket);
        let middle = (low + (high - low) / 2).clamp(min.max(1), max.max(1));
        into.saturating_record_n(middle, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_exact_below_32_and_continuous() {
        for ns in 0..32 {
            assert_eq!(bucket_of(ns), ns as usize);
        }
        assert_eq!(bucket_of(32), 32);
        assert_eq!(bucket_of(33), 32);
        assert_eq!(bucket_of(34), 33);
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    proptest! {
        #[test]
        fn every_latency_is_in_its_buckets_range(ns in 1u64..u64::MAX) {
            let (low, high) = bucket_range(bucket_of(ns));
            prop_assert!(low <= ns && (ns < high || high == u64::MAX), "{ns}: {low}..{high}");
            // Within 1/16 of the value.
            prop_assert!((high - low) <= low / 16 + 1);
        }
    }
}
