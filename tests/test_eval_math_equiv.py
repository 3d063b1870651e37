"""MATH answer equivalence: one table of real-style (prediction, gold) pairs, the verdict expected
from each judge, and the class of answer each pair stands for (issue #17 items 3 and 8).

Each row says what a careful grader would rule (the ``math-verify`` column) and what lm-eval's
``hendrycks_math`` ``is_equiv`` rules (the ``lm-eval`` column, read off its ``strip_string``: it only
removes ``\\!``, ``\\left``/``\\right``, ``^\\circ``, ``\\$``, ``\\%``, a unit after ``\\text{ ``
(with the space), spaces, a short ``k =`` prefix, and rewrites ``\\frac12``, ``a/b``, ``\\sqrt2``,
``0.5``; anything else must match character for character). Every row where the columns differ is a
deviation listed in docs/metrics.md ("MATH equivalence").

Checked by breaking the code on purpose: with ``math_verify_equal`` replaced by stripped string
equality 34 tests fail; with ``lm_eval_equal`` answering ``not is_equiv`` 51 fail. Restored. (Swapping
gold and prediction inside ``verify`` changes no verdict of this table: not a guarded property.)
"""
import pytest

from gemkit.evaluation.extract import INVALID
from gemkit.evaluation.math_equiv import math_equal, normalised_answer

PMAT_FRAC = "\\begin{pmatrix} \\frac{1}{2} \\\\ -3 \\end{pmatrix}"

# (class, prediction, gold, math-verify verdict, lm-eval verdict)
TABLE = [
    # thousands separators and currency (item 8)
    ("thousands \\!", "10080", "10,\\!080", True, False),
    ("thousands ,", "1,000", "1000", True, False),
    ("currency trailing zero", "18.9", "\\$18.90", True, False),
    ("currency", "\\$5", "5", True, True),
    # fractions vs decimals (item 8)
    ("frac vs decimal", "1.5", "\\frac{3}{2}", True, False),
    ("frac vs 0.5", "0.5", "\\frac{1}{2}", True, True),
    ("frac vs .5", ".5", "\\frac12", True, True),
    ("frac shorthand", "\\frac12", "\\frac{1}{2}", True, True),
    ("a/b", "3/4", "\\frac{3}{4}", True, True),
    ("dfrac", "\\dfrac{3}{4}", "\\frac{3}{4}", True, True),
    ("unreduced fraction", "\\frac{2}{4}", "\\frac{1}{2}", True, False),
    ("rounded decimal", "0.333", "\\frac{1}{3}", False, False),
    ("wrong fraction", "\\frac{4}{3}", "\\frac{3}{4}", False, False),
    ("integer with .0", "5.0", "5", True, False),
    # tuples, \left( \right), intervals (item 8)
    ("tuple with \\left", "(3,\\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", True, False),
    ("tuple same form", "\\left(1, 2\\right)", "(1,2)", True, True),
    ("tuple order matters", "(2,1)", "(1,2)", False, False),
    ("interval", "[2,5)", "[2, 5)", True, True),
    ("interval brackets differ", "(2,5)", "[2,5)", False, False),
    ("interval infinity", "(-\\infty, 3]", "(-\\infty,3]", True, True),
    # matrices (item 8)
    ("pmatrix a/b vs \\frac", "\\begin{pmatrix} 1/2 \\\\ -3 \\end{pmatrix}", PMAT_FRAC, True, False),
    ("pmatrix decimal vs \\frac", "\\begin{pmatrix} 0.5 \\\\ -3 \\end{pmatrix}", PMAT_FRAC, True, False),
    ("pmatrix wrong entry", "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}", PMAT_FRAC, False, False),
    # unordered answer lists and sets (item 8)
    ("unordered list", "-2,1", "1,-2", True, False),
    ("unordered list spaced", "1, -2", "-2, 1", True, False),
    ("set braces", "\\{1,2\\}", "\\{2,1\\}", True, False),
    ("list missing a root", "1", "1,-2", False, False),
    # \text{} words and multiple choice (items 3 and 8)
    ("choice \\text{D}", "\\text{D}", "\\text{D}", True, True),
    ("choice bare letter", "D", "\\text{D}", True, False),
    ("choice with parens", "\\text{(D)}", "\\text{D}", True, False),
    ("choice wrong letter", "\\text{(C)}", "\\text{D}", False, False),
    ("choice textbf", "\\textbf{(A)}", "\\text{(A)}", True, False),
    ("word odd vs even", "\\text{even}", "\\text{odd}", False, False),
    ("word plain vs \\text", "odd", "\\text{odd}", True, False),
    ("word same", "\\text{odd}", "\\text{odd}", True, True),
    ("weekday differs", "\\text{Monday}", "\\text{Tuesday}", False, False),
    # units, degrees, percent, assignments
    ("unit \\text{ cm}", "10\\text{ cm}", "10", True, True),
    ("unit with power", "12\\text{ cm}^2", "12", True, True),
    ("degrees", "90^\\circ", "90", True, True),
    ("percent", "50\\%", "50", True, True),
    ("assignment x =", "x = 5", "5", True, True),
    # symbolic forms
    ("radical simplified", "2\\sqrt{2}", "\\sqrt{8}", True, False),
    ("sqrt shorthand", "\\sqrt2", "\\sqrt{2}", True, True),
    ("polynomial expanded", "x^2+2x+1", "(x+1)^2", True, False),
    ("terms reordered", "2x+1", "1+2x", True, False),
    ("pi vs 3.14", "\\pi", "3.14", False, False),
    ("sign", "-5", "5", False, False),
    # empty / missing predictions (item 3)
    ("empty vs word", "", "\\text{odd}", False, False),
    ("empty vs number", "", "5", False, False),
    ("nothing extracted", INVALID, "5", False, False),
]


