"""Build a run's report from its data: tables, paired statistics, figures and one HTML page.

Reports are derived from ``RUN_DIR`` only (:mod:`gemkit.report.schema`), never from training code,
so ``gemkit report`` can rebuild them at any time; a failed cell is shown as FAILED, never as 0.

Outputs in ``OUT`` (default ``RUN_DIR/report``): ``report.md``, ``table.tex``, ``table.csv``,
``table.json``, ``report.html`` and ``figures/*.png|pdf``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gemkit.errors import ConfigError
from gemkit.io import atomic_write_text
from gemkit.report import diagnostics, figures, html
from gemkit.report.analysis import Analysis, analyse
from gemkit.report.schema import Run, load_run
from gemkit.report.tables import (
    METHOD_TITLES,
    Table,
    throughput_cells,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)

FORMATS = ("md", "tex", "csv", "json", "html")
OUTPUT_NAMES = {"md": "report.md", "tex": "table.tex", "csv": "table.csv", "json": "table.json", "html": "report.html"}


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}")
    return formats


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *, baseline: str | None = "base",
                 formats: tuple[str, ...] = FORMATS, require_baseline: bool = False,
                 with_figures: bool | None = None) -> Path:
    """Write every requested format for ``run_dir``; returns the output directory.

    Figures are drawn when a format shows them (``md`` links them, ``html`` embeds them) unless
    ``with_figures`` says otherwise.
    """
    run = load_run(run_dir)
    if not run.cells:
        raise ConfigError(f"{run.path} has no finished cells (cells/*/result.json); run `gemkit bench` first")
    out = Path(out_dir) if out_dir else run.path / "report"
    analysis = analyse(run, baseline, require_baseline=require_baseline)
    if with_figures is None:
        with_figures = "md" in formats or "html" in formats
    figure_paths = make_figures(analysis, out / "figures") if with_figures else []
    texts = {
        "md": lambda: markdown(run, analysis, figure_paths, out),
        "tex": lambda: to_latex(analysis.table, caption=_caption(run)),
        "csv": lambda: to_csv(analysis.table),
        "json": lambda: to_json(analysis.table, {"baseline": analysis.baseline, "tests": analysis.tests,
                                                 "efficiency": efficiency_points(analysis),
                                                 "cells": [_cell_summary(c) for c in run.cells]}),
        "html": lambda: html.render(run, analysis.table, analysis.tests, figure_paths),
    }
    for fmt in formats:
        atomic_write_text(out / OUTPUT_NAMES[fmt], texts[fmt]())
    return out


def make_figures(analysis: Analysis, out: Path) -> list[Path]:
    table = analysis.table
    paths = figures.bars(table, out / "scores")
    if analysis.logs:
        paths += figures.training_curves({table.title(k): v for k, v in analysis.logs.items()}, out / "training_curves")
    for column in table.columns:
        name = column.split("/")[0]
        curves = analysis.efficiency.get(name, {})
        if len({s for by_shots in curves.values() for s in by_shots}) > 1:
            paths += figures.data_efficiency(curves, table.title(column), out / f"data_efficiency_{name}",
                                             percent=table.percent.get(column, True),
                                             intervals=analysis.efficiency_ci.get(name, {}))
        if analysis.subsets.get(name):
            ordered = {k: analysis.subsets[name][k] for k in table.methods if k in analysis.subsets[name]}
            paths += figures.subset_heatmap(ordered, f"{table.title(column)} by subset (%)",
                                            out / f"subsets_{name}", titles=table.titles)
    return paths


def _delta(table: Table, column: str, value: float) -> str:
    """A difference in percentage points for % columns, in the metric's own unit otherwise."""
    return f"{value * table.scale(column):+.{table.digits(column)}f}"


def _mde(table: Table, test: dict[str, Any]) -> str:
    mde = test.get("mde")
    return "–" if mde is None else f"±{abs(float(_delta(table, test['column'], mde))):.{table.digits(test['column'])}f}"


def mde_note(table: Table, tests: list[dict[str, Any]]) -> str:
    """One line per column: its item count and the largest MDE of its paired tests (the conservative one)."""
    lines = ["MDE: the smallest true difference the paired test detects with 80% power at the Holm "
             "first-step level α/m, at the comparison's observed discordance (docs/metrics.md). Per column:"]
    for column in table.columns:
        column_tests = [t for t in tests if t["column"] == column and t.get("mde") is not None]
        if column_tests:
            worst = max(column_tests, key=lambda t: t["mde"])
            lines.append(f"- {table.title(column)}: n = {worst['n']}, MDE {_mde(table, worst)}")
    return "\n".join(lines)


def _efficiency_columns(analysis: Analysis) -> list[tuple[str, list[str], list[int]]]:
    """(column, methods in table order, sizes) of each column whose curves have more than one size."""
    found = []
    for column in analysis.table.columns:
        curves = analysis.efficiency.get(column.split("/")[0], {})
        sizes = sorted({s for by_shots in curves.values() for s in by_shots})
        if len(sizes) > 1:
            methods = [m for m in dict.fromkeys(k.split("@")[0] for k in analysis.table.methods) if m in curves]
            found.append((column, methods, sizes))
    return found


