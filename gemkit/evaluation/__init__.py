"""Evaluating policies and reward models on registered benchmarks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.results import BenchmarkResult
from gemkit.models import ModelBundle
from gemkit.registry import registry


def evaluate(benchmark: str, bundle: ModelBundle, *, options: dict[str, Any] | None = None,
             out_dir: str | Path | None = None, reference: ModelBundle | None = None, batch_size: int = 8,
             seed: int = 0) -> BenchmarkResult:
    """Load ``benchmark``'s items, evaluate ``bundle`` on them, and save metrics + items under ``out_dir``."""
    adapter = registry("benchmark").get(benchmark).build(options or {})
    items = adapter.load()
    result = adapter.evaluate(EvalContext(bundle, reference, batch_size, seed), items)
    if out_dir is not None:
        result.save(out_dir)
    return result


__all__ = ["BenchmarkResult", "EvalContext", "evaluate"]
