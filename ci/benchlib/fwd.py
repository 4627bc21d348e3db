"""Group fwd: lab-fwd, the reference device under test, against a kernel
bridge in the same place.

    client eth1 198.18.4.1 — west [middle] east — eth1 198.18.4.2 server

The middle namespace joins west and east either with a Linux bridge (the
reference: the kernel's own L2 forwarding, STP off) or with lab-fwd on the
datalink measured. The ends are lab-ping and lab-pong on af_packet, their
kernels silenced, identical in both cases; the runs alternate (bridge,
lab-fwd, bridge, ...) so that a change in the machine's load hits both.

- Flood rate: FLOOD_COUNT requests with `lab-ping -f` (the next request
  when the reply arrives), replies per second of the pinging process's
  wall-clock time. Every frame crosses the middle twice per round trip,
  so this is what the middle adds to a lab's tightest loop.
- Median RTT: RTT_COUNT requests at 1 ms.
- lab-fwd's CPU time per forwarded frame over both runs (user + system,
  from /proc, over its own count of frames forwarded); a run where it
  dropped a frame is not a measurement.

Issue 13 asks that lab-fwd not be the bottleneck of a lab: the target is
a flood rate of at least half the kernel bridge's, on a machine where the
tools at both ends share the CPUs with the forwarder.
"""

import json
import os
import re
import subprocess
import time

from .common import PREFIX, SILENT, Background, BenchError, Figure, Settings, in_netns, ratio_at_least, run, tool

FLOOD_COUNT = 20_000
RTT_COUNT = 500
FLOOD_TARGET = 0.5

REPLY_TIME = re.compile(r"time=([0-9.]+) ms")
RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")


