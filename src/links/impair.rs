//! Impairments on a veth end: what the lab's `impair` asks of the frames
//! an endpoint sends, applied to the egress of its end of the pair.
//!
//! - `loss`: a clsact qdisc with a cls_bpf filter in direct-action mode on
//!   egress, whose eight-instruction program drops a frame when
//!   `bpf_get_prandom_u32()` falls below `loss * 2^32` ([`loss_program`]).
//!   The kernel keeps the program for as long as the filter exists; our
//!   descriptor is closed once the filter holds it.
//! - `delay`, `jitter`, `duplicate`, `reorder`, `corrupt`: a netem qdisc as
//!   the root qdisc (handle 1:), [`netem_options`].
//! - `rate`: a tbf qdisc ([`tbf_options`] says how burst and queue are
//!   chosen): the root qdisc (1:), or netem's child (parent 1:1, handle
//!   10:) when the end has netem too, as in tc-netem(8)'s rate example.
//!
//! So a frame meets the loss first (the egress clsact hook runs before the
//! root qdisc), then netem (which duplicates, corrupts and delays it), then
//! the rate limit: netem hands a frame to its child once its delay is over.
//! Which of the three applies a key is its row's `applied_by` in
//! [`crate::lab::impairment::KEYS`]: only `rate` and `loss` work without
//! netem, and the keys netem applies are refused before anything is
//! created where the kernel has none (`runtime::needs`).
//!
//! All of it lives on the interface, so it goes with the veth (and the
//! veth with its node's namespace): teardown has nothing more to remove.
//! Sends that skip the qdisc layer (PACKET_QDISC_BYPASS, AF_XDP's
//! transmit) would skip it all; the datalinks do not skip it on an
//! interface whose root qdisc is not `noqueue`, nor where clsact is
//! (docs/lab-format.md, "Impairments").
//!
//! Numbers and layouts are those of include/uapi/linux/{bpf.h,pkt_sched.h,
//! pkt_cls.h,rtnetlink.h}.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use futures_util::StreamExt;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::Handle;

use super::LinkError;
use crate::bpf::{
    Insn, Program, BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_IMM, BPF_JLT, BPF_JMP, BPF_K, BPF_LD,
    BPF_MOV, BPF_X,
};
use crate::lab::impairment::AppliedBy;
use crate::lab::Impairment;

/// The loss program's threshold for `loss` (a fraction): a frame is
/// dropped when a random u32 is below it (`loss * 2^32`, so 2^32 drops
/// every frame). `None` for no loss: 0% is no filter at all.
pub fn drop_below(loss: f64) -> Option<u64> {
    (loss > 0.0).then(|| (loss.clamp(0.0, 1.0) * 4_294_967_296.0).round() as u64)
}

// --- tbf (include/uapi/linux/pkt_sched.h) ---

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// The kernel's psched tick is 64 ns (PSCHED_SHIFT 6).
const PSCHED_SHIFT: u32 = 6;
/// Ethernet header: tbf counts the frame as the veth carries it.
const ETHERNET_HEADER: u64 = 14;
/// How much traffic the bucket holds when full, in time at the rate.
const BURST_NS: u64 = 10_000_000;
/// How much the queue behind the bucket holds, in time at the rate:
/// frames beyond it are dropped, as on a congested link.
const QUEUE_NS: u64 = 100_000_000;

/// The tbf parameters for `rate` bits/s on an interface of `mtu`:
/// `(burst, limit)` in bytes.
///
/// - burst: 10 ms of traffic at the rate, and at least two full frames
///   (tbf drops a frame bigger than its bucket, and one frame of slack
///   keeps back-to-back frames from waiting on the timer for each).
///   Over a measurement of a second or more, a 10 ms burst moves the
///   measured rate by at most 1%.
/// - limit (the queue behind the bucket): 100 ms at the rate, plus the
///   burst, so a sender slightly faster than the rate is delayed rather
///   than dropped, and one that stalls for tens of milliseconds (a loaded
///   machine) does not leave the link idle meanwhile; a much faster one
///   sees drops (ENOBUFS) instead of a queue that grows into seconds of
///   latency.
pub fn tbf_sizes(rate: u64, mtu: u32) -> (u32, u32) {
    let bytes_per_s = (rate / 8).max(1);
    let frame = u64::from(mtu) + ETHERNET_HEADER;
    let burst = (bytes_per_s * BURST_NS / 1_000_000_000).max(2 * frame);
    let limit = burst + bytes_per_s * QUEUE_NS / 1_000_000_000;
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    (clamp(burst), clamp(limit))
}

