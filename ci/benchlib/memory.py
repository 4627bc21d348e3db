"""labctl's peak memory (RSS, from GNU time) where a careless design would
grow without bound (issue 15.2). Target: under 64 MiB each.

- a step printing 200 MB as one line, checked (`contains`, `match`);
- a step printing 200 MB as 2,000,000 lines of 100 bytes, counted;
- 200 MB of artifacts in /lab/out (two 100 MB files);
- a 3 GB sparse file in /lab/out (copied whole, holes kept);
- `labctl validate /dev/zero` and `labctl validate` of a FIFO: the exit
  code and the one line (regular file only, 16 MiB at most).

Each run's reference is nothing: the figure is the peak itself, against
the target. The lab is one busybox node (the host's static busybox,
FROM scratch). A warm-up run first makes sure the tools image exists: its
build (first run on a host, or after the tools changed) is not what is
measured here.
"""

import os
import tempfile
from pathlib import Path

from .common import PREFIX, BenchError, Figure, Settings, at_most, run, timed, tool
from .runs import busybox_image

TARGET_MIB = 64

LONG_LINE = 200_000_000
LINES = 2_000_000
Y_LINE = "y" * 99

CASES = {
    "one 200 MB line of step output, checked": f"""
  - name: long line
    node: box
    exec: [sh, -c, 'head -c {LONG_LINE} /dev/zero | tr "\\0" x; echo END']
    timeout: 10m
    expect:
      stdout:
        - contains: xxxEND
        - match: '^x+$'
          count: 1
""",
    f"200 MB of step output in {LINES:,} lines, counted": f"""
  - name: many lines
    node: box
    exec: [sh, -c, 'yes {Y_LINE} | head -n {LINES}']
    timeout: 10m
    expect:
      stdout:
        - match: '^y+$'
          count: {LINES}
""",
    "200 MB of artifacts in /lab/out (two 100 MB files)": """
  - name: artifacts
    node: box
    exec: [sh, -c, 'yes artifact | head -c 100000000 > /lab/out/a; cp /lab/out/a /lab/out/b']
    timeout: 10m
""",
    "a 3 GB sparse file in /lab/out": """
  - name: sparse
    node: box
    exec: [sh, -c, 'truncate -s 3G /lab/out/big']
""",
}


def bench(settings: Settings):
    print("== memory: labctl's peak RSS on huge output, artifacts and lab files")
    image = busybox_image(settings.workdir)
    labctl = tool("labctl")
    name = f"{PREFIX}-mem"
    try:
        # The first run on a host (or after the tools changed) builds the
        # tools image (the build streams the tools' binaries, hundreds of
        # MiB, to Docker): not what is measured here.
        warm = settings.workdir / f"{name}-warm.yaml"
        warm.write_text(f"name: {name}\nnodes:\n  box: {{}}\n  other: {{ image: {image} }}\nsteps: []\n")
        with tempfile.TemporaryDirectory(dir=settings.workdir) as runs_dir:
            done = run([labctl, "run", warm, "--runs-dir", runs_dir, "--name", name], check=False, timeout=900)
        if done.returncode != 0:
            raise BenchError(f"labctl run of the warm-up lab: exit {done.returncode}: {done.stdout[-600:]}")
        for what, steps in CASES.items():
            lab = settings.workdir / f"{name}.yaml"
            lab.write_text(f"name: {name}\nnodes:\n  box: {{ image: {image} }}\nsteps:{steps}")
            peaks = []
            for index in range(settings.warmup + settings.runs):
                with tempfile.TemporaryDirectory(dir=settings.workdir) as runs_dir:
                    cmd = [labctl, "run", lab, "--runs-dir", runs_dir, "--name", name]
                    _, done, peak = timed(cmd, timeout=1800, peak_memory=True)
                if done.returncode != 0:
                    raise BenchError(f"labctl run ({what}): exit {done.returncode}: {done.stdout[-600:]}")
                if peak is None:
                    raise BenchError(f"labctl run ({what}): no peak RSS from {cmd}")
                if index >= settings.warmup:
                    peaks.append(peak / 1024)
            settings.report.add(
                Figure("memory", f"peak RSS of labctl run: {what}", "MiB", "labctl", peaks,
                       target=at_most(TARGET_MIB, f"< {TARGET_MIB} MiB"))
            )
    finally:
        run([labctl, "destroy", name], check=False)
    validate_cases(settings, labctl)


def validate_cases(settings: Settings, labctl: str):
    fifo_dir = Path(tempfile.mkdtemp(dir=settings.workdir))
    fifo = fifo_dir / "lab.yaml"
    os.mkfifo(fifo)
    for what, path in (("labctl validate /dev/zero", "/dev/zero"), ("labctl validate FIFO", fifo)):
        peaks, lines = [], ""
        for index in range(settings.warmup + settings.runs):
            _, done, peak = timed([labctl, "validate", path], timeout=60, peak_memory=True)
            out = (done.stdout + done.stderr).strip().splitlines()
            if done.returncode != 2 or len(out) != 1 or peak is None:
                raise BenchError(f"{what}: exit {done.returncode}, {len(out)} lines (expected exit 2, one line): {out[:3]}")
            lines = out[0]
            if index >= settings.warmup:
                peaks.append(peak / 1024)
        settings.report.add(
            Figure("memory", f"peak RSS of {what} (exit 2)", "MiB", "labctl", peaks,
                   target=at_most(TARGET_MIB, f"< {TARGET_MIB} MiB"), note=lines)
        )
