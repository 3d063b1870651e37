"""The bench grid: every method trained on the same data by the same engine, then evaluated alike.

Layout of ``OUT`` (read back by :mod:`gemkit.report.schema`)::

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
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from gemkit.components import component_problems
from gemkit.data.readers import load_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, GemkitError
from gemkit.io import atomic_write_json, read_jsonl
from gemkit.registry import registry
from gemkit.runner.devices import parse_devices
from gemkit.runner.manifest import code_version, git_commit, hardware, package_versions
from gemkit.runner.ray_grid import Task, cluster_slots, local_slots, ray_session, run_on_ray
from gemkit.runner.resources import PeakMemory

#: steps and records per step unless the objective declares its own (``bench_steps``,
#: ``bench_batch_size`` on :class:`gemkit.train.Objective`): 32 steps of 4 records, two passes over the
#: 64 default pairs. Sized so the embedded default finishes in under 15 minutes on a 2-core CPU and a
#: label-trained method moves the held-out columns (docs/metrics.md, "The default task").
DEFAULT_STEPS = 32
DEFAULT_BATCH = 4
WORK = ".work"
SFT = "sft"


def objective_class(method: str) -> Any:
    return registry("objective").get(method).cls


def trained_dependency(config: BenchConfig, method: str) -> tuple[str, str] | None:
    """(option, objective) when ``method``'s cell first trains another objective (rm-ppo without a
    ``reward_model``: an ``rm``) on the same pairs; None otherwise."""
    dependency = getattr(objective_class(method), "trained_dependency", None)
    if dependency and not config.method_options.get(method, {}).get(dependency[0]):
        return dependency
    return None


@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: ["sega", "dpo"], metadata={"help": "Objectives to compare."})
    benchmarks: list[str] = field(default_factory=lambda: ["arithmetic", "arithmetic-pref", "scorer-diagnostics"],
                                  metadata={"help": "Benchmark plugins to evaluate every model on."})
    model: str = field(default="smollm2-135m", metadata={"help": "Base model for every method."})
    train: str = field(default="builtin:arithmetic?level=1", metadata={
        "help": "Training pairs: a file or builtin:arithmetic[?level=1|2] (default: the one-step level, docs/metrics.md)."})
    shots: list[int] = field(default_factory=lambda: [64], metadata={"help": "Training-set sizes (pairs)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds; one cell per seed."})
    out: str = field(default="runs/bench", metadata={"help": "Run directory."})
    steps: int | None = field(default=None, metadata={"help": "Optimiser steps per method (default: 32; sega 12)."})
    batch_size: int | None = field(default=None, metadata={"help": "Pairs (or prompts) per step (default 4; sega 2)."})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate for every method."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (0: full fine-tuning)."})
    max_length: int = field(default=384, metadata={"help": "Max prompt+response tokens."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N."})
    limit: int | None = field(default=None, metadata={"help": "Items per benchmark (default: each benchmark's own)."})
    eval_batch_size: int = field(default=32, metadata={
        "help": "Items per evaluation batch (32 generates twice as fast as 8 on a 2-core CPU)."})
    scorer: str | None = field(default=None, metadata={"help": "Scorer for sega (default entropy)."})
    include_base: bool = field(default=True, metadata={"help": "Also evaluate the untrained base model."})
    include_sft: bool = field(default=True, metadata={
        "help": "Also train sft on the chosen responses once per (shots, seed) and evaluate it as its own row "
                "(implied when sft is a method or a benchmark's baseline is sft). On by default: the row that "
                "shows what plain supervised training on the same labels does."})
    devices: list[str | int] = field(default_factory=list, metadata={
        "help": "Run independent cells in parallel on a local Ray session, one cell at a time per entry: CUDA "
                "indices (0,1) or cpu (may repeat). Empty: one cell at a time on --device."})
    ray_address: str | None = field(default=None, metadata={
        "help": "Run the cells as tasks on an existing Ray cluster (e.g. auto or ray://head:10001); the run "
                "directory must be on storage every node mounts at the same path."})
    cell_cpus: int = field(default=1, metadata={
        "help": "With ray_address on a cluster without GPUs: CPUs (and torch threads) each cell asks for."})
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                      metadata={"help": "Objective options per method."})
    benchmark_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                         metadata={"help": "Options per benchmark."})

    def validate(self) -> None:
        """Resolve every name and option before any model loads; report all problems at once."""
        problems = []
        if not self.methods:
            problems.append("no methods given; e.g. --methods sega,dpo")
        for name in self.methods:  # an option the cell fills in itself (rm-ppo's reward_model) may be missing
            try:
                options = self._method_options(name)
            except GemkitError as exc:  # an unknown method name, with its did-you-mean
                problems.append(str(exc))
                continue
            problems += component_problems("objective", name, options,
                                           lambda p, name=name: bool((dependency := trained_dependency(self, name))
                                                                     and f"needs {dependency[0]}" in p))
        for name in self.benchmarks:
            try:
                registry("benchmark").get(name).make_config(self._benchmark_options(name))
            except GemkitError as exc:
                problems.append(str(exc))
        # Options for a component this run does not select are fine (a shared YAML narrowed by a
        # flag), but a key that names no component at all is a typo.
        for key, kind, options in (("method_options", "objective", self.method_options),
                                   ("benchmark_options", "benchmark", self.benchmark_options)):
            for name in options:
                try:
                    registry(kind).get(name)
                except GemkitError as exc:
                    problems.append(f"{key}: {exc}")
        if not self.shots or any(s < 1 for s in self.shots):
            problems.append(f"shots must be >= 1, got {self.shots}")
        if not self.seeds:
            problems.append("seeds must name at least one seed, e.g. [1, 2, 3]")
        if self.eval_batch_size < 1:
            problems.append(f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if self.devices:
            try:
                parse_devices(self.devices)
            except ConfigError as exc:
                problems += exc.problems
            if self.device != "auto":
                problems.append(f"devices {self.devices} and device {self.device!r} both given: devices places "
                                "every worker itself; drop device (or set it to auto)")
            if self.ray_address:
                problems.append(f"devices {self.devices} and ray_address {self.ray_address!r} both given: devices "
                                "starts a local Ray session, the cluster places cells itself; drop one")
        if self.cell_cpus < 1:
            problems.append(f"cell_cpus must be >= 1, got {self.cell_cpus}")
        if problems:
            raise ConfigError(problems)

    def _method_options(self, method: str) -> dict[str, Any]:
        cls = objective_class(method)
        options = {**getattr(cls, "bench_options", {}), **self.method_options.get(method, {})}
        scorer_option = getattr(cls, "scorer_option", None)
        if self.scorer and scorer_option:
            options[scorer_option] = self.scorer
        return options

    def _benchmark_options(self, name: str) -> dict[str, Any]:
        options = dict(self.benchmark_options.get(name, {}))
        if self.limit is not None:
            options["limit"] = self.limit
        if getattr(registry("benchmark").get(name).cls, "compares_with_sft", False):
            options.setdefault("baseline", SFT)
        return options

    def sft_baseline_benchmarks(self) -> list[str]:
        """Benchmarks compared against the SFT model of the same (shots, seed)."""
        return [name for name in self.benchmarks if self._benchmark_options(name).get("baseline") == SFT]

    def needs_sft(self) -> bool:
        return SFT in self.methods or self.include_sft or bool(self.sft_baseline_benchmarks())


@dataclass
class Cell:
    method: str
    shots: int
    seed: int
    config: dict[str, Any]

    @property
    def baseline_cell(self) -> str | None:
        """The SFT cell whose checkpoint this cell's mt-bench compares against (None: no such benchmark)."""
        return self.config.get("baseline_cell")

    @property
    def cell_id(self) -> str:
        """Readable prefix plus a content hash of everything that determines the cell's result."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.method}-s{self.shots}-seed{self.seed}-{digest[:10]}"


def data_fingerprint(pairs: list[PreferencePair]) -> str:
    h = hashlib.sha256()
    for pair in pairs:
        h.update(json.dumps([pair.id, pair.prompt, pair.chosen, pair.rejected], default=str).encode())
    return h.hexdigest()[:16]


def plan_cells(config: BenchConfig, fingerprint: str) -> list[Cell]:
    """The base cell (shared by every method), the SFT cells (when needed), then method × shots × seed.

    The SFT cells come first so that, run in order, each is finished before the cells that
    compare against it.
    """
    shared = {"model": config.model, "benchmarks": {b: config._benchmark_options(b) for b in config.benchmarks},
              "code": code_version(), "max_length": config.max_length}
    cells = []
    if config.include_base:  # untrained: its result does not depend on the training data
        cells.append(Cell("base", 0, 0, {**shared, "method": "base"}))

    def trained(method: str, shots: int, seed: int, extra: dict[str, Any]) -> Cell:
        return Cell(method, shots, seed, {
            **shared, "data": fingerprint, "method": method, "shots": shots, "seed": seed,
            "steps": config.steps or getattr(objective_class(method), "bench_steps", None) or DEFAULT_STEPS,
            "batch_size": config.batch_size or getattr(objective_class(method), "bench_batch_size", None) or DEFAULT_BATCH,
            "lr": config.lr,
            "lora_r": config.lora_r, "options": config._method_options(method), **extra})

    sft_cells = {}
    if config.needs_sft():
        for shots in config.shots:
            for seed in config.seeds:
                sft_cells[shots, seed] = trained(SFT, shots, seed, {})
        cells += sft_cells.values()
    compares_with_sft = bool(config.sft_baseline_benchmarks())
    for method in config.methods:
        if method == SFT:
            continue
        for shots in config.shots:
            for seed in config.seeds:
                extra = {"baseline_cell": sft_cells[shots, seed].cell_id} if compares_with_sft else {}
                cells.append(trained(method, shots, seed, extra))
    return cells


def _sft_checkpoint(cell: Cell, config: BenchConfig, own_checkpoint: Path | None) -> Path:
    """The SFT checkpoint ``cell`` is compared against: its own for the SFT cell, else its baseline cell's."""
    if cell.method == "base":
        raise ConfigError("baseline=sft compares each trained model with the SFT model of its (shots, seed); the "
                          "base cell is shared by all of them, so it has none. Set the benchmark's baseline to a "
                          "checkpoint to compare the base model with it")
    if cell.method == SFT:
        assert own_checkpoint is not None
        return own_checkpoint
    path = Path(config.out) / "cells" / str(cell.baseline_cell) / "train" / "checkpoint"
    if not (path / "gemkit.json").is_file():
        raise ConfigError(f"baseline=sft: the SFT cell {cell.baseline_cell} did not finish with a checkpoint "
                          f"(expected {path}); see its result.json")
    return path