/// TCA_OPTIONS of a tbf qdisc: struct tc_tbf_qopt (a rate spec with no
/// peak rate), the burst in bytes (TCA_TBF_BURST, so the kernel computes
/// the bucket's time itself), and TCA_TBF_RATE64 when the rate in bytes
/// does not fit the spec's u32.
pub fn tbf_options(rate: u64, mtu: u32) -> Vec<TcOption> {
    let bytes_per_s = (rate / 8).max(1);
    let (burst, limit) = tbf_sizes(rate, mtu);
    let buffer_ticks = (u64::from(burst) * 1_000_000_000 / bytes_per_s) >> PSCHED_SHIFT;
    let mut qopt = Vec::with_capacity(36);
    // struct tc_ratespec rate: cell_log, linklayer, overhead, cell_align,
    // mpu, rate (bytes/s).
    qopt.push(0u8);
    qopt.push(TC_LINKLAYER_ETHERNET);
    qopt.extend_from_slice(&0u16.to_ne_bytes());
    qopt.extend_from_slice(&0i16.to_ne_bytes());
    qopt.extend_from_slice(&0u16.to_ne_bytes());
    qopt.extend_from_slice(&u32::try_from(bytes_per_s).unwrap_or(u32::MAX).to_ne_bytes());
    // struct tc_ratespec peakrate: none.
    qopt.extend_from_slice(&[0u8; 12]);
    // limit, buffer (ticks), mtu (for the peak rate: unused).
    qopt.extend_from_slice(&limit.to_ne_bytes());
    qopt.extend_from_slice(
        &u32::try_from(buffer_ticks)
            .unwrap_or(u32::MAX)
            .to_ne_bytes(),
    );
    qopt.extend_from_slice(&0u32.to_ne_bytes());
    let mut options = vec![
        TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, qopt)),
        TcOption::Other(DefaultNla::new(TCA_TBF_BURST, burst.to_ne_bytes().to_vec())),
    ];
    if bytes_per_s > u64::from(u32::MAX) {
        options.push(TcOption::Other(DefaultNla::new(
            TCA_TBF_RATE64,
            bytes_per_s.to_ne_bytes().to_vec(),
        )));
    }
    options
}

/// The root qdisc's handle, 1: (netem's, or tbf's without netem).
const ROOT_HANDLE: TcHandle = TcHandle { major: 1, minor: 0 };
/// netem's one class, 1:1, where its child qdisc hangs.
const NETEM_CLASS: TcHandle = TcHandle { major: 1, minor: 1 };
/// tbf's handle under netem, 10: (tc-netem(8)'s example; tc reads
/// handles in hex).
const TBF_UNDER_NETEM: TcHandle = TcHandle {
    major: 0x10,
    minor: 0,
};

/// RTM_NEWQDISC: tbf on `ifindex`, as the root qdisc (handle 1:) or, with
/// `under_netem`, as the child of the root netem (parent 1:1, handle 10:).
pub fn tbf_message(ifindex: i32, rate: u64, mtu: u32, under_netem: bool) -> TcMessage {
    let mut message = TcMessage::with_index(ifindex);
    (message.header.parent, message.header.handle) = if under_netem {
        (NETEM_CLASS, TBF_UNDER_NETEM)
    } else {
        (TcHandle::ROOT, ROOT_HANDLE)
    };
    message.attributes.push(TcAttribute::Kind("tbf".into()));
    message
        .attributes
        .push(TcAttribute::Options(tbf_options(rate, mtu)));
    message
}

// --- netem (include/uapi/linux/pkt_sched.h) ---

const TCA_OPTIONS: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
/// netem's queue in frames, tc's default: it holds every frame for its
/// delay, so beyond 1,000 frames in flight (100,000 frames/s at 10 ms)
/// netem drops what comes next.
const NETEM_LIMIT: u32 = 1000;

/// A fraction as netem's probability: of u32::MAX, rounded, as tc writes
/// it (netem acts when the probability is at least a random u32, so
/// u32::MAX is every frame).
fn probability(fraction: f64) -> u32 {
    (fraction.clamp(0.0, 1.0) * f64::from(u32::MAX)).round() as u32
}

/// A duration in psched ticks (64 ns).
fn ticks(duration: Duration) -> u32 {
    u32::try_from(duration.as_nanos() >> PSCHED_SHIFT).unwrap_or(u32::MAX)
}

