"""Peak memory of one cell: the process's resident set on CPU, allocated tensors on CUDA.

``ru_maxrss`` is a high-water mark for the whole process, so after the first cell it would repeat
the largest cell so far; a sampling thread measures each cell on its own instead.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
from typing import Any

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_mb() -> float:
    """Resident set size now (Linux ``/proc``; elsewhere the process's high-water mark)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.cpu_mb`` and ``peak.cuda_mb`` (None without CUDA).

    ``device`` names the GPU to measure (``cuda:1``); otherwise torch's current CUDA device, which
    is ``cuda:0`` unless set, so a cell on another GPU must name it.
    """

    def __init__(self, interval_s: float = 0.1, device: str | None = None):
        self.interval_s = interval_s
        self.device = device if device and device.startswith("cuda") else None
        self.cpu_mb = 0.0
        self.cuda_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.cpu_mb = max(self.cpu_mb, current_rss_mb())

    def __enter__(self) -> PeakMemory:
        self.cpu_mb = current_rss_mb()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._sample, name="gemkit-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.cpu_mb = round(max(self.cpu_mb, current_rss_mb()), 1)
        if torch.cuda.is_available():
            self.cuda_mb = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

    @property
    def peak_mb(self) -> float:
        """The figure a reader cares about: GPU memory on CUDA, resident memory on CPU."""
        return self.cuda_mb if self.cuda_mb is not None else self.cpu_mb
