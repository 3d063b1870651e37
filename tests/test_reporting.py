"""Report statistics and table marks, checked by hand."""
import math

from gemkit.report.stats import holm, mcnemar_exact, paired_p_value
from gemkit.report.tables import Table, TableCell, to_latex, to_markdown


def test_mcnemar_exact_by_hand():
    """10 discordant items, all favouring a: p = 2 · (1/2)^10 = 0.001953."""
    a = [1] * 10 + [1] * 5
    b = [0] * 10 + [1] * 5
    assert math.isclose(mcnemar_exact(a, b), 2 / 1024)


def test_paired_test_detects_real_difference_and_not_identical_methods():
    a = [1.0] * 40 + [0.0] * 10
    b = [0.0] * 25 + [1.0] * 15 + [0.0] * 10
    assert paired_p_value(a, b) < 0.05
    assert paired_p_value(a, list(a)) > 0.5
    continuous = [0.1 * i for i in range(30)]
    assert paired_p_value(continuous, continuous) > 0.5
    assert paired_p_value([x + 1.0 for x in continuous], continuous) < 0.05


def test_holm_by_hand():
    """p = (0.01, 0.04, 0.03), m = 3: sorted 0.01·3 = 0.03; 0.03·2 = 0.06; max(0.06, 0.04·1) = 0.06."""
    assert [round(p, 6) for p in holm([0.01, 0.04, 0.03])] == [0.03, 0.06, 0.06]


def _table():
    table = Table(["a", "b", "c", "d"], ["acc", "loss"], {"acc": True, "loss": False})
    for method, acc, loss in [("a", 0.7, 0.3), ("b", 0.7, 0.2), ("c", 0.6, 0.2), ("d", 0.5, 0.9)]:
        table.cells[(method, "acc")] = TableCell(acc, n_seeds=1)
        table.cells[(method, "loss")] = TableCell(loss, n_seeds=1)
    table.cells[("d", "loss")] = TableCell(None, error="RuntimeError: boom")
    return table


def test_latex_marks_ties_and_lower_is_better():
    """acc: a and b tie for best (bold), c second (underline). loss (lower better): b and c tie best,
    a second; the failed cell is FAILED, never a number."""
    latex = to_latex(_table())
    rows = {line.split(" & ")[0]: line for line in latex.splitlines() if " & " in line and "Method" not in line}
    assert r"\textbf{70.0}" in rows["a"] and r"\textbf{70.0}" in rows["b"] and r"\underline{60.0}" in rows["c"]
    assert r"\underline{30.0}" in rows["a"] and rows["b"].count(r"\textbf{20.0}") == 1
    assert r"\textbf{20.0}" in rows["c"] and "FAILED" in rows["d"]
    assert r"\toprule" in latex and r"$\downarrow$" in latex


def test_markdown_uses_same_ranks():
    md = to_markdown(_table())
    assert "| a | **70.0** | <u>30.0</u> |" in md
