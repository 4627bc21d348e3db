"""Pairs 1 and 2: labctl against the hand-made way (ci/lab-by-hand: the
docker CLI, ip and nsenter, 8 docker commands at a time), same image, same
topology, same node settings.

1. A 2-node lab: deploy, one ping (lab-pong in n2 answering lab-ping in
   n1, each started through `labctl exec` / `docker exec` and the ping sent
   once the pong prints its `listening on` line), destroy.
2. Chains of 10, 50 and 200 nodes (N-1 links): deploy, then destroy.

Every run is checked to leave nothing behind: no container of the lab, no
host interface of it, no namespace.
"""

import statistics
import time
from pathlib import Path

from .common import (
    PREFIX,
    REPO,
    Background,
    BenchError,
    Figure,
    Settings,
    Target,
    at_most,
    ratio_at_most,
    run,
    timed,
    tool,
)

SCRIPT_PARALLEL = 8
LAB_BY_HAND = str(REPO / "ci" / "lab-by-hand")
MIB = 1024


def chain_lab(name: str, nodes: int) -> str:
    """The lab file of a chain: link i joins n<i>:eth2 and n<i+1>:eth1 on
    198.18.<i-1>.0/24, as ci/lab-by-hand builds it."""
    lines = [f"name: {name}", "nodes:"]
    lines += [f"  n{i}: {{}}" for i in range(1, nodes + 1)]
    lines.append("links:")
    for i in range(1, nodes):
        subnet = f"198.18.{i - 1}"
        lines.append(f'  - endpoints: ["n{i}:eth2", "n{i + 1}:eth1"]')
        lines.append(f'    ipv4: ["{subnet}.1/24", "{subnet}.2/24"]')
    return "\n".join(lines) + "\n"


class Way:
    """One way of building a lab: labctl, or the script."""

    def __init__(self, name: str):
        self.name = name

    def deploy(self, lab) -> tuple:
        raise NotImplementedError

    def destroy(self, lab) -> tuple:
        raise NotImplementedError

    def exec_cmd(self, lab, node: str, argv: list) -> list:
        raise NotImplementedError

    def leftovers(self, lab) -> list:
        raise NotImplementedError


class Lab:
    def __init__(self, workdir: Path, name: str, nodes: int):
        self.name, self.nodes = name, nodes
        self.file = workdir / f"{name}.yaml"
        self.file.write_text(chain_lab(name, nodes))


def checked(step: str, result: tuple) -> tuple:
    seconds, done, rss = result
    if done.returncode != 0:
        raise BenchError(f"{step}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[-400:]}")
    return seconds, rss


class Labctl(Way):
    def __init__(self):
        super().__init__("labctl")
        self.binary = tool("labctl")

    def deploy(self, lab: Lab) -> tuple:
        return checked(f"labctl deploy {lab.name}", timed([self.binary, "deploy", lab.file], timeout=900, peak_memory=True))

    def destroy(self, lab: Lab) -> tuple:
        return checked(f"labctl destroy {lab.name}", timed([self.binary, "destroy", lab.file], timeout=900, peak_memory=True))

    def exec_cmd(self, lab: Lab, node: str, argv: list) -> list:
        return [self.binary, "exec", lab.name, node, "--", *argv]

    def leftovers(self, lab: Lab) -> list:
        found = run(["docker", "ps", "-aq", "--filter", f"label=labctl.lab={lab.name}"]).stdout.split()
        links = [line for line in run(["ip", "-o", "link", "show"]).stdout.splitlines() if f"labctl:{lab.name}:" in line]
        return found + links

    def image(self, lab: Lab) -> str:
        inspect = run(["docker", "inspect", "-f", "{{.Config.Image}}", f"labctl-{lab.name}.n1"])
        return inspect.stdout.strip()


class Script(Way):
    def __init__(self, image: str):
        super().__init__("script")
        self.image = image

    def deploy(self, lab: Lab) -> tuple:
        cmd = [LAB_BY_HAND, "up", lab.name, self.image, str(lab.nodes), str(SCRIPT_PARALLEL)]
        return checked(f"lab-by-hand up {lab.name}", timed(cmd, timeout=900))

    def destroy(self, lab: Lab) -> tuple:
        cmd = [LAB_BY_HAND, "down", lab.name, str(SCRIPT_PARALLEL)]
        return checked(f"lab-by-hand down {lab.name}", timed(cmd, timeout=900))

    def exec_cmd(self, lab: Lab, node: str, argv: list) -> list:
        return ["docker", "exec", f"{lab.name}-{node}", *argv]

    def leftovers(self, lab: Lab) -> list:
        return run(["docker", "ps", "-aq", "--filter", f"label=lab-by-hand={lab.name}"]).stdout.split()


def one_ping(way: Way, lab: Lab, workdir: Path) -> float:
    """lab-pong in n2, then one lab-ping from n1 once it listens; seconds."""
    start = time.perf_counter()
    pong_cmd = way.exec_cmd(lab, "n2", ["lab-pong", "eth1", "--count", "1"])
    with Background(pong_cmd, workdir, f"{way.name}-pong") as pong:
        pong.wait_for(r"listening on", timeout=30)
        ping = run(way.exec_cmd(lab, "n1", ["lab-ping", "eth2", "198.18.0.2", "--count", "1"]), check=False)
        if "1 received" not in ping.stdout:
            raise BenchError(f"{way.name}: the ping got no reply: {ping.stdout[-300:]} {ping.stderr[-300:]}")
        if pong.proc.wait(30) != 0:
            raise BenchError(f"{way.name}: lab-pong: {pong.stderr()[-300:]}")
    return time.perf_counter() - start


