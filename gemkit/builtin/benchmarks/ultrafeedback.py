"""UltraFeedback preference accuracy (``HuggingFaceH4/ultrafeedback_binarized``, split ``test_prefs``).

Rows carry ``chosen``/``rejected`` as chat message lists and, in the H4 release, ``prompt``,
``prompt_id`` and the GPT-4 ratings ``score_chosen``/``score_rejected``. The prompt is the
conversation before the last assistant message; the response is that message. Copies as other
tools ship them load too: no ``prompt_id`` (ids are then ``line-N``), no ratings (no rating-tie
exclusion; counted as ``no_ratings``), or TRL's conversational form where ``prompt`` is the message
list and ``chosen``/``rejected`` hold only the assistant turn. Pairs whose two ratings are equal (no
preference) or whose two responses are identical are excluded and counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gemkit
from gemkit.data.records import PreferencePair, split_conversation
from gemkit.errors import DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, Source, load_rows, row_id
from gemkit.evaluation.preference import PreferenceScoring, preference_result
from gemkit.evaluation.results import BenchmarkResult


@dataclass
class UltraFeedbackConfig(PreferenceScoring, DataOptions):
    pass


def _messages(value: Any, where: str, line: int, name: str, last: str = "assistant") -> list[dict[str, str]]:
    if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m
                                                       for m in value)):
        raise DataError(where, "expected a list of {role, content} messages", line=line, field=name)
    if value[-1]["role"] != last:
        raise DataError(where, f"the last message must be the {last}'s", line=line, field=name)
    return value


class UltraFeedback:
    name = "ultrafeedback"
    description = "UltraFeedback binarized test_prefs: preference accuracy (rating ties, identical pairs excluded)."
    Config = UltraFeedbackConfig
    source = Source("HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs", ("chosen", "rejected"))

    def __init__(self, config: UltraFeedbackConfig):
        self.config = config
        self.counts: dict[str, int] = {}

    def load(self) -> list[PreferencePair]:
        where = self.config.data or self.source.hub_id
        pairs, tied, identical, unrated = [], 0, 0, 0
        for line, row in load_rows(self.source, self.config):
            chosen = _messages(row["chosen"], where, line, "chosen")
            rejected = _messages(row["rejected"], where, line, "rejected")
            ratings = None
            if "score_chosen" in row or "score_rejected" in row:
                try:
                    ratings = float(row["score_chosen"]), float(row["score_rejected"])
                except (KeyError, TypeError, ValueError):
                    raise DataError(where, "expected numeric score_chosen and score_rejected", line=line,
                                    field="score_chosen") from None
            else:
                unrated += 1
            # TRL's conversational copies keep the user turns in ``prompt`` and only the reply in chosen.
            prompt_messages = _messages(row["prompt"], where, line, "prompt", last="user") \
                if len(chosen) == 1 and isinstance(row.get("prompt"), list) else None
            if len(chosen) == 1 and prompt_messages is None:
                raise DataError(where, "chosen holds only the assistant turn and there is no 'prompt' message list",
                                line=line, field="chosen")
            prompt, chosen_text = split_conversation(prompt_messages, chosen)
            _, rejected_text = split_conversation(prompt_messages, rejected)
            if ratings is not None and ratings[0] == ratings[1]:
                tied += 1
            elif chosen_text.strip() == rejected_text.strip():
                identical += 1
            else:
                pairs.append(PreferencePair(prompt, chosen_text, rejected_text, id=row_id(row, "prompt_id", line)))
        self.counts = {"excluded_tied_ratings": tied, "excluded_identical": identical, "no_ratings": unrated}
        return pairs

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        return preference_result(self.name, ctx, items, self.config,
                                 {"excluded": "pairs with score_chosen == score_rejected or identical responses"},
                                 self.counts)


@gemkit.hookimpl
def register_benchmarks(register):
    register(UltraFeedback)
