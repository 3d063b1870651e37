"""The methods × benchmarks table (like the GEM paper's Tables 1–3) and its renderings.

Rows are methods, columns are ``benchmark/metric`` (the benchmark's primary metric). A cell holds
the mean and sample std over seeds, the bootstrap CI over items, and a significance marker. Per
column the best value is **bold** and the second best underlined, honouring the column's
direction; ranks are taken on the values *as printed*, so values that print alike tie: all tied
values share the rank, and the second best is the next distinct printed value. A failed cell
prints ``FAILED (<error>)`` and is never ranked or averaged as a number.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

AVG = "Avg."
SIGNIFICANT = "†"  # differs from the baseline, p < 0.05 after Holm

METHOD_TITLES = {"base": "Base model", "sft": "Supervised (SFT)", "rm-ppo": "Reward Model + PPO", "dpo": "DPO",
                 "ipo": "IPO", "pro": "PRO", "kto": "KTO", "simpo": "SimPO", "orpo": "ORPO", "grpo": "GRPO",
                 "rm": "Reward model", "sega": "GEM (SEGA)"}
BENCHMARK_TITLES = {"ultrafeedback": "UltraFeedback", "pku-saferlhf": "PKU-SafeRLHF", "rewardbench": "RewardBench",
                    "gsm8k": "GSM8K", "math": "MATH", "truthfulqa": "TruthfulQA", "mt-bench": "MT-Bench",
                    "icliniq": "iCliniq", "arithmetic": "Arithmetic", "arithmetic-pref": "Arithmetic pref."}
METRIC_TITLES = {"accuracy": "Acc.", "exact_match": "EM", "em": "EM", "win_rate": "Win-rate",
                 "agreement": "Agreement"}


def is_percent_metric(metric: str) -> bool:
    """Fractions shown as %: accuracies, rates, exact match, agreement (others are printed raw)."""
    name = metric.lower()
    return (name in METRIC_TITLES or name.startswith("accuracy") or name.endswith(("accuracy", "_rate"))
            or name in ("acc", "f1", "pass@1"))


def column_title(column: str) -> str:
    benchmark, _, metric = column.partition("/")
    title = BENCHMARK_TITLES.get(benchmark, benchmark)
    return f"{title} {METRIC_TITLES.get(metric, metric)}".strip() if metric else title


@dataclass
class TableCell:
    mean: float | None
    std: float = 0.0
    ci: tuple[float, float] | None = None
    n_seeds: int = 0
    error: str | None = None
    marker: str = ""

    def text(self, digits: int = 1, scale: float = 100.0) -> str:
        if self.error is not None:
            return f"FAILED ({_short(self.error)})"
        if self.mean is None or math.isnan(self.mean):
            return "–"
        body = f"{self.mean * scale:.{digits}f}"
        if self.n_seeds > 1:
            body += f" ± {self.std * scale:.{digits}f}"
        return body + self.marker


def _short(error: str, limit: int = 60) -> str:
    first = error.strip().splitlines()[0] if error.strip() else "error"
    return first if len(first) <= limit else first[: limit - 1] + "…"


@dataclass
class Table:
    """``cells[(method, column)]``; ``titles`` maps a method or column key to its printed name."""

    methods: list[str]
    columns: list[str]
    higher_is_better: dict[str, bool]
    cells: dict[tuple[str, str], TableCell] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    percent: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def title(self, key: str) -> str:
        return self.titles.get(key, key)

    def scale(self, column: str) -> float:
        return 100.0 if self.percent.get(column, True) else 1.0

    def digits(self, column: str) -> int:
        return 1 if self.percent.get(column, True) else 2

    def has_average(self) -> bool:
        """An Avg. column (the paper's) only where it means something: ≥ 2 percent, higher-is-better columns."""
        return len(self.columns) >= 2 and all(self.higher_is_better.get(c, True) and self.percent.get(c, True)
                                              for c in self.columns)

    def display_columns(self) -> list[str]:
        return self.columns + ([AVG] if self.has_average() else [])

    def cell(self, method: str, column: str) -> TableCell:
        if column == AVG:
            means = [self.cell(method, c).mean for c in self.columns]
            if any(m is None or self.cell(method, c).error for m, c in zip(means, self.columns, strict=True)):
                return TableCell(None)  # "–": an average over a failed cell does not exist
            return TableCell(sum(means) / len(means), n_seeds=1)  # type: ignore[arg-type]
        return self.cells.get((method, column), TableCell(None))

    def text(self, method: str, column: str) -> str:
        return self.cell(method, column).text(self.digits(column), self.scale(column))

    def ranks(self, column: str) -> dict[str, int]:
        """1 for the best printed value(s), 2 for the next distinct one; failed or missing cells unranked."""
        printed = {}
        for m in self.methods:
            cell = self.cell(m, column)
            if cell.error is None and cell.mean is not None and not math.isnan(cell.mean):
                printed[m] = round(cell.mean * self.scale(column), self.digits(column))
        higher = self.higher_is_better.get(column, True)
        distinct = sorted(set(printed.values()), reverse=higher)
        return {m: distinct.index(v) + 1 for m, v in printed.items()}


def to_markdown(table: Table) -> str:
    columns = table.display_columns()
    head = "| Method | " + " | ".join(_header(table, c) for c in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = []
    for method in table.methods:
        ranks = {c: table.ranks(c).get(method) for c in columns}
        cells = [_mark(table.text(method, c), ranks[c], "**{}**", "<u>{}</u>") for c in columns]
        rows.append(f"| {table.title(method)} | " + " | ".join(cells) + " |")
    notes = "".join(f"\n{n}" for n in table.notes)
    return "\n".join([head, rule, *rows]) + "\n" + (notes + "\n" if notes else "")


def _header(table: Table, column: str) -> str:
    if column == AVG:
        return AVG
    return f"{table.title(column)} {'↑' if table.higher_is_better.get(column, True) else '↓'}"


def _mark(text: str, rank: int | None, best: str, second: str) -> str:
    return best.format(text) if rank == 1 else (second.format(text) if rank == 2 else text)


def to_latex(table: Table, caption: str = "Results", label: str = "tab:gemkit-bench") -> str:
    """A booktabs table: ``\\textbf`` best, ``\\underline`` second best per column, ``$^\\dagger$`` significance."""
    columns = table.display_columns()
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{l{'c' * len(columns)}}}",
             r"\toprule",
             "Method & " + " & ".join(_latex_header(table, c) for c in columns) + r" \\", r"\midrule"]
    for method in table.methods:
        cells = []
        for column in columns:
            text = latex_escape(table.text(method, column))
            text = text.replace("±", r"$\pm$").replace(SIGNIFICANT, r"$^\dagger$")
            cells.append(_mark(text, table.ranks(column).get(method), r"\textbf{{{}}}", r"\underline{{{}}}"))
        lines.append(latex_escape(table.title(method)) + " & " + " & ".join(cells) + r" \\")
        if method == "base" and len(table.methods) > 1:
            lines.append(r"\midrule")
    full_caption = latex_escape(" ".join([caption, *table.notes]))
    full_caption = full_caption.replace("±", r"$\pm$").replace(SIGNIFICANT, r"$^\dagger$")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{full_caption}}}", rf"\label{{{label}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_header(table: Table, column: str) -> str:
    if column == AVG:
        return AVG
    arrow = r" $\uparrow$" if table.higher_is_better.get(column, True) else r" $\downarrow$"
    return latex_escape(table.title(column)) + arrow


def latex_escape(text: str) -> str:
    out = []
    for char in text:
        out.append({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
                    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}.get(char, char))
    return "".join(out)


def to_csv(table: Table) -> str:
    """Long format, raw fractions (not ×100), one row per (method, column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "column", "mean", "std", "ci_low", "ci_high", "n_seeds", "status", "error",
                     "significant", "rank"])
    for method in table.methods:
        for column in table.display_columns():
            c = table.cell(method, column)
            writer.writerow([method, column, c.mean, c.std, *(c.ci or (None, None)), c.n_seeds,
                             "failed" if c.error else ("ok" if c.mean is not None else "missing"), c.error,
                             int(bool(c.marker)), table.ranks(column).get(method)])
    return buffer.getvalue()


def to_json(table: Table, extra: dict[str, Any] | None = None) -> str:
    rows = []
    for m in table.methods:
        for c in table.display_columns():
            cell = table.cell(m, c)
            rows.append({"method": m, "method_title": table.title(m), "column": c, "mean": cell.mean,
                         "std": cell.std, "ci": list(cell.ci) if cell.ci else None, "n_seeds": cell.n_seeds,
                         "error": cell.error, "significant": bool(cell.marker),
                         "higher_is_better": table.higher_is_better.get(c, True), "rank": table.ranks(c).get(m)})
    body = {"methods": table.methods, "columns": table.display_columns(),
            "titles": {k: table.title(k) for k in [*table.methods, *table.columns]}, "rows": rows,
            "notes": table.notes, **(extra or {})}
    return json.dumps(body, indent=2, default=str) + "\n"


def throughput_cells(log: list[dict[str, Any]]) -> tuple[str, str, str]:
    """A cell's training throughput as printed: tokens/s and MFU (%) averaged over its logged steps,
    and the largest peak memory (GB), from the engine's log rows (:mod:`gemkit.train.throughput`).

    A column the log does not hold (a run from before these were logged, a skipped batch's row)
    prints "–"; an MFU the engine could not compute (unknown device) is NaN and prints "–" too.
    """
    def values(key: str) -> list[float]:
        return [float(row[key]) for row in log if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]

    tokens, mfu, memory = values("tokens_per_s"), values("mfu"), values("peak_memory_gb")
    return (f"{sum(tokens) / len(tokens):.0f}" if tokens else "–",
            f"{100 * sum(mfu) / len(mfu):.2f}" if mfu else "–",
            f"{max(memory):.2f}" if memory else "–")
