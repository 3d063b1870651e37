"""UltraFeedback preference accuracy (``HuggingFaceH4/ultrafeedback_binarized``, split ``test_prefs``).

Rows carry ``prompt``, ``prompt_id``, ``chosen``/``rejected`` as chat message lists (user turn +
assistant turn) and the GPT-4 ratings ``score_chosen``/``score_rejected``. The prompt is the
conversation before the last assistant message; the response is that message. Pairs whose two
ratings are equal (no preference) or whose two responses are identical are excluded and counted.
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


def _messages(value: Any, where: str, line: int, name: str) -> list[dict[str, str]]:
    if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m
                                                       for m in value)):
        raise DataError(where, "expected a list of {role, content} messages", line=line, field=name)
    if value[-1]["role"] != "assistant":
        raise DataError(where, "the last message must be the assistant's response", line=line, field=name)
    return value


class UltraFeedback:
    name = "ultrafeedback"
    description = "UltraFeedback binarized test_prefs: preference accuracy (rating ties, identical pairs excluded)."
    Config = UltraFeedbackConfig
    source = Source("HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs",
                    ("prompt", "prompt_id", "chosen", "rejected", "score_chosen", "score_rejected"))

    def __init__(self, config: UltraFeedbackConfig):
        self.config = config
        self.counts: dict[str, int] = {}

    def load(self) -> list[PreferencePair]:
        where = self.config.data or self.source.hub_id
        pairs, tied, identical = [], 0, 0
        for line, row in load_rows(self.source, self.config):
            chosen = _messages(row["chosen"], where, line, "chosen")
            rejected = _messages(row["rejected"], where, line, "rejected")
            try:
                ratings = float(row["score_chosen"]), float(row["score_rejected"])
            except (TypeError, ValueError):
                raise DataError(where, "expected numeric ratings", line=line, field="score_chosen") from None
            prompt, chosen_text = split_conversation(None, chosen)
            _, rejected_text = split_conversation(None, rejected)
            if ratings[0] == ratings[1]:
                tied += 1
            elif chosen_text.strip() == rejected_text.strip():
                identical += 1
            else:
                pairs.append(PreferencePair(prompt, chosen_text, rejected_text, id=row_id(row, "prompt_id", line)))
        self.counts = {"excluded_tied_ratings": tied, "excluded_identical": identical}
        return pairs

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        return preference_result(self.name, ctx, items, self.config,
                                 {"excluded": "pairs with score_chosen == score_rejected or identical responses"},
                                 self.counts)


@gemkit.hookimpl
def register_benchmarks(register):
    register(UltraFeedback)
