"""TruthfulQA: MC1 ties as lm-eval counts them, and the upstream release files (TruthfulQA.csv,
mc_task.json) load into the same items as the Hub schema."""
import numpy as np
import pytest

from gemkit.builtin.benchmarks.truthfulqa import TruthfulQA, TruthfulQAConfig, mc1_correct


@pytest.mark.parametrize("scores, labels, expected", [
    ([-1.0, -1.0, -2.0], [1, 0, 0], True),    # tie at the top, true choice first: argmax -> 0, right
    ([-1.0, -1.0, -2.0], [0, 1, 0], False),   # tie at the top, true choice second: argmax -> 0, wrong
    ([-3.0, -1.0, -1.0], [0, 0, 1], False),   # the first of the tied (index 1) is false
    ([-0.5, -1.0], [1, 0], True),             # strict maximum on the true choice
    ([-1.0, -0.5], [1, 0], False),
    ([-2.0, -2.0, -2.0], [1, 0, 0], True),    # all equal: the first choice, the true one in the Hub data
])
def test_mc1_counts_ties_as_lm_eval(scores, labels, expected):
    """lm-eval's MC1 acc is ``np.argmax(lls) == gold`` with gold = 0 (the true choice comes first in the
    Hub's mc1_targets), and np.argmax returns the first index of the maximum. Checked: the old rule
    (true strictly above every false) fails the first and last rows."""
    assert mc1_correct(scores, labels) is expected
    assert expected == (int(np.argmax(scores)) == labels.index(1))


def comparable(items):
    return [{k: item[k] for k in ("question", "mc1", "mc2", "true", "correct", "incorrect") if k in item}
            for item in items]


def test_upstream_release_files_load_like_the_hub_schema(assets):
    """mc_task.json ({choice: label} targets) and TruthfulQA.csv ('Best Answer', ';'-separated answer
    lists) give the items the Hub-schema fixtures give, field for field."""
    bench = assets / "benchmarks"
    hub = TruthfulQA(TruthfulQAConfig(data=str(bench / "truthfulqa_mc.jsonl"),
                                      generation_data=str(bench / "truthfulqa_gen.jsonl"))).load()
    upstream = TruthfulQA(TruthfulQAConfig(data=str(bench / "mc_task.json"),
                                           generation_data=str(bench / "TruthfulQA.csv"))).load()
    assert len(upstream["mc"]) == 3 and len(upstream["gen"]) == 2
    assert comparable(upstream["mc"]) == comparable(hub["mc"])
    assert comparable(upstream["gen"]) == comparable(hub["gen"])
    assert upstream["gen"][1]["correct"] == ["Yes", "Yes", "Yes, it can"]  # best_answer, then the CSV's list


def test_the_2025_csv_with_a_best_incorrect_answer_column_loads_the_same(assets, tmp_path):
    """TruthfulQA.csv as updated upstream in January 2025 carries a 'Best Incorrect Answer' column
    (for its binary-choice setting) between 'Best Answer' and 'Correct Answers'; columns are read by
    name, so the items are those of the older file. Checked it can fail: with the CSV reader naming
    cells by the older header's positions, the new file's answer lists came out shifted."""
    import csv

    older = assets / "benchmarks" / "TruthfulQA.csv"
    with older.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    newer = tmp_path / "TruthfulQA.csv"
    columns = ["Type", "Category", "Question", "Best Answer", "Best Incorrect Answer", "Correct Answers",
               "Incorrect Answers", "Source"]
    with newer.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "Best Incorrect Answer": row["Incorrect Answers"].split(";")[0]})
    mc = str(assets / "benchmarks" / "mc_task.json")
    before = TruthfulQA(TruthfulQAConfig(data=mc, generation_data=str(older))).load()["gen"]
    after = TruthfulQA(TruthfulQAConfig(data=mc, generation_data=str(newer))).load()["gen"]
    assert comparable(after) == comparable(before) and len(after) == 2