/// TCA_OPTIONS of a netem qdisc for the netem keys of `impair`, as tc
/// (iproute2 6.1) builds them: struct tc_netem_qopt, then (not nested)
/// TCA_NETEM_REORDER and TCA_NETEM_CORRUPT when given.
///
/// - `latency` and `jitter` in psched ticks, as tc does: labctl's delays
///   are at most a minute, which fits (tc adds TCA_NETEM_LATENCY64 and
///   JITTER64, in ns, only beyond u32 ticks, about 274 s).
/// - `gap` 1 with a reorder, as tc sets it: every frame may be the one
///   sent at once (netem sends a frame without its delay when the frame
///   counter reached gap - 1 and the reorder probability is hit).
/// - `loss` 0: loss stays the BPF filter, so it works without netem and
///   means the same with it.
/// - No correlations (TCA_NETEM_CORR): each frame is impaired
///   independently, as `loss` is.
pub fn netem_options(impair: &Impairment) -> Vec<u8> {
    let mut options = Vec::with_capacity(48);
    let mut field = |value: u32| options.extend_from_slice(&value.to_ne_bytes());
    field(impair.delay.map_or(0, ticks));
    field(NETEM_LIMIT);
    field(0);
    field(u32::from(impair.reorder.is_some()));
    field(impair.duplicate.map_or(0, probability));
    field(impair.jitter.map_or(0, ticks));
    for (kind, fraction) in [
        (TCA_NETEM_REORDER, impair.reorder),
        (TCA_NETEM_CORRUPT, impair.corrupt),
    ] {
        if let Some(fraction) = fraction {
            // struct tc_netem_reorder / tc_netem_corrupt: probability,
            // correlation; 12 bytes with the attribute's header, aligned.
            options.extend_from_slice(&12u16.to_ne_bytes());
            options.extend_from_slice(&kind.to_ne_bytes());
            options.extend_from_slice(&probability(fraction).to_ne_bytes());
            options.extend_from_slice(&0u32.to_ne_bytes());
        }
    }
    options
}

/// RTM_NEWQDISC: netem as the root qdisc of `ifindex` (handle 1:). Its
/// TCA_OPTIONS is a struct followed by attributes, which `TcOption` does
/// not express: it goes as raw bytes, flagged as tc flags it (not nested).
pub fn netem_message(ifindex: i32, impair: &Impairment) -> TcMessage {
    let mut message = TcMessage::with_index(ifindex);
    message.header.parent = TcHandle::ROOT;
    message.header.handle = ROOT_HANDLE;
    message.attributes.push(TcAttribute::Kind("netem".into()));
    message.attributes.push(TcAttribute::Other(DefaultNla::new(
        TCA_OPTIONS,
        netem_options(impair),
    )));
    message
}

/// RTM_NEWQDISC: the clsact qdisc of `ifindex` (its hooks take filters).
pub fn clsact_message(ifindex: i32) -> TcMessage {
    let mut message = TcMessage::with_index(ifindex);
    message.header.parent = TcHandle::CLSACT;
    message.header.handle = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    message.attributes.push(TcAttribute::Kind("clsact".into()));
    message
}

const ETH_P_ALL: u16 = 0x0003;
const LOSS_FILTER_PRIORITY: u32 = 1;
const LOSS_PROGRAM_NAME: &str = "labctl_loss";

/// RTM_NEWTFILTER: a cls_bpf filter in direct-action mode on the egress
/// hook of `ifindex`'s clsact, for every protocol, running `program_fd`.
pub fn loss_filter_message(ifindex: i32, program_fd: u32) -> TcMessage {
    let mut message = TcMessage::with_index(ifindex);
    message.header.parent = TcHandle {
        major: 0xffff,
        minor: TcHandle::MIN_EGRESS,
    };
    // tcm_info: priority in the high half, protocol (network order) in
    // the low half.
    message.header.info = (LOSS_FILTER_PRIORITY << 16) | u32::from(ETH_P_ALL.to_be());
    message.attributes.push(TcAttribute::Kind("bpf".into()));
    message.attributes.push(TcAttribute::Options(vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(program_fd)),
        TcOption::Bpf(TcFilterBpfOption::ProgName(LOSS_PROGRAM_NAME.into())),
        TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
    ]));
    message
}

