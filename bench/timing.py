"""Timing, peak-memory sampling and machine facts shared by the benchmark sections."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Return the fastest of ``repeats`` timed calls of ``fn`` in seconds, after ``warmup`` untimed calls.

    The minimum is the figure least disturbed by other processes on a shared machine.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def resident_bytes() -> int:
    """Return this process's resident memory in bytes (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


class PeakMemory:
    """Sample resident memory every ``interval`` seconds while the block runs.

    ``peak_bytes`` is the highest sample minus the resident memory on entry. Large tensors
    are allocated with ``mmap`` and returned to the system when freed, so resident memory
    follows them closely. A spike shorter than the interval can be missed, which makes the
    figure a lower bound.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._highest = max(self._highest, resident_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._baseline = resident_bytes()
        self._highest = self._baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._highest = max(self._highest, resident_bytes())
        self.peak_bytes = self._highest - self._baseline


def matmul_flops(size: int = 2048, repeats: int = 3) -> float:
    """Measure fp32 matrix-multiply FLOP/s with torch's current thread count."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    seconds = best_time(lambda: a @ b, repeats=repeats)
    return 2 * size**3 / seconds


def cpu_model() -> str:
    """Return the CPU model name from ``/proc/cpuinfo``, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages as text."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def mib(num_bytes: float) -> str:
    """Format a byte count in MiB."""
    return f"{num_bytes / 2**20:.0f}"
