"""The built-in arithmetic set: deterministic, gold answers right, rejected wrong, splits disjoint, short."""
import re
from fractions import Fraction

import pytest

from gemkit.data.arithmetic import (
    builtin_heldout,
    builtin_heldout_pairs,
    builtin_train_pairs,
    extract_final_answer,
    save_builtin,
)
from gemkit.data.encoding import encode_response
from gemkit.data.readers import read_pairs

# An independent solver per template: the numbers are read back from the question text, so a bug
# in the generator's step list cannot also hide in the check.
SOLVERS = [
    (r"has (\d+) dollars and buys (\d+) notebooks at (\d+) dollars each and (\d+) pens at (\d+) dollars",
     lambda b, qa, pa, qb, pb: b - qa * pa - qb * pb),
    (r"buys (\d+) packs of \w+ with (\d+) in each pack and gives away (\d+)", lambda p, e, g: p * e - g),
    (r"has (\d+) dollars, saves (\d+) dollars a week for (\d+) weeks, then spends (\d+)",
     lambda s, w, n, x: s + w * n - x),
    (r"shares (\d+) \w+ equally among (\d+) friends\. Each friend then gets (\d+) more\.(?: Each friend loses (\d+))?",
     lambda t, f, e, lost=0: t / f + e - lost),
    (r"drives (\d+) hours at (\d+) km per hour, then (\d+) hours? at (\d+) km", lambda h1, s1, h2, s2: h1 * s1 + h2 * s2),
    (r"has (\d+) eggs\. Each batch of cookies needs (\d+) eggs and makes (\d+) cookies\. \w+ sells (\d+)",
     lambda e, per, c, s: e / per * c - s),
    (r"(\d+) rows of (\d+) chairs and (\d+) extra chairs\. \w+ groups all the chairs in sets of (\d+)",
     lambda r, p, x, t: (r * p + x) / t),
]
STEP = re.compile(r"= (-?\d+) ([+−×÷]) (-?\d+) = (-?\d+)\.$")


def solve(question: str) -> Fraction:
    for pattern, solver in SOLVERS:
        found = re.search(pattern, question)
        if found:
            return Fraction(solver(*(Fraction(g) for g in found.groups() if g is not None)))
    raise AssertionError(f"no solver matches {question!r}")


def wrong_steps(text: str) -> int:
    ops = {"+": lambda x, y: x + y, "−": lambda x, y: x - y, "×": lambda x, y: x * y, "÷": lambda x, y: x / y}
    count = 0
    for line in text.splitlines()[:-1]:
        x, op, y, v = STEP.search(line).groups()
        count += ops[op](Fraction(x), Fraction(y)) != Fraction(v)
    return count


def test_same_seed_same_data_other_seed_other_data():
    a, b = builtin_train_pairs(40, seed=0), builtin_train_pairs(40, seed=0)
    assert [(p.prompt, p.chosen, p.rejected, p.answer) for p in a] == [(p.prompt, p.chosen, p.rejected, p.answer) for p in b]
    assert [p.prompt for p in builtin_train_pairs(40, seed=1)] != [p.prompt for p in a]
    assert builtin_heldout(10) == builtin_heldout(10) != builtin_heldout(10, seed=2)
    assert [p.id for p in a[:2]] == ["arith-train-0000", "arith-train-0001"]


def test_gold_answers_re_evaluated_and_rejected_is_wrong():
    pairs = builtin_train_pairs(300, seed=5)
    assert {p.metadata["template"] for p in pairs} >= {"shopping", "travel", "sharing", "savings"}
    assert {p.metadata["steps"] for p in pairs} == {2, 3, 4}
    for pair in pairs:
        gold = solve(pair.prompt)
        assert gold.denominator == 1 and gold >= 0 and str(gold) == pair.answer
        assert extract_final_answer(pair.chosen) == pair.answer and wrong_steps(pair.chosen) == 0
        assert extract_final_answer(pair.rejected) not in (None, pair.answer)
        # one slip carried forward, or right steps with a wrong last line
        slips = wrong_steps(pair.rejected)
        assert slips == 1 or (slips == 0 and pair.metadata["flaw"] == "wrong final answer"), pair.rejected


def test_heldout_is_disjoint_from_train_for_any_seeds():
    train = {p.prompt for seed in range(3) for p in builtin_train_pairs(400, seed)}
    heldout = [item for seed in range(1, 4) for item in builtin_heldout(150, seed)]
    assert not train & {item["question"] for item in heldout}
    assert all(str(solve(item["question"])) == item["answer"] for item in heldout)
    pairs = builtin_heldout_pairs(20)
    assert [p.prompt for p in pairs] == [item["question"] for item in builtin_heldout(20)]


