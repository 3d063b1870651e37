"""Is a MATH prediction equivalent to the gold answer? Two named judges, neither our own normaliser.

- ``math-verify`` (default): Hugging Face's ``math-verify`` (PyPI ``math-verify``, sympy-based).
  Both answers are wrapped in ``\\boxed{…}`` and parsed by ``math_verify.parse`` (LaTeX and plain
  expressions), then ``math_verify.verify(gold, prediction)`` decides: numbers by value
  (``1.5`` = ``\\frac{3}{2}``, ``10,\\!080`` = ``10080``, ``\\$18.90`` = ``18.9``), expressions
  symbolically (``2\\sqrt{2}`` = ``\\sqrt{8}``), tuples in order, unordered answer lists and sets as
  sets (``-2,1`` = ``1,-2``), intervals with their brackets, matrices entry by entry, ``\\text{…}``
  words and multiple-choice letters as symbols (``\\text{D}`` = ``D``, ``\\text{odd}`` ≠
  ``\\text{even}``). An empty or unparseable prediction is never equivalent.
- ``lm-eval``: lm-evaluation-harness's ``hendrycks_math`` ``is_equiv`` (called from the installed
  ``lm_eval.tasks.hendrycks_math.utils``, not copied): string equality after its ``strip_string``
  normalisation. Kept so numbers can be compared with papers that report lm-eval's MATH metric.

The verdicts of the two differ on many real answers; docs/metrics.md lists every class that differs
and ``tests/test_eval_math_equiv.py`` pins each one.
"""
from __future__ import annotations

import threading
from typing import Literal

from gemkit.evaluation.extract import INVALID

MathEquivalence = Literal["math-verify", "lm-eval"]
MATH_EQUIVALENCES: tuple[str, ...] = ("math-verify", "lm-eval")

# math-verify bounds parsing and comparison with signal.alarm, which only works in the main
# thread; elsewhere the limit is switched off (a pathological expression could then run long).
_TIMEOUT_SECONDS = 5


def _timeout() -> int | None:
    return _TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


def _parsed(answer: str) -> list:
    from math_verify import parse

    return parse("\\boxed{" + answer + "}", parsing_timeout=_timeout())


def math_verify_equal(prediction: str, gold: str) -> bool:
    """``math_verify.verify(parse(gold), parse(prediction))`` with both wrapped in ``\\boxed{}``."""
    from math_verify import verify

    if prediction == INVALID or not prediction.strip():
        return False
    return bool(verify(_parsed(gold), _parsed(prediction), timeout_seconds=_timeout()))


def lm_eval_equal(prediction: str, gold: str) -> bool:
    """lm-eval ``hendrycks_math`` ``is_equiv(prediction, gold)`` (``strip_string`` both, then ``==``)."""
    from lm_eval.tasks.hendrycks_math.utils import is_equiv

    return prediction != INVALID and bool(is_equiv(prediction, gold))


def math_equal(prediction: str, gold: str, equivalence: MathEquivalence = "math-verify") -> bool:
    """Whether ``prediction`` is equivalent to ``gold`` under the named judge (module docstring)."""
    if equivalence == "math-verify":
        return math_verify_equal(prediction, gold)
    if equivalence == "lm-eval":
        return lm_eval_equal(prediction, gold)
    raise ValueError(f"unknown MATH equivalence {equivalence!r}; expected one of {MATH_EQUIVALENCES}")


def normalised_answer(answer: str, equivalence: MathEquivalence = "math-verify") -> str:
    """What the judge compares, for the item rows: math-verify's parsed value (first parse, as a
    string; "" when nothing parses) or lm-eval's ``strip_string`` form."""
    if answer == INVALID:
        return ""
    if equivalence == "lm-eval":
        from lm_eval.tasks.hendrycks_math.utils import strip_string

        try:
            return strip_string(answer)
        except Exception:  # noqa: BLE001 — is_equiv falls back to the raw strings on any error, so do we
            return answer
    parsed = _parsed(answer)
    return str(parsed[0]) if parsed else ""
