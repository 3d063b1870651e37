"""Few-shot prompts: the seeded draw (lm-eval's order), exclusion of the evaluated row, the chat turns, and
the gsm8k/math/truthfulqa adapters' shots, recorded conventions and errors."""
import json

import pytest

from gemkit.errors import ConfigError, DataError
from gemkit.evaluation import evaluate
from gemkit.evaluation.fewshot import draw_shots, with_shots
from gemkit.registry import registry


def adapter(name, **options):
    return registry("benchmark").get(name).build(options)


def test_draw_is_lm_evals_default_sampler_walked_over_the_items():
    """lm-eval's ContextSampler(pool, rnd=seed) draws rng.sample(pool, k) per document, in document order,
    from one generator; our indices pick out the same rows for every item (pool of 7, 5 items, k=3)."""
    from lm_eval.api.samplers import ContextSampler

    pool = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(7)]
    sampler = ContextSampler(pool, rnd=11)
    theirs = [sampler.sample(n=3) for _ in range(5)]
    ours = draw_shots(7, [None] * 5, 3, 11, "pool")
    assert [[pool[j] for j in drawn] for drawn in ours] == [list(x) for x in theirs]
    assert len({tuple(d) for d in ours}) > 1 and all(len(set(d)) == 3 for d in ours)


def test_draw_from_the_same_file_skips_the_evaluated_row():
    """Pool of 3 rows, every row evaluated, k=2: the only rows left for row i are the other two, in some order."""
    draws = draw_shots(3, [0, 1, 2], 2, 0, "file")
    assert [sorted(d) for d in draws] == [[1, 2], [0, 2], [0, 1]]
    with pytest.raises(DataError, match=r"num_fewshot=3 needs at least 3 examples besides the evaluated one, found 2"):
        draw_shots(3, [0, 1, 2], 3, 0, "file")
    with pytest.raises(DataError, match=r"needs at least 6 examples, found 5"):
        draw_shots(5, [None], 6, 0, "train.jsonl")


def test_shots_are_earlier_chat_turns_and_zero_shot_stays_a_string():
    assert with_shots([], "Q") == "Q"
    assert with_shots([("q1", "a1"), ("q2", "a2")], "Q") == [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}, {"role": "user", "content": "Q"}]
    with pytest.raises(ConfigError, match="num_fewshot must be >= 0, got -1"):
        adapter("gsm8k", num_fewshot=-1)


def test_gsm8k_shots_use_the_lm_eval_prompt_and_the_full_worked_answer(assets):
    """Each shot: user 'Question: …\\nAnswer:', assistant the train row's answer ending in '#### N' (the strict
    extractor's line); same seed -> same shots, another seed -> other shots."""
    options = {"data": str(assets / "benchmarks" / "gsm8k.jsonl"), "num_fewshot": 2,
               "fewshot_data": str(assets / "benchmarks" / "gsm8k_train.jsonl")}
    gsm = adapter("gsm8k", **options)
    items = gsm.load()
    train = [json.loads(line) for line in (assets / "benchmarks" / "gsm8k_train.jsonl").read_text().splitlines()]
    for item in items:
        turns = gsm.prompt(item)
        assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant", "user"]
        for (question, answer), line in zip(item["shots"], item["fewshot_lines"], strict=False):
            assert question == f"Question: {train[line - 1]['question']}\nAnswer:"
            assert answer == train[line - 1]["answer"] and answer.splitlines()[-1].startswith("#### ")
        assert turns[-1]["content"] == f"Question: {item['question']}\nAnswer:"
    assert [i["fewshot_lines"] for i in adapter("gsm8k", **options).load()] == [i["fewshot_lines"] for i in items]
    assert [i["fewshot_lines"] for i in adapter("gsm8k", **options, seed=5).load()] != [i["fewshot_lines"] for i in items]


