"""The methods × benchmarks table and its Markdown, CSV, JSON and LaTeX renderings."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableCell:
    mean: float | None
    std: float = 0.0
    ci: tuple[float, float] | None = None
    n_seeds: int = 0
    error: str | None = None
    marker: str = ""  # significance marker vs the baseline

    def text(self, digits: int = 1, scale: float = 100.0) -> str:
        if self.error is not None:
            return f"FAILED ({self.error[:60]})"
        if self.mean is None:
            return "–"
        body = f"{self.mean * scale:.{digits}f}"
        if self.n_seeds > 1:
            body += f" ± {self.std * scale:.{digits}f}"
        return body + self.marker


@dataclass
class Table:
    methods: list[str]
    columns: list[str]  # "benchmark/metric"
    higher_is_better: dict[str, bool]
    cells: dict[tuple[str, str], TableCell] = field(default_factory=dict)

    def cell(self, method: str, column: str) -> TableCell:
        return self.cells.get((method, column), TableCell(None))

    def ranks(self, column: str) -> dict[str, int]:
        """1 for the best value(s), 2 for the next distinct value; ties share a rank; failures unranked."""
        values = {m: self.cell(m, column).mean for m in self.methods}
        distinct = sorted({round(v, 12) for v in values.values() if v is not None and not math.isnan(v)},
                          reverse=self.higher_is_better.get(column, True))
        return {m: distinct.index(round(v, 12)) + 1 for m, v in values.items()
                if v is not None and not math.isnan(v) and round(v, 12) in distinct}


def to_markdown(table: Table) -> str:
    head = "| Method | " + " | ".join(f"{c} {'↑' if table.higher_is_better.get(c, True) else '↓'}"
                                       for c in table.columns) + " |"
    rule = "|---|" + "---|" * len(table.columns)
    rows = []
    for method in table.methods:
        rows.append(f"| {method} | " + " | ".join(_md_cell(table, method, c) for c in table.columns) + " |")
    return "\n".join([head, rule, *rows]) + "\n"


def _md_cell(table: Table, method: str, column: str) -> str:
    text = table.cell(method, column).text()
    rank = table.ranks(column).get(method)
    return f"**{text}**" if rank == 1 else (f"<u>{text}</u>" if rank == 2 else text)


def to_latex(table: Table, caption: str = "Results") -> str:
    """booktabs table; best per column in bold, second best underlined, direction-aware."""
    spec = "l" + "c" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             "Method & " + " & ".join(_latex_escape(c) + (r" $\uparrow$" if table.higher_is_better.get(c, True)
                                                          else r" $\downarrow$") for c in table.columns) + r" \\",
             r"\midrule"]
    for method in table.methods:
        cells = []
        for column in table.columns:
            text = _latex_escape(table.cell(method, column).text()).replace("±", r"$\pm$")
            rank = table.ranks(column).get(method)
            cells.append(rf"\textbf{{{text}}}" if rank == 1 else (rf"\underline{{{text}}}" if rank == 2 else text))
        lines.append(_latex_escape(method) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_latex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "column", "mean", "std", "ci_low", "ci_high", "n_seeds", "error"])
    for method in table.methods:
        for column in table.columns:
            c = table.cell(method, column)
            writer.writerow([method, column, c.mean, c.std, *(c.ci or (None, None)), c.n_seeds, c.error])
    return buffer.getvalue()


def to_json(table: Table, extra: dict[str, Any] | None = None) -> str:
    rows = [{"method": m, "column": c, "mean": table.cell(m, c).mean, "std": table.cell(m, c).std,
             "ci": table.cell(m, c).ci, "n_seeds": table.cell(m, c).n_seeds, "error": table.cell(m, c).error,
             "higher_is_better": table.higher_is_better.get(c, True)} for m in table.methods for c in table.columns]
    return json.dumps({"rows": rows, **(extra or {})}, indent=2) + "\n"
