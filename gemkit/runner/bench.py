"""The bench grid: every method trained on the same data by the same engine, then evaluated alike.

Layout of ``OUT`` (each ``result.json`` is a :class:`gemkit.results.CellResult`; the report reads it
back with the same :func:`gemkit.results.load_cell`)::

    manifest.json                         versions, commit, hardware, config, per-cell wall time and memory
    cells/<cell_id>/result.json           one finished cell: ``ok``, or ``failed`` with its error
    cells/<cell_id>/items/<benchmark>.jsonl  per-item outputs
    cells/<cell_id>/train_log.jsonl       training metrics (TensorBoard events in train/tb)
    .work/<cell_id>/                      a cell in progress (renamed to cells/ in one step when done)
    report/                               tables, figures and HTML built from the cells

A cell id ends with a hash of its config, the training-data fingerprint and the code version, so
``--resume`` skips exactly the cells that finished with the same inputs (failed cells are tried
again). A cell only appears under
``cells/`` complete (one directory rename), so a killed run continues with nothing lost or
duplicated. The base model is one cell shared by every method.

The SFT model is a cell per (shots, seed), trained once (objective ``sft`` on the chosen
responses) and shared: it is planned when ``sft`` is a method, when ``include_sft`` is set, or
when a benchmark compares against it (mt-bench's ``baseline``, which is ``sft`` by default in a
bench run). Every other cell of the same (shots, seed) names it as ``baseline_cell`` (part of its
hash) and gives mt-bench that checkpoint as the baseline; it only starts once the SFT cell has
finished. With ``devices`` listed (or ``ray_address`` set), independent cells run in parallel as Ray
tasks (:mod:`gemkit.runner.ray_grid`); results equal the serial run's, since every cell seeds
itself and the driver alone writes ``cells/`` and the manifest.

The runner is three modules: :mod:`gemkit.runner.plan` (config, cells, hashes),
:mod:`gemkit.runner.cell` (one cell's training and evaluation) and this one (the grid loop,
resume, the manifest, reading results back).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from gemkit.data.readers import load_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.io import atomic_write_json
from gemkit.registry import registry
from gemkit.results import RESULT_FILE, CellResult, load_cell
from gemkit.runner.cell import execute_cell, failed_record, run_cell
from gemkit.runner.devices import parse_devices
from gemkit.runner.manifest import code_version, git_commit, hardware, package_versions
from gemkit.runner.plan import SFT, WORK, BenchConfig, Cell, data_fingerprint, plan_cells, trained_dependency
from gemkit.runner.ray_grid import Task, cluster_slots, local_slots, ray_session, run_on_ray

#: the runner's public names: the plan (:mod:`gemkit.runner.plan`), one cell (:mod:`gemkit.runner.cell`)
#: and this module's grid loop
__all__ = ["SFT", "WORK", "BenchConfig", "Cell", "check_training_lengths", "execute_cell", "failed_record",
           "plan_cells", "run_bench", "run_cell", "shared_cells", "summary_line",
           "trained_dependency"]


def _finish(work: Path, done: Path, record: CellResult) -> None:
    """result.json into the work directory, then the whole directory into cells/ in one rename."""
    record.save(work)
    if done.exists():  # left by an earlier attempt that died between rename and manifest: replace it
        shutil.rmtree(done)
    done.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, done)


def run_bench(config: BenchConfig, *, resume: bool = False, on_cell_done: Callable[[CellResult], None] | None = None,
              progress: bool = True) -> Path:
    """Run every cell of the grid (skipping finished ones with ``resume``) and write the manifest.

    ``on_cell_done(record)`` is called after each finished cell is on disk (tests use it to
    simulate a kill).
    """
    from tqdm.auto import tqdm

    config.validate()
    out = Path(config.out)
    if any((out / "cells").glob(f"*/{RESULT_FILE}")) and not resume:
        raise ConfigError(f"{out} already holds finished cells; pass --resume to continue it or choose another --out")
    pairs = load_pairs(config.train)
    if max(config.shots) > len(pairs):
        raise ConfigError(f"--shots {max(config.shots)} exceeds the {len(pairs)} pairs in {config.train}")
    cells = plan_cells(config, data_fingerprint(pairs))
    check_training_lengths(config, pairs, {cell.method for cell in cells})
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if resume and manifest_path.is_file() else {}
    packages = package_versions()
    manifest.update({"gemkit_version": packages["gemkit"], "git_commit": git_commit(), "code_version": code_version(),
                     "packages": packages, "hardware": hardware(), "config": asdict(config), "seeds": config.seeds,
                     "data_fingerprint": data_fingerprint(pairs), "planned": [c.cell_id for c in cells],
                     "started": manifest.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")), "finished": None})
    manifest["shared_cells"] = shared_cells(cells, config)
    manifest.setdefault("cells", {})
    atomic_write_json(manifest_path, manifest)
    bar = tqdm(total=len(cells), desc="bench", unit="cell", disable=not progress, dynamic_ncols=True)
    tasks = []
    for cell in cells:
        done = out / "cells" / cell.cell_id
        if (done / RESULT_FILE).is_file():
            previous = load_cell(done / RESULT_FILE)
            if previous.ok:
                bar.write(f"{cell.cell_id}: already finished, skipped")
                _record_in_manifest(manifest, previous)
                bar.update()
                continue
            # A failed cell is tried again: failures are often the machine's (memory, a missing file).
            bar.write(f"{cell.cell_id}: failed before ({previous.error}), trying again")
        work = out / WORK / cell.cell_id
        if work.exists() and not (work / "train" / "resume").exists():
            shutil.rmtree(work)  # a killed attempt with nothing to resume from: start the cell afresh
        work.mkdir(parents=True, exist_ok=True)
        tasks.append(Task(cell, work.resolve()))  # absolute: a Ray task's working directory may differ
    running: dict[str, str] = {}  # cell id -> "worker method shots seed", shown after the bar

    def started(task: Task, worker: str) -> None:
        cell = task.cell
        running[cell.cell_id] = f"{worker} {cell.method} shots={cell.shots} seed={cell.seed}".strip()
        bar.set_postfix_str(" | ".join(running.values()))

    def finished(task: Task, record: CellResult) -> None:
        """Parent only: the one rename into cells/, the manifest, the summary line."""
        _finish(task.work, out / "cells" / task.cell.cell_id, record)
        running.pop(task.cell.cell_id, None)
        bar.set_postfix_str(" | ".join(running.values()), refresh=False)
        _record_in_manifest(manifest, record)
        atomic_write_json(manifest_path, manifest)
        bar.update()
        bar.write(summary_line(record))
        if on_cell_done is not None:
            on_cell_done(record)

    devices = parse_devices(config.devices)
    if tasks and (len(devices) > 1 or config.ray_address):
        with ray_session(config.ray_address, devices, bar.write) as ray:
            cpus = int(ray.cluster_resources().get("CPU", 1))  # a reused session may hold fewer than torch uses
            slots = (local_slots(devices, total=min(torch.get_num_threads(), cpus)) if not config.ray_address else cluster_slots(
                len(tasks), device=config.device, cell_cpus=config.cell_cpus,
                cluster_gpus=ray.cluster_resources().get("GPU", 0)))
            # the tasks may run on other nodes: they get the run directory as an absolute path
            remote_config = replace(config, out=str(out.resolve()))
            run_on_ray(ray, tasks, slots, remote_config, pairs, on_start=started, on_done=finished,
                       ready=lambda task, unfinished: task.cell.baseline_cell not in unfinished,
                       on_crash=lambda task, message, wall_s: failed_record(task.cell, message, wall_s))
    else:
        serial = replace(config, device=devices[0], devices=[]) if devices else config
        for task in tasks:  # planned order: every SFT cell before the cells compared against it
            started(task, "")
            finished(task, execute_cell(task.cell, serial, pairs, task.work, progress=progress))
    bar.close()
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(manifest_path, manifest)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return out


def shared_cells(cells: list[Cell], config: BenchConfig) -> dict[str, Any]:
    """For the manifest: the cells every method shares, and which benchmarks compare against SFT."""
    return {"base": next((c.cell_id for c in cells if c.method == "base"), None),
            "sft": {f"shots={c.shots},seed={c.seed}": c.cell_id for c in cells if c.method == SFT},
            "sft_baseline_for": config.sft_baseline_benchmarks()}


def check_training_lengths(config: BenchConfig, pairs: list[PreferencePair], methods: set[str]) -> None:
    """Every record each planned method trains on fits ``max_length`` (:mod:`gemkit.data.lengths`),
    checked before the run directory is written, as ``gemkit train`` does.

    Only the tokenizer is loaded. A model only a plugin's ``load_model`` hook knows has no tokenizer
    to load here; its cells still run the same check when they train.
    """
    from gemkit.data.lengths import RESPONSES, check_lengths
    from gemkit.errors import ModelLoadError
    from gemkit.models.loader import load_tokenizer
    from gemkit.train import TrainConfig

    trained = {m for m in methods if m != "base"}
    trained |= {dep[1] for m in trained if (dep := trained_dependency(config, m))}
    if not trained:
        return
    try:
        tokenizer = load_tokenizer(config.model)
    except ModelLoadError:
        return
    subset = pairs[:max(config.shots)]
    defaults = TrainConfig()  # the cells train with these truncation and system-prompt defaults
    for responses in sorted({tuple(getattr(registry("objective").get(m).cls, "trained_responses", RESPONSES))
                             for m in trained}):
        check_lengths(subset, tokenizer, config.max_length, policy=defaults.truncation,
                      system=defaults.system_prompt, source=config.train, responses=responses)


def _record_in_manifest(manifest: dict[str, Any], record: CellResult) -> None:
    train = record.train
    manifest["cells"][record.cell_id] = {
        "method": record.method, "shots": record.shots, "seed": record.seed, "status": record.status,
        "wall_s": record.wall_s, "peak_mem_mb": record.peak_mem_mb, "device": record.device,
        "train_wall_s": train.wall_s if train else None, "train_peak_mem_mb": train.peak_mem_mb if train else None}


def summary_line(record: CellResult) -> str:
    """``dpo-s64-seed0-…: arithmetic 0.312, arithmetic-pref 0.703 (41s, 812 MB)`` or ``…: FAILED (…)``."""
    if not record.ok:
        return f"{record.cell_id}: FAILED ({record.error})"
    scores = ", ".join(f"{name} {b.score:.3f}" if b.ok else f"{name} FAILED" for name, b in record.benchmarks.items())
    return f"{record.cell_id}: {scores} ({record.wall_s or 0:.0f}s, {record.peak_mem_mb or 0:.0f} MB)"
