"""What every benchmark of ci/bench shares: the binaries, running commands,
background processes, network namespaces joined by a veth pair, cleanup
that survives failures and Ctrl-C, and the table of figures."""

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
RELEASE = REPO / "target" / "x86_64-unknown-linux-gnu" / "release"

# Every namespace, veth, container and lab of this run starts with this, so
# two benchmarks (or a benchmark and the tests) never collide, and a leftover
# names the run that left it.
PREFIX = f"lb{os.getpid() % 100000}"


class BenchError(Exception):
    """A benchmark could not be measured (a tool failed, a setup step
    failed); the message says which and why."""


def tool(name: str) -> str:
    path = RELEASE / name
    if not path.exists():
        raise BenchError(f"{path} is missing: run ci/bench without --no-build")
    return str(path)


def run(cmd, *, check=True, timeout=120, input_text=None) -> subprocess.CompletedProcess:
    """Runs `cmd` to its end and returns its output; a failure with `check`
    raises BenchError with the command and its stderr."""
    try:
        done = subprocess.run(
            cmd,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{' '.join(map(str, cmd))}: no end after {timeout}s") from error
    if check and done.returncode != 0:
        raise BenchError(
            f"{' '.join(map(str, cmd))}: exit {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done


def in_netns(netns: str, *cmd) -> list:
    # `ip netns exec` execs the command in place: its pid is the command's,
    # so signals reach the tool itself.
    return ["ip", "netns", "exec", netns, *map(str, cmd)]


@contextlib.contextmanager
def signals_deferred():
    """Holds SIGINT and SIGTERM while cleaning up, so a second Ctrl-C does
    not leave half of a lab behind; they are delivered afterwards."""
    if hasattr(signal, "pthread_sigmask"):
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    else:
        yield


def interrupts_unwind():
    """SIGINT and SIGTERM unwind through every `finally` and `with`. SIGINT
    is set explicitly: a shell starts a background job with it ignored,
    and Python then leaves it so."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------- processes


class Background:
    """A process running while something else is measured. Its stdout and
    stderr go to files (a pipe nobody reads would stall it at high rates);
    `wait_for` watches them for a readiness line. Used as a context manager
    it is killed on the way out if still running."""

    def __init__(self, cmd, workdir: Path, name: str):
        self.cmd = [str(c) for c in cmd]
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self):
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc):
        with signals_deferred():
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def wait_for(self, pattern: str, timeout: float = 10.0, stream: str = "out"):
        path = self.out_path if stream == "out" else self.err_path
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(path.read_text(errors="replace")):
                return
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited {self.proc.returncode}: {self.stderr()[-500:]}")
            time.sleep(0.01)
        raise BenchError(f"{self.name}: no line matching {pattern!r} after {timeout}s")

    def stop(self, sig=signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as error:
            self.proc.kill()
            self.proc.wait()
            raise BenchError(f"{self.name}: still running {timeout}s after signal {sig}") from error

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


def timed(cmd, timeout=600, peak_memory=False) -> tuple:
    """Runs `cmd`; returns (seconds, completed process, peak RSS in KiB or
    None). The peak comes from GNU time, which forks from a small process:
    wait4's figure for a child of this Python process would start from
    Python's own size, which the fork copies before the exec.

    The command runs in a process group of its own, which is interrupted
    as a whole if this one is: a script's background children (xargs and
    its docker commands) would otherwise go on creating containers after
    the cleanup."""
    with tempfile.NamedTemporaryFile(mode="r") as rss, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        argv = [str(c) for c in cmd]
        if peak_memory:
            argv = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout)
        except BaseException as error:
            stop_group(proc)
            if isinstance(error, subprocess.TimeoutExpired):
                raise BenchError(f"{' '.join(argv)}: no end after {timeout}s") from error
            raise
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            argv, proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )
        peak = None
        if peak_memory:
            # GNU time notes a signal or an exit code on a first line.
            lines = rss.read().split()
            peak = int(lines[-1]) if lines and lines[-1].isdigit() else None
    return seconds, done, peak


# How long an interrupted command gets to clean up after itself (labctl
# rolls a deploy back on SIGINT) before its whole group is killed.
GRACE_S = 30


def stop_group(proc: subprocess.Popen):
    """SIGINT to the command's process group, then SIGKILL after the
    grace period; waits for the command."""
    with signals_deferred():
        for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may outlive its leader (the leader waited for nothing).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


GNU_TIME = "/usr/bin/time"


# ---------------------------------------------------------------- network namespaces

# The sysctls labctl applies to every node (docs/tools.md "Keeping the kernel
# silent"): no kernel ARP replies, no kernel echo replies, no IPv6.
SILENT = {
    "net.ipv4.conf.all.arp_ignore": "8",
    "net.ipv4.conf.eth1.arp_ignore": "8",
    "net.ipv4.icmp_echo_ignore_all": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.eth1.disable_ipv6": "1",
}
# The kernel answering ARP and echo itself (the reference), still without
# IPv6 chatter on the link.
LOUD = {
    "net.ipv4.conf.all.arp_ignore": "0",
    "net.ipv4.conf.eth1.arp_ignore": "0",
    "net.ipv4.icmp_echo_ignore_all": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.eth1.disable_ipv6": "1",
}


@dataclass
class Side:
    netns: str
    addr: str
    mac: str
    iface: str = "eth1"


class VethPair:
    """Two fresh network namespaces joined by one veth pair, `eth1` on each
    side: a is 198.18.0.1/24, b is 198.18.0.2/24. Leaving the context
    deletes both namespaces (and the veth with them), even on Ctrl-C."""

    def __init__(self, tag: str):
        self.a = Side(f"{PREFIX}{tag}a", "198.18.0.1", "02:00:00:00:00:01")
        self.b = Side(f"{PREFIX}{tag}b", "198.18.0.2", "02:00:00:00:00:02")
        self.host_names = [f"{PREFIX}{tag}x", f"{PREFIX}{tag}y"]

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
        for side in (self.a, self.b):
            run(["ip", "netns", "add", side.netns])
        x, y = self.host_names
        run(["ip", "link", "add", x, "type", "veth", "peer", "name", y])
        for tmp, side in zip(self.host_names, (self.a, self.b)):
            run(["ip", "link", "set", tmp, "netns", side.netns, "name", side.iface])
            self.set_sysctls(side, SILENT)
            ns = ["ip", "-n", side.netns]
            run(ns + ["link", "set", side.iface, "address", side.mac])
            run(ns + ["addr", "add", f"{side.addr}/24", "dev", side.iface])
            run(ns + ["link", "set", side.iface, "up"])
            run(ns + ["link", "set", "lo", "up"])

    def _remove(self):
        with signals_deferred():
            for side in (self.a, self.b):
                run(["ip", "netns", "del", side.netns], check=False)
            for name in self.host_names:
                run(["ip", "link", "del", name], check=False)

    @staticmethod
    def set_sysctls(side: Side, values: dict):
        args = [f"{key}={value}" for key, value in values.items()]
        run(in_netns(side.netns, "sysctl", "-qw", *args))


def leftovers() -> dict:
    """What a benchmark could leave behind, to compare before and after."""
    netns = run(["ip", "netns", "list"], check=False).stdout.split()
    links = run(["ip", "-o", "link", "show"], check=False).stdout.splitlines()
    return {
        "netns": sorted(n for n in netns if n.startswith(PREFIX)),
        "host links": sorted(
            line.split(":")[1].strip().split("@")[0] for line in links if PREFIX in line or "labctl:" in line
        ),
    }


# ---------------------------------------------------------------- figures


@dataclass
class Target:
    """A goal of the issue, checked on the medians."""

    text: str
    check: Callable[[float, Optional[float]], bool]


def ratio_at_most(limit: float) -> Target:
    return Target(f"ratio <= {limit:g}", lambda ours, ref: ref not in (None, 0) and ours / ref <= limit)


def ratio_at_least(limit: float) -> Target:
    return Target(f"ratio >= {limit:g}", lambda ours, ref: ref not in (None, 0) and ours / ref >= limit)


def at_most_reference() -> Target:
    return Target("<= reference", lambda ours, ref: ref is not None and ours <= ref)


def at_most(limit: float, text: str) -> Target:
    return Target(text, lambda ours, ref: ours <= limit)


UNITS = {
    "ms": lambda v: f"{v:.3f} ms",
    "us": lambda v: f"{v:.1f} µs",
    "s": lambda v: f"{v:.2f} s",
    "/s": lambda v: f"{v:,.0f}/s",
    "frames": lambda v: f"{v:,.0f}",
    "count": lambda v: f"{v:,.0f}",
    "MiB": lambda v: f"{v:.1f} MiB",
    "x": lambda v: f"{v:.2f}x",
}


@dataclass
class Figure:
    group: str
    name: str
    unit: str
    ours_label: str
    ours: list
    ref_label: str = ""
    ref: Optional[list] = None
    target: Optional[Target] = None
    note: str = ""

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def ref_median(self) -> Optional[float]:
        return statistics.median(self.ref) if self.ref else None

    @property
    def ratio(self) -> Optional[float]:
        ref = self.ref_median
        return self.ours_median / ref if ref else None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "met" if self.target.check(self.ours_median, self.ref_median) else "MISSED"

    def cells(self) -> list:
        fmt = UNITS[self.unit]
        ours = f"{self.ours_label} {fmt(self.ours_median)}{spread(self.ours, fmt)}"
        ref = f"{self.ref_label} {fmt(self.ref_median)}{spread(self.ref, fmt)}" if self.ref else "-"
        ratio = f"{self.ratio:.2f}" if self.ratio is not None else "-"
        target = f"{self.target.text}: {self.verdict}" if self.target else ""
        return [self.group, self.name, ours, ref, ratio, target]


def spread(values, fmt) -> str:
    if not values or len(values) < 2:
        return ""
    return f" ({fmt(min(values))} .. {fmt(max(values))})"


HEADERS = ["group", "figure", "ours: median (min .. max)", "reference", "ratio", "target"]


class Report:
    """Every figure, printed as it is measured and again as a table at the
    end (plain text, and Markdown for docs/performance.md)."""

    def __init__(self):
        self.figures: list = []
        self.problems: list = []
        # (what, value) lines about the machine, put above the table.
        self.machine: list = []

    def add(self, figure: Figure):
        self.figures.append(figure)
        group, name, ours, ref, ratio, target = figure.cells()
        line = f"  {name}: {ours}"
        if figure.ref:
            line += f" | {ref} | ratio {ratio}"
        if target:
            line += f" | {target}"
        if figure.note:
            line += f" | {figure.note}"
        print(line, flush=True)

    def problem(self, group: str, message: str):
        self.problems.append((group, message))
        print(f"  !! {group}: {message}", file=sys.stderr, flush=True)

    def markdown(self) -> str:
        rows = [HEADERS, ["---"] * len(HEADERS)]
        rows += [fig.cells() for fig in self.figures]
        text = "".join(f"- {what}: {value}\n" for what, value in self.machine)
        text += "\n" if text else ""
        text += "\n".join("| " + " | ".join(row) + " |" for row in rows)
        notes = [f"- {fig.group}, {fig.name}: {fig.note}" for fig in self.figures if fig.note]
        if notes:
            text += "\n\n" + "\n".join(notes)
        if self.problems:
            text += "\n\nNot measured:\n" + "\n".join(f"- {g}: {m}" for g, m in self.problems)
        return text + "\n"

    def plain(self) -> str:
        rows = [HEADERS] + [fig.cells() for fig in self.figures]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


@dataclass
class Settings:
    runs: int
    warmup: int
    datalinks: list
    chains: list
    workdir: Path
    report: Report = field(default_factory=Report)
    # tools group: substrings of the placements to measure (empty: all)
    placements: list = field(default_factory=list)
