"""Agreement with annotators on any local file of (prompt, chosen, rejected) pairs.

The file is read by gemkit's preference reader (``gemkit.data.readers``): JSONL/JSON/CSV/Parquet,
gzipped or not; ``prompt`` may be a chat message list and ``chosen``/``rejected`` whole
conversations; other column names are mapped with ``map=prompt=question,chosen=answer_pos``, and
a label column says which of two response columns is preferred
(``map=prompt=input,chosen=output_1,rejected=output_2,label=label`` for LLMBar: label 1 keeps the
order, 2 swaps it). The metric is the fraction of pairs where the model's reward agrees with the
annotators' choice; a ``subset`` column, when present, gives per-subset agreement.

Rows whose ``chosen`` and ``rejected`` are lists of plain-string responses (RM-Bench's
``total_dataset.json``: three styles each) become one pair per (chosen i, rejected j), ids
``<id>:<i>-<j>``; the agreement over them is RM-Bench's average accuracy over its 3×3 matrix, and
``chosen_index``/``rejected_index`` stay in the metadata.

A pair whose two responses are identical carries no preference: it is skipped and counted
(``excluded_identical``, ids in the conventions), unless ``allow_identical=true`` keeps it (it then
ties). A pair with an empty response is skipped and counted (``excluded_empty_response``), as
``hh-rlhf`` does. Pairs too long for ``max_length`` are skipped and counted too. A plain-string
prompt that is an HH-RLHF transcript (``"\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …"``) becomes
the same chat messages ``hh-rlhf`` builds from it, not one user turn.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import gemkit
from gemkit.data.readers import parse_mapping, read_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, sample
from gemkit.evaluation.preference import PreferenceScoring, preference_result
from gemkit.evaluation.results import BenchmarkResult
from gemkit.evaluation.transcripts import is_transcript, transcript_messages


@dataclass
class PairsConfig(PreferenceScoring, DataOptions):
    map: str | None = field(default=None, metadata={
        "help": "Column mapping, e.g. prompt=question,chosen=answer_pos (label=COL: 1 = chosen column wins, 2 = rejected)."})
    allow_identical: bool = field(default=False, metadata={
        "help": "Score pairs whose two responses are identical (they tie) instead of skipping and counting them."})


class Pairs:
    name = "pairs"
    description = "Any local prompt/chosen/rejected file: agreement with the annotators' preferences."
    Config = PairsConfig

    def __init__(self, config: PairsConfig):
        self.config = config
        self.identical: list[str] = []
        self.empty: list[str] = []

    def load(self) -> list[PreferencePair]:
        if not self.config.data:
            raise ConfigError("benchmark 'pairs' needs a file: --data PATH (prompt, chosen, rejected columns)")
        pairs = sample(read_pairs(self.config.data, parse_mapping(self.config.map), allow_identical=True,
                                  allow_empty=True, expand_lists=True), self.config.limit, self.config.seed)
        self.empty = [p.id for p in pairs if not p.chosen.strip() or not p.rejected.strip()]
        empty = set(self.empty)
        self.identical = [] if self.config.allow_identical else \
            [p.id for p in pairs if p.chosen.strip() == p.rejected.strip() and p.id not in empty]
        skipped = set(self.identical) | empty
        return [_hh_prompt(p, self.config.data) for p in pairs if p.id not in skipped]

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        conventions = {"data": self.config.data, "allow_identical": self.config.allow_identical,
                       **({"excluded_identical_ids": self.identical} if self.identical else {}),
                       **({"excluded_empty_response_ids": self.empty} if self.empty else {})}
        return preference_result(self.name, ctx, items, self.config, conventions,
                                 {"excluded_identical": len(self.identical), "excluded_empty_response": len(self.empty)},
                                 metric="agreement")


def _hh_prompt(pair: PreferencePair, where: str) -> PreferencePair:
    """The pair with an HH-RLHF transcript prompt turned into chat messages (hh-rlhf's parsing)."""
    if not (isinstance(pair.prompt, str) and is_transcript(pair.prompt)):
        return pair
    try:
        return replace(pair, prompt=transcript_messages(pair.prompt))
    except ValueError as exc:
        raise DataError(where, f"HH transcript prompt: {exc}", line=pair.line, field="prompt") from None


@gemkit.hookimpl
def register_benchmarks(register):
    register(Pairs)
