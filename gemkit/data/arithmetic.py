"""The built-in few-shot set: multi-step arithmetic word problems with verifiable answers.

Generated deterministically from a seed by templates written for gemkit (no public-dataset text).
``chosen`` is correct step-by-step reasoning ending in ``Final Answer: N``; ``rejected`` carries
one arithmetic slip that propagates to a wrong final answer, or correct steps with a wrong final
line. Held-out problems come from a disjoint prompt set, so train/test overlap is impossible.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Callable

from gemkit.data.records import PreferencePair

NAMES = ["Ava", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "stamps", "shells", "cards"]


@dataclass
class Problem:
    question: str
    steps: list[tuple[str, int]]  # (expression text, value) in order; the last value is the answer

    @property
    def answer(self) -> int:
        return self.steps[-1][1]


def _packs(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    packs, per = rng.randint(2, 9), rng.randint(3, 12)
    total = packs * per
    given = rng.randint(1, min(9, total - 1))
    return Problem(
        f"{name} buys {packs} packs of {item} with {per} {item} in each pack, then gives away {given}. "
        f"How many {item} does {name} have now?",
        [(f"{packs} × {per}", total), (f"{total} − {given}", total - given)],
    )


def _savings(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    start, weekly, weeks, spent = rng.randint(5, 40), rng.randint(2, 15), rng.randint(2, 8), rng.randint(1, 20)
    saved = weekly * weeks
    return Problem(
        f"{name} has {start} dollars and saves {weekly} dollars a week for {weeks} weeks, then spends {spent} "
        f"dollars on a book. How many dollars are left?",
        [(f"{weekly} × {weeks}", saved), (f"{start} + {saved}", start + saved),
         (f"{start + saved} − {spent}", start + saved - spent)],
    )


def _sharing(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    friends, each, extra = rng.randint(2, 8), rng.randint(2, 9), rng.randint(1, 12)
    return Problem(
        f"{name} shares {friends * each} {item} equally among {friends} friends. Each friend then gets {extra} "
        f"more {item}. How many {item} does each friend have?",
        [(f"{friends * each} ÷ {friends}", each), (f"{each} + {extra}", each + extra)],
    )


def _travel(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    speed, hours, back = rng.randint(20, 70), rng.randint(2, 5), rng.randint(5, 40)
    distance = speed * hours
    return Problem(
        f"{name} drives at {speed} km per hour for {hours} hours, then drives {back} km back toward home. "
        f"How far from home is {name}?",
        [(f"{speed} × {hours}", distance), (f"{distance} − {back}", distance - back)],
    )


def _shop(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    price_a, qty_a, price_b, qty_b = rng.randint(2, 9), rng.randint(2, 6), rng.randint(3, 12), rng.randint(1, 4)
    cost_a, cost_b = price_a * qty_a, price_b * qty_b
    budget = cost_a + cost_b + rng.randint(1, 30)
    return Problem(
        f"{name} has {budget} dollars, buys {qty_a} notebooks at {price_a} dollars each and {qty_b} pens at "
        f"{price_b} dollars each. How much money is left?",
        [(f"{qty_a} × {price_a}", cost_a), (f"{qty_b} × {price_b}", cost_b),
         (f"{budget} − {cost_a} − {cost_b}", budget - cost_a - cost_b)],
    )


TEMPLATES: list[Callable[[random.Random], Problem]] = [_packs, _savings, _sharing, _travel, _shop]


def _reasoning(steps: list[tuple[str, int]]) -> str:
    lines = [f"Step {i}: {expr} = {value}." for i, (expr, value) in enumerate(steps, 1)]
    return "\n".join(lines) + f"\nFinal Answer: {steps[-1][1]}"


def _flawed(problem: Problem, rng: random.Random) -> str:
    """One slip in a step, carried through the rest; or right steps with a wrong final line."""
    if len(problem.steps) > 1 and rng.random() < 0.7:
        slip_at = rng.randrange(len(problem.steps))
        delta = rng.choice([-3, -2, -1, 1, 2, 3, 10])
        steps = [(e, v + delta if i >= slip_at else v) for i, (e, v) in enumerate(problem.steps)]
        return _reasoning(steps)
    wrong = problem.answer + rng.choice([-5, -1, 1, 2, 7])
    lines = [f"Step {i}: {expr} = {value}." for i, (expr, value) in enumerate(problem.steps, 1)]
    return "\n".join(lines) + f"\nFinal Answer: {wrong}"


def _problems(seed: int, count: int, split: str) -> list[Problem]:
    """Problems whose question hash parity marks the split: train and held-out never share a prompt."""
    rng = random.Random(f"{split}:{seed}")
    out: list[Problem] = []
    seen: set[str] = set()
    want = 0 if split == "train" else 1
    while len(out) < count:
        problem = rng.choice(TEMPLATES)(rng)
        if problem.question in seen or _split_bit(problem.question) != want:
            continue
        seen.add(problem.question)
        out.append(problem)
    return out


def _split_bit(question: str) -> int:
    return hashlib.sha256(question.encode()).digest()[0] & 1


def builtin_train_pairs(n: int = 256, seed: int = 0) -> list[PreferencePair]:
    """``n`` preference pairs (chosen correct, rejected flawed) with gold answers."""
    rng = random.Random(f"flaws:{seed}")
    pairs = []
    for i, problem in enumerate(_problems(seed, n, "train")):
        chosen, rejected = _reasoning(problem.steps), _flawed(problem, rng)
        pairs.append(PreferencePair(problem.question, chosen, rejected, id=f"arith-train-{seed}-{i:04d}",
                                    answer=str(problem.answer), metadata={"source": "builtin:arithmetic"}))
    return pairs


def builtin_heldout(n: int = 64, seed: int = 1) -> list[dict[str, str]]:
    """``n`` held-out problems ``{id, question, answer}``, disjoint from every train prompt."""
    return [{"id": f"arith-test-{seed}-{i:04d}", "question": p.question, "answer": str(p.answer)}
            for i, p in enumerate(_problems(seed, n, "test"))]


def builtin_heldout_pairs(n: int = 64, seed: int = 1) -> list[PreferencePair]:
    """Held-out preference pairs (for preference accuracy), from the held-out problems."""
    rng = random.Random(f"flaws-test:{seed}")
    return [PreferencePair(p.question, _reasoning(p.steps), _flawed(p, rng), id=f"arith-testpair-{seed}-{i:04d}",
                           answer=str(p.answer)) for i, p in enumerate(_problems(seed, n, "test"))]


_FINAL = re.compile(r"Final Answer:\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)


def extract_final_answer(text: str) -> str | None:
    """The number after the last ``Final Answer:`` (commas and a trailing period dropped)."""
    matches = _FINAL.findall(text)
    if not matches:
        return None
    value = matches[-1].replace(",", "").rstrip(".")
    if "." in value:
        value = value.rstrip("0").rstrip(".") or "0"
    return value
