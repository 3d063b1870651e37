"""Prompt overlap between a training and a test set: exact, and after text normalisation (leakage).

Normalised text is Unicode NFKC, case-folded, with punctuation (Unicode category P*) replaced by a
space and whitespace collapsed. Symbols (``+ − × ÷ = $``) are kept: in arithmetic prompts they carry
meaning, and dropping them would make "2+2" and "2-2" look like the same question.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from gemkit.data.records import PreferencePair

PromptRecord = PreferencePair | tuple[str, str]


def normalise(text: str) -> str:
    """Case-folded NFKC text with punctuation removed and whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in text).split())


def _id_and_text(record: PromptRecord) -> tuple[str, str]:
    if isinstance(record, PreferencePair):
        return record.id, record.prompt_text()
    return record[0], record[1]


@dataclass
class OverlapReport:
    """``exact``/``normalised``: (train id, test id) pairs; a test prompt is in ``normalised`` only if
    it has no exact match."""

    exact: list[tuple[str, str]] = field(default_factory=list)
    normalised: list[tuple[str, str]] = field(default_factory=list)
    train_size: int = 0
    test_size: int = 0

    @property
    def clean(self) -> bool:
        return not self.exact and not self.normalised

    def test_ids(self, kind: str = "all") -> list[str]:
        rows = self.exact + self.normalised if kind == "all" else getattr(self, kind)
        return sorted({test_id for _, test_id in rows})

    def train_ids(self, kind: str = "all") -> list[str]:
        rows = self.exact + self.normalised if kind == "all" else getattr(self, kind)
        return sorted({train_id for train_id, _ in rows})

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"train_size": self.train_size, "test_size": self.test_size, "clean": self.clean}
        for kind in ("exact", "normalised"):
            out[kind] = {"test_prompts": len(self.test_ids(kind)), "train_ids": self.train_ids(kind),
                         "test_ids": self.test_ids(kind),
                         "matches": [{"train_id": a, "test_id": b} for a, b in getattr(self, kind)]}
        return out


def prompt_overlap(train: Iterable[PromptRecord], test: Iterable[PromptRecord]) -> OverlapReport:
    """Which test prompts also occur in ``train``, exactly or only after :func:`normalise`.

    Records are PreferencePairs or ``(id, prompt text)`` tuples.
    """
    exact_index: dict[str, list[str]] = {}
    norm_index: dict[str, list[str]] = {}
    report = OverlapReport()
    for record in train:
        record_id, text = _id_and_text(record)
        exact_index.setdefault(text, []).append(record_id)
        norm_index.setdefault(normalise(text), []).append(record_id)
        report.train_size += 1
    for record in test:
        test_id, text = _id_and_text(record)
        report.test_size += 1
        if text in exact_index:
            report.exact += [(train_id, test_id) for train_id in exact_index[text]]
        elif normalise(text) in norm_index:
            report.normalised += [(train_id, test_id) for train_id in norm_index[normalise(text)]]
    return report
