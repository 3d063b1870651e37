"""Anthropic HH-RLHF preference accuracy (``Anthropic/hh-rlhf``, split ``test``).

Each row holds two full transcripts, ``chosen`` and ``rejected``, in the form
``"\\n\\nHuman: …\\n\\nAssistant: …"`` (the release's ``*.jsonl.gz`` files, read unmodified). The
prompt is the two transcripts' common text up to its last ``\\n\\nAssistant:`` (turned into chat
messages, :mod:`gemkit.evaluation.transcripts`); the rest of each is its response, so a response
that itself contains ``\\n\\nAssistant:`` stays whole. Excluded and counted: pairs whose
transcripts diverge before the last assistant turn, pairs with identical responses, and pairs with
an empty response (an empty response would win every summed log-probability comparison; ``pairs``
skips such rows the same way).
"""
from __future__ import annotations

from dataclasses import dataclass

import gemkit
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, Source, load_rows, text_field
from gemkit.evaluation.preference import PreferenceScoring, preference_result
from gemkit.evaluation.results import BenchmarkResult
from gemkit.evaluation.transcripts import split_pair, transcript_messages


@dataclass
class HHConfig(PreferenceScoring, DataOptions):
    pass


class HHRLHF:
    name = "hh-rlhf"
    description = "Anthropic HH-RLHF test: preference accuracy (shared transcript prefix = prompt)."
    Config = HHConfig
    source = Source("Anthropic/hh-rlhf", None, "test", ("chosen", "rejected"))

    def __init__(self, config: HHConfig):
        self.config = config
        self.counts: dict[str, int] = {}

    def load(self) -> list[PreferencePair]:
        where = self.config.data or self.source.hub_id
        pairs, mismatch, identical, empty = [], 0, 0, 0
        for line, row in load_rows(self.source, self.config):
            split = split_pair(text_field(row, "chosen", where, line), text_field(row, "rejected", where, line))
            if split is None:
                mismatch += 1
                continue
            prompt, chosen, rejected = split
            if not chosen or not rejected:
                empty += 1
                continue
            if chosen == rejected:
                identical += 1
                continue
            try:
                messages = transcript_messages(prompt)
            except ValueError as exc:
                raise DataError(where, str(exc), line=line, field="chosen") from None
            pairs.append(PreferencePair(messages, chosen, rejected, id=f"line-{line}"))
        self.counts = {"excluded_prompt_mismatch": mismatch, "excluded_identical": identical,
                       "excluded_empty_response": empty}
        return pairs

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        return preference_result(self.name, ctx, items, self.config,
                                 {"split": "prompt = the transcripts' common text before its last Assistant turn, chat-templated"},
                                 self.counts)


@gemkit.hookimpl
def register_benchmarks(register):
    register(HHRLHF, aliases=("hh",))
