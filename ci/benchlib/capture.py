"""Pair 4: lab-capture against tcpdump on the same interface, under load.

The generator is lab-ping in namespace a with `--rate`, sending 200,000
echo requests to b, to b's MAC (`--peer-mac`, no ARP: on af_xdp b's kernel
sees nothing, so nobody there would answer one). b's kernel is silenced and
the capture answers nothing, so the only load on b's eth1 is the
generator's frames, one way.

The two capturers run in separate runs with the same load, alternating,
rather than side by side: this machine has two cores, and side by side
they would compete with each other for the one core the generator leaves,
so each one's drops would depend on the other's CPU use.

Two ways of capturing, both measured:
- pcap: `tcpdump -w /dev/null` against `lab-capture --quiet --pcap /dev/null`
  (every frame saved, nothing printed);
- lines: `tcpdump -n` against `lab-capture`, stdout to a file (every frame
  decoded and printed).

The rate: a short ramp finds the highest rate the generator reaches on
this machine (doubling the asked rate until it gets less than 90% of it);
every capture run then asks for that rate.
"""

import re
import signal
import time

from .common import (
    Background,
    BenchError,
    Figure,
    Settings,
    Target,
    VethPair,
    at_most_reference,
    in_netns,
    run,
    timed,
    tool,
)

FRAMES = 200_000
RAMP_START = 50_000
RAMP_SECONDS = 0.4
GENERATOR_TIMEOUT_S = 0.1
SETTLE_S = 1.2

TCPDUMP_STATS = re.compile(r"(\d+) packets captured.*?(\d+) packets received by filter.*?(\d+) packets dropped by kernel", re.S)
LAB_CAPTURE_STATS = re.compile(r"(\d+) packets captured, (\d+) dropped")


def generator(pair: VethPair, rate: float, count: int) -> list:
    return in_netns(
        pair.a.netns,
        tool("lab-ping"),
        pair.a.iface,
        pair.b.addr,
        "--datalink",
        "af_packet",
        "--rate",
        f"{rate:.0f}",
        "--count",
        count,
        "--quiet",
        "--peer-mac",
        pair.b.mac,
        "--timeout",
        f"{GENERATOR_TIMEOUT_S}s",
    )


def generate(pair: VethPair, rate: float, count: int) -> float:
    """Sends `count` requests at `rate`; returns the generator's wall-clock
    seconds, less the fixed wait after its last request."""
    seconds, done, _ = timed(generator(pair, rate, count), timeout=120)
    # No reply ever comes (b's kernel ignores echo): exit 1 is the normal end.
    if done.returncode not in (0, 1) or f"{count} packets transmitted" not in done.stdout:
        raise BenchError(f"generator: exit {done.returncode}: {done.stdout[-200:]} {done.stderr.strip()[-300:]}")
    return seconds - GENERATOR_TIMEOUT_S


class Generator:
    """lab-ping as a load generator; knows its own start-up time (process,
    interface lookup) so that it can report the rate it reached."""

    def __init__(self, pair: VethPair):
        self.pair = pair
        self.startup = min(generate(pair, 1000, 1) for _ in range(3))

    def send(self, rate: float, count: int) -> float:
        """Sends; returns the rate reached, in frames per second."""
        sending = max(generate(self.pair, rate, count) - self.startup, 1e-6)
        return count / sending


def ramp(generator: Generator) -> tuple:
    """The highest rate the generator reaches here, and the ramp's steps."""
    steps = []
    rate = RAMP_START
    while True:
        count = max(int(rate * RAMP_SECONDS), 10_000)
        reached = generator.send(rate, count)
        steps.append((rate, reached))
        if reached < 0.9 * rate:
            break
        rate *= 2
    return max(reached for _, reached in steps), steps


def tcpdump_cmd(pair: VethPair, mode: str) -> list:
    base = ["tcpdump", "-i", pair.b.iface, "-n"]
    if mode == "pcap":
        base += ["-w", "/dev/null"]
    return in_netns(pair.b.netns, *base)


def lab_capture_cmd(pair: VethPair, mode: str, datalink: str) -> list:
    base = [tool("lab-capture"), pair.b.iface, "--datalink", datalink]
    if mode == "pcap":
        base += ["--quiet", "--pcap", "/dev/null"]
    return in_netns(pair.b.netns, *base)


