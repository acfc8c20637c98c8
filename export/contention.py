"""How much of the CPU other processes took while something was timed (the bench, the int8 choice).

Timings on a shared machine are only as good as the cores were free: PyTorch's OpenMP threads
wait for each other at every operator, so one core taken by another process can multiply a
small model's latency. The report states the share of the cores other processes kept busy:
system-wide busy CPU time minus this process's own (and its children's), over the wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


def _system_busy() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _own_busy() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class CpuShare:
    wall: float
    system: float
    own: float

    @classmethod
    def start(cls) -> CpuShare:
        return cls(time.monotonic(), _system_busy(), _own_busy())

    def others_cores(self) -> float:
        """Cores' worth of CPU other processes used on average since `start`."""
        wall = time.monotonic() - self.wall
        if wall <= 0:
            return 0.0
        others = (_system_busy() - self.system) - (_own_busy() - self.own)
        return max(0.0, others / wall)
