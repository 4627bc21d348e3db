//! The AF_XDP rings and UMEM, read from memory the kernel (or a process
//! in the node that shares the socket) writes: the real chunk bookkeeping
//! and ring logic over plain memory, with a kernel that behaves (delivers
//! frames, sends them) between writes of anything into any ring index,
//! entry or UMEM byte. Whatever is written: nothing is read or written
//! outside the memory (AddressSanitizer), a received frame lies inside
//! one chunk, and no more TX chunks are free than there are.
//!
//! Input: operations of 8 bytes, what and its arguments.
#![no_main]

use labctl::tools::datalink::af_xdp::{PlainXsk, RingName, RingWord};
use libfuzzer_sys::fuzz_target;

/// What the datalink checks before it queues a frame (MAX_FRAME).
const MAX_FRAME: usize = 4096 - 256;

fuzz_target!(|data: &[u8]| {
    let mut xsk = PlainXsk::new();
    // Chunks the program holds, received and not yet recycled.
    let mut lent: Vec<u64> = Vec::new();
    for op in data.chunks_exact(8) {
        let value = u32::from_le_bytes([op[1], op[2], op[3], op[4]]);
        let ring = RingName::ALL[usize::from(op[5] % 4)];
        match op[0] % 12 {
            0 => {
                xsk.deliver(&vec![op[6]; (value % 4200) as usize]);
            }
            1 => {
                let _ = xsk.transmit();
            }
            2 => {
                let word = [RingWord::Producer, RingWord::Consumer, RingWord::Flags]
                    [usize::from(op[6] % 3)];
                xsk.write_index(ring, word, value);
            }
            3 => {
                // Addresses near the UMEM's chunks, or anywhere.
                let addr = if op[7] % 2 == 0 {
                    u64::from(value % (PlainXsk::UMEM_BYTES as u32 + 2 * 4096))
                } else {
                    u64::from(value) << (op[7] % 33)
                };
                let len = u32::from(u16::from_le_bytes([op[6], op[7]]));
                xsk.write_entry(ring, u32::from(op[6]), addr, len);
            }
            4 => {
                let at = value as usize % (PlainXsk::UMEM_BYTES + 16);
                xsk.write_umem(at, &op[5..8]);
            }
            5 | 6 => {
                if let Some((addr, len)) = xsk.next_received() {
                    let frame = xsk.frame(addr, len).expect("a received frame is readable");
                    assert_eq!(frame.len(), len);
                    assert!(len <= PlainXsk::FRAME_SIZE);
                    let sum: u32 = frame.iter().map(|b| u32::from(*b)).sum();
                    std::hint::black_box(sum);
                    lent.push(addr);
                }
            }
            7 => {
                if !lent.is_empty() {
                    let addr = lent.swap_remove(usize::from(op[6]) % lent.len());
                    xsk.recycle(addr);
                }
            }
            8 => {
                let _ = xsk.queue_for_send(&vec![op[6]; value as usize % (MAX_FRAME + 1)]);
            }
            9 => {
                let frames: Vec<Vec<u8>> = (0..op[6] % 12)
                    .map(|i| vec![i; (value as usize >> i) % (MAX_FRAME + 1)])
                    .collect();
                let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                let queued = xsk.queue_batch(&frames);
                assert!(queued <= frames.len());
            }
            10 => {
                let _ = (xsk.tx_in_flight(), xsk.needs_wakeup());
            }
            _ => {
                // Any address the program was not given, as a bug in the
                // datalink would hand back: the fill ring takes it, and
                // nothing here reads or writes it.
                xsk.recycle(u64::from(value));
            }
        }
        assert!(xsk.free_tx() <= PlainXsk::TX_CHUNKS);
    }
});
