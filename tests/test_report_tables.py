"""Table marks (bold best, underlined second best), ties, lower-is-better columns, Avg., FAILED."""
import csv
import io
import json

from gemkit.report.tables import AVG, Table, TableCell, latex_escape, to_csv, to_json, to_latex, to_markdown


def _table():
    """acc ↑: a 0.70, b 0.70, c 0.60, d 0.50 → a and b tie for best, c is second (next distinct).
    loss ↓ (printed raw): a 0.30, b 0.20, c 0.20, d FAILED → b and c tie for best, a second, d unranked."""
    table = Table(["a", "b", "c", "d"], ["bench/acc", "bench/loss"], {"bench/acc": True, "bench/loss": False},
                  percent={"bench/acc": True, "bench/loss": False})
    for method, acc, loss in [("a", 0.7, 0.3), ("b", 0.7, 0.2), ("c", 0.6, 0.2), ("d", 0.5, None)]:
        table.cells[(method, "bench/acc")] = TableCell(acc, n_seeds=1)
        table.cells[(method, "bench/loss")] = TableCell(loss, n_seeds=1) if loss is not None else TableCell(
            None, error="RuntimeError: boom\nTraceback ...")
    return table


def _latex_rows(latex):
    return {line.split(" & ")[0]: line.split(" & ")[1:] for line in latex.splitlines()
            if " & " in line and not line.startswith("Method")}


def test_latex_bold_underline_with_ties_and_lower_is_better():
    latex = to_latex(_table())
    rows = _latex_rows(latex)
    assert rows["a"][0] == r"\textbf{70.0}" and rows["b"][0] == r"\textbf{70.0}"
    assert rows["c"][0] == r"\underline{60.0}" and rows["d"][0] == "50.0"
    assert rows["b"][1].startswith(r"\textbf{0.20}") and rows["c"][1].startswith(r"\textbf{0.20}")
    assert rows["a"][1].startswith(r"\underline{0.30}")
    assert rows["d"][1].startswith("FAILED (RuntimeError: boom)") and r"\textbf" not in rows["d"][1]
    for marker in (r"\toprule", r"\midrule", r"\bottomrule", r"$\uparrow$", r"$\downarrow$"):
        assert marker in latex
    assert AVG not in latex  # mixed directions: no average column


def test_ties_are_decided_on_printed_values():
    """0.7004 and 0.6996 both print as 70.0: both are best, and 65.0 is second."""
    table = Table(["x", "y", "z"], ["b/acc"], {"b/acc": True})
    for method, value in (("x", 0.7004), ("y", 0.6996), ("z", 0.65)):
        table.cells[(method, "b/acc")] = TableCell(value, n_seeds=1)
    assert table.ranks("b/acc") == {"x": 1, "y": 1, "z": 2}


def test_average_column_like_the_paper_and_failed_rows():
    """Avg. of (77.1, 74.6, 75.4) = 227.1 / 3 = 75.7 (GEM's row of Table 1); a row with a FAILED
    cell has no average ("–"), never a number computed as if the failure were 0."""
    columns = ["uf/accuracy", "pku/accuracy", "rb/accuracy"]
    table = Table(["dpo", "sega", "ipo"], columns, {c: True for c in columns})
    for method, values in (("dpo", (0.661, 0.640, 0.632)), ("sega", (0.771, 0.746, 0.754))):
        for column, value in zip(columns, values, strict=True):
            table.cells[(method, column)] = TableCell(value, n_seeds=1)
    table.cells[("ipo", columns[0])] = TableCell(None, error="ValueError: nan loss")
    table.cells[("ipo", columns[1])] = TableCell(0.9, n_seeds=1)
    table.cells[("ipo", columns[2])] = TableCell(0.9, n_seeds=1)
    md = to_markdown(table)
    assert md.splitlines()[0].endswith("| Avg. |")
    assert "| sega | **77.1** | <u>74.6</u> | <u>75.4</u> | **75.7** |" in md
    assert "| ipo | FAILED (ValueError: nan loss) | **90.0** | **90.0** | – |" in md
    assert "| dpo | <u>66.1</u> | 64.0 | 63.2 | <u>64.4</u> |" in md


def test_significance_marker_and_seed_spread():
    table = Table(["dpo", "sega"], ["b/accuracy"], {"b/accuracy": True})
    table.cells[("dpo", "b/accuracy")] = TableCell(0.5, 0.01, n_seeds=3)
    table.cells[("sega", "b/accuracy")] = TableCell(0.6, 0.02, n_seeds=3, marker="†")
    assert r"\textbf{60.0 $\pm$ 2.0$^\dagger$}" in to_latex(table)
    assert "**60.0 ± 2.0†**" in to_markdown(table)


def test_csv_and_json_keep_raw_fractions_and_failures():
    table = _table()
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows) == 8
    d_loss = next(r for r in rows if r["method"] == "d" and r["column"] == "bench/loss")
    assert d_loss["status"] == "failed" and d_loss["mean"] == "" and d_loss["error"].startswith("RuntimeError")
    a_acc = next(r for r in rows if r["method"] == "a" and r["column"] == "bench/acc")
    assert float(a_acc["mean"]) == 0.7 and a_acc["rank"] == "1"
    data = json.loads(to_json(table, {"baseline": "a"}))
    assert data["baseline"] == "a" and {r["rank"] for r in data["rows"] if r["column"] == "bench/loss"} == {1, 2, None}


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} ~ ^") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"


def test_throughput_cells_average_tokens_and_mfu_and_take_the_peak_memory():
    """Rows: tokens/s 100 and 300 → mean 200; mfu 0.01 and 0.03 → mean 0.02 → "2.00" %; peak memory
    1.5 then 2.25 GB → max "2.25". The skipped-batch row (no metrics) and a NaN mfu are left out,
    so a mean that wrongly counted them (as 0) would print 133 / 1.33."""
    from gemkit.report.tables import throughput_cells

    log = [{"step": 1, "tokens_per_s": 100.0, "mfu": 0.01, "peak_memory_gb": 1.5},
           {"step": 2, "skipped_batches": 1},
           {"step": 3, "tokens_per_s": 300.0, "mfu": 0.03, "peak_memory_gb": 2.25},
           {"step": 4, "mfu": float("nan")}]
    assert throughput_cells(log) == ("200", "2.00", "2.25")
    assert throughput_cells([{"step": 1, "loss": 0.5}]) == ("–", "–", "–")
