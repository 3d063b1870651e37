"""What a benchmark returns: aggregate metrics, the conventions that produced them, per-item rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.io import atomic_write_json, write_jsonl


@dataclass
class BenchmarkResult:
    """``metrics`` (floats), ``primary`` metric name, direction per metric, the recorded conventions,
    optional per-subset scores, and one row per item (``id``, ``correct`` and whatever was scored)."""

    benchmark: str
    metrics: dict[str, float]
    primary: str
    higher_is_better: dict[str, bool]
    conventions: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    subsets: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "status": "ok", "metrics": self.metrics, "primary": self.primary,
                "higher_is_better": self.higher_is_better, "conventions": self.conventions, "subsets": self.subsets,
                "n": len(self.items)}

    def save(self, directory: str | Path) -> None:
        """``metrics.json`` and ``items.jsonl``, each written atomically."""
        directory = Path(directory)
        write_jsonl(directory / "items.jsonl", self.items)
        atomic_write_json(directory / "metrics.json", self.to_dict())