/// Applies `impair` to interface `ifindex` through `handle` (a netlink
/// connection inside the interface's namespace); `label` and `mtu` are
/// the end's, for messages and the tbf burst.
pub async fn apply(
    handle: &Handle,
    ifindex: u32,
    label: &str,
    mtu: u32,
    impair: &Impairment,
) -> Result<(), LinkError> {
    let index = i32::try_from(ifindex).unwrap_or(i32::MAX);
    if let Some(threshold) = impair.loss.and_then(drop_below) {
        let doing = format!("adding the loss filter (clsact, cls_bpf) on {label}");
        let program = LossProgram::load(threshold).map_err(LinkError::io(doing.clone()))?;
        request(
            handle,
            RouteNetlinkMessage::NewQueueDiscipline(clsact_message(index)),
        )
        .await
        .map_err(LinkError::netlink(doing.clone()))?;
        let fd = program.fd.as_raw_fd() as u32;
        request(
            handle,
            RouteNetlinkMessage::NewTrafficFilter(loss_filter_message(index, fd)),
        )
        .await
        .map_err(LinkError::netlink(doing))?;
        // The filter holds its own reference to the program now.
        drop(program);
    }
    let netem = impair.needs_netem();
    if netem {
        // Named by its netem keys only: rate and loss are not netem's.
        let keys = impair.only(AppliedBy::Netem);
        request(
            handle,
            RouteNetlinkMessage::NewQueueDiscipline(netem_message(index, impair)),
        )
        .await
        .map_err(LinkError::netlink(format!(
            "adding netem ({keys}) on {label}"
        )))?;
    }
    if let Some(rate) = impair.rate {
        request(
            handle,
            RouteNetlinkMessage::NewQueueDiscipline(tbf_message(index, rate, mtu, netem)),
        )
        .await
        .map_err(LinkError::netlink(format!(
            "adding the rate limit (tbf {}) on {label}",
            crate::lab::format_rate(rate)
        )))?;
    }
    Ok(())
}

/// Replaces whatever impairs the interface `interface` of the namespace
/// `netns` with `impair` (nothing: the link is plain again), while the lab
/// runs: its root qdisc and its clsact (the loss filter) are deleted, then
/// [`apply`] adds what `impair` needs. `label` names the end in messages.
pub async fn replace(
    netns: &std::path::Path,
    interface: &str,
    label: &str,
    impair: &Impairment,
) -> Result<(), LinkError> {
    let netns = super::namespace::Netns::open(netns)?;
    let handle = netns.netlink().await?;
    let link = super::netlink::link_of(&handle, interface)
        .await?
        .ok_or_else(|| {
            LinkError::io(format!("impairing {label}"))(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no interface {interface} in the node"),
            ))
        })?;
    let index = i32::try_from(link.0).unwrap_or(i32::MAX);
    for parent in [TcHandle::ROOT, TcHandle::CLSACT] {
        let mut message = TcMessage::with_index(index);
        message.header.parent = parent;
        if parent == TcHandle::CLSACT {
            message.header.handle = TcHandle {
                major: 0xffff,
                minor: 0,
            };
        }
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelQueueDiscipline(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        let mut responses =
            handle
                .clone()
                .request(request)
                .map_err(LinkError::netlink(format!(
                    "clearing the qdiscs of {label}"
                )))?;
        while let Some(response) = responses.next().await {
            if let NetlinkPayload::Error(error) = response.payload {
                // ENOENT, EINVAL: there was none of that kind.
                let code = error.raw_code();
                if code != 0 && code != -libc::ENOENT && code != -libc::EINVAL {
                    return Err(LinkError::netlink(format!(
                        "clearing the qdiscs of {label}"
                    ))(rtnetlink::Error::NetlinkError(
                        error,
                    )));
                }
            }
        }
    }
    apply(&handle, link.0, label, link.1, impair).await
}

/// A creating request, flagged as tc flags its own (`tc qdisc add`).
fn creating(message: RouteNetlinkMessage) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut request = NetlinkMessage::from(message);
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    request
}

/// Sends one creating request and waits for its acknowledgement.
async fn request(handle: &Handle, message: RouteNetlinkMessage) -> Result<(), rtnetlink::Error> {
    let mut responses = handle.clone().request(creating(message))?;
    while let Some(response) = responses.next().await {
        if let NetlinkPayload::Error(error) = response.payload {
            if error.code.is_some() {
                return Err(rtnetlink::Error::NetlinkError(error));
            }
        }
    }
    Ok(())
}

// --- the loss program (include/uapi/linux/bpf.h) ---

const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
// Direct-action return codes (include/uapi/linux/pkt_cls.h).
const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;

