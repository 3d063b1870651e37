"""One bench cell: train (unless base), evaluate on every benchmark, and return its ``result.json`` record.

Runs in the driver or as a Ray task (:mod:`gemkit.runner.ray_grid`); it writes only inside its own
work directory, never ``cells/`` or the manifest (the grid loop in :mod:`gemkit.runner.bench` does).
"""
from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.results import Baseline, BenchmarkOutcome, CellResult, RewardModelInfo, TrainInfo
from gemkit.runner.plan import SFT, BenchConfig, Cell, trained_dependency
from gemkit.runner.resources import PeakMemory


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
             progress: bool = True) -> CellResult:
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
    train_info: TrainInfo | None = None
    checkpoint: Path | None = None
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
                reward_model = RewardModelInfo(objective, wall_s=round(rm.wall_s, 2), steps=rm.steps,
                                               log=f"{objective}/train_log.jsonl")
            train_cfg = TrainConfig(method=cell.method, out=str(cell_dir / "train"), objective=options, **common)
            result = train(train_cfg, subset, resume=(cell_dir / "train" / "resume").exists(), progress=progress)
            shutil.copyfile(result.log_path, cell_dir / "train_log.jsonl")
            train_info = TrainInfo(wall_s=round(result.wall_s, 2), steps=result.steps, log="train_log.jsonl",
                                   skipped_batches=result.skipped_batches, tensorboard="train/tb",
                                   reward_model=reward_model)
            checkpoint = result.checkpoint
            bundle = load_trained(checkpoint, device=config.device)
    if train_info is not None:
        train_info.peak_mem_mb = peak.peak_mb  # the training part only
    benchmarks: dict[str, BenchmarkOutcome] = {}
    baselines: dict[str, Baseline] = {}
    with PeakMemory(device=config.device) as eval_peak:
        for name in config.benchmarks:
            try:
                options = config._benchmark_options(name)
                if options.get("baseline") == SFT:
                    options["baseline"] = str(_sft_checkpoint(cell, config, checkpoint))
                    baselines[name] = Baseline(SFT, cell.cell_id if cell.method == SFT else cell.baseline_cell)
                outcome = evaluate(name, bundle, options=options, out_dir=cell_dir / "eval" / name, seed=cell.seed,
                                   batch_size=config.eval_batch_size, generator=config.generator, progress=progress)
                items = cell_dir / "items" / f"{name}.jsonl"
                items.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cell_dir / "eval" / name / "items.jsonl", items)
                conventions = dict(outcome.conventions)
                if name in baselines:  # name the cell, not a path that moves when the cell is renamed
                    conventions["baseline"] = f"sft (cell {baselines[name].cell_id})"
                benchmarks[name] = BenchmarkOutcome(
                    name, "ok", metrics=outcome.metrics, primary=outcome.primary,
                    higher_is_better=outcome.higher_is_better, items=f"items/{name}.jsonl", subsets=outcome.subsets,
                    conventions=conventions, counts=outcome.counts, n=len(outcome.items))
            except Exception as exc:  # one failing benchmark (or plugin) must not sink the others
                benchmarks[name] = BenchmarkOutcome(name, "failed", f"{type(exc).__name__}: {exc}",
                                                    traceback=traceback.format_exc(limit=8))
    return CellResult(cell.cell_id, cell.method, cell.shots, cell.seed, "ok", train=train_info, benchmarks=benchmarks,
                      baselines=baselines, config=cell.config, device=str(bundle.device),
                      wall_s=round(time.perf_counter() - started, 2), peak_mem_mb=max(peak.peak_mb, eval_peak.peak_mb))


def failed_record(cell: Cell, error: str, wall_s: float, tb: str | None = None) -> CellResult:
    """The record of a cell whose training (or whole task) failed: its error and traceback, no results."""
    return CellResult(cell.cell_id, cell.method, cell.shots, cell.seed, "failed", error, config=cell.config,
                      traceback=tb, wall_s=round(wall_s, 2))


def execute_cell(cell: Cell, config: BenchConfig, pairs: list[PreferencePair], work: Path, *,
                 progress: bool = True) -> CellResult:
    """:func:`run_cell`, with an exception turned into the cell's failed record (the grid goes on)."""
    started = time.perf_counter()
    try:
        return run_cell(cell, config, pairs, work, progress=progress)
    except Exception as exc:
        return failed_record(cell, f"{type(exc).__name__}: {exc}", time.perf_counter() - started,
                             traceback.format_exc(limit=8))
