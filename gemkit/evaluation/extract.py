"""Answer extraction and normalisation, shared by gemkit's generator path and the lm-eval path.

GSM8K (the rules of lm-eval's ``gsm8k`` task, re-implemented so both paths agree item by item):

- strict: the first ``#### N`` (N = ``-?[0-9.,]+``); if absent, the number after the last
  ``Final Answer:`` (gemkit's chain-of-thought marker; an extension — lm-eval has no such rule);
- flexible: the last match of ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` anywhere;
- match: both sides lower-cased with ``,``, ``$``, everything up to ``#### `` and a trailing ``.``
  removed, then compared as strings; no answer extracted is ``[invalid]`` and never matches.

MATH: the content of the last ``\\boxed{…}`` (or ``\\fbox{…}``), else the answer after the last
``Final Answer:``; both sides normalised by :func:`normalise_math` and compared as strings.
"""
from __future__ import annotations

import re
import string

INVALID = "[invalid]"

_GSM_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_FINAL_ANSWER = re.compile(r"final answer\s*(?:is)?\s*[:：]?\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)", re.IGNORECASE)
_GSM_IGNORE = [re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$")]


def gsm8k_strict(text: str, *, final_answer_marker: bool = True) -> str:
    found = _GSM_STRICT.search(text)
    if found:
        return found.group(1)
    if final_answer_marker:
        marked = _FINAL_ANSWER.findall(text)
        if marked:
            return marked[-1]
    return INVALID


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


def _fix_fracs(s: str) -> str:
    # \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}
    out, i = [], 0
    while i < len(s):
        if s.startswith("\\frac", i):
            out.append("\\frac")
            i += 5
            for _ in range(2):
                if i < len(s) and s[i] != "{":
                    out.append("{" + s[i] + "}")
                    i += 1
                elif i < len(s):
                    depth, j = 0, i
                    while j < len(s):
                        depth += s[j] == "{"
                        depth -= s[j] == "}"
                        j += 1
                        if depth == 0:
                            break
                    out.append(s[i:j])
                    i = j
            continue
        out.append(s[i])
        i += 1
    return "".join(out)


def normalise_math(answer: str) -> str:
    """Canonical string form of a MATH answer.

    Removes spacing commands, ``\\left``/``\\right``, ``^\\circ``, dollar signs, ``\\text{…}``
    units at the end, a leading ``x =``, and spaces; maps ``\\dfrac``/``\\tfrac`` to ``\\frac``,
    ``a/b`` of two integers to ``\\frac{a}{b}``, ``\\frac12`` to ``\\frac{1}{2}``, ``\\sqrt2`` to
    ``\\sqrt{2}``, ``.5`` to ``0.5``, ``2.0`` to ``2``; drops a trailing period.
    """
    s = answer.strip().replace("\n", "")
    s = s.rstrip(".")
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\%", "").replace("%", "")
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\text\{\s*[a-zA-Z ]*\}$", "", s).strip()
    s = re.sub(r"\\(?:text|mbox|mathrm)\{(.*?)\}", r"\1", s)
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if re.fullmatch(r"-?\d+/\d+", s):
        num, den = s.split("/")
        s = f"\\frac{{{num}}}{{{den}}}"
    if s.startswith("."):
        s = "0" + s
    if re.fullmatch(r"-?\d+\.0+", s):
        s = s.split(".")[0]
    if s == "0.5":
        s = "\\frac{1}{2}"
    return s


def math_match(prediction: str, gold: str) -> bool:
    return prediction != INVALID and normalise_math(prediction) == normalise_math(gold)


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
