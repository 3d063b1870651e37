"""Agreement with annotators on any local file of (prompt, chosen, rejected) pairs.

The file is read by gemkit's preference reader (``gemkit.data.readers``): JSONL/JSON/CSV/Parquet,
gzipped or not; ``prompt`` may be a chat message list and ``chosen``/``rejected`` whole
conversations; other column names are mapped with ``map=prompt=question,chosen=answer_pos``. The
metric is the fraction of pairs where the model's reward agrees with the annotators' choice; a
``subset`` column, when present, gives per-subset agreement.
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
    map: str | None = field(default=None, metadata={"help": "Column mapping, e.g. prompt=question,chosen=answer_pos."})


class Pairs:
    name = "pairs"
    description = "Any local prompt/chosen/rejected file: agreement with the annotators' preferences."
    Config = PairsConfig

    def __init__(self, config: PairsConfig):
        self.config = config

    def load(self) -> list[PreferencePair]:
        if not self.config.data:
            raise ConfigError("benchmark 'pairs' needs a file: --data PATH (prompt, chosen, rejected columns)")
        pairs = read_pairs(self.config.data, parse_mapping(self.config.map))
        return sample(pairs, self.config.limit, self.config.seed)

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        return preference_result(self.name, ctx, items, self.config, {"data": self.config.data}, metric="agreement")


@gemkit.hookimpl
def register_benchmarks(register):
    register(Pairs)
