"""One self-contained HTML page: tables inline, figures embedded as base64 PNG, the run's provenance.

Nothing is linked or fetched: the page can be mailed or attached to an issue as a single file.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from gemkit.report.schema import Manifest, Run
from gemkit.report.tables import AVG, Table

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{padding:.25em .7em;text-align:center}td:first-child,th:first-child{text-align:left}
thead th{border-top:2px solid #222;border-bottom:1px solid #222}tbody tr:last-child td{border-bottom:2px solid #222}
td.failed{color:#b00020}p.note{font-size:.85em;color:#555;margin:.2em 0}
figure{display:inline-block;margin:.6em}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
code{background:#f3f3f3;padding:0 .2em}
"""


def _esc(value: Any) -> str:
    return html.escape("–" if value is None else str(value))


def main_table(table: Table) -> str:
    columns = table.display_columns()
    head = "".join(f"<th>{_esc(c if c == AVG else table.title(c))} "
                   f"{'' if c == AVG else ('↑' if table.higher_is_better.get(c, True) else '↓')}</th>" for c in columns)
    body = []
    for method in table.methods:
        cells = []
        for column in columns:
            cell, text = table.cell(method, column), _esc(table.text(method, column))
            rank = table.ranks(column).get(method)
            text = f"<b>{text}</b>" if rank == 1 else (f"<u>{text}</u>" if rank == 2 else text)
            title = f" title='95% CI {cell.ci[0] * 100:.1f}–{cell.ci[1] * 100:.1f}'" if cell.ci else ""
            cells.append(f"<td class='failed'>{text}</td>" if cell.error else f"<td{title}>{text}</td>")
        body.append(f"<tr><td>{_esc(table.title(method))}</td>{''.join(cells)}</tr>")
    notes = "".join(f"<p class='note'>{_esc(n)}</p>" for n in table.notes)
    return f"<table><thead><tr><th>Method</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}"


def _tests_table(tests: list[dict[str, Any]], table: Table) -> str:
    if not tests:
        return "<p class='note'>No paired tests (the baseline is not a row of this run).</p>"
    rows = "".join(
        f"<tr><td>{_esc(table.title(t['method']))}</td><td>{_esc(table.title(t['column']))}</td><td>{t['n']}</td>"
        f"<td>{_delta(table, t['column'], t['diff'])}</td><td>[{_delta(table, t['column'], t['ci'][0])}, "
        f"{_delta(table, t['column'], t['ci'][1])}]</td>"
        f"<td>{_esc(t['test'])}</td><td>{t['p']:.3g}</td><td>{'<b>' if t['significant'] else ''}{t['p_holm']:.3g}"
        f"{'</b>' if t['significant'] else ''}</td></tr>" for t in tests)
    return ("<table><thead><tr><th>Method</th><th>Benchmark</th><th>n</th><th>Δ (pp, or raw)</th><th>95% CI</th>"
            f"<th>test</th><th>p</th><th>p (Holm)</th></tr></thead><tbody>{rows}</tbody></table>")


def _delta(table: Table, column: str, value: float) -> str:
    return f"{value * table.scale(column):+.{table.digits(column)}f}"


def _manifest(manifest: Manifest) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in manifest.packages.items() if v)
    hardware = ", ".join(f"{k}: {v}" for k, v in manifest.hardware.items())
    config = manifest.config
    lines = [("gemkit", manifest.gemkit_version), ("git commit", manifest.git_commit),
             ("started", manifest.started), ("finished", manifest.finished or "not finished"),
             ("model", config.get("model")), ("training data", config.get("train")),
             ("shots", config.get("shots")), ("seeds", config.get("seeds")), ("packages", packages),
             ("hardware", hardware)]
    return "<table><tbody>" + "".join(f"<tr><td>{_esc(k)}</td><td style='text-align:left'>{_esc(v)}</td></tr>"
                                      for k, v in lines) + "</tbody></table>"


def _cells(run: Run) -> str:
    rows = []
    for c in run.cells:
        status = "ok" if c.ok else f"FAILED ({c.error})"
        failed = [f"{n}: {o.error}" for n, o in c.benchmarks.items() if not o.ok]
        status += "".join(f"; {n} FAILED" for n in failed)
        train_s = c.train.wall_s if c.train else None
        rows.append(f"<tr><td><code>{_esc(c.cell_id)}</code></td><td>{_esc(c.method)}</td><td>{c.shots}</td>"
                    f"<td>{c.seed}</td><td class='{'' if c.ok and not failed else 'failed'}'>{_esc(status)}</td>"
                    f"<td>{_esc(train_s)}</td><td>{_esc(c.wall_s)}</td><td>{_esc(c.peak_mem_mb)}</td></tr>")
    return ("<table><thead><tr><th>Cell</th><th>Method</th><th>Shots</th><th>Seed</th><th>Status</th>"
            "<th>Train s</th><th>Wall s</th><th>Peak MB</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def render(run: Run, table: Table, tests: list[dict[str, Any]], figure_paths: list[Path], *,
           title: str = "gemkit bench report") -> str:
    images = "".join(
        f"<figure><img alt='{_esc(p.stem)}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{_esc(p.stem)}</figcaption></figure>" for p in figure_paths if p.suffix == ".png")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p>Run <code>{_esc(run.path)}</code></p><h2>Results</h2>{main_table(table)}"
            f"<h2>Paired comparisons</h2>{_tests_table(tests, table)}<h2>Figures</h2>{images}"
            f"<h2>Cells</h2>{_cells(run)}<h2>Run</h2>{_manifest(run.manifest)}</body></html>\n")
