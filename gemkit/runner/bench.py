"""The bench grid: every method trained on the same data by the same engine, then evaluated alike.

Layout of ``OUT``::

    manifest.json                       versions, commit, hardware, config, per-cell wall time and memory
    cells/<hash>/result.json            one finished cell (written last and atomically: it marks completion)
    cells/<hash>/items/<benchmark>.jsonl per-item outputs
    cells/<hash>/train_log.jsonl        the training metrics
    report/                             tables, figures and HTML built from the cells

A cell's hash covers its config, the training-data fingerprint and the code version, so ``--resume``
skips exactly the cells that already finished with the same inputs, and a killed run continues
with nothing lost or duplicated. The base model is one cell shared by every method.
"""
from __future__ import annotations

import hashlib
import json
import resource
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from gemkit.data.readers import load_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, GemkitError
from gemkit.evaluation import evaluate
from gemkit.io import atomic_write_json, read_jsonl
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.registry import registry
from gemkit.runner.manifest import code_version, git_commit, hardware, package_versions
from gemkit.train import TrainConfig, load_trained, train

#: steps and records per step where a method differs from the defaults (16 steps of 4 records):
#: a SEGA step samples k candidates for each prompt, so it takes 2 prompts (8 candidates) per step.
#: Sized so the embedded default finishes in under 15 minutes on a 2-core CPU.
DEFAULT_STEPS = {"sega": 12}
DEFAULT_BATCH = {"sega": 2}


