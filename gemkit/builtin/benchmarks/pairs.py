"""Agreement with annotators on any local file of (prompt, chosen, rejected) pairs.

The file is read by gemkit's preference reader (``gemkit.data.readers``): JSONL/JSON/CSV/Parquet,
gzipped or not; ``prompt`` may be a chat message list and ``chosen``/``rejected`` whole
conversations; other column names are mapped with ``map=prompt=question,chosen=answer_pos``, and
a label column says which of two response columns is preferred
(``map=prompt=input,chosen=output_1,rejected=output_2,label=label`` for LLMBar: label 1 keeps the
order, 2 swaps it). The metric is the fraction of pairs where the model's reward agrees with the
annotators' choice; a ``subset`` column, when present, gives per-subset agreement.

A pair whose two responses are identical carries no preference: it is skipped and counted
(``excluded_identical``, ids in the conventions), unless ``allow_identical=true`` keeps it (it then
ties). Pairs too long for ``max_length`` are skipped and counted too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gemkit
from gemkit.data.readers import parse_mapping, read_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, sample
from gemkit.evaluation.preference import PreferenceScoring, preference_result
from gemkit.evaluation.results import BenchmarkResult


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

    def load(self) -> list[PreferencePair]:
        if not self.config.data:
            raise ConfigError("benchmark 'pairs' needs a file: --data PATH (prompt, chosen, rejected columns)")
        pairs = sample(read_pairs(self.config.data, parse_mapping(self.config.map), allow_identical=True),
                       self.config.limit, self.config.seed)
        self.identical = [] if self.config.allow_identical else \
            [p.id for p in pairs if p.chosen.strip() == p.rejected.strip()]
        skipped = set(self.identical)
        return [p for p in pairs if p.id not in skipped]

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        identical = self.identical
        conventions = {"data": self.config.data, "allow_identical": self.config.allow_identical,
                       **({"excluded_identical_ids": identical} if identical else {})}
        return preference_result(self.name, ctx, items, self.config, conventions,
                                 {"excluded_identical": len(identical)}, metric="agreement")


@gemkit.hookimpl
def register_benchmarks(register):
    register(Pairs)
