"""Which records fit the context, which lose prompt tokens, and which cannot be used at all.

A record needs ``p + n`` tokens: its chat-templated prompt ``p`` plus its longest trained response
``n = max(c, r)`` (``c`` chosen, ``r`` rejected, each with its end-of-turn token), exactly as
:func:`gemkit.data.encoding.encode_sequence` builds a training sequence. An objective that trains
on ``chosen`` only (sft) has ``n = c``; one that samples its responses (sega, grpo) has ``n = 0``,
so only a prompt longer than ``max_length`` counts. Over ``max_length`` the truncation policy decides:

* ``left-prompt``: the prompt loses its first ``p + n − max_length`` tokens. That works only while
  some prompt is left, i.e. ``n < max_length``; a response that long can never fit (responses are
  never cut: a cut answer changes what is scored).
* ``error``: any record over ``max_length`` is refused.

The engine runs this check before it writes anything, so a training set that cannot be used stops
with one message naming the file, line and field, and the number of truncated records is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gemkit.data.encoding import TruncationPolicy, encode_prompt, encode_response
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError

#: ids listed in reports and messages (the counts are always complete)
MAX_LISTED = 10
RESPONSES = ("chosen", "rejected")


@dataclass
class LengthReport:
    """The outcome of :func:`classify_lengths` for one ``max_length``."""

    max_length: int
    records: int
    truncated: list[tuple[PreferencePair, int, int]] = field(
        default_factory=list, metadata={"help": "(record, prompt tokens, longer response tokens) for cut prompts."})
    unfittable: list[tuple[PreferencePair, str, int]] = field(
        default_factory=list, metadata={"help": "(record, longer response field, its tokens) for responses >= max_length."})

    def to_dict(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "records": self.records,
                "truncated_records": len(self.truncated),
                "truncated_ids": [pair.id for pair, _, _ in self.truncated[:MAX_LISTED]],
                "unfittable_records": len(self.unfittable),
                "unfittable_ids": [pair.id for pair, _, _ in self.unfittable[:MAX_LISTED]]}


def record_lengths(pair: PreferencePair, tokenizer: Any, system: str | None = None) -> tuple[int, int, int]:
    """``(p, c, r)``: prompt, chosen and rejected token counts as the trainer encodes them."""
    return (len(encode_prompt(tokenizer, pair.prompt, system)), len(encode_response(tokenizer, pair.chosen)),
            len(encode_response(tokenizer, pair.rejected)))


def classify_lengths(pairs: list[PreferencePair], lengths: list[tuple[int, int, int]], max_length: int,
                     responses: tuple[str, ...] = RESPONSES) -> LengthReport:
    """Split records into fitting, prompt-truncated (``p + n > max_length`` and ``n < max_length``)
    and unfittable (``n >= max_length``), ``n`` the longest of ``responses``."""
    report = LengthReport(max_length, len(pairs))
    for pair, (p, c, r) in zip(pairs, lengths, strict=True):
        trained = {name: tokens for name, tokens in zip(RESPONSES, (c, r), strict=True) if name in responses}
        name, longer = max(trained.items(), key=lambda item: item[1], default=("prompt", 0))
        if longer >= max_length:
            report.unfittable.append((pair, name, longer))
        elif p + longer > max_length:
            report.truncated.append((pair, p, longer))
    return report


def check_lengths(pairs: list[PreferencePair], tokenizer: Any, max_length: int, *,
                  policy: TruncationPolicy = "left-prompt", system: str | None = None,
                  source: str = "<training data>", responses: tuple[str, ...] = RESPONSES) -> LengthReport:
    """Measure every record; raise a DataError for the first one the policy cannot use.

    Returns the report whose ``truncated`` lists the records whose prompt will be cut.
    """
    lengths = [record_lengths(pair, tokenizer, system) for pair in pairs]
    report = classify_lengths(pairs, lengths, max_length, responses)
    if report.unfittable:
        pair, name, tokens = report.unfittable[0]
        # max_length leads the message: reports show only its first 60 characters.
        raise DataError(source, f"max_length={max_length} leaves no room for the prompt of record '{pair.id}': its "
                                f"response alone has {tokens} tokens ({len(report.unfittable)} of {len(pairs)} "
                                f"records are like this); raise max_length or shorten the responses",
                        line=pair.line, field=name)
    if policy == "error" and report.truncated:
        pair, p, longer = report.truncated[0]
        raise DataError(source, f"max_length={max_length} is exceeded by record '{pair.id}', which needs "
                                f"{p + longer} tokens (prompt {p}, trained response {longer}), and truncation='error' "
                                f"({len(report.truncated)} of {len(pairs)} records are over); raise max_length "
                                f"or use truncation=left-prompt to cut prompts from the left",
                        line=pair.line, field="prompt")
    return report
