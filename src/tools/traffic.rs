//! The frames lab-gen sends and lab-sink counts: Ethernet, IPv4, UDP, and
//! a 20-byte payload at the start of the UDP data:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0..4  | magic `LGN1` |
//! | 4..8  | session: random per lab-gen run, so a sink tells runs apart |
//! | 8..12 | sequence number within the flow (wraps at 2^32) |
//! | 12..20 | send time, CLOCK_MONOTONIC nanoseconds (nodes share the host's clock) |
//!
//! The rest of the frame up to `--size` is zeros. Building is a copy of a
//! per-flow template and a few stores; the UDP checksum is the template's
//! partial sum plus the payload's words, so a frame costs no pass over its
//! padding. Parsing checks what a receiver must trust: lengths, the IPv4
//! header checksum and the UDP checksum.

use std::net::Ipv4Addr;

use pnet::util::MacAddr;

use super::frames::{self, BuildError, Ipv4Params, Link, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN};

pub const MAGIC: [u8; 4] = *b"LGN1";
pub const PAYLOAD_LEN: usize = 20;
pub const UDP_HEADER_LEN: usize = 8;
/// Ethernet + IPv4 + UDP headers.
pub const HEADERS_LEN: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;
/// The smallest frame lab-gen sends: headers and payload (62 bytes; the
/// Ethernet minimum of 60 is below it).
pub const MIN_FRAME: usize = HEADERS_LEN + PAYLOAD_LEN;
/// The largest: an IPv4 packet of 65535 bytes, in its Ethernet header.
pub const MAX_FRAME: usize = ETHERNET_HEADER_LEN + u16::MAX as usize;
/// Where the UDP header starts.
pub const UDP_AT: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
pub const PAYLOAD_AT: usize = HEADERS_LEN;
/// Where the sequence number and the send time are in a frame.
pub const SEQ_AT: usize = PAYLOAD_AT + 8;
pub const SENT_AT: usize = PAYLOAD_AT + 12;

/// The clock both ends read: CLOCK_MONOTONIC in nanoseconds (what
/// `Instant` reads too, but as a number that can travel in a frame).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a live timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// What one frame carries in its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub session: u32,
    pub seq: u32,
    pub sent_ns: u64,
}

/// One flow's frame, ready but for its stamp.
#[derive(Clone, Debug)]
pub struct Template {
    frame: Vec<u8>,
    /// The one's complement sum of the pseudo-header, the UDP header and
    /// the (zero) padding with a zero checksum field: all but the stamp.
    partial_sum: u32,
}

/// Where a flow goes, and from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEnds {
    pub link: Link,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl Template {
    /// The template of a `size`-byte frame (headers included) of a flow.
    pub fn new(ends: FlowEnds, size: usize) -> Result<Template, BuildError> {
        let padding = vec![0u8; size.max(MIN_FRAME) - HEADERS_LEN];
        let ip = Ipv4Params {
            src: ends.src,
            dst: ends.dst,
            ident: 0,
            dont_fragment: true,
        };
        let mut frame =
            frames::udp_datagram(ends.link, ip, ends.src_port, ends.dst_port, &padding)?;
        frame[UDP_AT + 6..UDP_AT + 8].copy_from_slice(&[0, 0]);
        let udp_len = (frame.len() - UDP_AT) as u32;
        let mut sum = pseudo_header_sum(ends.src, ends.dst, udp_len);
        sum += words_sum(&frame[UDP_AT..UDP_AT + UDP_HEADER_LEN]);
        Ok(Template {
            frame,
            partial_sum: sum,
        })
    }

    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// The one's complement sum (not folded) of everything the UDP
    /// checksum covers but the source port, the sequence number and the
    /// send time, for `session`: what a stamper that writes those three
    /// per frame (lab-gen's live-frames program) adds them to.
    pub fn sum_without_port_seq_time(&self, session: u32) -> u32 {
        let src_port = u16::from_be_bytes([self.frame[UDP_AT], self.frame[UDP_AT + 1]]);
        self.partial_sum - u32::from(src_port)
            + words_sum(&MAGIC)
            + words_sum(&session.to_be_bytes())
    }

    /// Writes the frame stamped with `stamp` into `out` (reusing its
    /// allocation).
    pub fn stamp_into(&self, stamp: Stamp, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.frame);
        let payload = encode(stamp);
        out[PAYLOAD_AT..PAYLOAD_AT + PAYLOAD_LEN].copy_from_slice(&payload);
        let checksum = finish(self.partial_sum + words_sum(&payload));
        // 0 means "no checksum" in UDP over IPv4: send its other form.
        let checksum = if checksum == 0 { 0xffff } else { checksum };
        out[UDP_AT + 6..UDP_AT + 8].copy_from_slice(&checksum.to_be_bytes());
    }
}

