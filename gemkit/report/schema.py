"""The on-disk layout of a bench run, as dataclasses, and its loader.

::

    RUN_DIR/manifest.json                     provenance: versions, commit, hardware, config, times
    RUN_DIR/cells/<cell_id>/result.json       one finished cell (see :class:`CellResult`)
    RUN_DIR/cells/<cell_id>/items/<bench>.jsonl  one line per item: {"id", "correct", "score"?}
    RUN_DIR/cells/<cell_id>/train_log.jsonl   training metrics, one line per logged step

The base model and the SFT model are cells too (method ``base``, ``sft``). A cell directory only
exists once its ``result.json`` is complete (the runner renames it into place), so every cell found
here is finished: either ``ok`` or ``failed`` with its error. The report reads nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.errors import DataError
from gemkit.io import atomic_dir, atomic_write_json, read_jsonl, write_jsonl

CELL_STATUSES = ("ok", "failed")


@dataclass
class BenchmarkOutcome:
    """One benchmark's result inside a cell. ``metrics`` are plain floats; accuracies are fractions."""

    name: str
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    primary: str | None = None
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    items: str | None = None  # path relative to the cell directory
    subsets: dict[str, float] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def score(self) -> float | None:
        """The primary metric, or None when the benchmark failed."""
        return self.metrics.get(self.primary) if self.ok and self.primary else None


@dataclass
class TrainInfo:
    wall_s: float | None = None
    peak_mem_mb: float | None = None
    steps: int | None = None
    log: str | None = "train_log.jsonl"


@dataclass
class CellResult:
    """One (method, shots, seed) cell: trained once, evaluated on every benchmark."""

    cell_id: str
    method: str
    shots: int
    seed: int
    status: str
    error: str | None
    train: TrainInfo | None
    benchmarks: dict[str, BenchmarkOutcome]
    directory: Path
    wall_s: float | None = None
    peak_mem_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def outcome(self, benchmark: str) -> BenchmarkOutcome:
        """The benchmark's outcome; a failed cell (or a missing benchmark) reads as a failed outcome."""
        if not self.ok:
            return BenchmarkOutcome(benchmark, "failed", self.error or "cell failed")
        return self.benchmarks.get(benchmark) or BenchmarkOutcome(benchmark, "failed", "not evaluated")

    def items(self, benchmark: str) -> list[dict[str, Any]]:
        """Per-item rows of a benchmark (empty when the cell or benchmark failed)."""
        outcome = self.outcome(benchmark)
        if not outcome.ok:
            return []
        return list(read_jsonl(self.directory / (outcome.items or f"items/{benchmark}.jsonl")))

    def train_log(self) -> list[dict[str, Any]]:
        if self.train is None or not self.train.log:
            return []
        return list(read_jsonl(self.directory / self.train.log))


@dataclass
class Manifest:
    gemkit_version: str | None = None
    git_commit: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Run:
    path: Path
    manifest: Manifest
    cells: list[CellResult]

    def benchmarks(self) -> list[str]:
        """Benchmark names in first-seen order over all cells."""
        names: list[str] = []
        for cell in self.cells:
            names += [n for n in cell.benchmarks if n not in names]
        names += [n for n in self.manifest.config.get("benchmarks") or [] if n not in names]
        return names


def _require(data: dict[str, Any], keys: tuple[str, ...], path: Path, where: str = "") -> None:
    for key in keys:
        if key not in data:
            raise DataError(path, f"missing {where}key (expected {', '.join(keys)})", field=key)


def _outcome(name: str, data: Any, path: Path) -> BenchmarkOutcome:
    if not isinstance(data, dict):
        raise DataError(path, f"expected an object, got {type(data).__name__}", field=f"benchmarks.{name}")
    status = data.get("status", "ok")
    outcome = BenchmarkOutcome(
        name=name, status=status, error=data.get("error"), metrics=dict(data.get("metrics") or {}),
        primary=data.get("primary"), higher_is_better=dict(data.get("higher_is_better") or {}),
        items=data.get("items"), subsets=dict(data.get("subsets") or {}), conventions=dict(data.get("conventions") or {}))
    if status not in CELL_STATUSES:
        raise DataError(path, f"status must be one of {CELL_STATUSES}, got {status!r}", field=f"benchmarks.{name}.status")
    if outcome.ok and outcome.primary not in outcome.metrics:
        raise DataError(path, f"primary metric {outcome.primary!r} not among metrics {sorted(outcome.metrics)}",
                        field=f"benchmarks.{name}.primary")
    return outcome


def load_cell(path: str | Path) -> CellResult:
    """Parse one ``result.json``; the message of a bad file names the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object")
    _require(data, ("cell_id", "method", "status"), path)
    if data["status"] not in CELL_STATUSES:
        raise DataError(path, f"must be one of {CELL_STATUSES}, got {data['status']!r}", field="status")
    train = data.get("train")
    train_info = None
    if isinstance(train, dict):
        train_info = TrainInfo(train.get("wall_s"), train.get("peak_mem_mb"), train.get("steps"),
                               train.get("log", "train_log.jsonl"))
    benchmarks = {name: _outcome(name, value, path) for name, value in (data.get("benchmarks") or {}).items()}
    return CellResult(cell_id=str(data["cell_id"]), method=str(data["method"]), shots=int(data.get("shots") or 0),
                      seed=int(data.get("seed") or 0), status=data["status"], error=data.get("error"),
                      train=train_info, benchmarks=benchmarks, directory=path.parent,
                      wall_s=data.get("wall_s"), peak_mem_mb=data.get("peak_mem_mb"))


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        return Manifest()
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {k: data[k] for k in Manifest.__dataclass_fields__ if k in data}
    return Manifest(**known)


def load_run(run_dir: str | Path) -> Run:
    """Every finished cell of ``run_dir`` (sorted by cell id) and its manifest."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "no such run directory")
    cells = [load_cell(p) for p in sorted(run_dir.glob("cells/*/result.json"))]
    return Run(run_dir, load_manifest(run_dir / "manifest.json"), cells)


def write_cell(run_dir: str | Path, record: dict[str, Any], *, items: dict[str, list[dict[str, Any]]] | None = None,
               train_log: list[dict[str, Any]] | None = None) -> Path:
    """Write one cell in this layout, all at once: the directory appears complete or not at all.

    ``record`` is the ``result.json`` object; ``items`` maps a benchmark to its per-item rows. The
    record is checked by :func:`load_cell` before the directory is renamed into place.
    """
    target = Path(run_dir) / "cells" / str(record["cell_id"])
    with atomic_dir(target) as tmp:
        for name, rows in (items or {}).items():
            write_jsonl(tmp / "items" / f"{name}.jsonl", rows)
        if train_log is not None:
            write_jsonl(tmp / "train_log.jsonl", train_log)
        atomic_write_json(tmp / "result.json", record)
        load_cell(tmp / "result.json")
    return target