def test_table_is_large_and_has_both_kinds_of_rows():
    """>= 40 pairs (the issue's floor); both judges accept some and reject some."""
    assert len(TABLE) >= 40
    for column in (3, 4):
        assert {row[column] for row in TABLE} == {True, False}


@pytest.mark.parametrize("kind, prediction, gold, expected, _", TABLE, ids=[row[0] for row in TABLE])
def test_math_verify_verdicts(kind, prediction, gold, expected, _):
    assert math_equal(prediction, gold, "math-verify") is expected, (kind, normalised_answer(prediction))


@pytest.mark.parametrize("kind, prediction, gold, _, expected", TABLE, ids=[row[0] for row in TABLE])
def test_lm_eval_verdicts(kind, prediction, gold, _, expected):
    assert math_equal(prediction, gold, "lm-eval") is expected, (kind, normalised_answer(prediction, "lm-eval"))


def test_lm_eval_mode_is_lm_evals_own_function():
    """On every row (swapped too) the compatibility mode answers exactly what lm-eval's is_equiv
    answers; only a missing prediction is ours (lm-eval never sees one: it has no extractor failure)."""
    from lm_eval.tasks.hendrycks_math.utils import is_equiv

    for _, prediction, gold, _, _ in TABLE:
        if prediction == INVALID:
            continue
        assert math_equal(prediction, gold, "lm-eval") == is_equiv(prediction, gold)
        assert math_equal(gold, prediction, "lm-eval") == is_equiv(gold, prediction)


def test_text_word_bug_is_gone_in_both_modes():
    """Issue #17 item 3: the old normaliser stripped a trailing \\text{word}, so \\text{even} matched
    \\text{odd} and an empty prediction matched \\text{odd}. Neither judge does."""
    for mode in ("math-verify", "lm-eval"):
        assert not math_equal("\\text{even}", "\\text{odd}", mode)
        assert not math_equal("", "\\text{odd}", mode)
        assert math_equal("\\text{odd}", "\\text{odd}", mode)


def test_normalised_answer_shows_what_is_compared():
    """math-verify: the parsed value (10,\\!080 -> 10080); lm-eval: strip_string (\\left( 1 \\right) -> (1))."""
    assert normalised_answer("10,\\!080") == "10080"
    assert normalised_answer("\\left( 1 \\right)", "lm-eval") == "(1)"
    assert normalised_answer(INVALID) == ""


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="math-verify"):
        math_equal("1", "1", "sympy")  # type: ignore[arg-type]
