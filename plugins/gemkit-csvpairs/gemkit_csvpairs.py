"""Reference judge for gemkit: decides "A", "B" or "tie" from a local CSV of preference pairs.

The CSV has one row per prompt with a preferred (``chosen``) and a dispreferred (``rejected``)
reference answer — the same prompt/chosen/rejected columns as gemkit's training data. For a
question in the file, an answer's verdict score is

    v(x) = F1(x, chosen) − F1(x, rejected)

with F1 the bag-of-words overlap F1 (SQuAD-style: lower-cased, punctuation stripped). The answer
with the higher v wins; |v(a) − v(b)| ≤ ``margin`` is a tie. An exact match of a reference is
F1 = 1, so copying the chosen answer always beats copying the rejected one. No model and no API:
judging is offline, deterministic and free, which is what a CI-sized MT-Bench-style comparison needs.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import gemkit
from gemkit import ConfigError, DataError, GemkitError, read_rows, require_fields

__version__ = "0.1.0"

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


@gemkit.hookimpl
def register_judges(register):
    register(CsvPairsJudge, aliases=("csv-pairs",))


@dataclass
class CsvPairsConfig:
    path: str | None = field(default=None, metadata={"help": "CSV (or JSONL/JSON) file with the reference pairs."})
    prompt_field: str = field(default="prompt", metadata={"help": "Column holding the question."})
    chosen_field: str = field(default="chosen", metadata={"help": "Column holding the preferred reference answer."})
    rejected_field: str = field(default="rejected", metadata={"help": "Column holding the dispreferred reference answer."})
    margin: float = field(default=0.0, metadata={"help": "Verdict-score differences up to this are a tie."})
    on_missing: str = field(default="error", metadata={"help": "Question not in the file: 'error' or 'tie'."})

    def __post_init__(self) -> None:
        if self.on_missing not in ("error", "tie"):
            raise ConfigError(f"csvpairs: on_missing must be 'error' or 'tie', got {self.on_missing!r}")
        if self.margin < 0:
            raise ConfigError(f"csvpairs: margin must be >= 0, got {self.margin}")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def overlap_f1(candidate: str, reference: str) -> float:
    """Bag-of-words F1: 2·P·R / (P + R) over shared word counts; 1.0 when both are empty."""
    cand, ref = Counter(words(candidate)), Counter(words(reference))
    if not cand and not ref:
        return 1.0
    common = sum((cand & ref).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(cand.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def normalise_question(text: str) -> str:
    return " ".join(words(text))


class CsvPairsJudge:
    """Pairwise judge against reference chosen/rejected answers from a local file."""

    name = "csvpairs"
    description = "Pairwise verdict from local reference pairs: F1 to chosen minus F1 to rejected (offline)."
    Config = CsvPairsConfig

    def __init__(self, config: CsvPairsConfig | None = None) -> None:
        self.config = config or CsvPairsConfig()
        self._pairs: dict[str, tuple[str, str]] | None = None

    def pairs(self) -> dict[str, tuple[str, str]]:
        """normalised question -> (chosen, rejected), read once; a repeated question is a DataError."""
        if self._pairs is None:
            cfg = self.config
            if not cfg.path:
                raise GemkitError("judge 'csvpairs' needs a file: set its option path=<file.csv>")
            fields = (cfg.prompt_field, cfg.chosen_field, cfg.rejected_field)
            pairs: dict[str, tuple[str, str]] = {}
            for line, row in read_rows(cfg.path):
                require_fields(row, fields, str(cfg.path), line)
                key = normalise_question(str(row[cfg.prompt_field]))
                if key in pairs:
                    raise DataError(str(cfg.path), "the same question appears twice", line=line, field=cfg.prompt_field)
                pairs[key] = (str(row[cfg.chosen_field]), str(row[cfg.rejected_field]))
            if not pairs:
                raise DataError(str(cfg.path), "no rows")
            self._pairs = pairs
        return self._pairs

    def verdict_score(self, question: str, answer: str) -> float | None:
        reference = self.pairs().get(normalise_question(question))
        if reference is None:
            return None
        chosen, rejected = reference
        return overlap_f1(answer, chosen) - overlap_f1(answer, rejected)

    def compare(self, question: str, answer_a: str, answer_b: str) -> str:
        """"A" if answer_a is closer to the chosen reference (and further from the rejected), "B", or "tie"."""
        score_a, score_b = self.verdict_score(question, answer_a), self.verdict_score(question, answer_b)
        if score_a is None or score_b is None:
            if self.config.on_missing == "tie":
                return "tie"
            raise GemkitError(f"judge 'csvpairs': question not in {Path(str(self.config.path)).name}: "
                              f"{question[:80]!r}; add it or set on_missing=tie")
        if abs(score_a - score_b) <= self.config.margin:
            return "tie"
        return "A" if score_a > score_b else "B"
