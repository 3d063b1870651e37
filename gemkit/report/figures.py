"""Report figures, each saved as PNG (for HTML) and PDF (for papers); matplotlib's Agg backend only.

- ``scores``: bars grouped by benchmark (a panel each), one bar per method, 95 % bootstrap CI whiskers.
- ``training_curves``: loss, GEM score, final-answer entropy and response length per step (mean
  over seeds), and with gold answers the score-vs-correct AUROC and candidate correctness, from
  each cell's ``train_log.jsonl``.
- ``data_efficiency_<benchmark>``: primary metric against training-set size, mean over seeds with a
  95 % CI from a two-stage bootstrap over seeds and items.
- ``subsets_<benchmark>``: methods × subsets heat map (e.g. RewardBench's categories).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gemkit.report.tables import Table  # noqa: E402

#: train-log key -> panel title; GEM's signals, DPO's margin, then the scorer diagnostics a group step
#: logs when its prompts have gold answers (does the score still track correctness?)
CURVES = {"loss": "loss", "score_mean": "score S (Eq. 1)", "h_final_mean": "final-answer entropy (nats)",
          "response_length": "response length (tokens)", "rewards/margins": "reward margin",
          "diag/auroc": "score-vs-correct AUROC", "diag/correct_mean": "candidates correct (fraction)"}


def _save(fig: Any, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    fig.savefig(out[0], dpi=130)
    fig.savefig(out[1])
    plt.close(fig)
    return out


def bars(table: Table, path: Path) -> list[Path]:
    """One panel per benchmark (each on its own scale), one bar per method with its 95 % bootstrap
    CI; a failed cell is marked FAILED in place of a bar."""
    columns, methods = table.columns, table.methods
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, max(1, len(columns)), figsize=(0.5 + (1.0 + 0.45 * len(methods)) * len(columns), 3.4),
                             squeeze=False)
    for ax, column in zip(axes[0], columns, strict=False):
        scale = table.scale(column)
        for i, method in enumerate(methods):
            cell = table.cell(method, column)
            if cell.mean is None or cell.error:
                ax.text(i, 0, "FAILED" if cell.error else "–", rotation=90, ha="center", va="bottom", fontsize=7,
                        color="#b00020")
                continue
            low, high = cell.ci or (cell.mean, cell.mean)
            ax.bar(i, cell.mean * scale, 0.8, color=colors(i % 10),
                   yerr=[[max(0.0, (cell.mean - low) * scale)], [max(0.0, (high - cell.mean) * scale)]], capsize=2)
        ax.set_xticks(range(len(methods)), [table.title(m) for m in methods], rotation=45, ha="right", fontsize=7)
        arrow = "↑" if table.higher_is_better.get(column, True) else "↓"
        ax.set_title(f"{table.title(column)} {arrow}", fontsize=9)
        ax.set_ylabel("%, 95% CI" if table.percent.get(column, True) else "95% CI", fontsize=8)
    return _save(fig, path)


def training_curves(logs: dict[str, list[list[dict[str, Any]]]], path: Path) -> list[Path]:
    """One panel per logged signal; one line per method (mean over its seeds at each step)."""
    keys = [k for k in CURVES if any(k in row for runs in logs.values() for rows in runs for row in rows)]
    panels = max(1, len(keys))
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 2.9), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        for label, runs in logs.items():
            by_step: dict[int, list[float]] = {}
            for rows in runs:
                for row in rows:
                    if key in row and row[key] is not None and "step" in row:
                        by_step.setdefault(int(row["step"]), []).append(float(row[key]))
            if by_step:
                steps = sorted(by_step)
                ax.plot(steps, [float(np.mean(by_step[s])) for s in steps], label=label, linewidth=1.2)
        ax.set_title(CURVES[key], fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def data_efficiency(curves: dict[str, dict[int, list[float]]], ylabel: str, path: Path, *, percent: bool = True,
                    intervals: dict[str, dict[int, tuple[float, float] | None]] | None = None) -> list[Path]:
    """Metric against the number of training pairs, one line per method: the mean over seeds with
    its 95 % CI from ``intervals`` (method -> shots -> (low, high), the two-stage bootstrap over
    seeds and items of :func:`gemkit.report.stats.hierarchical_bootstrap_ci`) as asymmetric error
    bars and a shaded band. A point without an interval (None: its items do not average to the
    metric) is drawn without a bar, and the title says so."""
    scale = 100.0 if percent else 1.0
    fig, ax = plt.subplots(figsize=(4.6, 3.5))
    missing = False
    for method, by_shots in curves.items():
        shots = sorted(by_shots)
        means = np.array([float(np.mean(by_shots[s])) for s in shots])
        cis = [(intervals or {}).get(method, {}).get(s) for s in shots]
        missing |= any(ci is None for ci in cis)
        low = np.array([ci[0] if ci else m for ci, m in zip(cis, means, strict=True)])
        high = np.array([ci[1] if ci else m for ci, m in zip(cis, means, strict=True)])
        # a percentile interval of a skewed bootstrap distribution need not contain the estimate: no negative bars
        yerr = np.clip(np.stack([means - low, high - means]), 0.0, None) * scale
        line = ax.errorbar(shots, means * scale, yerr=yerr, marker="o", capsize=3, label=method)
        ax.fill_between(shots, low * scale, high * scale, color=line[0].get_color(), alpha=0.15, linewidth=0)
    all_shots = sorted({s for by_shots in curves.values() for s in by_shots})
    if all_shots and all_shots[0] > 0 and all_shots[-1] / all_shots[0] >= 8:
        ax.set_xscale("log")
    seeds = sorted({len(v) for by_shots in curves.values() for v in by_shots.values()})
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    ax.set_title(f"mean over {n} seeds, 95% CI (bootstrap over seeds and items)"
                 + ("\npoints without a bar: no item-level interval" if missing else ""), fontsize=8)
    ax.set_xlabel("training pairs")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def subset_heatmap(values: dict[str, dict[str, float]], title: str, path: Path, *, titles: dict[str, str] | None = None
                   ) -> list[Path]:
    """Methods (rows) × subsets (columns), values in %, each cell annotated."""
    methods = list(values)
    subsets = sorted({s for row in values.values() for s in row})
    grid = np.array([[values[m].get(s, np.nan) * 100 for s in subsets] for m in methods], dtype=float)
    fig, ax = plt.subplots(figsize=(2.2 + 0.75 * len(subsets), 1.2 + 0.42 * len(methods)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto", vmin=0, vmax=100)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 60 else "black")
    ax.set_xticks(range(len(subsets)), subsets, rotation=40, fontsize=7, ha="right")
    ax.set_yticks(range(len(methods)), [(titles or {}).get(m, m) for m in methods], fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="%")
    return _save(fig, path)
