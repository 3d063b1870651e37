"""A bench cell's ``result.json``: one typed record, written by the runner and read by everyone.

:class:`CellResult` is the single definition of the file's shape. :mod:`gemkit.runner.cell` builds
one, :meth:`CellResult.save` writes it (:meth:`CellResult.to_json` is the one serialiser), and every
reader (the runner's resume and result listing, :mod:`gemkit.report.schema`) parses it with
:func:`load_cell`, whose errors name the file and the field. The module sits beside both packages
so that neither imports the other.

A ``result.json`` looks like::

    {"cell_id": "dpo-s8-seed0-…", "method": "dpo", "shots": 8, "seed": 0, "status": "ok", "error": null,
     "train": {"wall_s": 41.2, "steps": 20, "log": "train_log.jsonl", "skipped_batches": 0,
               "peak_mem_mb": 812.0, "tensorboard": "train/tb", "reward_model": null},
     "benchmarks": {"arithmetic": {"benchmark": "arithmetic", "status": "ok", "metrics": {"accuracy": 0.31},
                                   "primary": "accuracy", "higher_is_better": {"accuracy": true}, …,
                                   "error": null, "items": "items/arithmetic.jsonl"}},
     "baselines": {}, "config": {…}, "device": "cpu", "wall_s": 60.3, "peak_mem_mb": 812.0}

Keys older files lack read as their defaults; a key of the wrong type is refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.errors import DataError
from gemkit.io import atomic_write_json, read_jsonl

RESULT_FILE = "result.json"
CELL_STATUSES = ("ok", "failed")


@dataclass
class BenchmarkOutcome:
    """One benchmark's result inside a cell. ``metrics`` are plain floats; accuracies are fractions.

    An ``ok`` outcome carries what the benchmark returned (:class:`gemkit.evaluation.results.BenchmarkResult`)
    and the path of its per-item rows; a failed one its ``error`` and ``traceback``.
    """

    name: str
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    primary: str | None = None
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    items: str | None = None  # path relative to the cell directory
    subsets: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    n: int | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def score(self) -> float | None:
        """The primary metric, or None when the benchmark failed."""
        return self.metrics.get(self.primary) if self.ok and self.primary else None

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.name, "status": self.status, "metrics": self.metrics, "primary": self.primary,
                "higher_is_better": self.higher_is_better, "conventions": self.conventions, "subsets": self.subsets,
                "counts": self.counts, "n": self.n, "error": self.error, "items": self.items,
                "traceback": self.traceback}


@dataclass
class RewardModelInfo:
    """The reward model a method trained first (e.g. RM before PPO), inside its cell directory."""

    objective: str
    wall_s: float | None = None
    steps: int | None = None
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "wall_s": self.wall_s, "steps": self.steps, "log": self.log}


@dataclass
class TrainInfo:
    """How a cell's training went; ``log`` and ``tensorboard`` are relative to the cell directory."""

    wall_s: float | None = None
    peak_mem_mb: float | None = None  # the training part only
    steps: int | None = None
    log: str | None = "train_log.jsonl"
    skipped_batches: int | None = None
    tensorboard: str | None = None
    reward_model: RewardModelInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "steps": self.steps, "log": self.log, "skipped_batches": self.skipped_batches,
                "peak_mem_mb": self.peak_mem_mb, "tensorboard": self.tensorboard,
                "reward_model": self.reward_model.to_json() if self.reward_model else None}


@dataclass
class Baseline:
    """The model a benchmark compared against: ``sft`` and the cell that trained it."""

    model: str
    cell_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "cell_id": self.cell_id}


@dataclass
class CellResult:
    """One (method, shots, seed) cell: trained once, evaluated on every benchmark.

    ``directory`` is where the record was read from (None for one not yet written); it is not part
    of the file and not of equality.
    """

    cell_id: str
    method: str
    shots: int
    seed: int
    status: str
    error: str | None = None
    train: TrainInfo | None = None
    benchmarks: dict[str, BenchmarkOutcome] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    wall_s: float | None = None
    peak_mem_mb: float | None = None
    traceback: str | None = None
    directory: Path | None = field(default=None, compare=False, repr=False)

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
        return list(read_jsonl(self._directory() / (outcome.items or f"items/{benchmark}.jsonl")))

    def train_log(self) -> list[dict[str, Any]]:
        if self.train is None or not self.train.log:
            return []
        return list(read_jsonl(self._directory() / self.train.log))

    def _directory(self) -> Path:
        if self.directory is None:
            raise ValueError(f"cell {self.cell_id} was not read from a {RESULT_FILE}, so it has no directory")
        return self.directory

    def to_json(self) -> dict[str, Any]:
        """The ``result.json`` object (the one serialiser; :func:`load_cell` is its inverse)."""
        return {"cell_id": self.cell_id, "method": self.method, "shots": self.shots, "seed": self.seed,
                "status": self.status, "error": self.error, "train": self.train.to_json() if self.train else None,
                "benchmarks": {name: b.to_json() for name, b in self.benchmarks.items()},
                "baselines": {name: b.to_json() for name, b in self.baselines.items()}, "config": self.config,
                "device": self.device, "wall_s": self.wall_s, "peak_mem_mb": self.peak_mem_mb,
                "traceback": self.traceback}

    def save(self, directory: str | Path) -> Path:
        """Write ``directory/result.json`` atomically."""
        return atomic_write_json(Path(directory) / RESULT_FILE, self.to_json())


# --- parsing -----------------------------------------------------------------------------------------

