//! lab-gen's fast path: XDP "live frames" (`BPF_PROG_RUN` with
//! `BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18+).
//!
//! The kernel runs a small XDP program of ours `repeat` times on copies of
//! one template frame and transmits what it returns XDP_TX for out of the
//! interface (through the driver's `ndo_xdp_xmit`): no skb is built, no
//! frame crosses the user/kernel boundary, one system call sends a whole
//! batch. The program stamps each frame as lab-gen's other paths do
//! ([`traffic`]): it takes the frame's index from a counter in a map (one
//! `u64`, reached without a helper call), derives the flow (source port
//! `BASE_PORT + index % flows`) and the flow's sequence number
//! (`index / flows`), writes the send time (`bpf_ktime_get_ns`,
//! CLOCK_MONOTONIC, per frame rather than per batch) and the UDP checksum
//! (the template's sum without those fields, plus them).
//!
//! The counter is also how lab-gen knows how many frames the kernel ran:
//! a signal ends a run part of the way, and the counter says where.
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

use crate::bpf::{
    Counter, Insn, LoadError, Program, XdpTestRun, BPF_ADD, BPF_ALU, BPF_ALU64, BPF_AND, BPF_DIV,
    BPF_DW, BPF_END, BPF_EXIT, BPF_FUNC_KTIME_GET_NS, BPF_F_TEST_XDP_LIVE_FRAMES, BPF_H, BPF_JGT,
    BPF_JMP, BPF_JNE, BPF_K, BPF_LDX, BPF_MEM, BPF_MOD, BPF_MOV, BPF_PROG_TYPE_XDP,
    BPF_PSEUDO_MAP_VALUE, BPF_RSH, BPF_STX, BPF_TO_BE, BPF_W, BPF_X, BPF_XDP, BPF_XOR, XDP_DROP,
    XDP_TX,
};
use crate::bpf::{BPF_CALL, TEST_XDP_MAX_BATCH};
use crate::tools::traffic::{Stamp, Template, MIN_FRAME, SENT_AT, SEQ_AT, UDP_AT};

/// The frames one live-frames batch holds: the kernel's default. A veth
/// takes `ndo_xdp_xmit` frames into a ring of 256 per queue, drained by
/// its peer's NAPI after each batch: larger batches would overflow it.
pub const BATCH: u32 = 64;
/// The largest frame the kernel runs live: a page less its headroom
/// (256 + its own page header, 64) and the tail it keeps for an skb's
/// shared info (320).
pub const MAX_FRAME: usize = 4096 - 256 - 64 - 320;
/// How long the burst of one paced run lasts: a run costs the kernel a
/// page pool's setup, so runs of a few frames are dear; 1 ms of frames is
/// 2,000 at 2 Mpps, in the peer's ring 64 at a time.
pub const BATCH_SPAN: std::time::Duration = std::time::Duration::from_millis(1);
const PROGRAM_NAME: &[u8] = b"labctl_gen";
const COUNTER_NAME: &[u8] = b"labctl_gen_next";

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

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;

fn alu64_k(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}

fn alu64_x(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
}

fn to_be(dst: u8, bits: i32) -> Insn {
    Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits)
}

fn load(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
}

fn store(size: u8, dst: u8, off: usize, src: u8) -> Insn {
    Insn::new(BPF_STX | BPF_MEM | size, dst, src, off as i16, 0)
}

