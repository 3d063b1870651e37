"""Answer extraction and normalisation, shared by gemkit's generator path and the lm-eval path.

GSM8K (the rules of lm-eval's ``gsm8k`` task, re-implemented so both paths agree item by item):

- strict: the first ``#### N`` (N = ``-?[0-9.,]+``), exactly lm-eval's ``strict-match`` filter;
- final answer (gemkit's extension, its own metric; lm-eval has no such rule): strict, else the
  number after the last ``Final Answer:`` (gemkit's chain-of-thought marker);
- flexible: the last match of ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` anywhere;
- match: both sides lower-cased with ``,``, ``$``, everything up to ``#### `` and a trailing ``.``
  removed, then compared as strings; no answer extracted is ``[invalid]`` and never matches.

MATH: the content of the last ``\\boxed{…}`` (or ``\\fbox{…}``), else the answer after the last
``Final Answer:``; equivalence with the gold answer is judged in :mod:`gemkit.evaluation.math_equiv`.
"""
from __future__ import annotations

import re
import string

INVALID = "[invalid]"

_GSM_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_FINAL_ANSWER = re.compile(r"final answer\s*(?:is)?\s*[:：]?\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)", re.IGNORECASE)
_GSM_IGNORE = [re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$")]


def gsm8k_strict(text: str) -> str:
    """lm-eval's gsm8k ``strict-match``: the group of the first ``#### (-?[0-9.,]+)``, else invalid."""
    found = _GSM_STRICT.search(text)
    return found.group(1) if found else INVALID


def gsm8k_final_answer(text: str) -> str:
    """:func:`gsm8k_strict`, else the number after the last ``Final Answer:`` (not an lm-eval rule)."""
    strict = gsm8k_strict(text)
    if strict != INVALID:
        return strict
    marked = _FINAL_ANSWER.findall(text)
    return marked[-1] if marked else INVALID


def gsm8k_flexible(text: str) -> str:
    matches = _GSM_FLEXIBLE.findall(text)
    if not matches:
        return INVALID
    return next(group for group in matches[-1] if group)


def gsm8k_normalise(text: str) -> str:
    for pattern in _GSM_IGNORE:
        text = pattern.sub("", text)
    return text.lower().strip()


def gsm8k_gold(answer: str) -> str:
    """The reference number of a GSM8K ``answer`` field (the text after ``#### ``)."""
    return gsm8k_normalise(answer)


def gsm8k_match(prediction: str, answer: str) -> bool:
    return prediction != INVALID and gsm8k_normalise(prediction) == gsm8k_gold(answer)


def cut_at(text: str, stops: list[str]) -> str:
    """The text before the first occurrence of any stop string (lm-eval's ``until``)."""
    for stop in stops:
        if stop and stop in text:
            text = text.split(stop, 1)[0]
    return text


# ---------------------------------------------------------------- MATH


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or ``\\boxed x``."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    brace = rest.find("{")
    if rest.startswith("\\boxed ") and (brace < 0 or brace > len("\\boxed ")):
        return rest[len("\\boxed "):].split("$")[0].strip()
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(rest)):
        if rest[i] == "{":
            depth += 1
        elif rest[i] == "}":
            depth -= 1
            if depth == 0:
                return rest[brace + 1:i]
    return None


def math_answer(text: str) -> str:
    """The model's final answer: last boxed content, else after the last ``Final Answer:``."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    parts = re.split(r"final answer\s*(?:is)?\s*[:：]?", text, flags=re.IGNORECASE)
    if len(parts) > 1:
        return parts[-1].strip().split("\n")[0].strip().rstrip(".").strip("$ ")
    return INVALID


# ---------------------------------------------------------------- TruthfulQA exact match

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_short_answer(text: str) -> str:
    """Lower-case, punctuation and articles removed, whitespace collapsed (SQuAD-style)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def first_sentence(text: str) -> str:
    """The first line, cut after its first sentence-ending period/!/? (the answer's claim)."""
    line = text.strip().split("\n")[0]
    found = re.search(r"[.!?](\s|$)", line)
    return line[:found.start() + 1] if found else line
