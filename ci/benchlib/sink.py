"""What lab-sink's accounting costs a frame, in instructions (issue 24).

`examples/sink_cost.rs` feeds `Sink::on_frame` lab-gen's 64-byte frames
(both checksums, the flow's sequence window, the latency histogram,
intervals on) and `valgrind --tool=callgrind` counts the instructions
inside it only (`--toggle-collect`). Instructions, not seconds: the count
is the same on a busy machine and a quiet one, so one run is the figure.

Cases: frames in batches that share a latency (netmap: one clock reading
a sync, and lab-gen's one a batch), and frames each with a latency of its
own (af_packet and af_xdp read the clock per frame); one flow, lab-gen's
three flows taking turns, and a hundred (more than the sink's 64 slots).

The target: 0.5x pkt-gen end to end on netmap, in the TCG guest of
docs/netmap.md. There a sink that counts nothing took 2.8 M frames/s
(its receive loop, about 360 ns a frame) and lab-sink at 270
instructions 1.3-1.8 M, so about 1-1.5 ns an instruction; 0.5x of
pkt-gen's 4.3-5.5 Mpps leaves 0-100 ns a frame for the accounting:
about 70 instructions at the most.
"""

import re
import shutil

from .common import REPO, BenchError, Figure, Settings, at_most, run

FRAMES = 100_000
PROBE = REPO / "target" / "x86_64-unknown-linux-gnu" / "release" / "examples" / "sink_cost"
TARGET = at_most(70, "<= 70 (0.5x pkt-gen on netmap)")
CASES = [
    # (name, flows, frames a batch sharing one latency)
    ("1 flow, batches of 256", 1, 256),
    ("3 flows in turn, batches of 256", 3, 256),
    ("100 flows in turn, batches of 256", 100, 256),
    ("3 flows in turn, a latency a frame", 3, 1),
]


def bench(settings: Settings):
    print(f"== sink: lab-sink's instructions a frame (callgrind, {FRAMES:,} frames)")
    if shutil.which("valgrind") is None:
        raise BenchError("valgrind is not installed (apt-get install valgrind)")
    if not PROBE.exists():
        raise BenchError(f"{PROBE} is missing: run ci/bench without --no-build")
    for name, flows, batch in CASES:
        settings.report.add(
            Figure(
                "sink",
                name,
                "count",
                "lab-sink",
                [instructions_a_frame(flows, batch)],
                target=TARGET,
            )
        )


def instructions_a_frame(flows: int, batch: int) -> float:
    done = run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*sink_cost::count*",
            str(PROBE),
            str(FRAMES),
            str(flows),
            str(batch),
        ],
        timeout=300,
    )
    # The probe prints what the sink counted: every frame, none lost.
    counted = re.search(r"received (\d+) lost (\d+) duplicates (\d+)", done.stdout)
    if not counted or counted.groups() != (str(FRAMES), "0", "0"):
        raise BenchError(f"sink_cost counted wrong: {done.stdout.strip()}")
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if not collected:
        raise BenchError(f"no instruction count from callgrind: {done.stderr.strip()[-300:]}")
    return int(collected.group(1)) / FRAMES