def test_math_few_shot_end_to_end(tiny_bundle, assets, tmp_path):
    """2 shots out of the 3-row MATH train file; the conventions name the source, seed and format."""
    result = evaluate("math", tiny_bundle, options={
        "data": str(assets / "benchmarks" / "math.jsonl"), "max_new_tokens": 4, "num_fewshot": 2,
        "fewshot_data": str(assets / "benchmarks" / "math_train.jsonl")}, out_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [len(set(r["fewshot_lines"])) for r in rows] == [2, 2, 2, 2]
    assert all(1 <= line <= 3 for r in rows for line in r["fewshot_lines"])
    saved = json.loads((tmp_path / "metrics.json").read_text())["conventions"]
    assert saved["num_fewshot"] == 2 and saved["fewshot_source"].endswith("math_train.jsonl")
    assert saved["fewshot_seed"] == 0 and "boxed" in saved["fewshot_format"]
    assert result.metrics["accuracy"] == sum(r["correct"] for r in rows) / 4


def test_math_few_shot_solution_must_box_its_answer(tmp_path, assets):
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps({"problem": "1+1?", "solution": "It is 2.", "level": "Level 1", "type": "Algebra"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'solution': a few-shot solution must end in a \\boxed"):
        adapter("math", data=str(assets / "benchmarks" / "math.jsonl"), num_fewshot=1, fewshot_data=str(bad)).load()


def test_truthfulqa_shots_come_from_the_same_file_without_the_item(assets):
    """MC file of 3 questions, 2 shots each: the other two questions with their MC1 true choice; with --limit 1
    the shots still come from all 3 rows. Gen file of 2 rows, 1 shot: the other row's best_answer."""
    tqa = adapter("truthfulqa", data=str(assets / "benchmarks" / "truthfulqa_mc.jsonl"), num_fewshot=2,
                  generation_data=str(assets / "benchmarks" / "truthfulqa_gen.jsonl"), parts=["mc"])
    mc = tqa.load()["mc"]
    assert [sorted(i["fewshot_ids"]) for i in mc] == [["mc-2", "mc-3"], ["mc-1", "mc-3"], ["mc-1", "mc-2"]]
    by_id = {i["id"]: i for i in mc}
    for item in mc:
        for (question, answer), shot_id in zip(item["shots"], item["fewshot_ids"], strict=False):
            shot = by_id[shot_id]
            assert question == shot["question"] and answer == shot["mc1"][0][shot["mc1"][1].index(1)]
    limited = adapter("truthfulqa", data=str(assets / "benchmarks" / "truthfulqa_mc.jsonl"), num_fewshot=2,
                      parts=["mc"], limit=1).load()["mc"]
    assert len(limited) == 1 and limited[0]["id"] not in limited[0]["fewshot_ids"] and len(limited[0]["shots"]) == 2
    gen = adapter("truthfulqa", num_fewshot=1, parts=["gen"],
                  generation_data=str(assets / "benchmarks" / "truthfulqa_gen.jsonl")).load()["gen"]
    assert [i["shots"] for i in gen] == [[("Can lightning strike the same place twice?", "Yes")],
                                         [("What happens if you swallow chewing gum?",
                                           "It passes through your digestive system")]]
    with pytest.raises(DataError, match="besides the evaluated one, found 1"):
        adapter("truthfulqa", num_fewshot=2, parts=["gen"],
                generation_data=str(assets / "benchmarks" / "truthfulqa_gen.jsonl")).load()


def test_truthfulqa_few_shot_scores_and_records(tiny_bundle, assets):
    """The shots change the MC prompts, so the log-likelihoods differ from zero-shot; MC2 stays a probability."""
    options = {"data": str(assets / "benchmarks" / "truthfulqa_mc.jsonl"), "parts": ["mc"]}
    zero = evaluate("truthfulqa", tiny_bundle, options=options)
    two = evaluate("truthfulqa", tiny_bundle, options={**options, "num_fewshot": 2})
    assert zero.conventions["num_fewshot"] == 0 and two.conventions["num_fewshot"] == 2
    assert "minus the evaluated row" in two.conventions["fewshot_source"]
    assert [r["loglik_mc1"] for r in zero.items] != [r["loglik_mc1"] for r in two.items]
    assert all(0.0 < r["mc2"] <= 1.0 for r in two.items)
