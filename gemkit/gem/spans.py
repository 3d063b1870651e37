"""Where the final answer is, in response-token positions.

``marker`` (default): the tokens after the last ``Final Answer`` marker (and its colon), found on
the decoded text and mapped back to tokens, so tokenisation differences (``Final`` vs `` Final``)
do not matter. ``tail:<fraction>``: the last ⌈fraction·n⌉ tokens. ``last:<n>``: the last n tokens.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gemkit.errors import ConfigError

MARKER = re.compile(r"final\s+answer\s*:?", re.IGNORECASE)


@dataclass(frozen=True)
class SpanRule:
    kind: str  # "marker" | "tail" | "last"
    value: float = 0.0

    @classmethod
    def parse(cls, text: str) -> SpanRule:
        kind, _, arg = text.partition(":")
        try:
            if kind == "marker" and not arg:
                return cls("marker")
            if kind == "tail" and 0 < float(arg) <= 1:
                return cls("tail", float(arg))
            if kind == "last" and int(arg) >= 1:
                return cls("last", int(arg))
        except ValueError:
            pass
        raise ConfigError(f"span rule must be 'marker', 'tail:<fraction in (0,1]>' or 'last:<n>=1>', got {text!r}")


def token_char_ends(tokenizer: Any, token_ids: list[int]) -> list[int]:
    """Character offset in the decoded text where each token ends (prefix decoding)."""
    return [len(tokenizer.decode(token_ids[:i + 1], skip_special_tokens=True)) for i in range(len(token_ids))]


def marker_span(tokenizer: Any, token_ids: list[int]) -> tuple[int, int] | None:
    """[start, end) of the tokens after the last marker, or None when there is no marker or nothing after it."""
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    matches = list(MARKER.finditer(text))
    if not matches:
        return None
    marker_end = matches[-1].end()
    if not text[marker_end:].strip():
        return None  # a marker with nothing after it is not an answer
    ends = token_char_ends(tokenizer, token_ids)
    # The first token that ends past the marker; a token straddling the marker's end (": 42") is
    # part of the answer, one that ends exactly at it (" Answer:") is not.
    start = next(i for i, end in enumerate(ends) if end > marker_end)
    return start, len(token_ids)


def fixed_span(rule: SpanRule, length: int) -> tuple[int, int]:
    if length == 0:
        return 0, 0
    size = math.ceil(rule.value * length) if rule.kind == "tail" else int(rule.value)
    return max(0, length - size), length


def final_span(rule: SpanRule, fallback: SpanRule, tokenizer: Any, token_ids: list[int]) -> tuple[tuple[int, int], bool]:
    """The span and whether the marker was found (``finished``); unmarked candidates use ``fallback``."""
    if rule.kind != "marker":
        return fixed_span(rule, len(token_ids)), marker_span(tokenizer, token_ids) is not None
    span = marker_span(tokenizer, token_ids)
    if span is not None:
        return span, True
    return fixed_span(fallback, len(token_ids)), False
