"""Evaluating policies and reward models on registered benchmarks.

``evaluate("rewardbench", bundle, options={"data": "rb.jsonl", "limit": 100}, out_dir="out")``
loads the benchmark's items, scores them and writes ``metrics.json`` + ``items.jsonl``; the
returned :class:`BenchmarkResult`'s ``to_dict()`` is what ``metrics.json`` holds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.results import BenchmarkResult
from gemkit.models import ModelBundle
from gemkit.progress import evaluation_progress
from gemkit.registry import registry


def evaluate(benchmark: str, bundle: ModelBundle, *, options: dict[str, Any] | None = None,
             out_dir: str | Path | None = None, reference: ModelBundle | None = None, batch_size: int = 8,
             seed: int = 0, generator: str = "hf", progress: bool = True) -> BenchmarkResult:
    """Load ``benchmark``'s items, evaluate ``bundle`` on them, and save metrics + items under ``out_dir``.

    :param options: the benchmark's Config fields (``data``, ``limit``, scoring options, …).
    :param reference: an explicit reference policy for implicit rewards (default: the base model
        with adapters disabled, when the bundle has adapters).
    :param seed: seed of anything stochastic during evaluation (the ``--limit`` sample has its own
        ``seed`` option, so every method is evaluated on the same items).
    :param generator: the engine generative benchmarks decode with: ``hf`` (transformers) or ``vllm``;
        recorded as ``conventions["generator"]`` when the benchmark generated.
    :param progress: show bars (items done, ETA) while the benchmark decodes or scores, on stderr.
    """
    adapter = registry("benchmark").get(benchmark).build(options or {})
    ctx = EvalContext(bundle, reference, batch_size, seed, Path(out_dir) if out_dir is not None else None,
                      generator)  # an unknown or missing engine fails before the items load
    items = adapter.load()
    with evaluation_progress(f"eval {benchmark}", enabled=progress):
        result = adapter.evaluate(ctx, items)
    if ctx.generated_with is not None:  # which engine wrote the answers, for the report
        result.conventions["generator"] = ctx.generated_with
    if out_dir is not None:
        result.save(out_dir)
    return result


__all__ = ["BenchmarkResult", "EvalContext", "evaluate"]
