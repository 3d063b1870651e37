"""What a benchmark returns: aggregate metrics, the conventions that produced them, per-item rows."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.io import atomic_write_json, write_jsonl


@dataclass
class BenchmarkResult:
    """``metrics`` (floats), ``primary`` metric name, direction per metric, the recorded conventions,
    optional per-subset scores, counts (items excluded and why) and one row per item (``id``,
    ``correct`` as 0/1 or a fraction, and whatever was scored or generated)."""

    benchmark: str
    metrics: dict[str, float]
    primary: str
    higher_is_better: dict[str, bool]
    conventions: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    subsets: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary not in self.metrics:
            raise ValueError(f"primary metric '{self.primary}' is not among {sorted(self.metrics)}")
        missing = sorted(set(self.metrics) - set(self.higher_is_better))
        if missing:
            raise ValueError(f"higher_is_better lacks {missing}")

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "status": "ok", "metrics": self.metrics, "primary": self.primary,
                "higher_is_better": self.higher_is_better, "conventions": self.conventions, "subsets": self.subsets,
                "counts": self.counts, "n": len(self.items)}

    def save(self, directory: str | Path) -> None:
        """``items.jsonl`` then ``metrics.json``, each written atomically (metrics last: it marks completion)."""
        directory = Path(directory)
        write_jsonl(directory / "items.jsonl", self.items)
        atomic_write_json(directory / "metrics.json", self.to_dict())

    def table(self) -> str:
        """A plain-text table of the metrics, then per-subset scores, then counts."""
        lines = [f"{'metric':<32} {'value':>10}", f"{'-' * 32} {'-' * 10}"]
        for key, value in self.metrics.items():
            mark = " *" if key == self.primary else ""
            lines.append(f"{key + mark:<32} {_fmt(value):>10}")
        for group, scores in self.subsets.items():
            if isinstance(scores, dict):
                lines.append(f"[{group}]")
                lines.extend(f"  {k:<30} {_fmt(v):>10}" for k, v in scores.items())
            else:
                lines.append(f"{group:<32} {_fmt(scores):>10}")
        lines.extend(f"{'n_' + k:<32} {v:>10}" for k, v in self.counts.items())
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def mean(values: list[float]) -> float:
    """Mean of a non-empty list; an empty list gives NaN (shown as such, never as 0)."""
    return sum(values) / len(values) if values else float("nan")