/// The stamping program, for the counter map `counter_fd`:
///
/// ```text
/// r9 = r1                         ; the context
/// call bpf_ktime_get_ns ; r6 = r0 ; the send time
/// r2 = ctx->data ; r3 = ctx->data_end
/// if r2 + 62 > r3 goto drop       ; (never: the template is 62 or more)
/// r1 = &counter ; r7 = *r1 ; *r1 = r7 + 1
/// r8 = r7 / flows ; r7 = r7 % flows + base_port   ; seq, port
/// r8 = (u32) r8
/// r5 = base_sum + port + seq's two words + time's four words
/// fold r5 to 16 bits three times ; r5 ^= 0xffff ; 0 -> 0xffff
/// store port, seq, time, checksum, big-endian
/// return XDP_TX
/// ```
pub fn program(counter_fd: i32, plan: StampPlan) -> Vec<Insn> {
    let mut p = vec![
        alu64_x(BPF_MOV, R9, R1),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_KTIME_GET_NS),
        alu64_x(BPF_MOV, R6, R0),
        load(BPF_W, R2, R9, 0),
        load(BPF_W, R3, R9, 4),
        alu64_x(BPF_MOV, R4, R2),
        alu64_k(BPF_ADD, R4, MIN_FRAME as i32),
    ];
    // The jump to `drop` is patched in below.
    let bounds_check = p.len();
    p.push(Insn::new(BPF_JMP | BPF_JGT | BPF_X, R4, R3, 0, 0));
    p.extend(Insn::ld_imm64(R1, BPF_PSEUDO_MAP_VALUE, counter_fd, 0));
    p.extend([
        load(BPF_DW, R7, R1, 0),
        alu64_x(BPF_MOV, R8, R7),
        alu64_k(BPF_ADD, R8, 1),
        store(BPF_DW, R1, 0, R8),
        alu64_x(BPF_MOV, R8, R7),
    ]);
    if plan.flows > 1 {
        p.push(alu64_k(BPF_DIV, R8, i32::from(plan.flows)));
        p.push(alu64_k(BPF_MOD, R7, i32::from(plan.flows)));
    } else {
        p.push(alu64_k(BPF_MOV, R7, 0));
    }
    p.extend([
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
    ]);
    for shift in [0, 16, 32, 48] {
        p.push(alu64_x(BPF_MOV, R4, R6));
        if shift > 0 {
            p.push(alu64_k(BPF_RSH, R4, shift));
        }
        if shift < 48 {
            p.push(alu64_k(BPF_AND, R4, 0xffff));
        }
        p.push(alu64_x(BPF_ADD, R5, R4));
    }
    for _ in 0..3 {
        p.extend([
            alu64_x(BPF_MOV, R4, R5),
            alu64_k(BPF_RSH, R4, 16),
            alu64_k(BPF_AND, R5, 0xffff),
            alu64_x(BPF_ADD, R5, R4),
        ]);
    }
    p.extend([
        alu64_k(BPF_XOR, R5, 0xffff),
        // 0 means "no checksum" in UDP over IPv4: its other form.
        Insn::new(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 1, 0),
        alu64_k(BPF_MOV, R5, 0xffff),
        to_be(R7, 16),
        store(BPF_H, R2, UDP_AT, R7),
        to_be(R8, 32),
        store(BPF_W, R2, SEQ_AT, R8),
        to_be(R6, 64),
        store(BPF_DW, R2, SENT_AT, R6),
        to_be(R5, 16),
        store(BPF_H, R2, UDP_AT + 6, R5),
        alu64_k(BPF_MOV, R0, XDP_TX),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]);
    let drop = p.len();
    p.extend([
        alu64_k(BPF_MOV, R0, XDP_DROP),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]);
    p[bounds_check].off = (drop - bounds_check - 1) as i16;
    p
}

/// The loaded program, its counter and the template, for one interface.
pub struct LiveFrames {
    program: OwnedFd,
    counter: Counter,
    template: Vec<u8>,
    ifindex: u32,
    /// The frame index the counter holds (the next frame's).
    next: u64,
    /// A socket to ask the interface's flags on (SIOCGIFFLAGS).
    flags_socket: OwnedFd,
    iface: String,
}

/// Why a batch did not all go.
#[derive(Debug)]
pub enum SendError {
    /// The interface is down (or has no carrier): nothing was run.
    LinkDown,
    /// The run failed after `done` frames (a signal: EINTR).
    Failed { done: u64, error: io::Error },
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
        let counter = Counter::create(COUNTER_NAME).map_err(|e| {
            Unavailable(match e.raw_os_error() {
                Some(libc::EPERM) => {
                    "creating a BPF map needs CAP_BPF (and CAP_NET_ADMIN for the XDP program)"
                        .to_owned()
                }
                _ => format!("creating a BPF map: {e}"),
            })
        })?;
        let insns = program(counter.fd(), plan);
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
        Ok(LiveFrames {
            program,
            counter,
            template: frame,
            ifindex,
            next: 0,
            flags_socket,
            iface: iface.to_owned(),
        })
    }

    /// Numbers the next frame `index` (frames skipped while the link was
    /// down keep their numbers: the sink sees the gap).
    pub fn set_next(&mut self, index: u64) -> io::Result<()> {
        if index != self.next {
            self.counter.set(index)?;
            self.next = index;
        }
        Ok(())
    }

    /// The index of the next frame.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Has the kernel stamp and transmit `count` frames.
    pub fn send(&mut self, count: u32) -> Result<(), SendError> {
        if !self.link_is_up() {
            return Err(SendError::LinkDown);
        }
        let run = XdpTestRun {
            program: self.program.as_fd(),
            data: &self.template,
            data_out: None,
            ingress_ifindex: self.ifindex,
            repeat: count,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: count.clamp(1, BATCH),
        };
        match run.run() {
            Ok(_) => {
                self.next += u64::from(count);
                Ok(())
            }
            Err(error) => {
                // How far it got: the counter the program moves.
                let reached = self.counter.get().unwrap_or(self.next);
                let done = reached.saturating_sub(self.next);
                self.next = reached;
                Err(SendError::Failed { done, error })
            }
        }
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
        _ => format!("a live-frames run failed: {error}"),
    }
}

/// The ceiling a `count` per run gets: a run is one system call, and a
/// stop (a signal, ARP to answer) waits for it.
pub fn max_run(rate: Option<f64>) -> usize {
    match rate {
        None => 16_384,
        Some(_) => TEST_XDP_MAX_BATCH as usize * 64,
    }
}

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
