"""Build the report of a bench run from its cell records: tables, paired statistics, figures, HTML.

Reports are derived from data only (``cells/*/result.json`` and item files), never from training
code; a failed cell is shown as FAILED, never as 0.
"""
from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from gemkit.io import atomic_write_text, read_jsonl
from gemkit.report import figures
from gemkit.report.stats import bootstrap_ci, holm, mean_std, paired_bootstrap_ci, paired_p_value
from gemkit.report.tables import Table, TableCell, to_csv, to_json, to_latex, to_markdown
from gemkit.runner.bench import load_cells, read_items

FORMATS = ("md", "tex", "csv", "json", "html")


def _label(record: dict[str, Any], several_shots: bool) -> str:
    return f"{record['method']}@{record['shots']}" if several_shots and record["method"] != "base" else record["method"]


def build_table(run_dir: Path, records: list[dict[str, Any]], baseline: str) -> tuple[Table, list[dict[str, Any]]]:
    several_shots = len({r["shots"] for r in records if r["method"] != "base"}) > 1
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[_label(record, several_shots)].append(record)
    columns: list[str] = []
    directions: dict[str, bool] = {}
    for record in records:
        for name, bench in record.get("benchmarks", {}).items():
            if bench.get("status") == "ok":
                column = f"{name}/{bench['primary']}"
                if column not in columns:
                    columns.append(column)
                directions[column] = bench["higher_is_better"].get(bench["primary"], True)
    table = Table(list(grouped), columns, directions)
    item_values: dict[tuple[str, str], dict[str, float]] = {}
    for label, group in grouped.items():
        for column in columns:
            name = column.split("/")[0]
            failures = [r.get("error") or r.get("benchmarks", {}).get(name, {}).get("error") for r in group
                        if r["status"] != "ok" or r.get("benchmarks", {}).get(name, {}).get("status") != "ok"]
            if failures:
                table.cells[(label, column)] = TableCell(None, error=str(failures[0]))
                continue
            scores = [r["benchmarks"][name]["metrics"][r["benchmarks"][name]["primary"]] for r in group]
            mean, std = mean_std(scores)
            # Items of all seeds, keyed by (seed, id), so pairing below matches seed with seed.
            items = {f"{r['seed']}:{row['id']}": float(row["correct"]) for r in group
                     for row in read_items(run_dir, r, name)}
            item_values[(label, column)] = items
            table.cells[(label, column)] = TableCell(mean, std, bootstrap_ci(list(items.values())), len(group))
    tests = []
    if baseline in grouped:
        for label in grouped:
            if label == baseline:
                continue
            rows = []
            for column in columns:
                a, b = item_values.get((label, column)), item_values.get((baseline, column))
                if not a or not b:
                    continue
                shared = sorted(set(a) & set(b))
                if not shared:
                    shared = sorted({k.split(":", 1)[1] for k in a} & {k.split(":", 1)[1] for k in b})
                    a = {k.split(":", 1)[1]: v for k, v in a.items()}
                    b = {k.split(":", 1)[1]: v for k, v in b.items()}
                xa, xb = [a[k] for k in shared], [b[k] for k in shared]
                rows.append({"method": label, "baseline": baseline, "column": column, "n": len(shared),
                             "diff": sum(xa) / len(xa) - sum(xb) / len(xb), "ci": paired_bootstrap_ci(xa, xb),
                             "p": paired_p_value(xa, xb)})
            for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
                row["p_holm"] = adjusted
                if adjusted < 0.05:
                    table.cells[(row["method"], row["column"])].marker = "†"
            tests += rows
    return table, tests


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *, baseline: str = "dpo",
                 formats: tuple[str, ...] = FORMATS) -> Path:
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    records = load_cells(run_dir)
    if not records:
        from gemkit.errors import ConfigError

        raise ConfigError(f"{run_dir} has no finished cells (cells/*/result.json); run `gemkit bench` first")
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    table, tests = build_table(run_dir, records, baseline)
    figure_paths = _figures(run_dir, records, table, out / "figures")
    tests_md = _tests_markdown(tests, baseline)
    markdown = (f"# gemkit bench report\n\nRun: `{run_dir}` · commit `{manifest.get('git_commit')}` · "
                f"gemkit {manifest.get('gemkit_version')}\n\nScores in %, mean ± std over seeds; **best**, "
                f"<u>second best</u> per column (direction-aware); † = differs from `{baseline}` with p < 0.05 "
                f"after Holm correction.\n\n" + to_markdown(table) + "\n" + tests_md + _cells_markdown(records)
                + "\n" + "".join(f"![{p.stem}](figures/{p.name})\n" for p in figure_paths if p.suffix == ".png"))
    writers = {"md": ("report.md", markdown), "tex": ("table.tex", to_latex(table, "gemkit bench")),
               "csv": ("table.csv", to_csv(table)), "json": ("table.json", to_json(table, {"tests": tests})),
               "html": ("report.html", _html(markdown, table, figure_paths, manifest))}
    for fmt in formats:
        name, text = writers[fmt]
        atomic_write_text(out / name, text)
    return out


