"""The report's "Scorer diagnostics" section: does the self-score track correctness, before and after training?

Benchmarks of kind ``scorer-diagnostics`` (the built-in ``scorer-diagnostics`` adapter, or any
adapter writing ``conventions["kind"] = "scorer-diagnostics"``) are not accuracy columns of the
results table; each gets a table here, one row per method (the base model is "before training",
every trained cell "after"), with the values of :mod:`gemkit.gem.diagnostics`. Values are means over
the seeds where they are defined; an undefined AUROC (every candidate right, or every one wrong)
is shown as n/a with the reason, never as 0.5; a failed cell as FAILED.
"""
from __future__ import annotations

from typing import Any

from gemkit.report.schema import CellResult, Run

KIND = "scorer-diagnostics"
#: metric -> column title; the last three are accuracies (shown in %)
COLUMNS = {"auroc": "AUROC", "auroc_within": "AUROC in prompt", "point_biserial": "r_pb",
           "best_of_k_by_score": "best-of-k by score", "random_choice": "random choice", "oracle": "oracle (pass@k)"}
ACCURACIES = ("best_of_k_by_score", "random_choice", "oracle")


def is_diagnostics(run: Run, name: str) -> bool:
    """Whether benchmark ``name`` of ``run`` is a scorer-diagnostics benchmark (not a results column)."""
    kinds = {c.benchmarks[name].conventions.get("kind") for c in run.cells if name in c.benchmarks}
    return KIND in kinds or name == KIND


def result_benchmarks(run: Run) -> list[str]:
    """The run's benchmarks that are columns of the results table."""
    return [name for name in run.benchmarks() if not is_diagnostics(run, name)]


def with_step_auroc(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train-log rows with ``diag/auroc`` = ``diag/auroc_wins / diag/auroc_pairs`` added where a step
    had at least one (right, wrong) pair (the group step logs the AUROC in parts; see
    :func:`gemkit.gem.diagnostics.group_diagnostics`); other rows unchanged."""
    out = []
    for row in log:
        pairs = row.get("diag/auroc_pairs")
        if pairs and "diag/auroc_wins" in row:
            row = {**row, "diag/auroc": row["diag/auroc_wins"] / pairs}
        out.append(row)
    return out


def _value(key: str, cells: list[CellResult], name: str) -> str:
    outcomes = [c.outcome(name) for c in cells]
    failed = [o for o in outcomes if not o.ok]
    if failed:
        return "FAILED"
    values = [o.metrics[key] for o in outcomes if key in o.metrics]
    if not values:
        reasons = {o.conventions.get("diagnostics", {}).get("undefined", {}).get(key, "undefined") for o in outcomes}
        return "n/a (" + "; ".join(sorted(reasons)) + ")"
    mean = sum(values) / len(values)
    scale, digits = (100.0, 1) if key in ACCURACIES else (1.0, 3)
    text = f"{mean * scale:.{digits}f}"
    if len(outcomes) == 1:
        ci = outcomes[0].conventions.get("diagnostics", {}).get("ci", {}).get(key)
        if ci:
            text += f" [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
    elif len(values) < len(outcomes):
        text += f" ({len(values)}/{len(outcomes)} seeds defined)"
    return text


def _counts(cells: list[CellResult], name: str) -> str:
    found = [c.outcome(name).conventions.get("diagnostics", {}) for c in cells if c.outcome(name).ok]
    if not found:
        return "–"
    return " / ".join(f"{d.get('n_correct', '?')} of {d.get('n_candidates', '?')}" for d in found)


def _conventions(run: Run, name: str) -> dict[str, Any]:
    for cell in run.cells:
        outcome = cell.outcome(name)
        if outcome.ok:
            return outcome.conventions
    return {}


def section(run: Run, rows: dict[str, list[CellResult]], order: list[str], titles: dict[str, str]) -> list[str]:
    """Markdown lines of the section (empty when the run has no scorer-diagnostics benchmark)."""
    names = [n for n in run.benchmarks() if is_diagnostics(run, n)]
    if not names:
        return []
    parts = ["## Scorer diagnostics\n",
             "Does the self-score track correctness? k candidates sampled per held-out problem and scored as SEGA "
             "does, each checked against the gold answer. Base = before training, other rows = after training. "
             "AUROC: P(a right candidate outscores a wrong one), 0.5 = chance (pooled over all candidates; "
             "'in prompt': within each prompt with right and wrong candidates, what SEGA's group-centred advantages "
             "use); r_pb: point-biserial correlation of score and correctness. Accuracies in % over prompts "
             "[95% bootstrap CI]: best-of-k choosing by the score, random choice (mean correctness), oracle (pass@k). "
             "Definitions: docs/metrics.md, \"Scorer diagnostics\".\n"]
    for name in names:
        conv = _conventions(run, name)
        parts += [f"### {name}: scorer `{conv.get('scorer', '?')}`, k = {conv.get('k', '?')}, "
                  f"check `{conv.get('check', '?')}` on `{conv.get('source', '?')}`\n",
                  "| Method | " + " | ".join(COLUMNS.values()) + " | correct candidates |",
                  "|---|" + "---|" * (len(COLUMNS) + 1)]
        for key in order:
            cells = rows.get(key, [])
            if not any(name in c.benchmarks or not c.ok for c in cells):
                continue
            values = [_value(metric, cells, name) for metric in COLUMNS]
            parts.append(f"| {titles.get(key, key)} | " + " | ".join(values) + f" | {_counts(cells, name)} |")
        parts.append("")
    return parts