/// The loss program, for a threshold `drop_below` (0 to 2^32):
///
/// ```text
/// call bpf_get_prandom_u32        ; r0 = a random u32 (zero-extended)
/// r1 = drop_below                 ; ld_imm64, two slots (2^32 needs 33 bits)
/// if r0 < r1 goto drop            ; unsigned
/// r0 = TC_ACT_OK
/// exit
/// drop: r0 = TC_ACT_SHOT
/// exit
/// ```
pub fn loss_program(drop_below: u64) -> [Insn; 8] {
    let drop_below = drop_below.min(1 << 32);
    [
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_GET_PRANDOM_U32),
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, 0, 0, drop_below as u32 as i32),
        Insn::new(0, 0, 0, 0, (drop_below >> 32) as u32 as i32),
        Insn::new(BPF_JMP | BPF_JLT | BPF_X, 0, 1, 2, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, TC_ACT_OK),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, TC_ACT_SHOT),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

/// The loaded loss program (BPF_PROG_TYPE_SCHED_CLS).
struct LossProgram {
    fd: OwnedFd,
}

impl LossProgram {
    fn load(drop_below: u64) -> io::Result<LossProgram> {
        let insns = loss_program(drop_below);
        let fd = Program {
            prog_type: BPF_PROG_TYPE_SCHED_CLS,
            expected_attach_type: 0,
            name: LOSS_PROGRAM_NAME.as_bytes(),
            insns: &insns,
        }
        .load()
        .map_err(|e| {
            let why = e
                .verifier
                .map(|v| format!(" (verifier: {v})"))
                .unwrap_or_default();
            io::Error::new(
                e.error.kind(),
                format!(
                    "loading the loss program (bpf BPF_PROG_LOAD): {}{why}",
                    e.error
                ),
            )
        })?;
        Ok(LossProgram { fd })
    }
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::{Emitable, Nla};

    use super::*;

    #[test]
    fn loss_thresholds_follow_the_fraction() {
        assert_eq!(drop_below(0.1), Some(429_496_730));
        assert_eq!(drop_below(1.0), Some(1 << 32));
        // 0% is no filter at all.
        assert_eq!(drop_below(0.0), None);
    }

