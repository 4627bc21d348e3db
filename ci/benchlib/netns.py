"""The netns runtime (issue 17): nodes as bare network namespaces, against
mininet (ci/mininet-chain: Debian's mininet, hosts only, host-to-host links,
no switch, no controller) and against labctl's Docker runtime.

1. Chains of 10, 50 and 200 nodes (N-1 links): deploy, then destroy, with
   `labctl deploy --runtime netns` / `labctl destroy`, with mininet, and
   with `labctl deploy` on Docker, runs alternating.
2. labctl netns's time per node, 200 nodes against 10.
3. What a 2-node `labctl run --runtime netns` adds beyond its steps
   (lab-pong, one lab-ping, the wait for the pong).

Every labctl run is checked to leave nothing behind: no namespace, no node
directory, no veth, no container of the lab.
"""

import json
import os
import statistics
import tempfile
from pathlib import Path

from .common import PREFIX, REPO, BenchError, Figure, Settings, Target, at_most, ratio_at_most, run, timed, tool
from .labs import Lab, Labctl, checked, remove_everything
from .runs import TWO_NODE_STEPS, phase

MININET = str(REPO / "ci" / "mininet-chain")


class LabctlNetns(Labctl):
    def __init__(self):
        super().__init__()
        self.name = "labctl netns"

    def deploy(self, lab: Lab) -> tuple:
        cmd = [self.binary, "deploy", "--runtime", "netns", lab.file]
        return checked(f"labctl deploy --runtime netns {lab.name}", timed(cmd, timeout=900, peak_memory=True))

    def leftovers(self, lab: Lab) -> list:
        marker = f"labctl-{lab.name}-"
        found = [n for n in os.listdir("/run/netns") if n.startswith(marker)] if os.path.isdir("/run/netns") else []
        state = "/run/labctl/netns"
        found += [n for n in os.listdir(state) if n.startswith(marker)] if os.path.isdir(state) else []
        return found + super().leftovers(lab)


def mininet_chain(nodes: int) -> tuple:
    """(deploy s, destroy s) of one mininet chain."""
    seconds, done, _ = timed([MININET, str(nodes), "mnb"], timeout=900)
    if done.returncode != 0:
        raise BenchError(f"ci/mininet-chain {nodes}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return times["deploy_s"], times["destroy_s"]


def bench(settings: Settings):
    print("== netns: labctl's netns runtime against mininet and against labctl on Docker")
    if run(["/usr/bin/python3", "-c", "import mininet"], check=False).returncode != 0:
        raise BenchError("mininet is missing: run `ci/setup bench` (Debian's mininet)")
    labs = [Lab(settings.workdir, f"{PREFIX}-n{nodes}", nodes) for nodes in settings.chains]
    two = Lab(settings.workdir, f"{PREFIX}-ntwo", 2)
    try:
        chains(settings, labs)
        added(settings, two)
    finally:
        for lab in labs + [two]:
            remove_everything(lab)


def chains(settings: Settings, labs: list):
    report = settings.report
    netns, docker = LabctlNetns(), Labctl()
    per_node = {}
    for lab in labs:
        ours, mn, dock, left = [], [], [], 0
        parts = {"netns deploy": [], "netns destroy": [], "mininet deploy": [], "mininet destroy": []}
        for index in range(settings.warmup + settings.runs):
            deploy_s, _ = netns.deploy(lab)
            destroy_s, _ = netns.destroy(lab)
            leftover = netns.leftovers(lab)
            if leftover:
                print(f"  !! labctl netns left {len(leftover)} things of {lab.name}: {leftover[:5]}")
                remove_everything(lab)
            m_deploy, m_destroy = mininet_chain(lab.nodes)
            d_deploy, _ = docker.deploy(lab)
            d_destroy, _ = docker.destroy(lab)
            if index >= settings.warmup:
                ours.append(deploy_s + destroy_s)
                mn.append(m_deploy + m_destroy)
                dock.append(d_deploy + d_destroy)
                left += len(leftover)
                parts["netns deploy"].append(deploy_s)
                parts["netns destroy"].append(destroy_s)
                parts["mininet deploy"].append(m_deploy)
                parts["mininet destroy"].append(m_destroy)
        note = ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in parts.items())
        report.add(
            Figure(
                "netns",
                f"chain of {lab.nodes}: deploy and destroy, against mininet",
                "s",
                "labctl netns",
                ours,
                "mininet",
                mn,
                ratio_at_most(0.2) if lab.nodes == 50 else None,
                note=note,
            )
        )
        report.add(
            Figure(
                "netns",
                f"chain of {lab.nodes}: deploy and destroy, against labctl on Docker",
                "s",
                "labctl netns",
                ours,
                "labctl docker",
                dock,
            )
        )
        report.add(
            Figure(
                "netns",
                f"chain of {lab.nodes}: things labctl netns left behind, all runs",
                "count",
                "labctl netns",
                [left],
                target=Target("none", lambda ours, ref: ours == 0),
            )
        )
        per_node[lab.nodes] = [t / lab.nodes * 1000 for t in ours]
    if 10 in per_node and 200 in per_node:
        report.add(
            Figure(
                "netns",
                "labctl netns's time per node: 200 nodes against 10",
                "ms",
                "200 nodes",
                per_node[200],
                "10 nodes",
                per_node[10],
                ratio_at_most(1.2),
            )
        )


def added(settings: Settings, two: Lab):
    """`labctl run --runtime netns` of the 2-node lab less its steps."""
    two.file.write_text(two.file.read_text() + TWO_NODE_STEPS)
    binary = tool("labctl")
    overheads, walls, reports = [], [], []
    for index in range(settings.warmup + settings.runs):
        with tempfile.TemporaryDirectory(dir=settings.workdir) as runs_dir:
            report_path = Path(runs_dir) / "report.json"
            cmd = [binary, "run", "--runtime", "netns", two.file, "--json", report_path, "--runs-dir", runs_dir]
            seconds, done, _ = timed(cmd, timeout=300)
            if done.returncode != 0:
                raise BenchError(f"labctl run --runtime netns: exit {done.returncode}: {done.stdout[-600:]}")
            result = json.loads(report_path.read_text())
        if index >= settings.warmup:
            walls.append(seconds)
            overheads.append((seconds - phase(result, "steps")) * 1000)
            reports.append(result)
    names = sorted({p["name"] for r in reports for p in r["phases"]} - {"steps"})
    parts = ", ".join(f"{n} {statistics.median(phase(r, n) for r in reports) * 1000:.1f} ms" for n in names)
    report = settings.report
    report.add(
        Figure(
            "netns",
            "time labctl run --runtime netns adds to the 2-node lab beyond its steps",
            "ms",
            "labctl run",
            overheads,
            target=at_most(50, "<= 50 ms"),
            note=f"whole run {statistics.median(walls):.3f} s; phases (medians): {parts}",
        )
    )
