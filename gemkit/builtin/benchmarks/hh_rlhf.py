"""Anthropic HH-RLHF preference accuracy (``Anthropic/hh-rlhf``, split ``test``).

Each row holds two full transcripts, ``chosen`` and ``rejected``, in the form
``"\\n\\nHuman: …\\n\\nAssistant: …"``. The transcript up to the last ``\\n\\nAssistant:`` is the
prompt (turned into chat messages); the text after it is the response. A pair whose two prompts
differ (the transcripts diverge before the last assistant turn) or whose responses are identical is
excluded and counted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import gemkit
from gemkit.data.records import Message, PreferencePair
from gemkit.errors import DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, Source, load_rows, text_field
from gemkit.evaluation.preference import PreferenceScoring, preference_result
from gemkit.evaluation.results import BenchmarkResult

ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")


def split_transcript(text: str) -> tuple[str, str]:
    """(prompt transcript, last assistant response) of an HH transcript."""
    cut = text.rfind(ASSISTANT)
    if cut < 0:
        raise ValueError("no '\\n\\nAssistant:' turn")
    return text[:cut], text[cut + len(ASSISTANT):].strip()


def transcript_messages(prefix: str) -> list[Message]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c"`` -> user/assistant/user messages."""
    parts = _TURN.split(prefix)
    messages = []
    for role, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("the prompt must end with a Human turn")
    return messages


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
        pairs, mismatch, identical = [], 0, 0
        for line, row in load_rows(self.source, self.config):
            try:
                prompt_c, chosen = split_transcript(text_field(row, "chosen", where, line))
            except ValueError as exc:
                raise DataError(where, str(exc), line=line, field="chosen") from None
            try:
                prompt_r, rejected = split_transcript(text_field(row, "rejected", where, line))
            except ValueError as exc:
                raise DataError(where, str(exc), line=line, field="rejected") from None
            if prompt_c.strip() != prompt_r.strip():
                mismatch += 1
                continue
            if chosen == rejected:
                identical += 1
                continue
            try:
                messages = transcript_messages(prompt_c)
            except ValueError as exc:
                raise DataError(where, str(exc), line=line, field="chosen") from None
            pairs.append(PreferencePair(messages, chosen, rejected, id=f"line-{line}"))
        self.counts = {"excluded_prompt_mismatch": mismatch, "excluded_identical": identical}
        return pairs

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        return preference_result(self.name, ctx, items, self.config,
                                 {"split": "prompt = transcript before the last Assistant turn, chat-templated"},
                                 self.counts)


@gemkit.hookimpl
def register_benchmarks(register):
    register(HHRLHF, aliases=("hh",))
