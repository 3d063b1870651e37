"""Matplotlib figures (Agg, PNG + PDF): bars with CIs, training curves, data efficiency, subset heat map."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gemkit.report.tables import Table  # noqa: E402


def _save(fig: Any, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return [path.with_suffix(".png"), path.with_suffix(".pdf")]


def bars(table: Table, path: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(table.columns), 3.6))
    width = 0.8 / max(1, len(table.methods))
    for i, method in enumerate(table.methods):
        xs, ys, lo, hi = [], [], [], []
        for j, column in enumerate(table.columns):
            cell = table.cell(method, column)
            if cell.mean is None:
                continue
            xs.append(j + i * width)
            ys.append(cell.mean * 100)
            low, high = cell.ci or (cell.mean, cell.mean)
            lo.append((cell.mean - low) * 100)
            hi.append((high - cell.mean) * 100)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=method)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(table.columns))], table.columns, rotation=15, fontsize=8)
    ax.set_ylabel("score (%) with 95% CI")
    ax.legend(fontsize=8)
    return _save(fig, path)


def training_curves(logs: dict[str, list[dict[str, Any]]], path: Path) -> list[Path]:
    keys = [k for k in ("loss", "score_mean", "h_final_mean", "response_length", "rewards/margins")
            if any(k in row for rows in logs.values() for row in rows)]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.2 * max(1, len(keys)), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, rows in logs.items():
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                ax.plot(*zip(*points), label=label)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def data_efficiency(curves: dict[str, list[tuple[int, float]]], metric: str, path: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for method, points in curves.items():
        ax.plot(*zip(*sorted(points)), marker="o", label=method)
    ax.set_xlabel("training pairs")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    return _save(fig, path)


def subset_heatmap(values: dict[str, dict[str, float]], path: Path) -> list[Path]:
    methods = list(values)
    subsets = sorted({s for row in values.values() for s in row})
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(subsets), 1 + 0.4 * len(methods)))
    grid = [[values[m].get(s, float("nan")) * 100 for s in subsets] for m in methods]
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(subsets)), subsets, rotation=60, fontsize=7, ha="right")
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    fig.colorbar(image, ax=ax)
    return _save(fig, path)
