"""Agreement with annotators on any local file of (prompt, chosen, rejected) pairs.

The file is read by gemkit's preference reader (``gemkit.data.readers``): JSONL/JSON/CSV/Parquet,
gzipped or not; ``prompt`` may be a chat message list and ``chosen``/``rejected`` whole
conversations; other column names are mapped with ``map=prompt=question,chosen=answer_pos``, and
a label column says which of two response columns is preferred
(``map=prompt=input,chosen=output_1,rejected=output_2,label=label`` for LLMBar: label 1 keeps the
order, 2 swaps it). The metric is the fraction of pairs where the model's reward agrees with the
annotators' choice; a ``subset`` column, when present, gives per-subset agreement.

Rows whose ``chosen`` and ``rejected`` are lists of plain-string responses (RM-Bench's
``data/total_dataset.json``: three styles each) become one pair per (chosen i, rejected j), ids
``<id>:<i>-<j>``, with ``chosen_index``/``rejected_index`` in the metadata. ``agreement`` is then the
mean over all those pairs; RM-Bench's own scores are added as ``rm_bench_*`` (:func:`rm_bench_scores`).

A pair whose two responses are identical carries no preference: it is skipped and counted
(``excluded_identical``, ids in the conventions), unless ``allow_identical=true`` keeps it (it then
ties). A pair with an empty response is skipped and counted (``excluded_empty_response``), as
``hh-rlhf`` does. Pairs too long for ``max_length`` are skipped and counted too. A plain-string
prompt that is an HH-RLHF transcript (``"\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …"``) becomes
the same chat messages ``hh-rlhf`` builds from it, not one user turn.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import mean
from typing import Any

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
        result = preference_result(self.name, ctx, items, self.config, conventions,
                                   {"excluded_identical": len(self.identical), "excluded_empty_response": len(self.empty)},
                                   metric="agreement")
        scores, domains = rm_bench_scores(result.items, {p.id: p.metadata for p in items})
        if scores:
            result.metrics.update(scores)
            result.higher_is_better.update(dict.fromkeys(scores, True))
            result.conventions["rm_bench"] = ("grid over (chosen i, rejected j); hard = j > i, normal = i == j, "
                                              "easy = i > j; domain = the domain column up to its first '-'")
            if not result.subsets:  # total_dataset.json has a domain column, no subset column
                result.subsets = domains
        return result


def rm_bench_scores(items: list[dict[str, Any]], metadata: dict[str, dict[str, Any]]
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """RM-Bench's accuracies from scored pairs of list rows (THU-KEG/RM-Bench ``scripts/utils.py``,
    ``compute_accuracy``; Liu et al. 2024, arXiv:2410.16184, §3).

    Per domain, cell (i, j) of the style grid is the mean credit of chosen style i against rejected
    style j (styles 1 concise, 2 detailed plain, 3 detailed markdown). ``hard`` = mean of the cells
    j > i (the chosen answer is plainer than the rejected one), ``normal`` = i == j, ``easy`` = i > j;
    a domain's average is mean(hard, normal, easy). Domains are the ``domain`` column cut at its first
    '-', so ``safety-refuse`` and ``safety-response`` pool into ``safety`` as upstream's
    ``startswith`` split does; without a ``domain`` column the file is one domain. The ``rm_bench_*``
    scores are plain means over domains (``rm_bench_average`` = upstream's ``total_avg_acc``).
    Returns (scores, per-domain average); both are empty when no item came from a list row.
    """
    cells: dict[str, dict[tuple[int, int], list[float]]] = {}
    for item in items:
        meta = metadata[item["id"]]
        if "chosen_index" not in meta:
            continue
        domain = str(meta.get("domain", "all")).split("-")[0]
        cells.setdefault(domain, {}).setdefault((meta["chosen_index"], meta["rejected_index"]), []).append(
            float(item["correct"]))
    by_domain: dict[str, dict[str, float]] = {}
    for domain, grid in sorted(cells.items()):
        accuracy = {cell: mean(credits) for cell, credits in grid.items()}
        parts = {name: [a for (i, j), a in accuracy.items() if keep(i, j)] for name, keep in
                 (("hard", lambda i, j: j > i), ("normal", lambda i, j: i == j), ("easy", lambda i, j: i > j))}
        by_domain[domain] = {name: mean(values) for name, values in parts.items() if values}
        by_domain[domain]["average"] = mean(by_domain[domain].values())
    if not by_domain:
        return {}, {}
    names = [n for n in ("average", "hard", "normal", "easy") if all(n in d for d in by_domain.values())]
    scores = {f"rm_bench_{n}": mean(d[n] for d in by_domain.values()) for n in names}
    return scores, {domain: d["average"] for domain, d in by_domain.items()}


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
