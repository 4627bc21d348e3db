"""Group ndr: the RFC 2544 throughput (NDR, 0 % loss) of lab-fwd against
the Linux kernel's, found by labctl's own `throughput` step on one
topology:

    client eth1 — west [middle] east — eth1 server

The middle is lab-fwd on af_packet, lab-fwd on af_xdp, a Linux bridge
(`kernel: normal`, the ports in a bridge made by the lab's first steps,
STP off) or a kernel router (`kernel: normal`, ip_forward, the ends on
two subnets with routes through it). The ends are labctl's generator and
sink on af_packet in every case, so only the middle changes. Each lab runs
with `labctl run --runtime netns` (no Docker in the way); the runs
alternate (bridge, router, lab-fwd af_packet, lab-fwd af_xdp, ...) so a
change in the machine's load hits all.

Issue 13 asks that lab-fwd not be the bottleneck of a lab: the target is
an NDR of at least half the kernel bridge's (as the fwd group's flood
rate), at 64 bytes, where the kernel is at its relative best.
"""

import json
import tempfile
from pathlib import Path

from .common import PREFIX, BenchError, Figure, Settings, ratio_at_least, timed, tool

SIZES = (64, 1514)
TRIAL = "1s"
TARGET = 0.5

ENDS_L2 = """links:
  - endpoints:
      - {{ node: client, interface: eth1, ipv4: 198.18.6.1/24 }}
      - {{ node: middle, interface: west{west} }}
  - endpoints:
      - {{ node: middle, interface: east{east} }}
      - {{ node: server, interface: eth1, ipv4: 198.18.6.2/24 }}
"""

THROUGHPUT = """  - name: throughput
    throughput:
      from: client:eth1
      to: server:eth1
      sizes: [{sizes}]
      trial: {trial}
      loss: 0%
    timeout: 20s
"""


def lab_text(name: str, middle: str) -> str:
    sizes = ", ".join(str(s) for s in SIZES)
    throughput = THROUGHPUT.format(sizes=sizes, trial=TRIAL)
    if middle == "router":
        return f"""name: {name}
runtime: netns
nodes:
  client:
    routes:
      - {{ to: 198.18.7.0/24, via: 198.18.6.254 }}
  middle:
    kernel: normal
    sysctls: {{ net.ipv4.ip_forward: 1 }}
  server:
    routes:
      - {{ to: 198.18.6.0/24, via: 198.18.7.254 }}
links:
  - endpoints: ["client:eth1", "middle:west"]
    ipv4: [198.18.6.1/24, 198.18.6.254/24]
  - endpoints: ["middle:east", "server:eth1"]
    ipv4: [198.18.7.254/24, 198.18.7.1/24]
steps:
""" + throughput
    if middle == "bridge":
        steps = "".join(
            f"""  - name: {what}
    node: middle
    exec: [ip, link, {cmd}]
"""
            for what, cmd in (
                ("bridge", "add, br0, type, bridge, stp_state, '0'"),
                ("west port", "set, west, master, br0"),
                ("east port", "set, east, master, br0"),
                ("bridge up", "set, br0, up"),
            )
        )
        return f"""name: {name}
runtime: netns
nodes:
  client: {{}}
  middle:
    kernel: normal
    capabilities: [NET_ADMIN]
  server: {{}}
{ENDS_L2.format(west="", east="")}steps:
{steps}{throughput}"""
    datalink = middle.removeprefix("fwd-")
    return f"""name: {name}
runtime: netns
nodes:
  client: {{}}
  middle: {{ datalink: {datalink} }}
  server: {{}}
{ENDS_L2.format(west="", east="")}steps:
  - name: forwarder
    node: middle
    exec: [lab-fwd, west, east]
    background: true
    ready: "^forwarding west <-> east "
{throughput}"""


def ndr(workdir: Path, middle: str) -> dict:
    """One `labctl run` of the lab with `middle`: {size: NDR frames/s}."""
    name = f"{PREFIX}n{middle.replace('fwd-af_', '').replace('_', '')}"[:20]
    lab = workdir / f"{name}.yaml"
    lab.write_text(lab_text(name, middle))
    with tempfile.TemporaryDirectory(dir=workdir) as runs_dir:
        report_path = Path(runs_dir) / "report.json"
        cmd = [tool("labctl"), "run", lab, "--json", report_path, "--runs-dir", runs_dir]
        _, done, _ = timed(cmd, timeout=900)
        if done.returncode != 0:
            raise BenchError(f"labctl run ({middle}): exit {done.returncode}: {done.stdout[-800:]}")
        report = json.loads(report_path.read_text())
    step = next(s for s in report["steps"] if s["name"] == "throughput")
    found = {}
    for size in step["throughput"]["sizes"]:
        ndr_result = next(r for r in size["results"] if r["kind"] == "ndr")
        found[size["size"]] = ndr_result["rate"]
        print(
            f"    {middle}: {size['size']} bytes: ndr {ndr_result['rate']:,.0f}/s "
            f"({ndr_result['trials']} trials, ceiling {size['ceiling']:,.0f}/s)",
            flush=True,
        )
    return found


def bench(settings: Settings):
    middles = ["bridge", "router"] + [f"fwd-{d}" for d in settings.datalinks]
    print(f"== ndr: RFC 2544 NDR through the middle, {TRIAL} trials, sizes {SIZES}: {', '.join(middles)}")
    found = {m: {s: [] for s in SIZES} for m in middles}
    for index in range(settings.warmup + settings.runs):
        for middle in middles:
            try:
                figures = ndr(settings.workdir, middle)
            except BenchError as error:
                settings.report.problem(f"ndr ({middle})", str(error))
                continue
            if index >= settings.warmup:
                for size, rate in figures.items():
                    found[middle][size].append(rate)
    for datalink in settings.datalinks:
        ours = found[f"fwd-{datalink}"]
        for size in SIZES:
            if not ours[size]:
                continue
            for reference in ("bridge", "router"):
                if not found[reference][size]:
                    continue
                settings.report.add(
                    Figure(
                        f"ndr ({datalink})",
                        f"NDR of {size}-byte frames through the middle, {TRIAL} trials",
                        "/s",
                        "lab-fwd",
                        ours[size],
                        reference,
                        found[reference][size],
                        ratio_at_least(TARGET) if reference == "bridge" and size == 64 else None,
                    )
                )
