"""The built-in few-shot set ``builtin:arithmetic``: word problems with verifiable answers, in two levels.

Problems are generated deterministically from a seed by templates written for gemkit.

- ``level=2`` (the default of ``builtin:arithmetic``): shopping, packs, savings, sharing, travel,
  baking, seating; 2-4 steps of + − × ÷ with integer results. ``rejected`` carries one arithmetic
  slip whose wrong value is used by every later step (so the chain stays internally consistent and
  ends wrong), or, when no slip keeps the later divisions exact, correct steps with a wrong final line.
- ``level=1`` (what ``gemkit bench`` uses by default, chosen in docs/metrics.md): one step of
  + − × ÷ (find, give, packs, share). ``rejected`` is a near miss, fixed before any model was
  measured: the step's result is off by δ, drawn uniformly from {−10, −2, −1, +1, +2, +10} (a
  carry or counting slip), and the final line repeats that wrong value, so the only flaw is the
  one wrong sum, exactly the mistake a small model makes.

``chosen`` is correct step-by-step reasoning ending in ``Final Answer: N``. A problem belongs to the train or held-out split by one bit of the SHA-256 of its
question, so the two splits can never share a prompt, whatever seeds are used.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError

NAMES = ["Ava", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "stamps", "shells", "cards"]
SOURCE = "builtin:arithmetic"


@dataclass(frozen=True)
class Prev:
    """The result of an earlier step, by index."""

    index: int


Operand = int | Prev


@dataclass
class Step:
    label: str
    op: str  # one of + − × ÷
    left: Operand
    right: Operand


@dataclass
class Problem:
    question: str
    steps: list[Step]
    template: str = ""
    values: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        values = evaluate(self.steps)
        if values is None or min(values) < 0:  # a template bug, not a user error
            raise RuntimeError(f"template {self.template} built an invalid problem: {self.question}")
        self.values = values

    @property
    def answer(self) -> int:
        return self.values[-1]


def _apply(op: str, x: int, y: int) -> int | None:
    if op == "+":
        return x + y
    if op == "−":
        return x - y
    if op == "×":
        return x * y
    return x // y if y != 0 and x % y == 0 else None  # ÷ must stay in the integers


def evaluate(steps: list[Step], slip_at: int | None = None, delta: int = 0) -> list[int] | None:
    """Every step's value; ``delta`` is added at step ``slip_at`` and carried forward. None if a ÷ is inexact."""
    values: list[int] = []
    for i, step in enumerate(steps):
        x, y = (values[o.index] if isinstance(o, Prev) else o for o in (step.left, step.right))
        value = _apply(step.op, x, y)
        if value is None:
            return None
        values.append(value + delta if i == slip_at else value)
    return values


def _shopping(rng: random.Random, name: str, item: str) -> Problem:
    qa, pa, qb, pb = rng.randint(2, 6), rng.randint(2, 9), rng.randint(1, 4), rng.randint(3, 12)
    budget = qa * pa + qb * pb + rng.randint(1, 30)
    return Problem(f"{name} has {budget} dollars and buys {qa} notebooks at {pa} dollars each and {qb} pens at "
                   f"{pb} dollars each. How many dollars are left?",
                   [Step("notebooks", "×", qa, pa), Step("pens", "×", qb, pb), Step("spent", "+", Prev(0), Prev(1)),
                    Step("left", "−", budget, Prev(2))], "shopping")


def _packs(rng: random.Random, name: str, item: str) -> Problem:
    packs, per = rng.randint(2, 9), rng.randint(3, 12)
    given = rng.randint(1, min(9, packs * per - 1))
    return Problem(f"{name} buys {packs} packs of {item} with {per} in each pack and gives away {given}. "
                   f"How many {item} are left?",
                   [Step(item, "×", packs, per), Step("left", "−", Prev(0), given)], "packs")