def _tests_markdown(tests: list[dict[str, Any]], baseline: str) -> str:
    if not tests:
        return ""
    lines = [f"## Paired comparison with `{baseline}` (shared items)\n", "| Method | Column | n | Δ (pp) | 95% CI | p | p (Holm) |",
             "|---|---|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['method']} | {t['column']} | {t['n']} | {t['diff'] * 100:+.1f} | "
                     f"[{t['ci'][0] * 100:+.1f}, {t['ci'][1] * 100:+.1f}] | {t['p']:.3g} | {t['p_holm']:.3g} |")
    return "\n".join(lines) + "\n\n"


def _cells_markdown(records: list[dict[str, Any]]) -> str:
    lines = ["## Cells\n", "| Cell | Status | Train s | Wall s | Peak MB |", "|---|---|---|---|---|"]
    for r in records:
        status = "ok" if r["status"] == "ok" else f"FAILED: {r.get('error')}"
        train_s = (r.get("train") or {}).get("wall_s", "–")
        lines.append(f"| {r['cell_id']} | {status} | {train_s} | {r.get('wall_s', '–')} | {r.get('peak_mem_mb', '–')} |")
    return "\n".join(lines) + "\n"


def _figures(run_dir: Path, records: list[dict[str, Any]], table: Table, out: Path) -> list[Path]:
    paths = figures.bars(table, out / "scores")
    logs = {f"{r['method']} seed{r['seed']}": list(read_jsonl(run_dir / "cells" / r["cell_id"] / "train_log.jsonl"))
            for r in records if r.get("train")}
    if logs:
        paths += figures.training_curves(logs, out / "training_curves")
    shots = {r["shots"] for r in records if r["method"] != "base"}
    if len(shots) > 1:
        for column in table.columns:
            name = column.split("/")[0]
            curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for r in records:
                bench = r.get("benchmarks", {}).get(name, {})
                if r["method"] != "base" and bench.get("status") == "ok":
                    curves[r["method"]].append((r["shots"], bench["metrics"][bench["primary"]]))
            paths += figures.data_efficiency(dict(curves), column, out / f"data_efficiency_{name}")
    subsets: dict[str, dict[str, float]] = {}
    for r in records:
        for name, bench in r.get("benchmarks", {}).items():
            if bench.get("subsets"):
                subsets[f"{r['method']} seed{r['seed']}"] = bench["subsets"]
    if subsets:
        paths += figures.subset_heatmap(subsets, out / "subsets_heatmap")
    return paths


def _html(markdown: str, table: Table, figure_paths: list[Path], manifest: dict[str, Any]) -> str:
    """One self-contained page: the table, the statistics, every figure inlined as base64 PNG."""
    images = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{p.stem}</figcaption></figure>" for p in figure_paths if p.suffix == ".png")
    text = "\n".join(line for line in markdown.splitlines() if not line.startswith("!["))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>gemkit report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}pre{white-space:pre-wrap}"
            "img{max-width:100%}</style></head><body><h1>gemkit bench report</h1>"
            f"<pre>{html.escape(text)}</pre>{images}<h2>Manifest</h2><pre>"
            f"{html.escape(json.dumps({k: manifest.get(k) for k in ('packages', 'hardware', 'seeds', 'git_commit')}, indent=2))}"
            "</pre></body></html>\n")