def efficiency_points(analysis: Analysis) -> list[dict[str, Any]]:
    """table.json's ``efficiency``: one record per (column, method, size), raw fractions."""
    points = []
    for column, methods, sizes in _efficiency_columns(analysis):
        name = column.split("/")[0]
        for method in methods:
            for size in sizes:
                scores = analysis.efficiency[name][method].get(size)
                if scores:
                    ci = analysis.efficiency_ci.get(name, {}).get(method, {}).get(size)
                    points.append({"column": column, "method": method, "shots": size, "mean": sum(scores) / len(scores),
                                   "ci": list(ci) if ci else None, "n_seeds": len(scores)})
    return points


def _point_text(table: Table, column: str, point: dict[str, Any] | None, seeds: int) -> str:
    """"mean [low, high]" in the column's unit, "(k seeds)" when a point has fewer seeds than the rest."""
    if point is None:
        return "–"
    scale, digits = table.scale(column), table.digits(column)
    low, high = point["ci"] or (None, None)
    interval = "[–]" if low is None else f"[{low * scale:.{digits}f}, {high * scale:.{digits}f}]"
    marked = f" ({point['n_seeds']} seed{'s' * (point['n_seeds'] != 1)})" if point["n_seeds"] != seeds else ""
    return f"{point['mean'] * scale:.{digits}f} {interval}{marked}"


def efficiency_section(analysis: Analysis) -> list[str]:
    """"## Sample efficiency": per column, methods × training sizes as "mean [low, high]" in the
    column's unit; nothing unless the run has more than one training size."""
    table, columns = analysis.table, _efficiency_columns(analysis)
    if not columns:
        return []
    points = {(p["column"], p["method"], p["shots"]): p for p in efficiency_points(analysis)}
    seeds = max(p["n_seeds"] for p in points.values())
    parts = ["## Sample efficiency\n",
             f"Mean over seeds ({seeds} per point unless marked); in brackets its 95% CI from a two-stage bootstrap "
             "(2,000 resamples: seeds drawn with replacement, then each drawn seed's test items with replacement; "
             "docs/metrics.md). [–]: the items do not average to the metric, so no interval.\n"]
    for column, methods, sizes in columns:
        unit = " (%)" if table.percent.get(column, True) else ""
        parts += [f"**{table.title(column)}{unit}**\n", "| Method | " + " | ".join(f"{s} pairs" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        parts += [f"| {METHOD_TITLES.get(method, method)} | "
                  + " | ".join(_point_text(table, column, points.get((column, method, size)), seeds) for size in sizes)
                  + " |" for method in methods]
        parts.append("")
    return parts


def _caption(run: Run) -> str:
    config = run.manifest.config
    model = config.get("model") or "the base model"
    return f"Results on {model}, trained on {config.get('train') or 'the training pairs'}."


def _cell_summary(cell: Any) -> dict[str, Any]:
    return {"cell_id": cell.cell_id, "method": cell.method, "shots": cell.shots, "seed": cell.seed,
            "status": cell.status, "error": cell.error, "wall_s": cell.wall_s, "peak_mem_mb": cell.peak_mem_mb,
            "benchmarks": {n: {"status": o.status, "error": o.error, "metrics": o.metrics, "subsets": o.subsets}
                           for n, o in cell.benchmarks.items()}}


def markdown(run: Run, analysis: Analysis, figure_paths: list[Path], out: Path) -> str:
    table, manifest = analysis.table, run.manifest
    parts = [f"# gemkit bench report\n\nRun `{run.path}` · gemkit {manifest.gemkit_version or 'unknown'} · commit "
             f"`{(manifest.git_commit or 'unknown')[:12]}` · model `{manifest.config.get('model', 'unknown')}` · "
             # runs from before the option existed generated with transformers
             f"generator `{manifest.config.get('generator', 'hf')}`\n",
             "## Results\n", to_markdown(table)]
    if analysis.tests:
        parts += [f"## Paired comparison with {table.title(analysis.baseline or '')} (shared items)\n",
                  "| Method | Benchmark | n | Δ (pp, or raw) | 95% CI | test | p | p (Holm) | MDE |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t in analysis.tests:
            diff, low, high = (_delta(table, t["column"], v) for v in (t["diff"], *t["ci"]))
            parts.append(f"| {table.title(t['method'])} | {table.title(t['column'])} | {t['n']} | {diff} | "
                         f"[{low}, {high}] | {t['test']} | {t['p']:.3g} | {t['p_holm']:.3g}"
                         f"{' †' if t['significant'] else ''} | {_mde(table, t)} |")
        parts += ["", mde_note(table, analysis.tests), ""]
    parts += efficiency_section(analysis)
    parts += diagnostics.section(run, analysis.rows, table.methods, table.titles)
    parts += ["## Cells\n", "| Cell | Status | Train s | Wall s | Peak MB | Tokens/s | MFU % | Train peak GB |",
              "|---|---|---|---|---|---|---|---|"]
    for c in run.cells:
        status = "ok" if c.ok else f"FAILED ({c.error})"
        status += "".join(f"; {n} FAILED ({o.error})" for n, o in c.benchmarks.items() if not o.ok)
        train_s = c.train.wall_s if c.train else "–"
        tokens, mfu, memory = throughput_cells(c.train_log() if c.ok else [])
        parts.append(f"| `{c.cell_id}` | {status.replace('|', '/')} | {train_s} | {c.wall_s or '–'} | "
                     f"{c.peak_mem_mb or '–'} | {tokens} | {mfu} | {memory} |")
    parts += ["", "## Figures\n"]
    parts += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in figure_paths if p.suffix == ".png"]
    return "\n".join(parts) + "\n"