def run_cell(cell: Cell, config: BenchConfig, pairs: list[PreferencePair], cell_dir: Path, *,
             progress: bool = True) -> dict[str, Any]:
    """Train (unless base), evaluate on every benchmark, return the ``result.json`` record.

    A benchmark whose baseline is ``sft`` gets the SFT checkpoint of the same (shots, seed) (see
    :func:`_sft_checkpoint`); the record's ``baselines`` says which cell that was.

    A failing benchmark is recorded in its own entry and the others still run; an exception in
    training propagates to :func:`execute_cell`, which records the whole cell as failed.
    """
    from gemkit.evaluation import evaluate
    from gemkit.models import LoraSpec, ModelSpec, load_model
    from gemkit.train import TrainConfig, load_trained, train

    started = time.perf_counter()
    train_info, checkpoint = None, None
    with PeakMemory(device=config.device) as peak:
        if cell.method == "base":
            bundle = load_model(ModelSpec(name=config.model, device=config.device))
        else:
            subset = pairs[:cell.shots]
            common = dict(model=config.model, max_steps=cell.config["steps"], batch_size=cell.config["batch_size"],
                          lr=config.lr, seed=cell.seed, device=config.device, max_length=config.max_length,
                          lora=LoraSpec(r=config.lora_r), tensorboard=True)
            options = dict(cell.config["options"])
            reward_model = None
            dependency = trained_dependency(config, cell.method)
            if dependency:  # e.g. RM + PPO: the reward model is part of the method
                option, objective = dependency
                rm = train(TrainConfig(method=objective, out=str(cell_dir / objective),
                                       objective=config.method_options.get(objective, {}), **common),
                           subset, resume=(cell_dir / objective / "resume").exists(), progress=progress)
                options[option] = str(rm.checkpoint)
                reward_model = {"objective": objective, "wall_s": round(rm.wall_s, 2), "steps": rm.steps,
                                "log": f"{objective}/train_log.jsonl"}
            train_cfg = TrainConfig(method=cell.method, out=str(cell_dir / "train"), objective=options, **common)
            result = train(train_cfg, subset, resume=(cell_dir / "train" / "resume").exists(), progress=progress)
            shutil.copyfile(result.log_path, cell_dir / "train_log.jsonl")
            train_info = {"wall_s": round(result.wall_s, 2), "steps": result.steps, "log": "train_log.jsonl",
                          "skipped_batches": result.skipped_batches, "peak_mem_mb": peak.peak_mb,
                          "tensorboard": "train/tb", "reward_model": reward_model}
            checkpoint = result.checkpoint
            bundle = load_trained(checkpoint, device=config.device)
    if train_info is not None:
        train_info["peak_mem_mb"] = peak.peak_mb  # the training part only
    benchmarks: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    with PeakMemory(device=config.device) as eval_peak:
        for name in config.benchmarks:
            try:
                options = config._benchmark_options(name)
                if options.get("baseline") == SFT:
                    options["baseline"] = str(_sft_checkpoint(cell, config, checkpoint))
                    baselines[name] = {"model": SFT, "cell_id": cell.cell_id if cell.method == SFT else cell.baseline_cell}
                outcome = evaluate(name, bundle, options=options, out_dir=cell_dir / "eval" / name, seed=cell.seed,
                                   batch_size=config.eval_batch_size, progress=progress)
                items = cell_dir / "items" / f"{name}.jsonl"
                items.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cell_dir / "eval" / name / "items.jsonl", items)
                benchmarks[name] = {**outcome.to_dict(), "error": None, "items": f"items/{name}.jsonl"}
                if name in baselines:  # name the cell, not a path that moves when the cell is renamed
                    benchmarks[name]["conventions"]["baseline"] = f"sft (cell {baselines[name]['cell_id']})"
            except Exception as exc:  # one failing benchmark (or plugin) must not sink the others
                benchmarks[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                    "traceback": traceback.format_exc(limit=8)}
    return {"cell_id": cell.cell_id, "method": cell.method, "shots": cell.shots, "seed": cell.seed, "status": "ok",
            "error": None, "train": train_info, "benchmarks": benchmarks, "baselines": baselines,
            "config": cell.config, "device": str(bundle.device),
            "wall_s": round(time.perf_counter() - started, 2), "peak_mem_mb": max(peak.peak_mb, eval_peak.peak_mb)}


