"""What labctl adds to a run: not measured yet (labctl run)."""

from .common import BenchError


def bench(settings):
    raise BenchError("labctl run does not exist yet")
