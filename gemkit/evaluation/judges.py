"""Pairwise judging helpers: our judge prompt, verdict parsing, both-order comparison, a disk cache.

A judge (kind ``judge``) answers ``compare(question, answer_a, answer_b) -> "A" | "B" | "tie"``.
Judges favour the first position (or the second), so every pair is judged twice with the answers
swapped; the model wins only when both orders agree, and disagreement is a tie (FastChat's
convention for MT-Bench pairwise judging).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from gemkit.io import atomic_write_json

Verdict = Literal["A", "B", "tie"]
Outcome = Literal["win", "loss", "tie"]

JUDGE_SYSTEM = (
    "You compare two assistant answers to the same user request and decide which one serves the user better. "
    "Judge helpfulness, correctness, depth and clarity. The order in which the answers appear, their length "
    "and any names must not influence you. Reply with a short justification, then a final line that is exactly "
    "[[A]] if answer A is better, [[B]] if answer B is better, or [[C]] if they are equally good."
)

JUDGE_TEMPLATE = "[User request]\n{question}\n\n[Answer A]\n{answer_a}\n\n[Answer B]\n{answer_b}\n\nWhich answer is better?"

_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def judge_messages(question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_TEMPLATE.format(question=question, answer_a=answer_a, answer_b=answer_b)}]


def parse_verdict(text: str) -> Verdict | None:
    """The last ``[[A]]``/``[[B]]``/``[[C]]`` in a judge's reply (C = tie); None if there is none."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]]  # type: ignore[return-value]


def both_orders(judge: Any, question: str, answer: str, baseline: str) -> tuple[Outcome, str, str]:
    """Judge (answer, baseline) and (baseline, answer); win/loss only when both orders agree."""
    first = judge.compare(question, answer, baseline)
    second = judge.compare(question, baseline, answer)
    if first == "A" and second == "B":
        return "win", first, second
    if first == "B" and second == "A":
        return "loss", first, second
    return "tie", first, second


def win_rates(outcomes: list[str]) -> dict[str, float]:
    """Counts and rates; ``win_rate`` counts a tie as half a win: (win + ½·tie) / n."""
    n = len(outcomes)
    win, loss, tie = (outcomes.count(k) for k in ("win", "loss", "tie"))
    if n == 0:
        return {"win": 0, "loss": 0, "tie": 0, "win_rate": float("nan")}
    return {"win": win, "loss": loss, "tie": tie, "win_rate": (win + 0.5 * tie) / n,
            "win_rate_strict": win / n, "loss_rate": loss / n}


class ResponseCache:
    """Judge replies on disk, one JSON file per request, keyed by the SHA-256 of the request.

    The request is what was sent minus any credential (endpoint, model, messages, settings), so a
    re-run reuses replies and the cache never contains a key.
    """

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory else None

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, request: dict[str, Any]) -> str | None:
        if self.directory is None:
            return None
        path = self.directory / f"{self.key(request)}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["reply"]

    def put(self, request: dict[str, Any], reply: str) -> None:
        if self.directory is not None:
            atomic_write_json(self.directory / f"{self.key(request)}.json", {"request": request, "reply": reply})
