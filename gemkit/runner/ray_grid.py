"""Bench cells as Ray tasks: on a local Ray session started here (``--devices``) or on an existing
cluster (``--ray-address``).

Each cell is one Ray task holding its resources for the cell's whole run: one GPU, or the CPUs
whose threads it uses. The driver (the ``gemkit bench`` process) hands out cells as they become
ready, receives each finished cell's record and does everything that touches shared state itself
(the rename into ``cells/``, the manifest, the summary line, the progress bar), so the grid's
guarantees do not depend on where a task ran. Ray's worker processes are started fresh by Ray,
never forked from the driver, so no torch/OpenMP thread pool or CUDA state is inherited. A worker
that dies (killed for memory, a segfault) costs only its cell: Ray reports the crash, the cell is
recorded as failed, and Ray starts a fresh worker for the next one. Tasks are never retried by
Ray (``max_retries=0``): a retry would run a half-written cell again behind the driver's back;
``gemkit bench --resume`` is the retry.

Local session (no address): one slot per ``--devices`` entry. A ``cpu`` slot asks for
max(1, ⌊T / W⌋) CPUs (:func:`gemkit.runner.devices.threads_per_worker`) and its cell uses that many
torch threads; a GPU slot asks for one GPU (Ray sets ``CUDA_VISIBLE_DEVICES`` for the task, so the
cell sees it as ``cuda:0``) and one CPU. The session gets exactly the slots' resources, only the
GPUs listed, no dashboard and a small object store (the cells pass only configs, pairs and records).

Cluster (``ray_address``): every cell asks for one GPU when the cluster has GPUs and ``device``
is not ``cpu``, else ``cell_cpus`` CPUs; all ready cells are submitted and Ray queues them. The run
directory must be on storage every node mounts at the same path (docs/reliability.md).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gemkit.errors import GemkitError
from gemkit.results import CellResult
from gemkit.runner.devices import threads_per_worker

#: bytes for the local session's object store; Ray's floor is 75 MiB and the cells pass only
#: small objects, so the default (30% of RAM) would only take memory from the cells
OBJECT_STORE_BYTES = 80 * 2**20


class RayMissingError(GemkitError):
    """``ray`` is not importable but the run asked for parallel cells or a cluster."""


@dataclass
class Task:
    """One cell for a Ray task: what ``execute_cell`` needs besides the shared config and pairs."""

    cell: Any
    work: Path


@dataclass(frozen=True)
class Slot:
    """Where one cell runs: its Ray resource request, the device it trains on and its torch threads."""

    label: str
    device: str
    num_cpus: float
    num_gpus: float
    threads: int


def local_slots(devices: list[str], total: int | None = None) -> list[Slot]:
    """One slot per parsed ``--devices`` entry (``cpu`` or ``cuda:N``); repeated entries are numbered.

    ``total`` is the number of threads to share out (default: torch's thread count here).
    """
    threads = threads_per_worker(len(devices), total)
    slots = []
    for i, device in enumerate(devices):
        label = f"{device}#{i}" if devices.count(device) > 1 else device
        if device == "cpu":
            slots.append(Slot(label, "cpu", num_cpus=threads, num_gpus=0, threads=threads))
        else:  # Ray hands the task one of the session's GPUs as its only visible device
            slots.append(Slot(label, "cuda:0", num_cpus=1, num_gpus=1, threads=threads))
    return slots


def cluster_slots(count: int, *, device: str, cell_cpus: int, cluster_gpus: float) -> list[Slot]:
    """``count`` identical slots (one per cell, Ray queues them): a GPU each when the cluster has one."""
    if cluster_gpus >= 1 and device != "cpu":
        slot = Slot("ray-gpu", "cuda:0", num_cpus=1, num_gpus=1, threads=cell_cpus)
    else:
        slot = Slot("ray-cpu", "cpu", num_cpus=cell_cpus, num_gpus=0, threads=cell_cpus)
    return [slot] * count


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayMissingError(f"parallel bench cells run on Ray, which is not importable here ({exc}); "
                              "install it with `pip install ray` or run without --devices/--ray-address") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, devices: list[str], log: Callable[[str], None]) -> Iterator[Any]:
    """Connect to ``address`` or start a local session sized to ``devices``; shut down only what was started here.

    A session already open in this process (a notebook, a test fixture) is used as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        log(f"bench: using the Ray session already open in this process ({_describe(ray)})")
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=True)
        log(f"bench: connected to the Ray cluster at {address} ({_describe(ray)})")
    else:
        slots = local_slots(devices)
        gpus = [d.removeprefix("cuda:") for d in devices if d.startswith("cuda")]
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        # the local session sees only the listed GPUs, so Ray never places a cell on another one
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        try:
            start_local_ray(int(sum(s.num_cpus for s in slots)), len(gpus), log)
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        log(f"bench: started a local Ray session for {len(devices)} cells at a time ({_describe(ray)})")
    try:
        yield ray
    finally:
        ray.shutdown()


