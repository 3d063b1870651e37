"""Progress bars for evaluation: items done, rate and ETA on stderr, like training's bar.

An evaluation opens a scope naming itself (:func:`evaluation_progress`, entered by
:func:`gemkit.evaluation.evaluate`); the loops that do an evaluation's work — batched decoding in
:func:`gemkit.generation.generate` and batched scoring in
:func:`gemkit.evaluation.preference.sequence_rewards` — open an :func:`items_bar` that takes its
label from the scope. So every benchmark adapter that decodes or scores through them shows
progress without passing anything, and the same loops stay silent when called outside an
evaluation (e.g. sampling GEM candidates during training, which has its own bar). tqdm is shown
whether or not stderr is a terminal, as the training bar is; ``enabled=False`` switches it off
(the parallel bench workers, whose bars would interleave).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: (label, enabled) of the enclosing evaluation; None outside one
_SCOPE: ContextVar[tuple[str, bool] | None] = ContextVar("gemkit_eval_progress", default=None)


@contextmanager
def evaluation_progress(label: str, *, enabled: bool = True) -> Iterator[None]:
    """Within this block, :func:`items_bar` shows bars labelled ``label``; none at all when not ``enabled``
    (not even those given their own label)."""
    token = _SCOPE.set((label, enabled))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def items_bar(total: int, *, unit: str, label: str | None = None) -> Any:
    """A tqdm bar over ``total`` items, labelled ``label`` or else by the enclosing evaluation.

    Disabled (a no-op bar) when neither gives a label, or inside an evaluation that switched bars
    off. Use as a context manager; ``update(n)`` after each batch of n items.
    """
    from tqdm.auto import tqdm

    scope = _SCOPE.get()
    desc = label if label is not None else (scope[0] if scope else None)
    off = desc is None or (scope is not None and not scope[1])
    return tqdm(total=total, desc=desc, unit=unit, disable=off, dynamic_ncols=True)