class Chain:
    """The three namespaces above; leaving the context deletes them (and
    the veths with them)."""

    def __init__(self):
        self.client, self.middle, self.server = (f"{PREFIX}f{x}" for x in "cms")

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc):
        self._remove()

    def _create(self):
        for ns in (self.client, self.middle, self.server):
            run(["ip", "netns", "add", ns])
            run(in_netns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"))
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        pairs = [
            (self.client, "eth1", "02:00:00:00:04:01", "198.18.4.1/24", self.middle, "west"),
            (self.server, "eth1", "02:00:00:00:04:02", "198.18.4.2/24", self.middle, "east"),
        ]
        for index, (end, iface, mac, cidr, middle, port) in enumerate(pairs):
            x, y = f"{PREFIX}f{index}x", f"{PREFIX}f{index}y"
            run(["ip", "link", "add", x, "type", "veth", "peer", "name", y])
            run(["ip", "link", "set", x, "netns", end, "name", iface])
            run(["ip", "link", "set", y, "netns", middle, "name", port])
            run(in_netns(end, "sysctl", "-qw", *(f"{k}={v}" for k, v in SILENT.items())))
            run(["ip", "-n", end, "link", "set", iface, "address", mac])
            run(["ip", "-n", end, "addr", "add", cidr, "dev", iface])
            for ns, name in ((end, iface), (middle, port)):
                run(["ip", "-n", ns, "link", "set", name, "up"])

    def _remove(self):
        for ns in (self.client, self.middle, self.server):
            run(["ip", "netns", "del", ns], check=False)

    def bridge(self, on: bool):
        m = ["ip", "-n", self.middle]
        if on:
            run(m + ["link", "add", "br0", "type", "bridge", "stp_state", "0"])
            for port in ("west", "east"):
                run(m + ["link", "set", port, "master", "br0"])
            run(m + ["link", "set", "br0", "up"])
        else:
            run(m + ["link", "del", "br0"], check=False)


def cpu_seconds(pid: int) -> float:
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ping(chain: Chain, *pacing) -> tuple:
    """lab-ping from the client: (wall seconds, stdout)."""
    cmd = in_netns(chain.client, tool("lab-ping"), "eth1", "198.18.4.2", "-s", 56, *pacing)
    start = time.perf_counter()
    done = run(cmd, timeout=300)
    return time.perf_counter() - start, done.stdout


def once(chain: Chain, settings: Settings, datalink) -> dict:
    """One run through the bridge (datalink None) or through lab-fwd."""
    pong = Background(
        in_netns(chain.server, tool("lab-pong"), "eth1", "--quiet"), settings.workdir, "fwd-pong"
    )
    forwarder = None
    if datalink is None:
        chain.bridge(True)
    else:
        forwarder = Background(
            in_netns(chain.middle, tool("lab-fwd"), "west", "east", "--datalink", datalink, "--json"),
            settings.workdir,
            f"lab-fwd-{datalink}",
        )
    try:
        with pong:
            pong.wait_for("listening on")
            if forwarder is None:
                return measure(chain, None)
            with forwarder:
                forwarder.wait_for('"forwarding"')
                figures = measure(chain, forwarder.proc.pid)
                forwarder.stop(timeout=10)
                summary = json.loads(forwarder.stdout().splitlines()[-1])
                crossed = summary["a_to_b"]["forwarded"] + summary["b_to_a"]["forwarded"]
                figures["fwd_cpu"] = figures.pop("fwd_cpu_s") * 1e6 / max(crossed, 1)
                if summary["dropped"]:
                    raise BenchError(f"lab-fwd ({datalink}) dropped {summary['dropped']} frames")
                return figures
    finally:
        if datalink is None:
            chain.bridge(False)


def measure(chain: Chain, fwd_pid) -> dict:
    before = cpu_seconds(fwd_pid) if fwd_pid else 0.0
    _, out = ping(chain, "-c", RTT_COUNT, "-i", "1ms")
    times = sorted(float(t) for t in REPLY_TIME.findall(out))
    if len(times) < RTT_COUNT * 0.9:
        raise BenchError(f"only {len(times)} replies of {RTT_COUNT} at 1 ms")
    rtt = times[len(times) // 2]
    seconds, out = ping(chain, "-f", "-q", "-c", FLOOD_COUNT)
    after = cpu_seconds(fwd_pid) if fwd_pid else 0.0
    found = RECEIVED.search(out)
    if not found:
        raise BenchError(f"no ping summary: {out[-300:]!r}")
    return {"rtt": rtt, "flood": int(found.group(2)) / seconds, "fwd_cpu_s": after - before}


def bench(settings: Settings):
    print(f"== fwd: lab-fwd against a kernel bridge (flood of {FLOOD_COUNT:,}; {RTT_COUNT} requests at 1 ms)")
    with Chain() as chain:
        for datalink in settings.datalinks:
            try:
                compare(settings, chain, datalink)
            except BenchError as error:
                settings.report.problem(f"fwd ({datalink})", str(error))
            except subprocess.SubprocessError as error:
                settings.report.problem(f"fwd ({datalink})", str(error))


def compare(settings: Settings, chain: Chain, datalink: str):
    bridge, ours = [], []
    for index in range(settings.warmup + settings.runs):
        b = once(chain, settings, None)
        o = once(chain, settings, datalink)
        if index >= settings.warmup:
            bridge.append(b)
            ours.append(o)
    group = f"fwd ({datalink})"
    report = settings.report
    report.add(
        Figure(
            group,
            f"flood rate through the middle, {FLOOD_COUNT:,} requests",
            "/s",
            "lab-fwd",
            [r["flood"] for r in ours],
            "bridge",
            [r["flood"] for r in bridge],
            ratio_at_least(FLOOD_TARGET),
        )
    )
    report.add(
        Figure(
            group,
            f"median RTT through the middle, {RTT_COUNT} at 1 ms",
            "ms",
            "lab-fwd",
            [r["rtt"] for r in ours],
            "bridge",
            [r["rtt"] for r in bridge],
        )
    )
    report.add(Figure(group, "lab-fwd CPU per forwarded frame, flood", "us", "lab-fwd", [r["fwd_cpu"] for r in ours]))