def _savings(rng: random.Random, name: str, item: str) -> Problem:
    start, weekly, weeks = rng.randint(5, 40), rng.randint(2, 15), rng.randint(2, 8)
    spent = rng.randint(1, min(20, start + weekly * weeks - 1))
    return Problem(f"{name} has {start} dollars, saves {weekly} dollars a week for {weeks} weeks, then spends "
                   f"{spent} dollars. How many dollars does {name} have?",
                   [Step("saved", "×", weekly, weeks), Step("total", "+", start, Prev(0)),
                    Step("left", "−", Prev(1), spent)], "savings")


def _sharing(rng: random.Random, name: str, item: str) -> Problem:
    friends, each, extra = rng.randint(2, 8), rng.randint(3, 9), rng.randint(1, 12)
    steps = [Step("each", "÷", friends * each, friends), Step("each now", "+", Prev(0), extra)]
    question = (f"{name} shares {friends * each} {item} equally among {friends} friends. Each friend then gets "
                f"{extra} more.")
    if rng.random() < 0.5:
        lost = rng.randint(1, each + extra - 1)
        steps.append(Step("each left", "−", Prev(1), lost))
        question += f" Each friend loses {lost}."
    return Problem(question + f" How many {item} does each friend have?", steps, "sharing")


def _travel(rng: random.Random, name: str, item: str) -> Problem:
    s1, h1, s2, h2 = rng.randint(20, 70), rng.randint(2, 5), rng.randint(10, 60), rng.randint(1, 3)
    return Problem(f"{name} drives {h1} hours at {s1} km per hour, then {h2} hour{'s' * (h2 > 1)} at {s2} km per hour. "
                   f"How many km is that in total?",
                   [Step("first part", "×", s1, h1), Step("second part", "×", s2, h2),
                    Step("total", "+", Prev(0), Prev(1))], "travel")


def _baking(rng: random.Random, name: str, item: str) -> Problem:
    per_batch, batches, cookies = rng.randint(2, 4), rng.randint(2, 6), rng.randint(6, 15)
    sold = rng.randint(1, batches * cookies - 1)
    return Problem(f"{name} has {per_batch * batches} eggs. Each batch of cookies needs {per_batch} eggs and "
                   f"makes {cookies} cookies. {name} sells {sold} cookies. How many cookies are left?",
                   [Step("batches", "÷", per_batch * batches, per_batch), Step("cookies", "×", Prev(0), cookies),
                    Step("left", "−", Prev(1), sold)], "baking")


def _seating(rng: random.Random, name: str, item: str) -> Problem:
    rows, per_row, table = rng.randint(3, 9), rng.randint(4, 10), rng.choice([2, 3, 4, 5])
    # extra chairs make the total a multiple of the set size, so the ÷ step is exact
    extra = (table - rows * per_row % table) % table + table * rng.randint(0 if rows * per_row % table else 1, 2)
    return Problem(f"A hall has {rows} rows of {per_row} chairs and {extra} extra chairs. {name} groups all the "
                   f"chairs in sets of {table}. How many sets are there?",
                   [Step("row chairs", "×", rows, per_row), Step("chairs", "+", Prev(0), extra),
                    Step("sets", "÷", Prev(1), table)], "seating")


TEMPLATES: list[Callable[[random.Random, str, str], Problem]] = [
    _shopping, _packs, _savings, _sharing, _travel, _baking, _seating]


def _find(rng: random.Random, name: str, item: str) -> Problem:
    have, found = rng.randint(11, 49), rng.randint(11, 49)  # sums stay two-digit
    return Problem(f"{name} has {have} {item} and finds {found} more. How many {item} does {name} have now?",
                   [Step("total", "+", have, found)], "find")


def _give(rng: random.Random, name: str, item: str) -> Problem:
    have = rng.randint(30, 99)
    given = rng.randint(11, have - 5)
    return Problem(f"{name} has {have} {item} and gives away {given}. How many {item} are left?",
                   [Step("left", "−", have, given)], "give")


def _pack(rng: random.Random, name: str, item: str) -> Problem:
    packs, per = rng.randint(3, 9), rng.randint(3, 12)
    return Problem(f"{name} buys {packs} packs of {item} with {per} in each pack. How many {item} does {name} buy?",
                   [Step(item, "×", packs, per)], "pack")