    #[test]
    fn the_loss_program_drops_below_the_threshold() {
        let insns = loss_program(1 << 32);
        // The 64-bit immediate is split over two slots.
        assert_eq!((insns[1].imm, insns[2].imm), (0, 1));
        let insns = loss_program(429_496_730);
        assert_eq!(insns[1].imm, 429_496_730);
        assert_eq!(insns[1].code, 0x18);
        assert_eq!(insns[2].imm, 0);
        // jlt r0, r1, +2 lands on `r0 = TC_ACT_SHOT`.
        assert_eq!(insns[3].code, 0xad);
        assert_eq!(insns[3].regs, 0x10);
        assert_eq!(
            insns[3 + 1 + insns[3].off as usize],
            Insn::new(0xb7, 0, 0, 0, 2)
        );
        assert_eq!(insns[4], Insn::new(0xb7, 0, 0, 0, 0));
        assert_eq!(insns[0], Insn::new(0x85, 0, 0, 0, 7));
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn tbf_sizes_suit_the_rate() {
        // 10 Mbit/s: 10 ms is 12,500 bytes; the queue adds 100 ms (125,000).
        assert_eq!(tbf_sizes(10_000_000, 1500), (12_500, 137_500));
        // A slow rate still holds two full frames.
        assert_eq!(tbf_sizes(64_000, 1500), (3028, 3028 + 800));
        assert_eq!(tbf_sizes(64_000, 9000).0, 18_028);
        // 100 Gbit/s does not overflow.
        let (burst, limit) = tbf_sizes(100_000_000_000, 1500);
        assert_eq!(burst, 125_000_000);
        assert!(limit > burst);
    }

    fn options_bytes(message: &TcMessage) -> Vec<u8> {
        let mut buffer = vec![0; message.buffer_len()];
        message.emit(&mut buffer);
        buffer
    }

    #[test]
    fn the_tbf_message_carries_the_kernels_layout() {
        let message = tbf_message(7, 10_000_000, 1500, false);
        assert_eq!(message.header.index, 7);
        assert_eq!(u32::from(message.header.parent), 0xffff_ffff);
        assert_eq!(u32::from(message.header.handle), 0x0001_0000);
        assert_eq!(message.attributes[0], TcAttribute::Kind("tbf".into()));
        let TcAttribute::Options(options) = &message.attributes[1] else {
            panic!("{message:?}")
        };
        assert_eq!(options.len(), 2);
        let TcOption::Other(parms) = &options[0] else {
            panic!()
        };
        assert_eq!(parms.kind(), TCA_TBF_PARMS);
        let mut value = vec![0; parms.value_len()];
        parms.emit_value(&mut value);
        assert_eq!(value.len(), 36, "sizeof(struct tc_tbf_qopt)");
        assert_eq!(value[1], TC_LINKLAYER_ETHERNET);
        let u32_at = |at: usize| u32::from_ne_bytes(value[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(8), 1_250_000, "rate in bytes/s");
        assert_eq!(u32_at(20), 0, "no peak rate");
        assert_eq!(u32_at(24), 137_500, "limit");
        // 12,500 bytes at 1.25 MB/s is 10 ms: 156,250 ticks of 64 ns.
        assert_eq!(u32_at(28), 156_250, "buffer");
        assert_eq!(options[1].kind(), TCA_TBF_BURST);
        // Over 34 Gbit/s the rate needs TCA_TBF_RATE64.
        let fast = tbf_message(7, 40_000_000_000, 1500, false);
        let TcAttribute::Options(options) = &fast.attributes[1] else {
            panic!()
        };
        assert_eq!(options.len(), 3);
        assert_eq!(options[2].kind(), TCA_TBF_RATE64);
        assert!(!options_bytes(&fast).is_empty());
    }

    #[test]
    fn the_loss_filter_sits_on_the_egress_hook_in_direct_action_mode() {
        let qdisc = clsact_message(3);
        assert_eq!(u32::from(qdisc.header.parent), 0xffff_fff1);
        assert_eq!(u32::from(qdisc.header.handle), 0xffff_0000);
        assert_eq!(qdisc.attributes, [TcAttribute::Kind("clsact".into())]);

        let filter = loss_filter_message(3, 42);
        assert_eq!(filter.header.index, 3);
        assert_eq!(u32::from(filter.header.parent), 0xffff_fff3);
        // Priority 1, protocol ETH_P_ALL in network order.
        assert_eq!(filter.header.info, 0x0001_0300);
        assert_eq!(filter.attributes[0], TcAttribute::Kind("bpf".into()));
        let TcAttribute::Options(options) = &filter.attributes[1] else {
            panic!("{filter:?}")
        };
        assert!(options.contains(&TcOption::Bpf(TcFilterBpfOption::ProgFd(42))));
        assert!(options.contains(&TcOption::Bpf(TcFilterBpfOption::Flags(
            TcBpfFlags::DirectAction
        ))));
        assert!(!options_bytes(&filter).is_empty());
    }
}

/// labctl's qdisc requests against the bytes iproute2's `tc` sends for
/// the same qdiscs, decoded and compared field by field.
///
/// The fixtures were captured on iproute2 6.1.0 (Debian 12) in a
/// throwaway namespace, the veth `va` being ifindex 3 there; the kernel
/// here has no netem and refused both, but the request is what counts:
///
/// ```text
/// unshare -n sh -c 'ip link add va type veth peer name vb
///   strace -e trace=sendmsg -e write=3 tc qdisc add dev va root handle 1: netem delay 10ms
///   strace -e trace=sendmsg -e write=3 tc qdisc add dev va root handle 1: \
///     netem delay 10ms 2ms duplicate 1% reorder 25% corrupt 0.1%
///   strace -e trace=sendmsg -e write=3 tc qdisc add dev va parent 1:1 handle 10: \
///     tbf rate 10mbit burst 12500 limit 137500'
/// ```
///
/// (the hex dump of each `sendmsg`, joined). tc's quirks, which labctl
/// follows: `latency` and `jitter` in psched ticks of 64 ns in struct
/// tc_netem_qopt, and TCA_NETEM_LATENCY64/JITTER64 only beyond what u32
/// ticks hold (none here); `gap` 1 with a reorder; `limit` 1000 frames
/// unless told; probabilities as a fraction of u32::MAX, rounded.
#[cfg(test)]
mod tc_compat {
    use super::*;

    /// include/uapi/linux/rtnetlink.h.
    const RTM_NEWQDISC: u16 = 36;

    const TC_NETEM_DELAY: &str = "4c0000002400050649d4156b00000000000000000300000000000100ffffffff\
        000000000a0001006e6574656d0000001c0002005a620200e80300000000000000000000000000000000\
        0000";

    const TC_NETEM_ALL: &str = "640000002400050647d4156b00000000000000000300000000000100ffffffff\
        000000000a0001006e6574656d000000340002005a620200e80300000000000001000000295c8f02127a\
        00000c00030000000040000000000c0004003789410000000000";

    /// The first 88 bytes of tc's 1,124: nlmsghdr, tcmsg, TCA_KIND,
    /// TCA_OPTIONS with TCA_TBF_PARMS and TCA_TBF_BURST. What follows is
    /// the 1,024-byte rate table (TCA_TBF_RTAB), which labctl does not
    /// send: tbf computes from the rate itself and takes the table only
    /// when given. Its length stays in the headers.
    const TC_TBF_UNDER_NETEM: &str = "640400002400050647d4156b000000000000000003000000\
        0000100001000100000000000800010074626600380402002800010003010000ffff0000d01213000000\
        000000000000000000001c1902005a6202000000000008000600d4300000";

    fn unhex(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// Attributes as `(type, value)`, in order; one cut short (a
    /// truncated fixture) keeps what is there.
    fn attributes(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut found = Vec::new();
        while bytes.len() >= 4 {
            let len = usize::from(u16_at(bytes, 0));
            assert!(len >= 4, "attribute of length {len}");
            let end = len.min(bytes.len());
            found.push((u16_at(bytes, 2), bytes[4..end].to_vec()));
            bytes = &bytes[((len + 3) & !3).min(bytes.len())..];
        }
        found
    }

    /// One RTM_NEWQDISC request, decoded as far as the tests compare it.
    #[derive(Debug, PartialEq)]
    struct Request {
        kind: u16,
        flags: u16,
        ifindex: u32,
        handle: u32,
        parent: u32,
        info: u32,
        /// TCA_KIND, without its NUL.
        qdisc: String,
        options: Vec<u8>,
    }

    fn decode(bytes: &[u8]) -> Request {
        // struct nlmsghdr (16 bytes), then struct tcmsg (20 bytes).
        let attributes = attributes(&bytes[36..]);
        let value = |kind: u16| {
            attributes
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no attribute {kind} in {attributes:?}"))
        };
        Request {
            kind: u16_at(bytes, 4),
            flags: u16_at(bytes, 6),
            ifindex: u32_at(bytes, 20),
            handle: u32_at(bytes, 24),
            parent: u32_at(bytes, 28),
            info: u32_at(bytes, 32),
            qdisc: String::from_utf8(value(1))
                .unwrap()
                .trim_end_matches('\0')
                .into(),
            options: value(TCA_OPTIONS),
        }
    }

    /// What labctl sends for `message`, as `request` sends it.
    fn ours(message: TcMessage) -> Vec<u8> {
        let mut request = creating(RouteNetlinkMessage::NewQueueDiscipline(message));
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        bytes
    }

    /// struct tc_netem_qopt, by field.
    #[derive(Debug, PartialEq)]
    struct NetemQopt {
        latency: u32,
        limit: u32,
        loss: u32,
        gap: u32,
        duplicate: u32,
        jitter: u32,
    }

    /// netem's TCA_OPTIONS: the struct, then the attributes after it,
    /// each as `(type, [u32 fields])`.
    fn netem(options: &[u8]) -> (NetemQopt, Vec<(u16, Vec<u32>)>) {
        let qopt = NetemQopt {
            latency: u32_at(options, 0),
            limit: u32_at(options, 4),
            loss: u32_at(options, 8),
            gap: u32_at(options, 12),
            duplicate: u32_at(options, 16),
            jitter: u32_at(options, 20),
        };
        let nested = attributes(&options[24..])
            .into_iter()
            .map(|(kind, value)| {
                let words = value.chunks(4).map(|w| u32_at(w, 0)).collect();
                (kind, words)
            })
            .collect();
        (qopt, nested)
    }

    fn compare_netem(tc_hex: &str, impair: &Impairment) -> (NetemQopt, Vec<(u16, Vec<u32>)>) {
        let tc = decode(&unhex(tc_hex));
        let labctl = decode(&ours(netem_message(3, impair)));
        assert_eq!(tc.kind, RTM_NEWQDISC);
        assert_eq!(
            (labctl.kind, labctl.flags, labctl.ifindex),
            (tc.kind, tc.flags, tc.ifindex)
        );
        assert_eq!(
            (labctl.handle, labctl.parent, labctl.info),
            (tc.handle, tc.parent, tc.info),
            "handle 1:, root"
        );
        assert_eq!(
            (labctl.qdisc.as_str(), tc.qdisc.as_str()),
            ("netem", "netem")
        );
        let (theirs, theirs_nested) = netem(&tc.options);
        let (mine, mine_nested) = netem(&labctl.options);
        assert_eq!(mine, theirs);
        assert_eq!(mine_nested, theirs_nested);
        // Field for field, so the byte strings agree too.
        assert_eq!(labctl.options, tc.options);
        (mine, mine_nested)
    }

    #[test]
    fn a_delay_is_what_tc_sends() {
        let (qopt, nested) = compare_netem(
            TC_NETEM_DELAY,
            &Impairment {
                delay: Some(Duration::from_millis(10)),
                ..Default::default()
            },
        );
        // 10 ms in ticks of 64 ns; tc's default queue; no reorder.
        assert_eq!((qopt.latency, qopt.limit, qopt.gap), (156_250, 1000, 0));
        assert!(nested.is_empty(), "{nested:?}");
    }

    #[test]
    fn every_netem_key_is_what_tc_sends() {
        let (qopt, nested) = compare_netem(
            TC_NETEM_ALL,
            &Impairment {
                delay: Some(Duration::from_millis(10)),
                jitter: Some(Duration::from_millis(2)),
                duplicate: Some(0.01),
                reorder: Some(0.25),
                corrupt: Some(0.001),
                ..Default::default()
            },
        );
        assert_eq!(
            qopt,
            NetemQopt {
                latency: 156_250,
                limit: 1000,
                loss: 0,
                gap: 1,
                duplicate: 42_949_673,
                jitter: 31_250,
            }
        );
        assert_eq!(
            nested,
            [
                (TCA_NETEM_REORDER, vec![1 << 30, 0]),
                (TCA_NETEM_CORRUPT, vec![4_294_967, 0])
            ]
        );
    }

    #[test]
    fn rate_and_loss_stay_out_of_netem() {
        let with = |rate, loss| Impairment {
            rate,
            loss,
            delay: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        assert_eq!(
            netem_options(&with(Some(10_000_000), Some(0.5))),
            netem_options(&with(None, None))
        );
        // Every frame, at 100%.
        let all = netem_options(&Impairment {
            duplicate: Some(1.0),
            ..Default::default()
        });
        assert_eq!(netem(&all).0.duplicate, u32::MAX);
    }

    #[test]
    fn tbf_under_netem_is_what_tc_sends() {
        let tc = decode(&unhex(TC_TBF_UNDER_NETEM));
        let labctl = decode(&ours(tbf_message(3, 10_000_000, 1500, true)));
        assert_eq!(
            (labctl.kind, labctl.flags, labctl.ifindex),
            (tc.kind, tc.flags, tc.ifindex)
        );
        // Parent 1:1 (netem's class), handle 10:.
        assert_eq!((tc.parent, tc.handle), (0x0001_0001, 0x0010_0000));
        assert_eq!((labctl.parent, labctl.handle), (tc.parent, tc.handle));
        assert_eq!((labctl.qdisc.as_str(), tc.qdisc.as_str()), ("tbf", "tbf"));
        let theirs = attributes(&tc.options);
        let mine = attributes(&labctl.options);
        let find = |attributes: &[(u16, Vec<u8>)], kind: u16| {
            attributes
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no attribute {kind}"))
        };
        let (their_parms, my_parms) = (find(&theirs, TCA_TBF_PARMS), find(&mine, TCA_TBF_PARMS));
        assert_eq!(
            my_parms.len(),
            their_parms.len(),
            "sizeof(struct tc_tbf_qopt)"
        );
        // struct tc_tbf_qopt: the rate's linklayer and bytes/s, no peak
        // rate, limit, buffer (ticks), mtu. tc also sets the rate's
        // cell_log and cell_align, which describe its rate table (not
        // sent by labctl).
        assert_eq!(my_parms[1], their_parms[1], "linklayer");
        for (at, what) in [
            (8, "rate"),
            (12, "peakrate"),
            (20, "peakrate bytes/s"),
            (24, "limit"),
            (28, "buffer"),
            (32, "mtu"),
        ] {
            assert_eq!(u32_at(&my_parms, at), u32_at(&their_parms, at), "{what}");
        }
        assert_eq!(u32_at(&their_parms, 8), 1_250_000);
        assert_eq!(find(&mine, TCA_TBF_BURST), find(&theirs, TCA_TBF_BURST));
        // At the root without netem: handle 1:, as before.
        let root = decode(&ours(tbf_message(3, 10_000_000, 1500, false)));
        assert_eq!((root.parent, root.handle), (0xffff_ffff, 0x0001_0000));
    }

    #[test]
    fn the_fixtures_decode() {
        // A wrong fixture would fail the comparisons for the wrong
        // reason: its lengths must agree with its bytes.
        for hex in [TC_NETEM_DELAY, TC_NETEM_ALL] {
            let bytes = unhex(hex);
            assert_eq!(u32_at(&bytes, 0) as usize, bytes.len());
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
            assert!(matches!(
                message.payload,
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(_))
            ));
        }
        assert_eq!(u32_at(&unhex(TC_TBF_UNDER_NETEM), 0), 1124);
    }
}
