"""Pair 3: lab-ping/lab-pong against the kernel on the same veth pair.

Reference: iputils `ping` in namespace a, the kernel of namespace b
answering (no silence sysctls, no lab-pong; a's kernel answers ARP too, so
b can resolve a whatever is in its neighbour table). Ours: lab-ping in a,
lab-pong in b, both kernels silenced as labctl silences a node. Same veth,
same count, same payload (56 bytes), same pacing. The sysctls are switched
between the two, and the runs alternate (kernel, ours, kernel, ours, ...)
so that a change in the machine's load hits both alike.

- Median RTT: 1000 requests at a 1 ms interval; the median of the
  per-reply times each tool prints, per run.
- Flood rate: 100,000 requests with `-f` (the next request when the reply
  arrives); replies received per second of wall-clock time of the pinging
  process, per run.

Each is measured twice: with the scheduler placing the processes (the
default a user gets), and with every process of the exchange on CPU 0
(`taskset -c 0`). Two processes answering each other pay a wake-up per
frame; across CPUs that wake-up is an inter-processor interrupt to an idle
CPU, which on a virtual machine costs more than the whole kernel round trip
(docs/performance.md).
"""

import re
import statistics

from .common import (
    LOUD,
    SILENT,
    Background,
    BenchError,
    Figure,
    Settings,
    VethPair,
    in_netns,
    ratio_at_least,
    ratio_at_most,
    run,
    timed,
    tool,
)

RTT_COUNT = 1000
RTT_INTERVAL_MS = 1
FLOOD_COUNT = 100_000
PAYLOAD = 56

REPLY_TIME = re.compile(r"time=([0-9.]+) ms")
RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")

# What each datalink must reach against the kernel (issue 8, pair 3).
TARGETS = {
    "af_packet": {"rtt": 3.0, "flood": 0.5},
    "af_xdp": {"rtt": 1.0, "flood": 1.0},
}

# name -> the command prefix that places a process
PLACEMENTS = {
    "scheduler's choice": [],
    "all on CPU 0": ["taskset", "-c", "0"],
}


def median_rtt(output: str, what: str) -> float:
    times = [float(t) for t in REPLY_TIME.findall(output)]
    if len(times) < RTT_COUNT * 0.9:
        raise BenchError(f"{what}: only {len(times)} replies of {RTT_COUNT}")
    return statistics.median(times)


def received(output: str, what: str) -> int:
    found = RECEIVED.search(output)
    if not found:
        raise BenchError(f"{what}: no summary line in its output: {output[-300:]!r}")
    return int(found.group(2))


class Pinger:
    """How one side pings: the command lines for the RTT run and the flood
    run, and what must run in b meanwhile."""

    def __init__(self, pair: VethPair, place: list, datalink=None):
        self.pair, self.place, self.datalink = pair, place, datalink
        self.what = f"lab-ping ({datalink})" if datalink else "ping (kernel)"

    def cmd(self, pacing: list) -> list:
        a, b = self.pair.a, self.pair.b
        if self.datalink is None:
            return in_netns(a.netns, *self.place, "ping", "-n", "-s", PAYLOAD, *pacing, b.addr)
        return in_netns(
            a.netns, *self.place, tool("lab-ping"), a.iface, b.addr, "--datalink", self.datalink, "-s", PAYLOAD, *pacing
        )

    def rtt_cmd(self) -> list:
        interval = f"{RTT_INTERVAL_MS / 1000}" if self.datalink is None else f"{RTT_INTERVAL_MS}ms"
        return self.cmd(["-c", RTT_COUNT, "-i", interval])

    def flood_cmd(self) -> list:
        return self.cmd(["-f", "-q", "-c", FLOOD_COUNT])

    def prepare(self):
        values = LOUD if self.datalink is None else SILENT
        for side in (self.pair.a, self.pair.b):
            VethPair.set_sysctls(side, values)

    def responder(self, workdir):
        """lab-pong in b, or nothing (the kernel answers)."""
        if self.datalink is None:
            return None
        b = self.pair.b
        cmd = in_netns(b.netns, *self.place, tool("lab-pong"), b.iface, "--datalink", self.datalink, "--quiet")
        return Background(cmd, workdir, f"lab-pong-{self.datalink}")

    def once(self, workdir) -> tuple:
        """One run: (median RTT in ms, flood replies per second)."""
        self.prepare()
        pong = self.responder(workdir)
        if pong is None:
            return self.measure()
        with pong:
            pong.wait_for(r"listening on")
            result = self.measure()
            pong.stop()
        return result

    def measure(self) -> tuple:
        rtt = median_rtt(run(self.rtt_cmd(), timeout=60).stdout, self.what)
        seconds, done, _ = timed(self.flood_cmd(), timeout=300)
        if done.returncode != 0:
            raise BenchError(f"{self.what} flood: exit {done.returncode}: {done.stderr.strip()[-300:]}")
        return rtt, received(done.stdout, self.what) / seconds


def bench(settings: Settings):
    print(
        f"== tools: lab-ping/lab-pong against the kernel "
        f"({RTT_COUNT} requests at {RTT_INTERVAL_MS} ms; flood of {FLOOD_COUNT:,})"
    )
    with VethPair("t") as pair:
        for placement, place in PLACEMENTS.items():
            for datalink in settings.datalinks:
                try:
                    compare(settings, pair, placement, place, datalink)
                except BenchError as error:
                    settings.report.problem(f"tools ({datalink}, {placement})", str(error))


def compare(settings: Settings, pair: VethPair, placement: str, place: list, datalink: str):
    kernel, ours = Pinger(pair, place), Pinger(pair, place, datalink)
    results = {kernel: [], ours: []}
    for index in range(settings.warmup + settings.runs):
        for pinger in (kernel, ours):
            figures = pinger.once(settings.workdir)
            if index >= settings.warmup:
                results[pinger].append(figures)
    targets = TARGETS.get(datalink, {"rtt": 1.0, "flood": 1.0})
    group = f"tools ({datalink}, {placement})"
    report = settings.report
    report.add(
        Figure(
            group,
            f"median RTT, {RTT_COUNT} requests at {RTT_INTERVAL_MS} ms",
            "ms",
            "lab-ping/pong",
            [rtt for rtt, _ in results[ours]],
            "kernel",
            [rtt for rtt, _ in results[kernel]],
            ratio_at_most(targets["rtt"]),
        )
    )
    report.add(
        Figure(
            group,
            f"flood rate, {FLOOD_COUNT:,} requests",
            "/s",
            "lab-ping/pong",
            [rate for _, rate in results[ours]],
            "kernel",
            [rate for _, rate in results[kernel]],
            ratio_at_least(targets["flood"]),
        )
    )
