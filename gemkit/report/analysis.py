"""From a loaded run to the numbers a report shows: the table, paired tests, curves and subsets.

Rows are methods (``method@shots`` when the run has several training-set sizes); seeds of a row
are averaged. Paired tests compare each row with the baseline row on the items both answered:
seed s against seed s when both rows have the same seeds, otherwise each item's mean over seeds.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gemkit.errors import ConfigError
from gemkit.report.diagnostics import result_benchmarks, with_step_auroc
from gemkit.report.schema import CellResult, Run
from gemkit.report.stats import (
    bootstrap_ci,
    hierarchical_bootstrap_ci,
    holm,
    mean_std,
    paired_bootstrap_ci,
    paired_mde,
    paired_p_value,
    paired_test_name,
)
from gemkit.report.tables import METHOD_TITLES, SIGNIFICANT, Table, TableCell, column_title, is_percent_metric

ALPHA = 0.05
#: the power a minimum detectable effect is stated at (docs/metrics.md)
POWER = 0.8
#: rows first in this order (the paper lists baselines first and its own method last)
ROW_ORDER = ["base", "sft", "rm", "rm-ppo", "dpo", "ipo", "pro", "kto", "simpo", "orpo", "grpo"]
LAST = ["sega"]


@dataclass
class Analysis:
    table: Table
    tests: list[dict[str, Any]]
    baseline: str | None
    rows: dict[str, list[CellResult]]
    #: benchmark -> method -> shots -> scores over seeds
    efficiency: dict[str, dict[str, dict[int, list[float]]]] = field(default_factory=dict)
    #: benchmark -> method -> shots -> 95 % CI of the mean over seeds (:func:`hierarchical_bootstrap_ci`
    #: over seeds and items), None where the items' mean is not the benchmark's primary metric
    efficiency_ci: dict[str, dict[str, dict[int, tuple[float, float] | None]]] = field(default_factory=dict)
    #: benchmark -> row -> subset -> mean over seeds
    subsets: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: row -> one train log per seed
    logs: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)


def _row_key(cell: CellResult, several_shots: bool) -> str:
    return f"{cell.method}@{cell.shots}" if several_shots and cell.method != "base" else cell.method


def _order(keys: list[str]) -> list[str]:
    def rank(key: str) -> tuple[int, int]:
        method = key.split("@")[0]
        shots = int(key.split("@")[1]) if "@" in key else 0
        if method in LAST:
            return (len(ROW_ORDER) + 1 + LAST.index(method), shots)
        return (ROW_ORDER.index(method) if method in ROW_ORDER else len(ROW_ORDER), shots)
    return sorted(keys, key=lambda k: (*rank(k), keys.index(k)))


def analyse(run: Run, baseline: str | None = "dpo", *, require_baseline: bool = False) -> Analysis:
    """Build the table and statistics of ``run``; ``baseline`` names a row (``dpo`` or ``dpo@500``)."""
    several_shots = len({c.shots for c in run.cells if c.method != "base"}) > 1
    rows: dict[str, list[CellResult]] = defaultdict(list)
    for cell in run.cells:
        rows[_row_key(cell, several_shots)].append(cell)
    order = _order(list(rows))
    if baseline is not None and baseline not in rows:
        if require_baseline:
            raise ConfigError(f"baseline '{baseline}' is not a row of {run.path}; rows: {', '.join(order)}")
        baseline = None

    columns, directions, percent, titles = [], {}, {}, {}
    for name in result_benchmarks(run):  # scorer diagnostics have their own section
        ok = [c.benchmarks[name] for c in run.cells if name in c.benchmarks and c.benchmarks[name].ok]
        metric = ok[0].primary if ok else "score"
        column = f"{name}/{metric}"
        columns.append(column)
        directions[column] = ok[0].higher_is_better.get(metric, True) if ok else True
        percent[column] = is_percent_metric(metric or "")
        titles[column] = column_title(column)
    for key in order:
        method, _, shots = key.partition("@")
        titles[key] = METHOD_TITLES.get(method, method) + (f" ({shots} pairs)" if shots else "")
    table = Table(order, columns, directions, titles=titles, percent=percent)

    items: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    for key in order:
        for column in columns:
            name = column.split("/")[0]
            outcomes = [c.outcome(name) for c in rows[key]]
            failed = [o for o in outcomes if not o.ok]
            if failed:
                table.cells[(key, column)] = TableCell(None, error=failed[0].error or "failed")
                continue
            mean, std = mean_std([o.score for o in outcomes])  # type: ignore[misc]
            per_seed = {c.seed: {str(r["id"]): float(r["correct"]) for r in c.items(name) if "correct" in r}
                        for c in rows[key]}
            pooled = [v for seed_items in per_seed.values() for v in seed_items.values()]
            items[(key, column)] = per_seed
            table.cells[(key, column)] = TableCell(mean, std, bootstrap_ci(pooled) if pooled else None, len(outcomes))

    tests: list[dict[str, Any]] = []
    if baseline is not None:
        for key in order:
            if key == baseline:
                continue
            family = []
            for column in columns:
                pair = _paired_vectors(items.get((key, column)), items.get((baseline, column)))
                if pair is None:
                    continue
                a, b = pair
                family.append({"method": key, "baseline": baseline, "column": column, "n": len(a),
                               "test": paired_test_name(a, b), "diff": sum(a) / len(a) - sum(b) / len(b),
                               "ci": list(paired_bootstrap_ci(a, b)), "p": paired_p_value(a, b)})
            for test, adjusted in zip(family, holm([t["p"] for t in family]), strict=True):
                # Holm's first step tests at α/m, so that is the level a difference must clear for sure
                a, b = _paired_vectors(items.get((key, test["column"])), items.get((baseline, test["column"])))  # type: ignore[misc]
                mde = paired_mde(a, b, alpha=ALPHA / len(family), power=POWER)
                test["mde"] = None if math.isnan(mde) else mde  # None: no item differs (JSON has no NaN)
                test["p_holm"] = adjusted
                test["significant"] = adjusted < ALPHA
                if test["significant"]:
                    table.cells[(key, test["column"])].marker = SIGNIFICANT
            tests += family
        table.notes.append(f"{SIGNIFICANT} differs from {table.title(baseline)} at p < {ALPHA} "
                           f"(paired test on shared items, Holm-corrected across benchmarks).")
    seeds = sorted({c.seed for c in run.cells if c.method != "base"})
    spread = f"mean ± sample std over {len(seeds)} seeds" if len(seeds) > 1 else "one seed"
    table.notes.insert(0, f"Accuracies and rates in %, other metrics raw; {spread}. "
                          "Bold: best, underlined: second best per column (ties share a mark).")
    analysis = Analysis(table, tests, baseline, dict(rows))
    _curves(run, analysis, several_shots)
    return analysis


def _paired_vectors(a: dict[int, dict[str, float]] | None, b: dict[int, dict[str, float]] | None
                    ) -> tuple[list[float], list[float]] | None:
    if not a or not b:
        return None
    if set(a) == set(b):
        keys = [(s, i) for s in sorted(a) for i in sorted(set(a[s]) & set(b[s]))]
        va, vb = [a[s][i] for s, i in keys], [b[s][i] for s, i in keys]
    else:  # different seeds (e.g. the base model against a 3-seed method): each item's mean over seeds
        ma, mb = _item_means(a), _item_means(b)
        shared = sorted(set(ma) & set(mb))
        va, vb = [ma[i] for i in shared], [mb[i] for i in shared]
    return (va, vb) if va else None


def _item_means(per_seed: dict[int, dict[str, float]]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for seed_items in per_seed.values():
        for item, value in seed_items.items():
            values[item].append(value)
    return {item: sum(v) / len(v) for item, v in values.items()}


def _efficiency_ci(seeds: list[tuple[float, list[float]]]) -> tuple[float, float] | None:
    """The two-stage bootstrap CI of one curve point from each seed's (score, item values), or None
    unless every seed's items average to its score: otherwise (RewardBench's weighted score, ECE) the
    interval would be of another quantity than the one plotted."""
    if not all(items and math.isclose(sum(items) / len(items), score, abs_tol=1e-6) for score, items in seeds):
        return None
    return hierarchical_bootstrap_ci([items for _, items in seeds])


def _curves(run: Run, analysis: Analysis, several_shots: bool) -> None:
    for name in result_benchmarks(run):
        per_point: dict[tuple[str, int], list[tuple[float, list[float]]]] = defaultdict(list)
        for cell in run.cells:
            outcome = cell.outcome(name)
            if cell.method != "base" and outcome.ok and outcome.score is not None:
                analysis.efficiency.setdefault(name, {}).setdefault(cell.method, {}).setdefault(
                    cell.shots, []).append(outcome.score)
                items = [float(r["correct"]) for r in cell.items(name) if "correct" in r]
                per_point[(cell.method, cell.shots)].append((outcome.score, items))
        for (method, shots), seeds in per_point.items():
            analysis.efficiency_ci.setdefault(name, {}).setdefault(method, {})[shots] = _efficiency_ci(seeds)
        for key, cells in analysis.rows.items():
            subset_rows = [c.outcome(name).subsets for c in cells if c.outcome(name).ok and c.outcome(name).subsets]
            if subset_rows:
                names = sorted({s for row in subset_rows for s in row})
                analysis.subsets.setdefault(name, {})[key] = {
                    s: sum(r[s] for r in subset_rows if s in r) / sum(1 for r in subset_rows if s in r) for s in names}
    for key in analysis.table.methods:
        logs = [c.train_log() for c in analysis.rows[key] if c.ok and c.train is not None]
        if any(logs):
            analysis.logs[key] = [with_step_auroc(log) for log in logs if log]