def _share(rng: random.Random, name: str, item: str) -> Problem:
    friends, each = rng.randint(2, 9), rng.randint(3, 12)
    return Problem(f"{name} shares {friends * each} {item} equally among {friends} friends. How many {item} does "
                   f"each friend get?", [Step("each", "÷", friends * each, friends)], "share")


#: templates per level (``builtin:arithmetic?level=N``)
LEVELS: dict[int, list[Callable[[random.Random, str, str], Problem]]] = {
    1: [_find, _give, _pack, _share], 2: TEMPLATES}
DEFAULT_LEVEL = 2
#: level 1's rejected answers: the near misses δ of the module docstring
NEAR_MISSES = (-10, -2, -1, 1, 2, 10)


def _number(value: int) -> str:
    return str(value)  # ASCII minus for negatives: extract_final_answer and graders read it


def reasoning(problem: Problem, values: list[int], final: int | None = None) -> str:
    """``Step i: label = x op y = v.`` lines, with operands taken from ``values``, then the final line."""
    lines = []
    for i, step in enumerate(problem.steps):
        x, y = (_number(values[o.index]) if isinstance(o, Prev) else _number(o) for o in (step.left, step.right))
        lines.append(f"Step {i + 1}: {step.label} = {x} {step.op} {y} = {_number(values[i])}.")
    return "\n".join(lines) + f"\nFinal Answer: {_number(values[-1] if final is None else final)}"


def near_miss(problem: Problem, rng: random.Random) -> tuple[str, str]:
    """(rejected reasoning, flaw description) for a one-step problem: the result off by δ ∈ NEAR_MISSES, kept to the end."""
    delta = rng.choice([d for d in NEAR_MISSES if problem.answer + d >= 0])
    return reasoning(problem, [problem.answer + delta]), f"near miss ({delta:+d})"


def flawed(problem: Problem, rng: random.Random) -> tuple[str, str]:
    """(rejected reasoning, flaw description): a propagated slip if one keeps every step exact, else a wrong final line."""
    if rng.random() < 0.75:
        candidates = [(i, d) for i in range(len(problem.steps)) for d in (-3, -2, -1, 1, 2, 3, 10)]
        rng.shuffle(candidates)
        for slip_at, delta in candidates:
            values = evaluate(problem.steps, slip_at, delta)
            if values is not None and values[-1] != problem.answer and min(values) >= 0:
                return reasoning(problem, values), f"slip at step {slip_at + 1} ({delta:+d})"
    wrong = problem.answer + rng.choice([o for o in (-5, -2, -1, 1, 2, 7) if problem.answer + o >= 0])
    return reasoning(problem, problem.values, final=wrong), "wrong final answer"


