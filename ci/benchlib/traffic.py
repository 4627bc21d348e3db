"""lab-gen -> lab-sink against iperf3 UDP on the same veth pair.

Reference: Debian's iperf3, `iperf3 -c B -u -b 0 -l 18` (no rate limit,
18-byte datagrams: 60-byte frames) from namespace a to `iperf3 -s` in b,
the kernels answering ARP. Its figure: the datagrams per second the client
sent (its JSON `end.sum.packets / end.sum.seconds`).

Ours, per datalink: lab-sink in b, lab-gen in a sending 64-byte frames as
fast as it can for DURATION seconds (no --rate); the figure is lab-gen's
rate. Then lab-gen again at half that rate, and lab-sink must lose none.

The runs alternate (iperf3, ours, iperf3, ours, ...), so that a change in
the machine's load hits both alike.
"""

import json

from .common import (
    LOUD,
    SILENT,
    Background,
    BenchError,
    Figure,
    Settings,
    Target,
    VethPair,
    at_most,
    in_netns,
    ratio_at_least,
    run,
    tool,
)

DURATION = 3
FRAME = 64

# What lab-gen must reach (issue 14): absolute on af_xdp, against iperf3
# on af_packet.
TARGETS = {
    "af_packet": ratio_at_least(5.0),
    "af_xdp": Target("lab-gen >= 1,000,000/s", lambda ours, ref: ours >= 1_000_000),
}


def last_json(text: str, what: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{what}: no JSON summary in its output: {text[-300:]!r}")
    return json.loads(lines[-1])


def iperf3_rate(pair: VethPair, workdir) -> float:
    """Datagrams per second iperf3's client sent."""
    for side in (pair.a, pair.b):
        VethPair.set_sysctls(side, LOUD)
    # --forceflush: its output goes to a file, where it would be buffered.
    server = in_netns(pair.b.netns, "iperf3", "-s", "-1", "-B", pair.b.addr, "--forceflush")
    with Background(server, workdir, "iperf3-server") as srv:
        srv.wait_for(r"Server listening")
        client = in_netns(
            pair.a.netns, "iperf3", "-c", pair.b.addr, "-u", "-b", "0", "-l", "18", "-t", DURATION, "--json"
        )
        done = run(client, timeout=DURATION + 30)
        srv.stop()
    result = json.loads(done.stdout)
    total = result["end"]["sum"]
    return total["packets"] / total["seconds"]


def gen_and_sink(pair: VethPair, workdir, datalink: str, rate=None) -> tuple:
    """One lab-gen run into lab-sink: (lab-gen's summary, lab-sink's)."""
    for side in (pair.a, pair.b):
        VethPair.set_sysctls(side, SILENT)
    a, b = pair.a, pair.b
    sink = in_netns(b.netns, tool("lab-sink"), b.iface, "--datalink", datalink, "--json")
    with Background(sink, workdir, f"lab-sink-{datalink}") as receiving:
        receiving.wait_for(r'"event":"ready"')
        pacing = ["--rate", f"{rate:.0f}"] if rate else []
        gen = in_netns(
            a.netns,
            tool("lab-gen"),
            a.iface,
            b.addr,
            "--datalink",
            datalink,
            "--size",
            FRAME,
            "--duration",
            DURATION,
            "--json",
            *pacing,
        )
        sent = last_json(run(gen, timeout=DURATION + 30).stdout, f"lab-gen ({datalink})")
        if receiving.stop() != 0:
            raise BenchError(f"lab-sink ({datalink}) received nothing: {receiving.stderr()[-300:]}")
        received = last_json(receiving.stdout(), f"lab-sink ({datalink})")
    return sent, received


def bench(settings: Settings):
    print(f"== traffic: lab-gen -> lab-sink against iperf3 UDP ({FRAME}-byte frames, {DURATION} s runs)")
    with VethPair("g") as pair:
        for datalink in settings.datalinks:
            try:
                compare(settings, pair, datalink)
            except BenchError as error:
                settings.report.problem(f"traffic ({datalink})", str(error))


def compare(settings: Settings, pair: VethPair, datalink: str):
    iperf, top, sink_top, half_loss, half_rate, sink_latency = [], [], [], [], [], []
    for index in range(settings.warmup + settings.runs):
        reference = iperf3_rate(pair, settings.workdir)
        sent, received = gen_and_sink(pair, settings.workdir, datalink)
        half = sent["rate"] / 2
        _, at_half = gen_and_sink(pair, settings.workdir, datalink, rate=half)
        if index < settings.warmup:
            continue
        iperf.append(reference)
        top.append(sent["rate"])
        sink_top.append(received["rate"])
        half_rate.append(half)
        half_loss.append(at_half["lost"])
        sink_latency.append(at_half["latency_p50_ms"] or 0.0)
    group = f"traffic ({datalink})"
    report = settings.report
    report.add(
        Figure(
            group,
            f"lab-gen rate, {FRAME}-byte frames, no --rate",
            "/s",
            "lab-gen",
            top,
            "iperf3 -u -b 0 -l 18",
            iperf,
            TARGETS.get(datalink, ratio_at_least(1.0)),
        )
    )
    report.add(Figure(group, "lab-sink rate at lab-gen's top rate", "/s", "lab-sink", sink_top))
    report.add(
        Figure(
            group,
            "lab-sink frames lost at 50% of lab-gen's top rate",
            "frames",
            "lab-sink",
            half_loss,
            target=at_most(0, "none lost"),
            note=f"at {min(half_rate):,.0f} .. {max(half_rate):,.0f} frames/s",
        )
    )
    report.add(Figure(group, "lab-sink one-way latency p50 at 50%", "ms", "lab-sink", sink_latency))