def test_problems_are_short_enough_for_a_small_model(tokenizer):
    pairs = builtin_train_pairs(200)
    assert max(len(tokenizer(p.prompt, add_special_tokens=False)["input_ids"]) for p in pairs) < 60
    assert max(len(encode_response(tokenizer, p.chosen)) for p in pairs) < 90


@pytest.mark.parametrize("text, expected", [
    ("Step 1: 2 + 2 = 4.\nFinal Answer: 4", "4"),
    ("so Final Answer: 1,234.", "1234"),
    ("Final Answer: $12.50", "12.5"),
    ("final answer: **-7**", "-7"),
    ("Final Answer: 3\nwait, Final Answer: 5", "5"),
    ("Final Answer: 3\nFinal Answer: unsure", None),  # only the last marker counts
    ("The answer is 4", None),
    ("Final Answer: −3", "-3"),
])
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_save_builtin_round_trips_through_the_reader(tmp_path):
    path = save_builtin(tmp_path / "arith.jsonl", n=12, seed=4)
    pairs = read_pairs(path)
    assert [(p.id, p.prompt, p.chosen, p.answer) for p in pairs] == [
        (p.id, p.prompt, p.chosen, p.answer) for p in builtin_train_pairs(12, 4)]
    heldout = save_builtin(tmp_path / "heldout.jsonl", n=3, seed=1, split="heldout")
    assert heldout.read_text().count("\n") == 3 and '"question"' in heldout.read_text()


# Level 1 (one step), solved independently from the question text, like SOLVERS above.
ONE_STEP_SOLVERS = [
    (r"has (\d+) \w+ and finds (\d+) more", lambda a, b: a + b),
    (r"has (\d+) \w+ and gives away (\d+)\.", lambda a, b: a - b),
    (r"buys (\d+) packs of \w+ with (\d+) in each pack\. How many", lambda p, e: p * e),
    (r"shares (\d+) \w+ equally among (\d+) friends\. How many", lambda t, f: t / f),
]


def test_level_one_is_one_correct_step_and_rejected_is_a_near_miss_of_it():
    """Chosen is the single right step; rejected is the same step off by δ ∈ {−10, −2, −1, +1, +2, +10},
    the wrong value repeated on the final line (the rule of gemkit.data.arithmetic, fixed before
    measuring). E.g. "6 × 7 = 42" against "6 × 7 = 44" (δ = +2)."""
    pairs = builtin_train_pairs(300, seed=5, level=1)
    assert {p.metadata["template"] for p in pairs} == {"find", "give", "pack", "share"}
    assert {p.metadata["steps"] for p in pairs} == {1} and pairs[0].id == "arith1-train-0000"
    deltas = set()
    for pair in pairs:
        (found, solver), = [(re.search(p, pair.prompt), f) for p, f in ONE_STEP_SOLVERS if re.search(p, pair.prompt)]
        gold = Fraction(solver(*(Fraction(g) for g in found.groups())))
        assert gold.denominator == 1 and str(gold) == pair.answer
        assert wrong_steps(pair.chosen) == 0 and extract_final_answer(pair.chosen) == pair.answer
        assert wrong_steps(pair.rejected) == 1 and len(pair.rejected.splitlines()) == 2
        step_value = STEP.search(pair.rejected.splitlines()[0]).group(4)
        assert extract_final_answer(pair.rejected) == step_value  # the chain stays consistent
        deltas.add(int(step_value) - int(pair.answer))
    assert deltas == {-10, -2, -1, 1, 2, 10}


def test_levels_are_separate_sets_and_level_two_is_unchanged():
    level1 = builtin_heldout(150, level=1)
    assert len({item["question"] for item in level1}) == 150
    assert not {item["question"] for item in level1} & {p.prompt for p in builtin_train_pairs(400, level=1)}
    # the default level is the multi-step set gemkit always had, item for item
    assert builtin_heldout(5) == builtin_heldout(5, level=2) and builtin_heldout(5)[0]["id"] == "arith-heldout-0000"


@pytest.mark.parametrize("source, message", [
    ("builtin:arithmetic?level=3", "level must be one of [1, 2]"),
    ("builtin:arithmetic?level=one", "level must be an integer"),
    ("builtin:arithmetic?levle=1", "unknown parameter(s) ['levle']"),
])
def test_bad_level_is_a_clear_error(source, message):
    from gemkit.data.readers import load_pairs
    from gemkit.errors import DataError

    with pytest.raises(DataError, match=re.escape(message)):
        load_pairs(source)
    assert [p.id for p in load_pairs("builtin:arithmetic?level=1&n=2")] == ["arith1-train-0000", "arith1-train-0001"]