def capture_once(settings: Settings, generator: Generator, rate: float, capturer: str, cmd: list) -> tuple:
    """One run: (captured, dropped, the generator's rate)."""
    with Background(cmd, settings.workdir, capturer) as capture:
        if capturer == "tcpdump":
            capture.wait_for(r"listening on", stream="err")
        else:
            capture.wait_for(r"capturing on")
        reached = generator.send(rate, FRAMES)
        # libpcap hands a TPACKET_V3 block over at most 1 s after its first
        # frame (tcpdump's timeout): stopping earlier would cost tcpdump the
        # last block, which it counts neither captured nor dropped.
        time.sleep(SETTLE_S)
        code = capture.stop(signal.SIGINT, timeout=30)
        if code != 0:
            raise BenchError(f"{capturer}: exit {code}: {capture.stderr().strip()[-300:]}")
        if capturer == "tcpdump":
            found = TCPDUMP_STATS.search(capture.stderr())
            if not found:
                raise BenchError(f"tcpdump: no statistics in {capture.stderr()[-300:]!r}")
            return int(found.group(1)), int(found.group(3)), reached
        found = LAB_CAPTURE_STATS.search(capture.stdout()[-500:])
        if not found:
            raise BenchError(f"lab-capture: no summary in {capture.stdout()[-300:]!r}")
        return int(found.group(1)), int(found.group(2)), reached


def bench(settings: Settings):
    report = settings.report
    print(f"== capture: lab-capture against tcpdump, {FRAMES:,} frames at the highest rate")
    with VethPair("c") as pair:
        generator = Generator(pair)
        rate, steps = ramp(generator)
        ramp_text = ", ".join(f"{asked:,.0f} -> {got:,.0f}" for asked, got in steps)
        print(f"  generator ramp (asked -> reached, frames/s): {ramp_text}")
        print(f"  highest rate: {rate:,.0f} frames/s; every capture run asks for it")
        report.add(Figure("capture", "generator: highest rate (lab-ping --rate)", "/s", "lab-ping", [rate], note=f"ramp: {ramp_text}"))
        for datalink in settings.datalinks:
            for mode in ("pcap", "lines"):
                try:
                    measure(settings, pair, generator, rate, datalink, mode)
                except BenchError as error:
                    report.problem(f"capture ({datalink}, {mode})", str(error))


def measure(settings: Settings, pair: VethPair, generator: Generator, rate: float, datalink: str, mode: str):
    ours = {"captured": [], "dropped": [], "rate": []}
    ref = {"captured": [], "dropped": [], "rate": []}
    for index in range(settings.warmup + settings.runs):
        order = [("tcpdump", ref), ("lab-capture", ours)]
        if index % 2:
            order.reverse()
        for capturer, into in order:
            cmd = tcpdump_cmd(pair, mode) if capturer == "tcpdump" else lab_capture_cmd(pair, mode, datalink)
            captured, dropped, reached = capture_once(settings, generator, rate, capturer, cmd)
            if index >= settings.warmup:
                into["captured"].append(captured)
                into["dropped"].append(dropped)
                into["rate"].append(reached)
    group = f"capture ({datalink}, {mode})"
    rates = ", ".join(f"{r:,.0f}" for r in ours["rate"] + ref["rate"])
    settings.report.add(
        Figure(group, "frames captured", "frames", "lab-capture", ours["captured"], "tcpdump", ref["captured"])
    )
    sent = FRAMES
    settings.report.add(
        Figure(
            group,
            f"frames missed (of {sent:,} on the wire)",
            "frames",
            "lab-capture",
            [sent - c for c in ours["captured"]],
            "tcpdump",
            [sent - c for c in ref["captured"]],
            at_most_reference(),
        )
    )
    drop_target = (
        Target("none dropped", lambda o, r: o == 0) if datalink == "af_xdp" else at_most_reference()
    )
    settings.report.add(
        Figure(
            group,
            "frames dropped (as each reports)",
            "frames",
            "lab-capture",
            ours["dropped"],
            "tcpdump",
            ref["dropped"],
            drop_target,
            note=f"generator reached {rates} frames/s",
        )
    )
