//! Impairments on a veth end: what the lab's `impair` asks of the frames
//! an endpoint sends, applied to the egress of its end of the pair.
//!
//! - `rate`: a tbf qdisc as the root qdisc of the interface ([`tbf_options`]
//!   says how burst and queue are chosen).
//! - `loss`: a clsact qdisc with a cls_bpf filter in direct-action mode on
//!   egress, whose eight-instruction program drops a frame when
//!   `bpf_get_prandom_u32()` falls below `loss * 2^32` ([`loss_program`]).
//!   The kernel keeps the program for as long as the filter exists; our
//!   descriptor is closed once the filter holds it.
//!
//! Both live on the interface, so they go with the veth (and the veth with
//! its node's namespace): teardown has nothing more to remove.
//!
//! The egress clsact hook runs before the root qdisc, so with both keys a
//! frame is first subject to the loss and then to the rate limit. Sends
//! that skip the qdisc layer (PACKET_QDISC_BYPASS, AF_XDP's transmit) skip
//! both; the datalinks do not skip it on an interface that has either
//! (docs/lab-format.md, "Impairments").
//!
//! Numbers and layouts are those of include/uapi/linux/{bpf.h,pkt_sched.h,
//! pkt_cls.h}.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

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

/// What one end's egress gets: the lab's `Impairment` minus what needs
/// netem (refused before anything is created).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Bits per second.
    pub rate: Option<u64>,
    /// A frame is dropped when a random u32 is below this (`loss * 2^32`,
    /// so 2^32 drops every frame).
    pub drop_below: Option<u64>,
}

impl Shaping {
    pub fn from_impairment(impair: &crate::lab::Impairment) -> Option<Shaping> {
        let shaping = Shaping {
            rate: impair.rate,
            drop_below: impair
                .loss
                .filter(|loss| *loss > 0.0)
                .map(|loss| (loss.clamp(0.0, 1.0) * 4_294_967_296.0).round() as u64),
        };
        (shaping != Shaping::default()).then_some(shaping)
    }
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

/// RTM_NEWQDISC: tbf as the root qdisc of `ifindex` (handle 1:).
pub fn tbf_message(ifindex: i32, rate: u64, mtu: u32) -> TcMessage {
    let mut message = TcMessage::with_index(ifindex);
    message.header.parent = TcHandle::ROOT;
    message.header.handle = TcHandle { major: 1, minor: 0 };
    message.attributes.push(TcAttribute::Kind("tbf".into()));
    message
        .attributes
        .push(TcAttribute::Options(tbf_options(rate, mtu)));
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

/// Applies `shaping` to interface `ifindex` through `handle` (a netlink
/// connection inside the interface's namespace); `label` and `mtu` are
/// the end's, for messages and the tbf burst.
pub async fn apply(
    handle: &Handle,
    ifindex: u32,
    label: &str,
    mtu: u32,
    shaping: &Shaping,
) -> Result<(), LinkError> {
    let index = i32::try_from(ifindex).unwrap_or(i32::MAX);
    if let Some(threshold) = shaping.drop_below {
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
    if let Some(rate) = shaping.rate {
        request(
            handle,
            RouteNetlinkMessage::NewQueueDiscipline(tbf_message(index, rate, mtu)),
        )
        .await
        .map_err(LinkError::netlink(format!(
            "adding the rate limit (tbf {}) on {label}",
            crate::lab::format_rate(rate)
        )))?;
    }
    Ok(())
}

/// Sends one creating request and waits for its acknowledgement.
async fn request(handle: &Handle, message: RouteNetlinkMessage) -> Result<(), rtnetlink::Error> {
    let mut request = NetlinkMessage::from(message);
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut responses = handle.clone().request(request)?;
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
        let loss = |l: f64| {
            Shaping::from_impairment(&crate::lab::Impairment {
                loss: Some(l),
                ..Default::default()
            })
        };
        assert_eq!(loss(0.1).unwrap().drop_below, Some(429_496_730));
        assert_eq!(loss(1.0).unwrap().drop_below, Some(1 << 32));
        // 0% is no filter at all.
        assert_eq!(loss(0.0), None);
        let rate = Shaping::from_impairment(&crate::lab::Impairment {
            rate: Some(10_000_000),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((rate.rate, rate.drop_below), (Some(10_000_000), None));
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
        let message = tbf_message(7, 10_000_000, 1500);
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
        let fast = tbf_message(7, 40_000_000_000, 1500);
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
