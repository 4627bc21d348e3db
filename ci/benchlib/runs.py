"""What `labctl run` costs: pair 1 done the labctl way, the lines of output
per second it can assert on, and the time it adds to a lab beyond its
steps.

- 2 nodes, `labctl run`: a lab whose steps are lab-pong (background, ready
  on its `listening on` line), one lab-ping, and the wait for the pong;
  against ci/lab-by-hand up, the same ping through docker exec, down.
- Lines: one node (busybox from the host, FROM scratch) whose step prints
  1,000,000 lines (`seq`) that an `expect` counts; the step's time from
  labctl's JSON report. Reference, for scale: the same command through
  `docker exec` into a pipe that counts the lines (`wc -l`).
- Time added: `labctl run`'s wall-clock time less its steps' phase, for
  the 2-node lab, with the phases (image check, containers, links,
  artifacts, teardown) labctl reports.
"""

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .common import PREFIX, BenchError, Figure, Settings, ratio_at_most, run, timed, tool
from .labs import Labctl, Lab, Script, one_ping, remove_everything

LINES = 1_000_000
BUSYBOX_IMAGE = "labctl-bench-busybox:1"

TWO_NODE_STEPS = """steps:
  - name: pong
    node: n2
    exec: [lab-pong, eth1, --count, "1"]
    background: true
    ready: "listening on eth1"
  - name: ping
    node: n1
    exec: [lab-ping, eth2, 198.18.0.2, --count, "1"]
    expect:
      stdout:
        - contains: "1 packets transmitted, 1 received"
  - name: pong answered
    wait: pong
"""

LINES_LAB = f"""name: {{name}}
nodes:
  talker: {{{{ image: {BUSYBOX_IMAGE} }}}}
steps:
  - name: lines
    node: talker
    exec: [seq, "1", "{LINES}"]
    timeout: 300s
    expect:
      stdout:
        - match: '^[0-9]+$'
          count: {LINES}
"""


def busybox_image(workdir: Path) -> str:
    """An image that is not the tools image and has `seq`: the host's
    static busybox, FROM scratch (ci/setup installs busybox-static)."""
    if run(["docker", "image", "inspect", BUSYBOX_IMAGE], check=False).returncode == 0:
        return BUSYBOX_IMAGE
    busybox = shutil.which("busybox")
    if busybox is None:
        raise BenchError("busybox is missing: run ci/setup (busybox-static)")
    context = workdir / "busybox"
    context.mkdir()
    shutil.copy(busybox, context / "busybox")
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    )
    run(["docker", "build", "-q", "-t", BUSYBOX_IMAGE, str(context)], timeout=300)
    return BUSYBOX_IMAGE


class LabctlRun:
    """`labctl run` of a lab file; returns its JSON report."""

    def __init__(self, workdir: Path):
        self.binary = tool("labctl")
        self.workdir = workdir

    def __call__(self, lab_file: Path) -> tuple:
        with tempfile.TemporaryDirectory(dir=self.workdir) as runs_dir:
            report_path = Path(runs_dir) / "report.json"
            cmd = [self.binary, "run", lab_file, "--json", report_path, "--runs-dir", runs_dir]
            seconds, done, _ = timed(cmd, timeout=900)
            if done.returncode != 0:
                raise BenchError(f"labctl run {lab_file.name}: exit {done.returncode}: {done.stdout[-600:]}")
            return seconds, json.loads(report_path.read_text())


def phase(report: dict, name: str) -> float:
    return next((p["duration"] for p in report["phases"] if p["name"] == name), 0.0)


def bench(settings: Settings):
    print("== run: what labctl run costs")
    two = Lab(settings.workdir, f"{PREFIX}-rtwo", 2)
    lines_file = settings.workdir / f"{PREFIX}-lines.yaml"
    try:
        measure(settings, two, lines_file)
    finally:
        remove_everything(two)
        run([tool("labctl"), "destroy", f"{PREFIX}-lines"], check=False)


def measure(settings: Settings, two: Lab, lines_file: Path):
    report = settings.report
    labctl_run = LabctlRun(settings.workdir)
    two.file.write_text(two.file.read_text() + TWO_NODE_STEPS)
    labctl = Labctl()
    labctl.deploy(two)
    script = Script(labctl.image(two))
    labctl.destroy(two)

    walls, script_walls, overheads, reports = [], [], [], []
    for index in range(settings.warmup + settings.runs):
        seconds, result = labctl_run(two.file)
        start = time.perf_counter()
        script.deploy(two)
        try:
            one_ping(script, two, settings.workdir)
        finally:
            script.destroy(two)
        by_hand = time.perf_counter() - start
        if index >= settings.warmup:
            walls.append(seconds)
            script_walls.append(by_hand)
            overheads.append(seconds - phase(result, "steps"))
            reports.append(result)
    parts = ", ".join(
        f"{name} {statistics.median(phase(r, name) for r in reports):.3f} s"
        for name in ("image", "containers", "links", "artifacts", "teardown")
    )
    report.add(
        Figure(
            "run",
            "2 nodes with labctl run: deploy, one ping, destroy",
            "s",
            "labctl run",
            walls,
            "script",
            script_walls,
            ratio_at_most(1.0),
        )
    )
    report.add(
        Figure(
            "run",
            "time labctl run adds to the 2-node lab beyond its steps",
            "s",
            "labctl run",
            overheads,
            note=f"phases (medians): {parts}; the rest is process start, validation, reports",
        )
    )

    busybox_image(settings.workdir)
    lines_file.write_text(LINES_LAB.format(name=f"{PREFIX}-lines"))
    ours, ref = [], []
    for index in range(settings.warmup + settings.runs):
        _, result = labctl_run(lines_file)
        step = result["steps"][0]
        if step["status"] != "passed":
            raise BenchError(f"the {LINES:,}-line step did not pass: {step.get('failures')}")
        by_docker = docker_exec_lines(settings)
        if index >= settings.warmup:
            ours.append(LINES / step["duration"])
            ref.append(LINES / by_docker)
    report.add(
        Figure(
            "run",
            f"lines per second labctl asserts on (a step printing {LINES:,})",
            "/s",
            "labctl run",
            ours,
            "docker exec into wc -l",
            ref,
        )
    )


def docker_exec_lines(settings: Settings) -> float:
    """Seconds for `docker exec` of the same command into `wc -l`, in a
    container of the same image."""
    name = f"{PREFIX}-lines-ref"
    run(["docker", "run", "-d", "--rm", "--name", name, "--network", "none", BUSYBOX_IMAGE, "sleep", "600"])
    try:
        start = time.perf_counter()
        counted = run(["sh", "-c", f"docker exec {name} seq 1 {LINES} | wc -l"], timeout=300).stdout.strip()
        seconds = time.perf_counter() - start
        if counted != str(LINES):
            raise BenchError(f"docker exec printed {counted} lines, not {LINES}")
        return seconds
    finally:
        run(["docker", "rm", "-f", name], check=False)