/// A flow's frame for writing in place (a netmap TX slot): the template
/// with the magic and session already in its payload, and the checksum
/// sum of everything but the sequence number and the send time. Per frame
/// only those two and the checksum are written (the checksum updated
/// incrementally, RFC 1624: the constant part's sum plus the new words).
#[derive(Clone, Debug)]
pub struct InPlaceTemplate {
    frame: Vec<u8>,
    sum: u32,
}

/// The send time's share of a UDP checksum, once per batch (a batch's
/// frames share their send time).
#[derive(Clone, Copy, Debug)]
pub struct SentSum {
    bytes: [u8; 8],
    sum: u32,
}

impl SentSum {
    pub fn new(sent_ns: u64) -> SentSum {
        let bytes = sent_ns.to_be_bytes();
        SentSum {
            bytes,
            sum: words_sum(&bytes),
        }
    }
}

impl InPlaceTemplate {
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// Writes the frame numbered `seq`, sent at `sent`, into `out`, which
    /// is [`InPlaceTemplate::len`] bytes long: the same bytes as
    /// [`Template::stamp_into`] gives.
    #[inline]
    pub fn write(&self, seq: u32, sent: &SentSum, out: &mut [u8]) {
        out.copy_from_slice(&self.frame);
        out[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_be_bytes());
        out[SENT_AT..SENT_AT + 8].copy_from_slice(&sent.bytes);
        let sum = u64::from(self.sum)
            + u64::from(sent.sum)
            + u64::from(seq >> 16)
            + u64::from(seq & 0xffff);
        let checksum = !fold(sum);
        // 0 means "no checksum" in UDP over IPv4: send its other form.
        let checksum = if checksum == 0 { 0xffff } else { checksum };
        out[UDP_AT + 6..UDP_AT + 8].copy_from_slice(&checksum.to_be_bytes());
    }
}

impl Template {
    /// This flow's frame for `session`, to be written in place.
    pub fn in_place(&self, session: u32) -> InPlaceTemplate {
        let mut frame = self.frame.clone();
        let payload = encode(Stamp {
            session,
            seq: 0,
            sent_ns: 0,
        });
        frame[PAYLOAD_AT..PAYLOAD_AT + PAYLOAD_LEN].copy_from_slice(&payload);
        InPlaceTemplate {
            frame,
            sum: self.partial_sum + words_sum(&payload),
        }
    }
}

fn encode(stamp: Stamp) -> [u8; PAYLOAD_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[0..4].copy_from_slice(&MAGIC);
    payload[4..8].copy_from_slice(&stamp.session.to_be_bytes());
    payload[8..12].copy_from_slice(&stamp.seq.to_be_bytes());
    payload[12..20].copy_from_slice(&stamp.sent_ns.to_be_bytes());
    payload
}

fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u32) -> u32 {
    words_sum(&src.octets()) + words_sum(&dst.octets()) + 17 + udp_len
}