_KINDS: dict[type, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"), int: ((int,), "an integer"), float: ((int, float), "a number"),
    bool: ((bool,), "true or false"), dict: ((dict,), "an object")}


def _typed(value: Any, kind: type, path: Path, where: str) -> Any:
    """``value`` if it is of ``kind`` (None passes; an int is a number, a bool is not), else a DataError."""
    types, expected = _KINDS[kind]
    if value is None or (isinstance(value, types) and (kind is bool or not isinstance(value, bool))):
        return value
    raise DataError(path, f"expected {expected}, got {type(value).__name__} {json.dumps(value)[:40]}", field=where)


def _get(data: dict[str, Any], key: str, kind: type, path: Path, prefix: str = "", default: Any = None) -> Any:
    """``data[key]`` checked to be ``kind`` (or null); ``default`` when the key is absent."""
    return _typed(data.get(key, default), kind, path, prefix + key)


def _mapping(data: dict[str, Any], key: str, kind: type | None, path: Path, prefix: str = "") -> dict[str, Any]:
    """``data[key]`` as an object (absent or null: empty) whose values are all ``kind`` (None: any)."""
    value = _get(data, key, dict, path, prefix) or {}
    if kind is not None:
        for name, item in value.items():
            _typed(item, kind, path, f"{prefix}{key}.{name}")
    return dict(value)


def _object(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(path, f"expected an object, got {type(value).__name__}", field=where or None)
    return value


def _status(value: Any, path: Path, where: str) -> str:
    if value not in CELL_STATUSES:
        raise DataError(path, f"must be one of {CELL_STATUSES}, got {value!r}", field=where)
    return value


def _outcome(name: str, value: Any, path: Path) -> BenchmarkOutcome:
    where = f"benchmarks.{name}."
    data = _object(value, path, where[:-1])
    outcome = BenchmarkOutcome(
        name=name, status=_status(data.get("status", "ok"), path, where + "status"),
        error=_get(data, "error", str, path, where), metrics=_mapping(data, "metrics", float, path, where),
        primary=_get(data, "primary", str, path, where),
        higher_is_better=_mapping(data, "higher_is_better", bool, path, where),
        items=_get(data, "items", str, path, where), subsets=_mapping(data, "subsets", None, path, where),
        conventions=_mapping(data, "conventions", None, path, where), counts=_mapping(data, "counts", int, path, where),
        n=_get(data, "n", int, path, where), traceback=_get(data, "traceback", str, path, where))
    if outcome.ok and outcome.primary not in outcome.metrics:
        raise DataError(path, f"primary metric {outcome.primary!r} not among metrics {sorted(outcome.metrics)}",
                        field=where + "primary")
    return outcome


def _train(value: Any, path: Path) -> TrainInfo | None:
    if value is None:
        return None
    data = _object(value, path, "train")
    reward = _get(data, "reward_model", dict, path, "train.")
    return TrainInfo(
        wall_s=_get(data, "wall_s", float, path, "train."), peak_mem_mb=_get(data, "peak_mem_mb", float, path, "train."),
        steps=_get(data, "steps", int, path, "train."), log=_get(data, "log", str, path, "train.", "train_log.jsonl"),
        skipped_batches=_get(data, "skipped_batches", int, path, "train."),
        tensorboard=_get(data, "tensorboard", str, path, "train."),
        reward_model=None if reward is None else RewardModelInfo(
            objective=_get(reward, "objective", str, path, "train.reward_model.", ""),
            wall_s=_get(reward, "wall_s", float, path, "train.reward_model."),
            steps=_get(reward, "steps", int, path, "train.reward_model."),
            log=_get(reward, "log", str, path, "train.reward_model.")))


def _baseline(name: str, value: Any, path: Path) -> Baseline:
    where = f"baselines.{name}."
    data = _object(value, path, where[:-1])
    return Baseline(model=_get(data, "model", str, path, where, ""), cell_id=_get(data, "cell_id", str, path, where))


def parse_cell(data: Any, path: str | Path) -> CellResult:
    """A ``result.json`` object as a :class:`CellResult`; ``path`` names the file in every error."""
    path = Path(path)
    data = _object(data, path, "")
    for key in ("cell_id", "method", "status"):
        if key not in data:
            raise DataError(path, "missing key (expected cell_id, method, status)", field=key)
    return CellResult(
        cell_id=_get(data, "cell_id", str, path), method=_get(data, "method", str, path),
        shots=_get(data, "shots", int, path) or 0, seed=_get(data, "seed", int, path) or 0,
        status=_status(data["status"], path, "status"), error=_get(data, "error", str, path),
        train=_train(data.get("train"), path),
        benchmarks={name: _outcome(name, value, path) for name, value in _mapping(data, "benchmarks", None, path).items()},
        baselines={name: _baseline(name, value, path) for name, value in _mapping(data, "baselines", None, path).items()},
        config=_mapping(data, "config", None, path), device=_get(data, "device", str, path),
        wall_s=_get(data, "wall_s", float, path), peak_mem_mb=_get(data, "peak_mem_mb", float, path),
        traceback=_get(data, "traceback", str, path), directory=path.parent)


def load_cell(path: str | Path) -> CellResult:
    """Read and parse one ``result.json``; the message of a bad file names the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    return parse_cell(data, path)


def load_cells(run_dir: str | Path) -> list[CellResult]:
    """Every finished cell of a run (``cells/*/result.json``), sorted by cell id."""
    return [load_cell(p) for p in sorted(Path(run_dir).glob(f"cells/*/{RESULT_FILE}"))]