def failed_record(cell: Cell, error: str, wall_s: float, tb: str | None = None) -> dict[str, Any]:
    return {"cell_id": cell.cell_id, "method": cell.method, "shots": cell.shots, "seed": cell.seed,
            "status": "failed", "error": error, "train": None, "benchmarks": {}, "config": cell.config,
            "traceback": tb, "wall_s": round(wall_s, 2), "peak_mem_mb": None}


def execute_cell(cell: Cell, config: BenchConfig, pairs: list[PreferencePair], work: Path, *,
                 progress: bool = True) -> dict[str, Any]:
    """:func:`run_cell`, with an exception turned into the cell's failed record (the grid goes on)."""
    started = time.perf_counter()
    try:
        return run_cell(cell, config, pairs, work, progress=progress)
    except Exception as exc:
        return failed_record(cell, f"{type(exc).__name__}: {exc}", time.perf_counter() - started,
                             traceback.format_exc(limit=8))


def _finish(work: Path, done: Path, record: dict[str, Any]) -> None:
    """result.json into the work directory, then the whole directory into cells/ in one rename."""
    atomic_write_json(work / "result.json", record)
    if done.exists():  # left by an earlier attempt that died between rename and manifest: replace it
        shutil.rmtree(done)
    done.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, done)


def run_bench(config: BenchConfig, *, resume: bool = False, on_cell_done: Callable[[dict[str, Any]], None] | None = None,
              progress: bool = True) -> Path:
    """Run every cell of the grid (skipping finished ones with ``resume``) and write the manifest.

    ``on_cell_done(record)`` is called after each finished cell is on disk (tests use it to
    simulate a kill).
    """
    from tqdm.auto import tqdm

    config.validate()
    out = Path(config.out)
    if any((out / "cells").glob("*/result.json")) and not resume:
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
        if (done / "result.json").is_file():
            previous = json.loads((done / "result.json").read_text())
            if previous.get("status") == "ok":
                bar.write(f"{cell.cell_id}: already finished, skipped")
                _record_in_manifest(manifest, previous)
                bar.update()
                continue
            # A failed cell is tried again: failures are often the machine's (memory, a missing file).
            bar.write(f"{cell.cell_id}: failed before ({previous.get('error')}), trying again")
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

    def finished(task: Task, record: dict[str, Any]) -> None:
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


