"""lab-gen's XDP live frames against trafgen, and lab-gen -> lab-sink at
millions of frames per second (issue 24).

1. The generator alone, into the same XDP drop on the peer
   (`xdpdrop.py`: a two-instruction XDP program, native mode, on b's eth1):
   trafgen (Debian's netsniff-ng: AF_PACKET TX ring, qdisc bypass, one
   CPU: `-P 1`) against lab-gen on live frames (`--path live`), and lab-gen
   on its datalinks (`--path datalink`) for scale. 64-byte frames, DURATION
   seconds each, no rate limit; the figure for every generator is the same:
   the frames the peer's XDP program dropped (the veth's
   `rx_queue_N_xdp_drops`, `ethtool -S`) over the run's wall time.
   lab-gen sends to the drop's MAC without ARP (`--peer-mac`). Each
   generator twice: where the scheduler places it, and on a CPU of its own.
   A kernel that refuses live-frames runs (some hardened ones answer EPERM
   once the program is loaded) gets the rest measured, and one line saying
   so; lab-gen then feeds the sinks below from af_xdp.
2. lab-gen (live frames, unpaced) -> lab-sink, side by side on its two
   paths: counting in XDP (`--path xdp`, the program on b's eth1 takes the
   live frames) and on af_xdp (`--path datalink --datalink af_xdp`); then
   trafgen into the XDP-counting sink (its frames carry no lab-gen stamp:
   the figure is the frames the program passed on, from `ethtool -S`).
   Then lab-gen at 80% of 2,000,000/s, RUNS_AT_80 runs per path, each of
   which must lose nothing. Each path twice: lab-gen as the scheduler
   places it, and lab-gen on a CPU of its own (`taskset -c 1 chrt -f 1`:
   on a veth the sink's receive and its XDP program run on the sender's
   CPU, so that CPU is the whole path's).

Runs alternate (trafgen, lab-gen, ...), so that a change in the machine's
load hits all alike.
"""

import json
import re
import time

from .common import (
    REPO,
    Background,
    BenchError,
    Figure,
    Settings,
    Target,
    VethPair,
    at_most,
    in_netns,
    run,
    tool,
)

DURATION = 3
FRAME = 64
SINK_TARGET = 2_000_000
RUNS_AT_80 = 5
XDPDROP = str(REPO / "ci" / "benchlib" / "xdpdrop.py")

LIVE_TARGET = Target(
    "lab-gen >= 2x trafgen and >= 3,000,000/s",
    lambda ours, ref: ref is not None and ours >= 2 * ref and ours >= 3_000_000,
)