/// The sum of big-endian 16-bit words (an odd last byte padded with zero).
fn words_sum(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .fold(0u32, u32::wrapping_add);
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// The ones' complement sum of `bytes` as 16-bit words, not folded, for
/// the sink's two checks a frame, read as little-endian 64-bit words and
/// added as two 32-bit halves (2^16 is 1 in that arithmetic, so a u64
/// loses no carry for a 64 KiB datagram). Ones' complement addition does
/// not care for byte order (RFC 1071 §2): the folded sum is the 16-bit
/// big-endian one with its bytes swapped, and 0xffff, what a right
/// checksum sums to, is the same either way round.
fn le_words_sum(bytes: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut rest = bytes;
    // Two words a turn: half the loop's own work.
    while let Some((&[w0, w1, w2, w3, w4, w5, w6, w7, x0, x1, x2, x3, x4, x5, x6, x7], tail)) =
        rest.split_first_chunk::<16>()
    {
        sum += halves(u64::from_le_bytes([w0, w1, w2, w3, w4, w5, w6, w7]))
            + halves(u64::from_le_bytes([x0, x1, x2, x3, x4, x5, x6, x7]));
        rest = tail;
    }
    if let Some((&word, tail)) = rest.split_first_chunk::<8>() {
        sum += halves(u64::from_le_bytes(word));
        rest = tail;
    }
    // The rest starts at an even offset, so its pieces are whole 16-bit
    // words but an odd last byte, which lands low, as a little-endian word
    // padded with zero: the big-endian padding once swapped.
    if let Some((&word, tail)) = rest.split_first_chunk::<4>() {
        sum += u64::from(u32::from_le_bytes(word));
        rest = tail;
    }
    if let Some((&word, tail)) = rest.split_first_chunk::<2>() {
        sum += u64::from(u16::from_le_bytes(word));
        rest = tail;
    }
    if let [last] = rest {
        sum += u64::from(*last);
    }
    sum
}

/// [`le_words_sum`] of an IPv4 header without options, unrolled: every
/// frame of lab-gen's has one.
fn le_header_sum(header: &[u8; IPV4_HEADER_LEN]) -> u64 {
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16, w17, w18, w19] =
        *header;
    halves(u64::from_le_bytes([w0, w1, w2, w3, w4, w5, w6, w7]))
        + halves(u64::from_le_bytes([w8, w9, w10, w11, w12, w13, w14, w15]))
        + u64::from(u32::from_le_bytes([w16, w17, w18, w19]))
}

fn halves(word: u64) -> u64 {
    (word & 0xffff_ffff) + (word >> 32)
}

/// Folds a ones' complement sum to 16 bits, without a loop: 64 bits to 33,
/// to 18, to 17, to 16.
fn fold(sum: u64) -> u16 {
    let sum = halves(sum);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ((sum & 0xffff) + (sum >> 16)) as u16
}

fn finish(sum: u32) -> u16 {
    !fold(u64::from(sum))
}

/// What a received frame is, to a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A lab-gen frame for `dst`.
    Traffic {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
        stamp: Stamp,
    },
    /// IPv4 UDP to us with a wrong IPv4 or UDP checksum, or lengths that
    /// do not add up.
    Corrupted,
    /// An ARP message (the caller decodes it: ARP is rare).
    Arp,
    /// Anything else: not IPv4 UDP, not a lab-gen payload.
    Other,
}

