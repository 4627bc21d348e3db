use super::*;
use crate::bpf::{BPF_ALU64, BPF_END, BPF_MEM, BPF_STX, BPF_TO_BE};

fn plan(flows: u16) -> StampPlan {
    StampPlan {
        flows,
        base_port: 49152,
        base_sum: 0x1_2345,
    }
}

fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns
        .iter()
        .flat_map(|insn| {
            let mut out = vec![insn.code, insn.regs];
            out.extend(insn.off.to_le_bytes());
            out.extend(insn.imm.to_le_bytes());
            out
        })
        .collect()
}

#[test]
fn the_program_starts_by_reading_the_clock_and_checking_the_bounds() {
    let program = program(7, plan(1));
    #[rustfmt::skip]
    let expected: [u8; 72] = [
        0xbf, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r9 = r1
        0x85, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // call bpf_ktime_get_ns (5)
        0xbf, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r6 = r0
        0x61, 0x92, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u32 *)(r9 + 0)
        0x61, 0x93, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // r3 = *(u32 *)(r9 + 4)
        0xbf, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // r4 = r2
        0x07, 0x04, 0x00, 0x00, 0x3e, 0x00, 0x00, 0x00, // r4 += 62
        0x2d, 0x34, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // if r4 > r3 goto drop (offset checked below)
        0x18, 0x21, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // r1 = &map 7's value (ld_imm64 ...
    ];
    let got = bytes(&program);
    // All but the jump's offset (bytes 58 and 59).
    assert_eq!(got[..58], expected[..58]);
    assert_eq!(got[60..72], expected[60..72]);
}

#[test]
fn the_bounds_check_jumps_to_the_drop_at_the_end() {
    for flows in [1, 3] {
        let program = program(7, plan(flows));
        let check = &program[7];
        assert_eq!(check.code, BPF_JMP | BPF_JGT | BPF_X);
        let target = 7 + 1 + check.off as usize;
        assert_eq!(target, program.len() - 2);
        assert_eq!(program[target].imm, XDP_DROP);
        assert_eq!(program[target - 2].imm, XDP_TX);
        for end in [target - 1, target + 1] {
            assert_eq!(program[end].code, BPF_JMP | BPF_EXIT);
        }
    }
}

#[test]
fn flows_divide_the_index_and_one_flow_does_not() {
    let divides = |insns: &[Insn]| {
        insns
            .iter()
            .filter(|i| {
                i.code == BPF_ALU64 | BPF_DIV | BPF_K || i.code == BPF_ALU64 | BPF_MOD | BPF_K
            })
            .map(|i| i.imm)
            .collect::<Vec<_>>()
    };
    assert_eq!(divides(&program(7, plan(1))), Vec::<i32>::new());
    assert_eq!(divides(&program(7, plan(5))), vec![5, 5]);
}

#[test]
fn the_stamp_goes_where_the_sink_reads_it_big_endian() {
    let program = program(7, plan(2));
    let stores: Vec<(u8, i16)> = program
        .iter()
        .filter(|i| i.code & 0x07 == BPF_STX && i.regs & 0x0f == R2)
        .map(|i| (i.code, i.off))
        .collect();
    assert_eq!(
        stores,
        vec![
            (BPF_STX | BPF_MEM | BPF_H, 34),  // source port
            (BPF_STX | BPF_MEM | BPF_W, 50),  // sequence number
            (BPF_STX | BPF_MEM | BPF_DW, 54), // send time
            (BPF_STX | BPF_MEM | BPF_H, 40),  // UDP checksum
        ]
    );
    let swaps: Vec<i32> = program
        .iter()
        .filter(|i| i.code == BPF_ALU | BPF_END | BPF_TO_BE)
        .map(|i| i.imm)
        .collect();
    assert_eq!(swaps, vec![16, 32, 64, 16]);
}

#[test]
fn larger_frames_than_a_page_holds_are_refused_with_the_reason() {
    use crate::tools::frames::Link;
    use crate::tools::traffic::FlowEnds;
    use pnet::util::MacAddr;
    let ends = FlowEnds {
        link: Link {
            src: MacAddr::new(2, 0, 0, 0, 0, 1),
            dst: MacAddr::new(2, 0, 0, 0, 0, 2),
        },
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        src_port: 49152,
        dst_port: 9,
    };
    let template = Template::new(ends, MAX_FRAME + 1).unwrap();
    let refused = LiveFrames::open("lo", 1, &template, 1, plan(1))
        .err()
        .unwrap();
    assert!(
        refused.0.contains("larger than the kernel runs live"),
        "{refused}"
    );
}
