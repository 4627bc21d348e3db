//! The netmap rings, read from memory the kernel (or a process in the
//! node that maps the same port) writes: a region laid out as netmap
//! lays it out, then anything written anywhere in it, between the
//! program's calls. Every offset and index the region gives is checked:
//! whatever is written, the ring code reads and writes nothing outside
//! the region (AddressSanitizer guards its edges) and hands out no frame
//! longer than a buffer.
//!
//! Input: 4 bytes of geometry (TX rings, RX rings, slots, buffer size),
//! then operations of 8 bytes: what (and a write's length), and its
//! arguments.
#![no_main]

use labctl::tools::datalink::netmap::fuzzing::{FakeRegion, Interface, Ring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((geometry, mut ops)) = data.split_first_chunk::<4>() else {
        return;
    };
    let tx = u32::from(geometry[0] % 4) + 1;
    let rx = u32::from(geometry[1] % 4) + 1;
    let slots = u32::from(geometry[2] % 63) + 2;
    let buf_size = (u32::from(geometry[3] % 32) + 1) * 64;
    let region = FakeRegion::new(tx, rx, slots, buf_size);
    let len = region.region().size();
    let mut interface: Option<Interface> = region.region().interface(region.nifp_offset()).ok();
    assert!(
        interface.is_some(),
        "a region as netmap lays it out is refused"
    );

    while let Some((op, rest)) = ops.split_first_chunk::<8>() {
        ops = rest;
        let arg = u32::from_le_bytes([op[1], op[2], op[3], op[4]]);
        let small = u32::from(op[5]);
        match op[0] % 8 {
            // A write of up to 4 bytes anywhere in the region.
            0 | 1 => {
                let at = u32::from_le_bytes([op[1], op[2], op[3], 0]) as usize % len;
                let n = usize::from(op[0] >> 3) % 5;
                region.write(at, &op[4..4 + n]);
            }
            // Locating the rings again (the registration), at netmap's
            // offset or any other.
            2 => {
                let offset = if op[5] % 2 == 0 {
                    region.nifp_offset()
                } else {
                    u64::from(arg)
                };
                interface = region.region().interface(offset).ok();
            }
            what => {
                let Some(interface) = interface.as_mut() else {
                    continue;
                };
                let rings = if op[6] % 2 == 0 {
                    &mut interface.tx
                } else {
                    &mut interface.rx
                };
                if rings.is_empty() {
                    continue;
                }
                let index = usize::from(op[7]) % rings.len();
                use_ring(&mut rings[index], what, arg, small);
            }
        }
    }
});

fn use_ring(ring: &mut Ring, what: u8, arg: u32, small: u32) {
    match what {
        3 => {
            if let Ok(owned) = ring.owned() {
                assert!(owned < ring.num_slots());
            }
            let _ = (ring.is_empty(), ring.transmissions_complete());
            let _ = (ring.head(), ring.tail(), ring.next(arg));
        }
        4 | 5 => {
            if let Ok(Some(slot)) = ring.received(small) {
                assert!(slot.data.len() <= ring.buf_size() as usize);
                // Read every byte: out of the region, ASan stops here.
                let sum: u32 = slot.data.iter().map(|b| u32::from(*b)).sum();
                std::hint::black_box(sum);
            }
        }
        6 => {
            let _ = ring.release(small);
        }
        _ => {
            let frame = vec![0xa5; (arg % 4096) as usize];
            let _ = ring.push(&frame);
        }
    }
}