/// Classifies `frame` without decoding more than lab-sink needs. Never
/// panics: every length is checked before it is used.
// Always inlined: called once a frame by lab-sink's accounting, where the
// call and the returned enum cost a tenth of the frame.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Parsed {
    // Fixed-size views of the headers: the fields at constant offsets need
    // no bounds check of their own (this runs for every frame a sink gets).
    let Some((eth, ip)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
        return Parsed::Other;
    };
    match u16::from_be_bytes([eth[12], eth[13]]) {
        0x0806 => return Parsed::Arp,
        0x0800 => {}
        _ => return Parsed::Other,
    }
    let Some(fixed) = ip.first_chunk::<IPV4_HEADER_LEN>() else {
        return Parsed::Other;
    };
    if fixed[0] >> 4 != 4 || fixed[9] != 17 {
        return Parsed::Other;
    }
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    let fragmented = u16::from_be_bytes([fixed[6], fixed[7]]) & 0x3fff != 0;
    if header_len < IPV4_HEADER_LEN || total_len < header_len || total_len > ip.len() {
        return Parsed::Corrupted;
    }
    if fragmented {
        return Parsed::Other;
    }
    let header_sum = if header_len == IPV4_HEADER_LEN {
        le_header_sum(fixed)
    } else {
        le_words_sum(&ip[..header_len])
    };
    if fold(header_sum) != 0xffff {
        return Parsed::Corrupted;
    }
    let Some((head, _)) = ip[header_len..total_len].split_first_chunk::<UDP_HEADER_LEN>() else {
        return Parsed::Corrupted;
    };
    let udp_len = usize::from(u16::from_be_bytes([head[4], head[5]]));
    if udp_len < UDP_HEADER_LEN || header_len + udp_len > total_len {
        return Parsed::Corrupted;
    }
    let udp = &ip[header_len..header_len + udp_len];
    let Some(payload) = udp[UDP_HEADER_LEN..].first_chunk::<PAYLOAD_LEN>() else {
        return Parsed::Other;
    };
    if payload[0..4] != MAGIC {
        return Parsed::Other;
    }
    let [.., a0, a1, a2, a3, b0, b1, b2, b3] = *fixed;
    if u16::from_be_bytes([head[6], head[7]]) != 0 {
        // The pseudo-header: the addresses (the IPv4 header's last 8
        // bytes), protocol 17 and the UDP length, little-endian as the rest.
        let pseudo = halves(u64::from_le_bytes([a0, a1, a2, a3, b0, b1, b2, b3]))
            + 0x1100
            + u64::from(u16::from_le_bytes([head[4], head[5]]));
        if fold(pseudo + le_words_sum(udp)) != 0xffff {
            return Parsed::Corrupted;
        }
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([
            payload[at],
            payload[at + 1],
            payload[at + 2],
            payload[at + 3],
        ])
    };
    let [.., s0, s1, s2, s3, s4, s5, s6, s7] = *payload;
    Parsed::Traffic {
        src: Ipv4Addr::from([a0, a1, a2, a3]),
        dst: Ipv4Addr::from([b0, b1, b2, b3]),
        src_port: u16::from_be_bytes([head[0], head[1]]),
        dst_port: u16::from_be_bytes([head[2], head[3]]),
        stamp: Stamp {
            session: be32(4),
            seq: be32(8),
            sent_ns: u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        },
    }
}