def _normalised(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


def split_of(question: str) -> str:
    """``train`` or ``heldout``, fixed by the question's text (normalised, so near-copies share a split)."""
    return "heldout" if hashlib.sha256(_normalised(question).encode()).digest()[0] & 1 else "train"


def check_level(level: int) -> int:
    if level not in LEVELS:
        raise ConfigError(f"arithmetic level must be one of {sorted(LEVELS)} (1: one step, 2: 2-4 steps), got {level!r}")
    return level


def _problems(seed: int, count: int, split: str, level: int = DEFAULT_LEVEL) -> list[Problem]:
    if count < 0:
        raise ConfigError(f"the number of arithmetic problems must be >= 0, got {count}")
    templates = LEVELS[check_level(level)]
    # level 2 keeps its original stream, so its problems are the ones gemkit always had
    rng = random.Random(f"{split}:{seed}" if level == DEFAULT_LEVEL else f"{split}:{seed}:level{level}")
    out: list[Problem] = []
    seen: set[str] = set()
    for _ in range(100 * count + 1000):
        if len(out) == count:
            break
        problem = rng.choice(templates)(rng, rng.choice(NAMES), rng.choice(ITEMS))
        key = _normalised(problem.question)
        if key in seen or split_of(problem.question) != split:
            continue
        seen.add(key)
        out.append(problem)
    else:
        raise ConfigError(f"could not generate {count} distinct {split} problems; ask for fewer")
    return out


def _id_prefix(split: str, level: int) -> str:
    return f"arith-{split}" if level == DEFAULT_LEVEL else f"arith{level}-{split}"


def _pairs(split: str, n: int, seed: int, level: int) -> list[PreferencePair]:
    rng = random.Random(f"flaws:{split}:{seed}" if level == DEFAULT_LEVEL else f"flaws:{split}:{seed}:level{level}")
    id_prefix = _id_prefix(split, level)
    pairs = []
    for i, problem in enumerate(_problems(seed, n, split, level)):
        rejected, flaw = near_miss(problem, rng) if level == 1 else flawed(problem, rng)
        pairs.append(PreferencePair(problem.question, reasoning(problem, problem.values), rejected,
                                    id=f"{id_prefix}-{i:04d}", answer=str(problem.answer),
                                    metadata={"source": SOURCE, "split": split, "seed": seed,
                                              "template": problem.template, "steps": len(problem.steps), "level": level,
                                              "flaw": flaw}))
    return pairs


def builtin_train_pairs(n: int = 256, seed: int = 0, level: int = DEFAULT_LEVEL) -> list[PreferencePair]:
    """``n`` training pairs (chosen correct, rejected flawed) with gold answers; ids ``arith-train-0007``
    (``arith1-train-0007`` at level 1)."""
    return _pairs("train", n, seed, level)


def builtin_heldout(n: int = 64, seed: int = 1, level: int = DEFAULT_LEVEL) -> list[dict[str, str]]:
    """``n`` held-out problems ``{id, question, answer}``; no question equals a train prompt."""
    prefix = _id_prefix("heldout", level)
    return [{"id": f"{prefix}-{i:04d}", "question": p.question, "answer": str(p.answer)}
            for i, p in enumerate(_problems(seed, n, "heldout", level))]


def builtin_heldout_pairs(n: int = 64, seed: int = 1, level: int = DEFAULT_LEVEL) -> list[PreferencePair]:
    """Held-out preference pairs (for preference accuracy) on the same problems as :func:`builtin_heldout`."""
    return _pairs("heldout", n, seed, level)


def save_builtin(path: str | Path, n: int = 256, seed: int = 0, *, split: str = "train",
                 level: int = DEFAULT_LEVEL) -> Path:
    """Write the set as JSONL (atomically): train rows ``{id, prompt, chosen, rejected, answer}``,
    held-out rows ``{id, question, answer}``. ``gemkit data validate`` reads the train file back."""
    from gemkit.io import write_jsonl

    if split == "train":
        rows = [{"id": p.id, "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "answer": p.answer}
                for p in builtin_train_pairs(n, seed, level)]
    elif split == "heldout":
        rows = builtin_heldout(n, seed, level)
    else:
        raise ConfigError(f"split must be 'train' or 'heldout', got {split!r}")
    return write_jsonl(path, rows)


_FINAL = re.compile(r"final answer\s*:", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number in ``text``, commas removed (the flexible answer read, as lm-eval's flexible-extract)."""
    found = _ANY_NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


_LEADING_NUMBER = re.compile(r"[\s*$=]*([-−]?\s*[\d,]*\d(?:\.\d+)?)")


def extract_final_answer(text: str) -> str | None:
    """The number right after the last ``Final Answer:`` (commas, ``$``, ``**`` and a trailing period dropped).

    None when there is no ``Final Answer:`` or no number follows the last one (an earlier one does not count).
    """
    markers = list(_FINAL.finditer(text))
    if not markers:
        return None
    found = _LEADING_NUMBER.match(text, markers[-1].end())
    if not found:
        return None
    value = found.group(1).replace(",", "").replace("−", "-").replace(" ", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return "0" if value in ("-0", "") else value
