"""``--devices``: which cells of a bench grid may run at once, and on what.

Entries are CUDA indices (``0`` → ``cuda:0``; ``cuda:N`` is accepted too) or ``cpu``, which may
repeat so the parallel path runs on a CPU-only machine. Each entry is one slot of the local Ray
session that :mod:`gemkit.runner.ray_grid` starts: one cell at a time per slot. The CPU threads are
split evenly: W slots on a machine where torch uses T threads get max(1, ⌊T / W⌋) each, so two CPU
cells on 2 cores use one thread each instead of four threads fighting over two cores.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from gemkit.errors import ConfigError


def parse_devices(entries: Sequence[str | int]) -> list[str]:
    """``["0", 1, "cpu"]`` → ``["cuda:0", "cuda:1", "cpu"]``; every bad entry reported at once."""
    problems, devices = [], []
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for entry in entries:
        text = str(entry).strip().lower()
        index_text = text.removeprefix("cuda:")
        if text == "cpu":
            devices.append("cpu")
        elif index_text.isdigit():
            index = int(index_text)
            if available == 0:
                problems.append(f"devices: {entry!r} is a CUDA device but torch sees no CUDA device here; "
                                "use cpu entries (e.g. --devices cpu,cpu) or run on a machine with GPUs")
            elif index >= available:
                problems.append(f"devices: {entry!r} is out of range: this machine has {available} CUDA "
                                f"device(s), indices 0-{available - 1}")
            devices.append(f"cuda:{index}")
        else:
            problems.append(f"devices: expected a CUDA index (0, 1, ...) or cpu, got {entry!r}")
    repeated = sorted({d for d in devices if d != "cpu" and devices.count(d) > 1})
    if repeated:
        problems.append(f"devices: {', '.join(repeated)} listed more than once; each worker takes a whole GPU, "
                        "so list every GPU once (only cpu may repeat)")
    if problems:
        raise ConfigError(problems)
    return devices


def threads_per_worker(workers: int, total: int | None = None) -> int:
    """max(1, ⌊T / W⌋) with T the parent's torch thread count."""
    total = total if total is not None else torch.get_num_threads()
    return max(1, total // max(1, workers))