/// The destination MAC of a frame, if it has an Ethernet header.
pub fn eth_dst(frame: &[u8]) -> Option<MacAddr> {
    let b = frame.get(..6)?;
    Some(MacAddr::new(b[0], b[1], b[2], b[3], b[4], b[5]))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The 32-bit-word sum folds to the 16-bit-word one, whatever the
        /// length (odd lengths pad the last byte) and the bytes.
        #[test]
        fn the_long_sum_folds_as_the_16_bit_one(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let by_16 = bytes
                .chunks(2)
                .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
                .sum::<u64>();
            prop_assert_eq!(fold(le_words_sum(&bytes)).swap_bytes(), fold(by_16));
        }
    }

    proptest! {
        /// Folding is the sum modulo 0xffff, in 1..=0xffff but for a sum
        /// of 0 (end-around carry never makes 0 from a non-zero sum).
        #[test]
        fn fold_is_the_sum_modulo_0xffff(sum in any::<u64>()) {
            let expected = if sum == 0 { 0 } else { (sum - 1) % 0xffff + 1 };
            prop_assert_eq!(u64::from(fold(sum)), expected);
        }

        /// Whatever bytes of a lab-gen frame change (but the fields that
        /// say what it is and how long), it parses as traffic exactly when
        /// both checksums, summed the plain way in 16-bit big-endian words,
        /// still hold.
        #[test]
        fn parse_checks_both_checksums_as_the_plain_sum_does(
            size in MIN_FRAME..200usize,
            seq in any::<u32>(),
            changes in prop::collection::vec((any::<usize>(), 1..=255u8), 0..4),
        ) {
            let stamp = Stamp { session: 9, seq, sent_ns: 77 };
            let mut frame = stamped(size, stamp);
            let ip_at = ETHERNET_HEADER_LEN;
            // Version and length, total length, fragment, protocol; the
            // UDP length.
            let kept = [0, 2, 3, 6, 7, 9].map(|at| ip_at + at).into_iter().chain([UDP_AT + 4, UDP_AT + 5]);
            let kept: Vec<usize> = kept.chain(PAYLOAD_AT..PAYLOAD_AT + 4).collect();
            for (at, by) in changes {
                let at = ip_at + at % (frame.len() - ip_at);
                if !kept.contains(&at) {
                    frame[at] ^= by;
                }
            }
            let udp_len = frame.len() - UDP_AT;
            let ip_ok = fold(u64::from(words_sum(&frame[ip_at..UDP_AT]))) == 0xffff;
            let pseudo = [&frame[ip_at + 12..UDP_AT], &[0, 17], &(udp_len as u16).to_be_bytes()].concat();
            let udp_sum = u64::from(words_sum(&pseudo)) + u64::from(words_sum(&frame[UDP_AT..]));
            let unchecked = frame[UDP_AT + 6..UDP_AT + 8] == [0, 0];
            let valid = ip_ok && (unchecked || fold(udp_sum) == 0xffff);
            let parsed = parse(&frame);
            prop_assert_eq!(matches!(parsed, Parsed::Traffic { .. }), valid, "{:?}", parsed);
            prop_assert_eq!(parsed == Parsed::Corrupted, !valid);
        }
    }

    fn ends() -> FlowEnds {
        FlowEnds {
            link: Link {
                src: MacAddr::new(2, 0, 0, 0, 0, 1),
                dst: MacAddr::new(2, 0, 0, 0, 0, 2),
            },
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 49152,
            dst_port: 9,
        }
    }

    fn stamped(size: usize, stamp: Stamp) -> Vec<u8> {
        let mut out = Vec::new();
        Template::new(ends(), size)
            .unwrap()
            .stamp_into(stamp, &mut out);
        out
    }

    #[test]
    fn a_stamped_frame_parses_back_and_pnet_agrees_on_every_checksum() {
        let stamp = Stamp {
            session: 0xdead_beef,
            seq: 41,
            sent_ns: 123_456_789_012,
        };
        for size in [MIN_FRAME, 64, 65, 1514] {
            let frame = stamped(size, stamp);
            assert_eq!(frame.len(), size);
            assert_eq!(
                parse(&frame),
                Parsed::Traffic {
                    src: ends().src,
                    dst: ends().dst,
                    src_port: 49152,
                    dst_port: 9,
                    stamp
                }
            );
            let decoded = frames::decode(&frame).unwrap();
            let text = decoded.to_string();
            assert!(
                text.starts_with("UDP Packet: 198.18.0.1:49152 > 198.18.0.2:9"),
                "{text}"
            );
            // pnet's own UDP checksum of the frame matches ours.
            let udp = pnet::packet::udp::UdpPacket::new(&frame[UDP_AT..]).unwrap();
            let expected = pnet::packet::udp::ipv4_checksum(&udp, &ends().src, &ends().dst);
            assert_eq!(udp.get_checksum(), expected, "size {size}");
        }
    }

    #[test]
    fn a_frame_written_in_place_is_the_stamped_frame_byte_for_byte() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut seen_folded_zero = false;
        for size in [MIN_FRAME, 64, 65, 1514] {
            let template = Template::new(ends(), size).unwrap();
            let session = next() as u32;
            let in_place = template.in_place(session);
            assert_eq!(in_place.len(), size);
            // Stale bytes in the buffer (a swapped netmap buffer) must not
            // show through.
            let mut slot = vec![0xa5u8; size];
            for round in 0..20_000u32 {
                let seq = match round {
                    0 => 0,
                    1 => u32::MAX,
                    _ => next() as u32,
                };
                let sent_ns = next();
                let stamp = Stamp {
                    session,
                    seq,
                    sent_ns,
                };
                let mut expected = Vec::new();
                template.stamp_into(stamp, &mut expected);
                in_place.write(seq, &SentSum::new(sent_ns), &mut slot);
                assert_eq!(slot, expected, "size {size} seq {seq} sent {sent_ns}");
                seen_folded_zero |= expected[UDP_AT + 6..UDP_AT + 8] == [0xff, 0xff];
            }
        }
        // Search a stamp whose sum folds to 0xffff (checksum 0, sent as
        // 0xffff) so that case is covered, not hoped for.
        let template = Template::new(ends(), 64).unwrap();
        let in_place = template.in_place(7);
        let mut slot = vec![0u8; 64];
        'search: for seq in 0..=u32::MAX {
            let mut expected = Vec::new();
            template.stamp_into(
                Stamp {
                    session: 7,
                    seq,
                    sent_ns: 1,
                },
                &mut expected,
            );
            if expected[UDP_AT + 6..UDP_AT + 8] == [0xff, 0xff] {
                in_place.write(seq, &SentSum::new(1), &mut slot);
                assert_eq!(slot, expected, "seq {seq}");
                seen_folded_zero = true;
                break 'search;
            }
        }
        assert!(seen_folded_zero);
    }

    /// A frame whose IPv4 header carries options (summed the long way, not
    /// unrolled) parses as the same traffic, and a wrong header checksum
    /// there is caught.
    #[test]
    fn a_header_with_options_is_summed_whole() {
        let stamp = Stamp {
            session: 3,
            seq: 4,
            sent_ns: 5,
        };
        let plain = stamped(64, stamp);
        // Four NOP options after the fixed header: IHL 6, total length + 4.
        let mut frame = plain[..UDP_AT].to_vec();
        frame.extend_from_slice(&[1, 1, 1, 1]);
        frame.extend_from_slice(&plain[UDP_AT..]);
        let ip = ETHERNET_HEADER_LEN;
        frame[ip] = 0x46;
        let total = u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]) + 4;
        frame[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
        frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let sum = finish(words_sum(&frame[ip..ip + 24]));
        frame[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        assert!(
            matches!(parse(&frame), Parsed::Traffic { stamp: got, src_port: 49152, .. } if got == stamp),
            "{:?}",
            parse(&frame)
        );
        frame[ip + 22] = 0;
        assert_eq!(parse(&frame), Parsed::Corrupted);
    }

    #[test]
    fn a_flipped_bit_is_corrupted_not_traffic() {
        let frame = stamped(
            64,
            Stamp {
                session: 1,
                seq: 2,
                sent_ns: 3,
            },
        );
        for byte in ETHERNET_HEADER_LEN..frame.len() {
            let mut bad = frame.clone();
            bad[byte] ^= 0x10;
            match parse(&bad) {
                Parsed::Traffic { stamp, .. } => {
                    panic!("byte {byte} flipped still parsed: {stamp:?}")
                }
                Parsed::Corrupted | Parsed::Other => {}
                Parsed::Arp => panic!("byte {byte}: ARP?"),
            }
        }
    }

    #[test]
    fn short_and_foreign_frames_are_not_traffic() {
        assert_eq!(parse(&[]), Parsed::Other);
        let frame = stamped(
            64,
            Stamp {
                session: 1,
                seq: 2,
                sent_ns: 3,
            },
        );
        for len in 0..frame.len() {
            assert!(
                !matches!(parse(&frame[..len]), Parsed::Traffic { .. }),
                "cut at {len}"
            );
        }
        let arp = frames::arp_request(ends().link.src, ends().src, ends().dst);
        assert_eq!(parse(&arp), Parsed::Arp);
        let mut other_udp = frames::udp_datagram(
            ends().link,
            Ipv4Params {
                src: ends().src,
                dst: ends().dst,
                ident: 0,
                dont_fragment: true,
            },
            5353,
            9,
            b"not a lab-gen payload",
        )
        .unwrap();
        assert_eq!(parse(&other_udp), Parsed::Other);
        other_udp[12] = 0x86;
        assert_eq!(parse(&other_udp), Parsed::Other);
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