class Run:
    """One deploy (and ping) and destroy: the times and labctl's memory."""

    def __init__(self, way: Way, lab: Lab, workdir: Path, ping: bool):
        self.deploy_s, deploy_rss = way.deploy(lab)
        try:
            self.ping_s = one_ping(way, lab, workdir) if ping else 0.0
        finally:
            self.destroy_s, destroy_rss = way.destroy(lab)
        self.peak_kib = max(deploy_rss or 0, destroy_rss or 0)
        self.left = way.leftovers(lab)
        if self.left:
            print(f"  !! {way.name} left {len(self.left)} things of {lab.name} behind: {self.left[:5]}")
            remove_everything(lab)

    @property
    def total_s(self) -> float:
        return self.deploy_s + self.ping_s + self.destroy_s


def remove_everything(lab: Lab):
    """Whatever either way left of `lab`, removed the hard way. Twice, a
    moment apart: the daemon finishes the creates of a killed client."""
    for attempt in range(2):
        if attempt:
            time.sleep(2)
        run([tool("labctl"), "destroy", lab.name], check=False, timeout=900)
        run([LAB_BY_HAND, "down", lab.name], check=False, timeout=900)


def runs(settings: Settings, ways: list, lab: Lab, ping: bool) -> dict:
    """`warmup + runs` runs of each way, alternating; the warm-ups dropped."""
    results = {way.name: [] for way in ways}
    for index in range(settings.warmup + settings.runs):
        for way in ways if index % 2 == 0 else list(reversed(ways)):
            result = Run(way, lab, settings.workdir, ping)
            if index >= settings.warmup:
                results[way.name].append(result)
    return results


def median_of(results: list, attribute: str) -> float:
    return statistics.median(getattr(result, attribute) for result in results)


def bench(settings: Settings):
    print(f"== labs: labctl against ci/lab-by-hand ({SCRIPT_PARALLEL} docker commands at a time)")
    labs = [Lab(settings.workdir, f"{PREFIX}-two", 2)]
    labs += [Lab(settings.workdir, f"{PREFIX}-c{nodes}", nodes) for nodes in settings.chains]
    try:
        compare(settings, labs)
    finally:
        for lab in labs:
            remove_everything(lab)


def compare(settings: Settings, labs: list):
    report = settings.report
    two, chains = labs[0], labs[1:]
    labctl = Labctl()
    # The first deploy builds the tools image if needed; the script uses
    # the very image labctl runs.
    labctl.deploy(two)
    image = labctl.image(two)
    labctl.destroy(two)
    script = Script(image)
    print(f"  image: {image}")

    results = runs(settings, [labctl, script], two, ping=True)
    ours, ref = results["labctl"], results["script"]
    note = ", ".join(
        f"{name}: deploy {median_of(r, 'deploy_s'):.2f} s, ping {median_of(r, 'ping_s'):.2f} s, "
        f"destroy {median_of(r, 'destroy_s'):.2f} s"
        for name, r in results.items()
    )
    report.add(
        Figure(
            "labs",
            "2 nodes: deploy, one ping, destroy",
            "s",
            "labctl",
            [r.total_s for r in ours],
            "script",
            [r.total_s for r in ref],
            ratio_at_most(1.0),
            note=note,
        )
    )

    per_node = {}
    for lab in chains:
        nodes = lab.nodes
        results = runs(settings, [labctl, script], lab, ping=False)
        ours, ref = results["labctl"], results["script"]
        note = ", ".join(
            f"{name}: deploy {median_of(r, 'deploy_s'):.2f} s, destroy {median_of(r, 'destroy_s'):.2f} s"
            for name, r in results.items()
        )
        report.add(
            Figure(
                "labs",
                f"chain of {nodes}: deploy and destroy",
                "s",
                "labctl",
                [r.total_s for r in ours],
                "script",
                [r.total_s for r in ref],
                ratio_at_most(0.5) if nodes == 50 else None,
                note=note,
            )
        )
        per_node[nodes] = [r.total_s / nodes * 1000 for r in ours]
        report.add(
            Figure(
                "labs",
                f"chain of {nodes}: labctl's peak memory (deploy or destroy)",
                "MiB",
                "labctl",
                [r.peak_kib / MIB for r in ours],
                target=at_most(100, "< 100 MiB") if nodes == 200 else None,
            )
        )
        report.add(
            Figure(
                "labs",
                f"chain of {nodes}: things left behind, all runs",
                "count",
                "labctl",
                [sum(len(r.left) for r in ours)],
                "script",
                [sum(len(r.left) for r in ref)],
                Target("none", lambda ours, ref: ours == 0),
            )
        )
    if 10 in per_node and 200 in per_node:
        report.add(
            Figure(
                "labs",
                "labctl's time per node: 200 nodes against 10",
                "ms",
                "200 nodes",
                per_node[200],
                "10 nodes",
                per_node[10],
                ratio_at_most(1.5),
            )
        )
