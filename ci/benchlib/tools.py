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

Each is measured in three placements: with the scheduler placing the
processes (the default a user gets); with every process of the exchange on
CPU 0 (`taskset -c 0`); and with `--busy-poll`, each tool on a CPU of its
own (lab-ping and the kernel's ping on CPU 0, lab-pong on CPU 1). Two
processes answering each other pay a wake-up per frame; across CPUs that
wake-up is an inter-processor interrupt to an idle CPU, which on a virtual
machine costs more than the whole kernel round trip (docs/performance.md);
busy polling removes it at the price of a spinning CPU per tool.

Beside every figure: the CPU time per round trip, user + system time of
the pinging process and of lab-pong over the measurement, divided by the
replies. The kernel's answer runs in softirq inside ping's own system
calls, so ping's time covers the kernel's side too (no IRQ time
accounting on this kernel; with it, softirq time would be missing).
"""

import os
import re
import statistics
import subprocess
import tempfile
import time

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

# What issue 18 asks of --busy-poll, each tool on its own CPU.
BUSY_TARGETS = {
    "af_packet": {"rtt": 2.0, "flood": 0.5},
    "af_xdp": {"rtt": 1.0, "flood": 1.0},
}


class Placement:
    """Where the processes run: the prefix placing the pinging process
    (ours and the kernel's), the one placing lab-pong, and the flags of the
    tools."""

    def __init__(self, name, ping, pong, flags=(), targets=TARGETS):
        self.name, self.ping, self.pong, self.flags, self.targets = name, list(ping), list(pong), list(flags), targets


PLACEMENTS = [
    Placement("scheduler's choice", [], []),
    # A short spin before every sleep: why the default is none.
    Placement("scheduler's choice, --spin 50us", [], [], ["--spin", "50us"]),
    Placement("all on CPU 0", ["taskset", "-c", "0"], ["taskset", "-c", "0"]),
    # A CPU of its own for each tool: pinned, and at real-time priority
    # (SCHED_FIFO) so that nothing else on a shared machine takes it. The
    # kernel keeps 5% of each CPU for everything else (sched_rt_runtime_us).
    Placement(
        "--busy-poll, own CPUs",
        ["taskset", "-c", "0", "chrt", "-f", "1"],
        ["taskset", "-c", "1", "chrt", "-f", "1"],
        ["--busy-poll"],
        BUSY_TARGETS,
    ),
]


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process, from /proc/PID/stat."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_with_cpu(cmd, timeout: float) -> tuple:
    """Runs `cmd`: (wall seconds, CPU seconds it used, stdout, exit code).
    The CPU time is the process's own (wait4's rusage), not its
    children's: `ip netns exec`, taskset and chrt exec in place."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise BenchError(f"{' '.join(map(str, cmd))}: no end after {timeout}s")
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, error = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(map(str, cmd))}: exit {proc.returncode}: {error.strip()[-300:]}")
        return seconds, usage.ru_utime + usage.ru_stime, text


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

    def __init__(self, pair: VethPair, placement: Placement, datalink=None):
        self.pair, self.placement, self.datalink = pair, placement, datalink
        self.what = f"lab-ping ({datalink})" if datalink else "ping (kernel)"
        self.pong = None

    def cmd(self, pacing: list) -> list:
        a, b = self.pair.a, self.pair.b
        place = self.placement.ping
        if self.datalink is None:
            return in_netns(a.netns, *place, "ping", "-n", "-s", PAYLOAD, *pacing, b.addr)
        return in_netns(
            a.netns,
            *place,
            tool("lab-ping"),
            a.iface,
            b.addr,
            "--datalink",
            self.datalink,
            *self.placement.flags,
            "-s",
            PAYLOAD,
            *pacing,
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
        cmd = in_netns(
            b.netns,
            *self.placement.pong,
            tool("lab-pong"),
            b.iface,
            "--datalink",
            self.datalink,
            *self.placement.flags,
            "--quiet",
        )
        return Background(cmd, workdir, f"lab-pong-{self.datalink}")

    def once(self, workdir) -> dict:
        """One run: median RTT in ms, flood replies per second, and the CPU
        time per round trip of each, in µs."""
        self.prepare()
        pong = self.responder(workdir)
        if pong is None:
            return self.measure()
        with pong:
            pong.wait_for(r"listening on")
            self.pong = pong.proc.pid
            try:
                result = self.measure()
            finally:
                self.pong = None
            pong.stop()
        return result

    def pong_cpu(self) -> float:
        return cpu_seconds(self.pong) if self.pong else 0.0

    def exchange(self, cmd, timeout) -> tuple:
        """Runs one pinging command: (wall seconds, CPU seconds of it and of
        the pong meanwhile, stdout)."""
        pong_before = self.pong_cpu()
        seconds, cpu, out = run_with_cpu(cmd, timeout)
        return seconds, cpu + self.pong_cpu() - pong_before, out

    def measure(self) -> dict:
        _, rtt_cpu, out = self.exchange(self.rtt_cmd(), 60)
        rtt_replies = len(REPLY_TIME.findall(out))
        rtt = median_rtt(out, self.what)
        seconds, flood_cpu, out = self.exchange(self.flood_cmd(), 300)
        replies = received(out, self.what)
        return {
            "rtt": rtt,
            "rtt_cpu": rtt_cpu * 1e6 / max(rtt_replies, 1),
            "flood": replies / seconds,
            "flood_cpu": flood_cpu * 1e6 / max(replies, 1),
        }


def bench(settings: Settings):
    print(
        f"== tools: lab-ping/lab-pong against the kernel "
        f"({RTT_COUNT} requests at {RTT_INTERVAL_MS} ms; flood of {FLOOD_COUNT:,})"
    )
    if (os.cpu_count() or 1) < 2:
        settings.report.problem("tools (--busy-poll, own CPUs)", "needs 2 CPUs")
    with VethPair("t") as pair:
        for placement in PLACEMENTS:
            if placement.pong != placement.ping and (os.cpu_count() or 1) < 2:
                continue
            if settings.placements and not any(p in placement.name for p in settings.placements):
                continue
            for datalink in settings.datalinks:
                try:
                    compare(settings, pair, placement, datalink)
                except BenchError as error:
                    settings.report.problem(f"tools ({datalink}, {placement.name})", str(error))


def compare(settings: Settings, pair: VethPair, placement: Placement, datalink: str):
    kernel, ours = Pinger(pair, placement), Pinger(pair, placement, datalink)
    results = {kernel: [], ours: []}
    for index in range(settings.warmup + settings.runs):
        for pinger in (kernel, ours):
            figures = pinger.once(settings.workdir)
            if index >= settings.warmup:
                results[pinger].append(figures)
    targets = placement.targets.get(datalink, {"rtt": 1.0, "flood": 1.0})
    group = f"tools ({datalink}, {placement.name})"
    report = settings.report

    def values(pinger, key):
        return [run[key] for run in results[pinger]]

    for key, name, unit, target in (
        ("rtt", f"median RTT, {RTT_COUNT} requests at {RTT_INTERVAL_MS} ms", "ms", ratio_at_most(targets["rtt"])),
        ("rtt_cpu", "CPU per round trip, RTT run (ping + pong)", "us", None),
        ("flood", f"flood rate, {FLOOD_COUNT:,} requests", "/s", ratio_at_least(targets["flood"])),
        ("flood_cpu", "CPU per round trip, flood (ping + pong)", "us", None),
    ):
        report.add(
            Figure(group, name, unit, "lab-ping/pong", values(ours, key), "kernel", values(kernel, key), target)
        )