@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: ["sega", "dpo"], metadata={"help": "Objectives to compare."})
    benchmarks: list[str] = field(default_factory=lambda: ["arithmetic", "arithmetic-pref"],
                                  metadata={"help": "Benchmark plugins to evaluate every model on."})
    model: str = field(default="smollm2-135m", metadata={"help": "Base model for every method."})
    train: str = field(default="builtin:arithmetic", metadata={"help": "Training pairs: a file or builtin:arithmetic."})
    shots: list[int] = field(default_factory=lambda: [64], metadata={"help": "Training-set sizes (pairs)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Seeds; one cell per seed."})
    out: str = field(default="runs/bench", metadata={"help": "Run directory."})
    steps: int | None = field(default=None, metadata={"help": "Optimiser steps per method (default: 16; sega 12)."})
    batch_size: int | None = field(default=None, metadata={"help": "Pairs (or prompts) per step (default 4; sega 2)."})
    lr: float = field(default=2e-4, metadata={"help": "Peak learning rate for every method."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (0: full fine-tuning)."})
    max_length: int = field(default=384, metadata={"help": "Max prompt+response tokens."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N."})
    limit: int | None = field(default=None, metadata={"help": "Items per benchmark (default: each benchmark's own)."})
    scorer: str | None = field(default=None, metadata={"help": "Scorer for sega (default entropy)."})
    include_base: bool = field(default=True, metadata={"help": "Also evaluate the untrained base model."})
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                      metadata={"help": "Objective options per method."})
    benchmark_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                         metadata={"help": "Options per benchmark."})

    def validate(self) -> None:
        """Resolve every name before any model loads; report all problems at once."""
        problems = []
        for name in self.methods:
            try:
                registry("objective").get(name).make_config(self._method_options(name))
            except GemkitError as exc:
                problems.append(str(exc))
        for name in self.benchmarks:
            try:
                registry("benchmark").get(name).make_config(self._benchmark_options(name))
            except GemkitError as exc:
                problems.append(str(exc))
        if not self.methods:
            problems.append("no methods given; e.g. --methods sega,dpo")
        if any(s < 1 for s in self.shots):
            problems.append(f"shots must be >= 1, got {self.shots}")
        if problems:
            raise ConfigError(problems)

    def _method_options(self, method: str) -> dict[str, Any]:
        options = dict(self.method_options.get(method, {}))
        if method == "sega":
            options.setdefault("max_new_tokens", 64)
            if self.scorer:
                options["scorer"] = self.scorer
        return options

    def _benchmark_options(self, name: str) -> dict[str, Any]:
        options = dict(self.benchmark_options.get(name, {}))
        if self.limit is not None:
            options["limit"] = self.limit
        return options


@dataclass
class Cell:
    method: str
    shots: int
    seed: int
    config: dict[str, Any]

    @property
    def cell_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.method}-s{self.shots}-seed{self.seed}-{digest[:10]}"


def data_fingerprint(pairs: list[PreferencePair]) -> str:
    h = hashlib.sha256()
    for pair in pairs:
        h.update(json.dumps([pair.id, pair.prompt, pair.chosen, pair.rejected], default=str).encode())
    return h.hexdigest()[:16]


def plan_cells(config: BenchConfig, fingerprint: str) -> list[Cell]:
    version = code_version()
    shared = {"model": config.model, "benchmarks": {b: config._benchmark_options(b) for b in config.benchmarks},
              "data": fingerprint, "code": version, "max_length": config.max_length}
    cells = []
    if config.include_base:
        cells.append(Cell("base", 0, 0, {**shared, "method": "base"}))
    for method in config.methods:
        for shots in config.shots:
            for seed in config.seeds:
                steps = config.steps or DEFAULT_STEPS.get(method, 16)
                batch_size = config.batch_size or DEFAULT_BATCH.get(method, 4)
                cells.append(Cell(method, shots, seed, {
                    **shared, "method": method, "shots": shots, "seed": seed, "steps": steps,
                    "batch_size": batch_size, "lr": config.lr, "lora_r": config.lora_r,
                    "options": config._method_options(method)}))
    return cells


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_cell(cell: Cell, config: BenchConfig, pairs: list[PreferencePair], cell_dir: Path) -> dict[str, Any]:
    """Train (unless base), evaluate on every benchmark, return the result record."""
    started = time.perf_counter()
    train_info = None
    if cell.method == "base":
        bundle = load_model(ModelSpec(name=config.model, device=config.device))
    else:
        subset = pairs[:cell.shots]
        if len(subset) < cell.shots:
            raise ConfigError(f"--shots {cell.shots} asks for more pairs than the {len(pairs)} in {config.train}")
        train_cfg = TrainConfig(method=cell.method, model=config.model, out=str(cell_dir / "train"),
                                max_steps=cell.config["steps"], batch_size=cell.config["batch_size"], lr=config.lr,
                                seed=cell.seed, device=config.device, max_length=config.max_length,
                                lora=LoraSpec(r=config.lora_r), objective=cell.config["options"], tensorboard=True)
        result = train(train_cfg, subset, resume=(cell_dir / "train" / "resume").exists())
        shutil.copyfile(result.log_path, cell_dir / "train_log.jsonl")
        train_info = {"wall_s": round(result.wall_s, 2), "steps": result.steps, "log": "train_log.jsonl",
                      "skipped_batches": result.skipped_batches}
        bundle = load_trained(result.checkpoint, device=config.device)
    benchmarks: dict[str, Any] = {}
    for name in config.benchmarks:
        try:
            outcome = evaluate(name, bundle, options=config._benchmark_options(name),
                               out_dir=cell_dir / "eval" / name, seed=cell.seed)
            shutil.copyfile(cell_dir / "eval" / name / "items.jsonl", _items_path(cell_dir, name))
            benchmarks[name] = {**outcome.to_dict(), "items": f"items/{name}.jsonl"}
        except Exception as exc:  # one failing benchmark must not sink the others
            benchmarks[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    if train_info is not None:
        train_info["peak_mem_mb"] = round(_peak_rss_mb(), 1)
    return {"cell_id": cell.cell_id, "method": cell.method, "shots": cell.shots, "seed": cell.seed, "status": "ok",
            "error": None, "train": train_info, "benchmarks": benchmarks, "config": cell.config,
            "wall_s": round(time.perf_counter() - started, 2), "peak_mem_mb": round(_peak_rss_mb(), 1)}


def _items_path(cell_dir: Path, name: str) -> Path:
    path = cell_dir / "items" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_bench(config: BenchConfig, *, resume: bool = False, on_cell_done: Callable[[dict[str, Any]], None] | None = None
              ) -> Path:
    """Run every cell of the grid (skipping finished ones with ``resume``) and write the manifest."""
    config.validate()
    out = Path(config.out)
    if out.exists() and any((out / "cells").glob("*/result.json")) and not resume:
        raise ConfigError(f"{out} already holds finished cells; pass --resume to continue it or choose another --out")
    pairs = load_pairs(config.train)
    if max(config.shots) > len(pairs):
        raise ConfigError(f"--shots {max(config.shots)} exceeds the {len(pairs)} pairs in {config.train}")
    cells = plan_cells(config, data_fingerprint(pairs))
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if resume and manifest_path.is_file() else {}
    manifest.update({"gemkit_version": package_versions()["gemkit"], "git_commit": git_commit(),
                     "packages": package_versions(), "hardware": hardware(), "config": asdict(config),
                     "seeds": config.seeds, "started": manifest.get("started", time.strftime("%Y-%m-%dT%H:%M:%S"))})
    manifest.setdefault("cells", {})
    atomic_write_json(manifest_path, manifest)
    for index, cell in enumerate(cells, 1):
        cell_dir = out / "cells" / cell.cell_id
        done = cell_dir / "result.json"
        if done.is_file():
            print(f"[{index}/{len(cells)}] {cell.cell_id}: already finished, skipped", flush=True)
            continue
        cell_dir.mkdir(parents=True, exist_ok=True)
        try:
            record = run_cell(cell, config, pairs, cell_dir)
        except Exception as exc:  # a failing cell is recorded as failed; the grid goes on
            record = {"cell_id": cell.cell_id, "method": cell.method, "shots": cell.shots, "seed": cell.seed,
                      "status": "failed", "error": f"{type(exc).__name__}: {exc}", "train": None, "benchmarks": {},
                      "config": cell.config, "traceback": traceback.format_exc(limit=8)}
        atomic_write_json(done, record)
        manifest["cells"][cell.cell_id] = {k: record.get(k) for k in ("method", "shots", "seed", "status", "wall_s",
                                                                      "peak_mem_mb")}
        atomic_write_json(manifest_path, manifest)
        print(f"[{index}/{len(cells)}] {summary_line(record)}", flush=True)
        if on_cell_done is not None:
            on_cell_done(record)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(manifest_path, manifest)
    return out


def summary_line(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"{record['cell_id']}: FAILED ({record['error']})"
    scores = ", ".join(f"{name} {b['metrics'][b['primary']]:.3f}" if b.get("status") == "ok" else f"{name} FAILED"
                       for name, b in record["benchmarks"].items())
    return f"{record['cell_id']}: {scores} ({record.get('wall_s', 0):.0f}s)"


def load_cells(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished cell record of a run, in a stable order."""
    return [json.loads(p.read_text()) for p in sorted(Path(run_dir).glob("cells/*/result.json"))]


def read_items(run_dir: str | Path, record: dict[str, Any], benchmark: str) -> list[dict[str, Any]]:
    return list(read_jsonl(Path(run_dir) / "cells" / record["cell_id"] / "items" / f"{benchmark}.jsonl"))
