"""Prompt overlap between two sets, exact and after text normalisation (train/test leakage)."""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from gemkit.data.records import PreferencePair

_SPACE = re.compile(r"\s+")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed."""
    return _SPACE.sub(" ", text.lower().translate(_PUNCT)).strip()


@dataclass
class OverlapReport:
    exact: list[tuple[str, str]] = field(default_factory=list)
    normalised: list[tuple[str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.exact and not self.normalised

    def to_dict(self) -> dict[str, object]:
        return {"exact_count": len(self.exact), "normalised_count": len(self.normalised),
                "exact": [{"train_id": a, "test_id": b} for a, b in self.exact],
                "normalised": [{"train_id": a, "test_id": b} for a, b in self.normalised]}


def prompt_overlap(train: list[PreferencePair], test: list[PreferencePair]) -> OverlapReport:
    """Pairs of (train id, test id) whose prompts match exactly, and those matching only after normalising."""
    exact_index: dict[str, list[str]] = {}
    norm_index: dict[str, list[str]] = {}
    for pair in train:
        exact_index.setdefault(pair.prompt_text(), []).append(pair.id)
        norm_index.setdefault(normalise(pair.prompt_text()), []).append(pair.id)
    report = OverlapReport()
    for pair in test:
        text = pair.prompt_text()
        if text in exact_index:
            report.exact += [(train_id, pair.id) for train_id in exact_index[text]]
        elif normalise(text) in norm_index:
            report.normalised += [(train_id, pair.id) for train_id in norm_index[normalise(text)]]
    return report