def start_local_ray(num_cpus: int, num_gpus: int, log: Callable[[str], None] = print) -> Any:
    """``ray.init`` of a small local session: no dashboard, an 80 MiB object store.

    Ray gives its raylet a fixed 30 s to register; on a loaded machine (other jobs on the same
    cores) that can pass, so one timed-out start is retried once before the error stands.
    """
    ray = import_ray()
    options = dict(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                   object_store_memory=OBJECT_STORE_BYTES, log_to_driver=True)
    try:
        return ray.init(**options)
    except Exception as exc:  # Ray raises a bare Exception for this case
        if "timed out during startup" not in str(exc):
            raise
    ray.shutdown()
    log("bench: the local Ray session did not start within Ray's 30 s (a loaded machine?); trying again")
    return ray.init(**options)


def _describe(ray: Any) -> str:
    resources = ray.cluster_resources()
    return (f"address {ray.get_runtime_context().gcs_address}, {resources.get('CPU', 0):g} CPUs, "
            f"{resources.get('GPU', 0):g} GPUs")


def _run_cell_task(cell: Any, config: Any, pairs: list, work: Path, device: str, threads: int) -> CellResult:
    """Body of one Ray task: the cell on ``device`` with ``threads`` torch threads, as its record."""
    import torch

    from gemkit.runner.cell import execute_cell

    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        # the current device is what peak-memory statistics and stray allocations default to
        torch.cuda.set_device(device)
    config = replace(config, device=device, devices=[], ray_address=None)
    return execute_cell(cell, config, pairs, work, progress=False)


def run_on_ray(ray: Any, tasks: list[Task], slots: list[Slot], config: Any, pairs: list, *,
               ready: Callable[[Task, set[str]], bool],
               on_start: Callable[[Task, str], None],
               on_done: Callable[[Task, CellResult], None],
               on_crash: Callable[[Task, str, float], CellResult],
               run_cell: Callable[..., CellResult] = _run_cell_task) -> None:
    """Run ``tasks`` as Ray tasks, at most one per slot at a time, until all are done.

    ``ready(task, unfinished_ids)`` says whether a task may start while the cells in
    ``unfinished_ids`` are still to finish (a cell that needs the SFT checkpoint waits for it).
    ``on_start(task, label)`` names the slot; ``on_done(task, record)`` runs here for every finished
    cell, in finishing order; ``on_crash(task, message, wall_s)`` makes the failed record of a cell
    whose Ray task died. ``run_cell`` is the task body (tests pass one that kills its worker). An
    exception from a callback cancels the running tasks before it propagates.
    """
    remote = ray.remote(max_retries=0)(run_cell)
    config_ref, pairs_ref = ray.put(config), ray.put(pairs)
    free = list(range(len(slots)))
    waiting = list(tasks)
    unfinished = {t.cell.cell_id for t in tasks}
    running: dict[Any, tuple[Task, int, float]] = {}
    try:
        while unfinished:
            while free:
                task = next((t for t in waiting if ready(t, unfinished)), None)
                if task is None:
                    break
                waiting.remove(task)
                index = free.pop(0)
                slot = slots[index]
                ref = remote.options(num_cpus=slot.num_cpus, num_gpus=slot.num_gpus, name=task.cell.cell_id).remote(
                    task.cell, config_ref, pairs_ref, task.work, slot.device, slot.threads)
                running[ref] = (task, index, time.perf_counter())
                on_start(task, slot.label)
            if not running:  # nothing running and nothing may start
                raise RuntimeError(f"bench scheduler stalled: {[t.cell.cell_id for t in waiting]} wait on each other")
            (ref,), _ = ray.wait(list(running), num_returns=1)
            task, index, started = running.pop(ref)
            free.append(index)
            free.sort()  # lowest slot first, so the labels a run shows are stable
            try:
                record = ray.get(ref)
            except ray.exceptions.RayError as exc:
                record = on_crash(task, f"the Ray task running this cell died ({type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0]}; killed for memory?)", time.perf_counter() - started)
            unfinished.discard(task.cell.cell_id)
            on_done(task, record)
    finally:
        for ref in running:  # only after an error: the cells still running are abandoned, not waited for
            ray.cancel(ref, force=True)
