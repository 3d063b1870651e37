"""Independent bench cells in parallel: one spawned worker process per entry of ``--devices``.

Each worker holds one device for its whole life and runs one cell at a time; the parent hands out
cells, receives each finished cell's record and does everything that touches shared state (the
rename into ``cells/``, the manifest, the summary line, the progress bar). Workers are *spawned*,
never forked: a forked child inherits the parent's torch/OpenMP thread pools and CUDA state, which
deadlocks or corrupts. A worker that dies (killed for memory, a segfault) costs only its cell: the
cell is recorded as failed and a fresh worker takes the device.

Entries are CUDA indices (``0`` → ``cuda:0``; ``cuda:N`` is accepted too) or ``cpu``, which may
repeat so the parallel path runs on a CPU-only machine. The CPU threads are split evenly: W
workers on a machine where torch uses T threads get max(1, ⌊T / W⌋) each, so two CPU workers on
2 cores use one thread each instead of four threads fighting over two cores.
"""
from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gemkit.errors import ConfigError

#: how often the parent checks that busy workers are still alive while it waits for a result
POLL_S = 1.0


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


@dataclass
class Task:
    """One cell for a worker: what ``execute`` needs, all picklable."""

    cell: Any
    work: Path


def _worker_main(device: str, threads: int, config: Any, pairs: list, tasks: Any, results: Any) -> None:
    """Loop of one worker process: take a task, run it on ``device``, send back (cell_id, record)."""
    from gemkit.runner.bench import execute_cell

    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        # the current device is what peak-memory statistics and stray allocations default to
        torch.cuda.set_device(device)
    config = replace(config, device=device, devices=[])
    while True:
        task = tasks.get()
        if task is None:
            return
        record = execute_cell(task.cell, config, pairs, task.work, progress=False)
        results.put((task.cell.cell_id, record))


class _Worker:
    def __init__(self, ctx: Any, device: str, label: str, threads: int, config: Any, pairs: list, results: Any):
        self.device, self.label = device, label
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=_worker_main, args=(device, threads, config, pairs, self.tasks, results),
                                   name=f"gemkit-bench-{device}", daemon=True)
        self.process.start()
        self.task: Task | None = None
        self.started = 0.0

    def give(self, task: Task) -> None:
        self.task, self.started = task, time.perf_counter()
        self.tasks.put(task)

    def stop(self, *, force: bool) -> None:
        if force:
            self.process.terminate()
        else:
            self.tasks.put(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def run_parallel(tasks: list[Task], devices: list[str], config: Any, pairs: list, *,
                 ready: Callable[[Task, set[str]], bool],
                 on_start: Callable[[Task, str], None],
                 on_done: Callable[[Task, dict[str, Any]], None],
                 on_crash: Callable[[Task, str, float], dict[str, Any]]) -> None:
    """Run ``tasks`` on one worker per device until all are done.

    ``on_start(task, label)`` names the worker (its device, numbered when repeated: ``cpu#1``).
    ``ready(task, unfinished_ids)`` says whether a task may start while the cells in
    ``unfinished_ids`` are still to finish (a cell that needs the SFT checkpoint waits for it).
    ``on_done(task, record)`` runs in this process for every finished cell, in finishing order;
    ``on_crash(task, message, wall_s)`` makes the failed record of a cell whose worker died. An
    exception from a callback stops every worker before it propagates.
    """
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    threads = threads_per_worker(len(devices))
    # a repeated device (cpu, cpu) gets a numbered label, so progress can tell its workers apart
    labels = [f"{d}#{i}" if devices.count(d) > 1 else d for i, d in enumerate(devices)]
    workers = [_Worker(ctx, d, label, threads, config, pairs, results) for d, label in zip(devices, labels, strict=True)]
    waiting = list(tasks)
    unfinished = {t.cell.cell_id for t in tasks}
    clean = False
    try:
        while unfinished:
            for worker in workers:
                if worker.task is None:
                    task = next((t for t in waiting if ready(t, unfinished)), None)
                    if task is not None:
                        waiting.remove(task)
                        worker.give(task)
                        on_start(task, worker.label)
            if all(w.task is None for w in workers):  # nothing running and nothing may start
                raise RuntimeError(f"bench scheduler stalled: {[t.cell.cell_id for t in waiting]} wait on each other")
            try:
                cell_id, record = results.get(timeout=POLL_S)
            except queue.Empty:
                for i, worker in enumerate(workers):
                    if worker.task is not None and not worker.process.is_alive():
                        task, wall = worker.task, time.perf_counter() - worker.started
                        message = (f"the worker process on {worker.device} exited with code "
                                   f"{worker.process.exitcode} while running this cell (killed for memory?)")
                        worker.task = None
                        if waiting:  # a fresh worker takes the device for the cells still to run
                            workers[i] = _Worker(ctx, worker.device, worker.label, threads, config, pairs, results)
                        unfinished.discard(task.cell.cell_id)
                        on_done(task, on_crash(task, message, wall))
                continue
            worker = next(w for w in workers if w.task is not None and w.task.cell.cell_id == cell_id)
            task, worker.task = worker.task, None
            unfinished.discard(cell_id)
            on_done(task, record)
        clean = True
    finally:
        for worker in workers:
            worker.stop(force=not clean)