def _record_in_manifest(manifest: dict[str, Any], record: dict[str, Any]) -> None:
    manifest["cells"][record["cell_id"]] = {
        "method": record["method"], "shots": record["shots"], "seed": record["seed"], "status": record["status"],
        "wall_s": record.get("wall_s"), "peak_mem_mb": record.get("peak_mem_mb"), "device": record.get("device"),
        "train_wall_s": (record.get("train") or {}).get("wall_s"),
        "train_peak_mem_mb": (record.get("train") or {}).get("peak_mem_mb")}


def summary_line(record: dict[str, Any]) -> str:
    """``dpo-s64-seed0-…: arithmetic 0.312, arithmetic-pref 0.703 (41s, 812 MB)`` or ``…: FAILED (…)``."""
    if record["status"] != "ok":
        return f"{record['cell_id']}: FAILED ({record['error']})"
    scores = ", ".join(f"{name} {b['metrics'][b['primary']]:.3f}" if b.get("status") == "ok" else f"{name} FAILED"
                       for name, b in record["benchmarks"].items())
    return f"{record['cell_id']}: {scores} ({record.get('wall_s') or 0:.0f}s, {record.get('peak_mem_mb') or 0:.0f} MB)"


def load_cells(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished cell record of a run as plain dicts, in a stable order."""
    return [json.loads(p.read_text()) for p in sorted(Path(run_dir).glob("cells/*/result.json"))]


def read_items(run_dir: str | Path, record: dict[str, Any], benchmark: str) -> list[dict[str, Any]]:
    return list(read_jsonl(Path(run_dir) / "cells" / record["cell_id"] / "items" / f"{benchmark}.jsonl"))