def last_json(text: str, what: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{what}: no JSON summary in its output: {text[-300:]!r}")
    return json.loads(lines[-1])


def xdp_drops(pair: VethPair) -> int:
    """The frames b's XDP program dropped so far."""
    out = run(in_netns(pair.b.netns, "ethtool", "-S", pair.b.iface)).stdout
    return sum(int(n) for n in re.findall(r"rx_queue_\d+_xdp_drops: (\d+)", out))


def trafgen_conf(pair: VethPair, workdir) -> str:
    path = workdir / "trafgen.cfg"
    padding = FRAME - 42
    path.write_text(
        "{ eth(da=%s, sa=%s), ipv4(saddr=%s, daddr=%s, df), udp(sp=49152, dp=9), fill(0x00, %d) }\n"
        % (pair.b.mac, pair.a.mac, pair.a.addr, pair.b.addr, padding)
    )
    return str(path)


def dropped_per_second(pair: VethPair, cmd, what: str) -> tuple:
    """Runs `cmd` in a; (frames b's XDP dropped per second of the run, its
    completed process)."""
    before = xdp_drops(pair)
    started = time.monotonic()
    done = run(cmd, check=False, timeout=DURATION + 30)
    elapsed = time.monotonic() - started
    dropped = xdp_drops(pair) - before
    if dropped == 0:
        raise BenchError(f"{what}: nothing reached the XDP drop: {done.stderr.strip()[-300:]}")
    return dropped / elapsed, done


def trafgen_rate(pair: VethPair, conf: str, prefix: list) -> float:
    cmd = in_netns(
        pair.a.netns,
        *prefix,
        "timeout",
        "-s",
        "INT",
        DURATION,
        "trafgen",
        "--dev",
        pair.a.iface,
        "--conf",
        conf,
        "-P",
        "1",
        "--no-sock-mem",
    )
    rate, _ = dropped_per_second(pair, cmd, "trafgen")
    return rate


def gen_rate(pair: VethPair, prefix: list, *extra) -> tuple:
    """(dropped per second, lab-gen's JSON summary)."""
    cmd = in_netns(
        pair.a.netns,
        *prefix,
        tool("lab-gen"),
        pair.a.iface,
        pair.b.addr,
        "--peer-mac",
        pair.b.mac,
        "--size",
        FRAME,
        "--duration",
        DURATION,
        "--json",
        *extra,
    )
    rate, done = dropped_per_second(pair, cmd, f"lab-gen {' '.join(map(str, extra))}")
    if done.returncode != 0:
        raise BenchError(f"lab-gen {' '.join(map(str, extra))}: exit {done.returncode}: {done.stderr[-300:]}")
    return rate, last_json(done.stdout, "lab-gen")


def bench(settings: Settings):
    print(f"== gen: lab-gen on XDP live frames against trafgen ({FRAME}-byte frames, {DURATION} s runs)")
    if run(["sh", "-c", "command -v trafgen && command -v ethtool"], check=False).returncode != 0:
        raise BenchError("trafgen or ethtool is missing: run `ci/setup` (netsniff-ng, ethtool)")
    with VethPair("q") as pair:
        refused = live_refusal(pair)
        if refused:
            # Some hardened kernels turn live frames off (EPERM once the
            # program is loaded): measure the rest, lab-gen on af_xdp.
            settings.report.problem("gen", f"lab-gen on live frames: {refused}")
        generators(settings, pair, live=not refused)
        gen_to_sink(settings, pair, GEN_LIVE if not refused else GEN_AF_XDP)


GEN_LIVE = ("live frames", ["--path", "live"])
GEN_AF_XDP = ("af_xdp", ["--path", "datalink", "--datalink", "af_xdp"])


def live_refusal(pair: VethPair):
    """lab-gen's line when this kernel refuses live-frames runs, else None."""
    cmd = in_netns(
        pair.a.netns, tool("lab-gen"), pair.a.iface, pair.b.addr, "--peer-mac", pair.b.mac,
        "--count", "1", "--path", "live",
    )
    done = run(cmd, check=False, timeout=30)
    line = done.stderr.strip()
    return line if done.returncode != 0 and "refuses live-frames runs" in line else None


def generators(settings: Settings, pair: VethPair, live: bool = True):
    conf = trafgen_conf(pair, settings.workdir)
    drop = Background(in_netns(pair.b.netns, "python3", XDPDROP, pair.b.iface), settings.workdir, "xdpdrop")
    with drop:
        drop.wait_for(r"attached")
        for placement in PLACEMENTS:
            generators_placed(settings, pair, conf, placement, live)
        drop.stop()


def generators_placed(settings: Settings, pair: VethPair, conf: str, placement: str, live: bool):
    """trafgen against lab-gen's paths, every generator placed alike: where
    the scheduler puts it, or on a CPU of its own (the peer's receive and
    its XDP drop run on the sender's CPU, so that CPU is the whole path's)."""
    print(f"== gen: generators into the XDP drop ({placement})")
    prefix = PLACEMENTS[placement]
    paths = {"live": ["--path", "live"]} if live else {}
    for datalink in settings.datalinks:
        paths[datalink] = ["--path", "datalink", "--datalink", datalink]
    trafgen, ours, own_rate = [], {name: [] for name in paths}, []
    for index in range(settings.warmup + settings.runs):
        reference = trafgen_rate(pair, conf, prefix)
        rates = {}
        for name, extra in paths.items():
            rates[name], summary = gen_rate(pair, prefix, *extra)
            if name == "live":
                if summary.get("path") != "live_frames":
                    raise BenchError(f"lab-gen --path live ran on {summary.get('path')}")
                live_summary = summary
        if index < settings.warmup:
            continue
        trafgen.append(reference)
        for name in paths:
            ours[name].append(rates[name])
        if live:
            own_rate.append(live_summary["rate"])
    report = settings.report
    group = f"gen ({placement})"
    if live:
        report.add(
            Figure(
                group,
                f"frames/s into an XDP drop, {FRAME}-byte frames: lab-gen on live frames",
                "/s",
                "lab-gen",
                ours["live"],
                "trafgen -P 1",
                trafgen,
                LIVE_TARGET,
                note=f"lab-gen's own count: {min(own_rate):,.0f} .. {max(own_rate):,.0f}/s",
            )
        )
    for name in settings.datalinks:
        report.add(
            Figure(
                group,
                f"frames/s into an XDP drop, {FRAME}-byte frames: lab-gen on {name} (--path datalink)",
                "/s",
                "lab-gen",
                ours[name],
                "trafgen -P 1",
                trafgen,
            )
        )


SINK_PATHS = {
    "xdp": ["--path", "xdp"],
    "af_xdp": ["--path", "datalink", "--datalink", "af_xdp"],
}
PLACEMENTS = {
    "scheduler": [],
    "own CPU": ["taskset", "-c", "1", "chrt", "-f", "1"],
}


def loss_target(asked, reached):
    """No loss counts only at the rate asked: where lab-gen fell short of
    it (by more than 5%), the target is not shown, and says so."""
    if reached >= 0.95 * asked:
        return at_most(0, "none lost in any run")
    return Target(f"none lost in any run: not shown, lab-gen reached {reached:,.0f}/s", lambda ours, ref: False)


def gen_to_sink_run(
    settings: Settings, pair: VethPair, generator: tuple, sink_path: str, placement: str, rate=None
) -> tuple:
    """One lab-gen run (on `generator`'s path) into lab-sink on `sink_path`:
    (lab-gen's summary, lab-sink's)."""
    sink = in_netns(pair.b.netns, tool("lab-sink"), pair.b.iface, *SINK_PATHS[sink_path], "--json")
    with Background(sink, settings.workdir, f"lab-sink-{sink_path}") as receiving:
        receiving.wait_for(r'"event":"ready"')
        pacing = ["--rate", f"{rate:.0f}"] if rate else []
        gen = in_netns(
            pair.a.netns,
            *PLACEMENTS[placement],
            tool("lab-gen"),
            pair.a.iface,
            pair.b.addr,
            *generator[1],
            "--size",
            FRAME,
            "--duration",
            DURATION,
            "--json",
            *pacing,
        )
        sent = last_json(run(gen, timeout=DURATION + 30).stdout, f"lab-gen ({generator[0]})")
        time.sleep(0.2)
        if receiving.stop() != 0:
            raise BenchError(f"lab-sink ({sink_path}) received nothing: {receiving.stderr()[-300:]}")
        received = last_json(receiving.stdout(), f"lab-sink ({sink_path})")
    expected = {"xdp": "xdp", "af_xdp": "datalink"}[sink_path]
    if received.get("path") != expected:
        raise BenchError(f"lab-sink {' '.join(SINK_PATHS[sink_path])} counted on {received.get('path')}")
    return sent, received


def xdp_passes(pair: VethPair) -> int:
    """The frames b's XDP programs passed on to the kernel so far."""
    out = run(in_netns(pair.b.netns, "ethtool", "-S", pair.b.iface)).stdout
    return sum(int(n) for n in re.findall(r"rx_queue_\d+_xdp_packets:\s*(\d+)", out)) - sum(
        int(n) for n in re.findall(r"rx_queue_\d+_xdp_drops:\s*(\d+)", out)
    )


def trafgen_into_sink(settings: Settings, pair: VethPair) -> float:
    """trafgen's frames/s into lab-sink --path xdp (which passes them on:
    they are not lab-gen's), from the veth's own counts."""
    conf = trafgen_conf(pair, settings.workdir)
    sink = in_netns(pair.b.netns, tool("lab-sink"), pair.b.iface, "--path", "xdp", "--json")
    cmd = in_netns(
        pair.a.netns, "timeout", "-s", "INT", DURATION, "trafgen", "--dev", pair.a.iface,
        "--conf", conf, "-P", "1", "--no-sock-mem",
    )
    with Background(sink, settings.workdir, "lab-sink-trafgen") as receiving:
        receiving.wait_for(r'"event":"ready"')
        before = xdp_passes(pair)
        started = time.monotonic()
        done = run(cmd, check=False, timeout=DURATION + 30)
        elapsed = time.monotonic() - started
        passed = xdp_passes(pair) - before
        receiving.stop()
    if passed <= 0:
        raise BenchError(f"trafgen: nothing reached lab-sink's program: {done.stderr.strip()[-300:]}")
    return passed / elapsed


def gen_to_sink(settings: Settings, pair: VethPair, generator: tuple):
    at_80 = SINK_TARGET * 0.8
    report = settings.report
    for placement in PLACEMENTS:
        for sink_path in SINK_PATHS:
            gen_to_sink_on(settings, pair, generator, sink_path, placement, at_80)
    print("== gen: trafgen -> lab-sink --path xdp")
    trafgen = []
    for index in range(settings.warmup + settings.runs):
        rate = trafgen_into_sink(settings, pair)
        if index >= settings.warmup:
            trafgen.append(rate)
    report.add(Figure("gen -> sink", "trafgen -P 1 into lab-sink --path xdp (frames/s it took)", "/s", "trafgen", trafgen))


def gen_to_sink_on(
    settings: Settings, pair: VethPair, generator: tuple, sink_path: str, placement: str, at_80: float
):
    print(
        f"== gen: lab-gen ({generator[0]}, {placement}) -> lab-sink ({sink_path}), "
        f"then {RUNS_AT_80} runs at 80% of {SINK_TARGET:,}/s"
    )
    top, sink_top, sink_lost_top = [], [], []
    for index in range(settings.warmup + settings.runs):
        sent, received = gen_to_sink_run(settings, pair, generator, sink_path, placement)
        if index < settings.warmup:
            continue
        top.append(sent["rate"])
        sink_top.append(received["rate"])
        sink_lost_top.append(received["lost"] + (sent["sent"] - received["received"] - received["lost"]))
    lost, rates, latency, offered = [], [], [], []
    for _ in range(RUNS_AT_80):
        sent, received = gen_to_sink_run(settings, pair, generator, sink_path, placement, rate=at_80)
        offered.append(sent["rate"])
        # What the sink never saw: gaps it counted, and the tail it could
        # not see (lab-gen's count says).
        lost.append(sent["sent"] - received["received"] + received["duplicates"])
        rates.append(received["rate"])
        latency.append(received["latency_p50_ms"] or 0.0)
    report = settings.report
    group = f"gen -> sink ({sink_path}, gen: {generator[0]}, {placement})"
    report.add(Figure(group, f"lab-gen rate, {generator[0]}, no --rate", "/s", "lab-gen", top))
    report.add(
        Figure(
            group,
            f"lab-sink ({sink_path}) rate at lab-gen's top rate",
            "/s",
            "lab-sink",
            sink_top,
            target=Target(f">= {SINK_TARGET:,}/s", lambda ours, ref: ours >= SINK_TARGET),
            note=f"not received at the top rate: {', '.join(f'{n:,}' for n in sink_lost_top)}",
        )
    )
    report.add(
        Figure(
            group,
            f"frames lost at {at_80:,.0f}/s, {RUNS_AT_80} runs (all of them)",
            "frames",
            "lab-sink",
            [sum(lost)],
            target=loss_target(at_80, min(offered)),
            note=f"per run: {', '.join(f'{n:,}' for n in lost)}; sink rate {min(rates):,.0f} .. {max(rates):,.0f}/s",
        )
    )
    report.add(Figure(group, f"lab-sink one-way latency p50 at {at_80:,.0f}/s", "ms", "lab-sink", latency))
