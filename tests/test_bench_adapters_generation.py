"""Generation and judged adapters end to end: gsm8k (gemkit vs lm-eval item by item), math, truthfulqa, mt-bench."""
import json
import math

import pytest
import torch

from gemkit.builtin.benchmarks.gsm8k import GSM8K, GSM8KConfig
from gemkit.builtin.benchmarks.mt_bench import MTBench, MTBenchConfig
from gemkit.evaluation import evaluate
from gemkit.evaluation.context import EvalContext


def digit_bundle(tokenizer):
    """A random untied Llama whose vocabulary is masked to digits, '####', ',', '.', '$', '-' and spaces,
    so greedy answers are varied number-like strings that exercise both extraction rules."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from gemkit.models import ModelBundle, ModelSpec

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=False, initializer_range=0.5, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(config).eval()
    allowed = tokenizer.convert_tokens_to_ids(list("0123456789") + ["Ġ####", "####", ",", ".", "$", "-", "Ġ", "Ġ$"])
    mask = torch.full((config.vocab_size,), -1e4)
    mask[allowed] = 0.0
    model.lm_head.register_forward_hook(lambda module, inputs, output: output + mask)
    return ModelBundle(model, tokenizer, ModelSpec(name="random:digits", device="cpu", dtype="float32"))


@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_gsm8k_gemkit_and_lm_eval_agree_item_by_item(tokenizer, assets, num_fewshot):
    """Same greedy generations from gemkit's generator and from lm-eval's gsm8k task (local data_files),
    and our strict/flexible extraction equals lm-eval's filters on every item. With 2 shots from the
    5-row local train file, lm-eval's chat-templated prompt is character-for-character ours on every item
    (its sampler, seeded with the same seed, drew the same train rows as earlier turns)."""
    bundle = digit_bundle(tokenizer)
    data = str(assets / "benchmarks" / "gsm8k.jsonl")
    fewshot = str(assets / "benchmarks" / "gsm8k_train.jsonl")
    results = {}
    for engine in ("gemkit", "lm-eval"):
        adapter = GSM8K(GSM8KConfig(data=data, engine=engine, max_new_tokens=20,
                                    num_fewshot=num_fewshot, fewshot_data=fewshot))
        results[engine] = adapter.evaluate(EvalContext(bundle, batch_size=3), adapter.load())
    ours, theirs = results["gemkit"].items, results["lm-eval"].items
    assert len(ours) == len(theirs) == 6
    assert all(row["lm_eval_same_prompt"] for row in theirs)
    assert [len(r["fewshot_lines"]) for r in ours] == [num_fewshot] * 6
    if num_fewshot:  # the draws vary across items (a walk of one generator, not one fixed pair of shots)
        assert len({tuple(r["fewshot_lines"]) for r in ours}) > 1
        assert all(1 <= line <= 5 for r in ours for line in r["fewshot_lines"])
    assert [r["generation"] for r in ours] == [r["generation"] for r in theirs]
    assert len({r["generation"] for r in ours}) > 1 and any(r["flexible"] != "[invalid]" for r in ours)
    for row in theirs:
        assert row["strict"] == row["lm_eval_strict_match"]["prediction"]
        assert row["flexible"] == row["lm_eval_flexible_extract"]["prediction"]
        assert row["correct"] == row["lm_eval_strict_match"]["exact_match"]
        assert row["correct_flexible"] == row["lm_eval_flexible_extract"]["exact_match"]
    assert results["gemkit"].metrics == results["lm-eval"].metrics
    assert results["gemkit"].conventions["num_fewshot"] == results["lm-eval"].conventions["num_fewshot"] == num_fewshot


def test_math_and_truthfulqa_end_to_end(tiny_bundle, assets, tmp_path):
    """MATH: gold from the answer field, accuracy = mean of items. TruthfulQA MC2 recomputed by hand from the
    saved log-likelihoods: Σ_true exp(ll) / Σ exp(ll)."""
    math_result = evaluate("math", tiny_bundle, options={"data": str(assets / "benchmarks" / "math.jsonl"),
                                                         "max_new_tokens": 8}, out_dir=tmp_path / "math")
    assert [r["gold"] for r in math_result.items] == ["11", "\\frac{3}{4}", "5", "7"]
    assert math_result.metrics["accuracy"] == sum(r["correct"] for r in math_result.items) / 4
    assert set(math_result.subsets) == {"Algebra", "Prealgebra"}

    tqa = evaluate("truthfulqa", tiny_bundle, options={
        "data": str(assets / "benchmarks" / "truthfulqa_mc.jsonl"), "max_new_tokens": 8,
        "generation_data": str(assets / "benchmarks" / "truthfulqa_gen.jsonl")}, out_dir=tmp_path / "tqa")
    mc = [r for r in tqa.items if r["part"] == "mc"]
    labels = [[1, 1, 0], [1, 1, 0, 0], [1, 0]]
    for row, lab in zip(mc, labels, strict=False):
        probs = [math.exp(v) for v in row["loglik_mc2"]]
        assert row["mc2"] == pytest.approx(sum(p for p, t in zip(probs, lab, strict=False) if t) / sum(probs), rel=1e-6)
        # the true MC1 choice is listed first; correct = the first argmax is it (lm-eval's acc)
        assert row["correct"] == float(row["loglik_mc1"].index(max(row["loglik_mc1"])) == 0)
    assert tqa.counts == {"mc": 3, "gen": 2, "excluded_too_long": 0} and {"mc1", "mc2", "em"} <= set(tqa.metrics)
    assert json.loads((tmp_path / "tqa" / "metrics.json").read_text())["primary"] == "mc1"


class FirstAlwaysJudge:
    """A maximally position-biased judge: answer A always wins."""

    def __init__(self):
        self.calls = []

    def compare(self, question, answer_a, answer_b):
        self.calls.append((answer_a, answer_b))
        return "A"


def test_mt_bench_position_bias_cancels_after_the_order_swap(tiny_bundle, assets):
    """Judged (model, baseline) -> A and (baseline, model) -> A: the orders disagree, so every judgment is a tie.
    4 questions × 2 turns = 8 judgments: 0 wins, 0 losses, 8 ties, win rate (0 + ½·8) / 8 = 0.5, 2 judge calls
    per judgment (16). The coding question has no reference answer (counted); the math one has."""
    judge = FirstAlwaysJudge()
    adapter = MTBench(MTBenchConfig(data=str(assets / "benchmarks" / "mt_bench.jsonl"), baseline="random:tiny",
                                    max_new_tokens=4), judge=judge)
    result = adapter.evaluate(EvalContext(tiny_bundle, batch_size=4), adapter.load())
    assert result.counts == {"win": 0, "loss": 0, "tie": 8, "questions": 4, "no_reference": 1}
    assert result.metrics["win_rate"] == 0.5 and result.subsets == {"coding": 0.5, "math": 0.5, "writing": 0.5}
    assert len(judge.calls) == 16
    model_first, baseline_first = judge.calls[0], judge.calls[1]
    assert model_first == baseline_first[::-1]  # the same two answers, swapped
    assert [r["turn"] for r in result.items] == [1, 2] * 4


class RecordingJudge:
    def __init__(self):
        self.questions = []

    def compare(self, question, answer_a, answer_b):
        self.questions.append((question, answer_a))
        return "tie"


def test_mt_bench_judges_each_turn_and_gives_math_its_reference(tiny_bundle, assets):
    """FastChat's per-turn grading: turn 1 shows only the first question and first answers; turn 2 shows both
    questions and each side's two answers. The math question's reference (144, then 48) reaches the judge for
    that turn; writing questions get none (FastChat's NEED_REF_CATS = math, reasoning, coding)."""
    judge = RecordingJudge()
    adapter = MTBench(MTBenchConfig(data=str(assets / "benchmarks" / "mt_bench.jsonl"), baseline="random:tiny",
                                    max_new_tokens=4), judge=judge)
    result = adapter.evaluate(EvalContext(tiny_bundle, batch_size=4), adapter.load())
    math_rows = [r for r in result.items if r["category"] == "math"]
    assert [r["reference_given"] for r in math_rows] == [True, True]
    by_turn = {r["turn"]: judge.questions[2 * result.items.index(r)] for r in math_rows}
    assert by_turn[1][0].endswith("[Reference answer to turn 1]\n144") and "Turn 2" not in by_turn[1][0]
    assert by_turn[2][0].startswith("Turn 1: What is 12 times 12?\n\nTurn 2: And divided by 3?")
    assert by_turn[2][0].endswith("[Reference answer to turn 2]\n48")
    assert by_turn[2][1].startswith("Turn 1 answer: ") and "Turn 2 answer: " in by_turn[2][1]
    assert not any("Reference answer" in q for (q, _), r in zip(judge.questions[::2], result.items, strict=True)
                   if r["category"] == "writing")


def test_mt_bench_base_baseline_fails_before_generating(tiny_bundle, assets, monkeypatch):
    """baseline=base on a model without adapters: the ConfigError comes before any answer is generated."""
    import gemkit.builtin.benchmarks.mt_bench as mt_bench
    from gemkit.errors import ConfigError

    def no_generation(*args, **kwargs):
        raise AssertionError("generated before checking the baseline")

    monkeypatch.setattr(mt_bench, "answer_turns", no_generation)
    adapter = MTBench(MTBenchConfig(data=str(assets / "benchmarks" / "mt_bench.jsonl"), baseline="base"),
                      judge=RecordingJudge())
    with pytest.raises(ConfigError, match="baseline=base needs a LoRA checkpoint"):
        adapter.evaluate(EvalContext(tiny_bundle, batch_size=4), adapter.load())


def test_win_rates_by_hand():
    """2 wins, 1 loss, 1 tie: win_rate = (2 + 0.5) / 4 = 0.625."""
    from gemkit.evaluation.judges import both_orders, win_rates

    assert win_rates(["win", "win", "loss", "tie"])["win_rate"] == 0.625

    class Prefers:
        def __init__(self, good):
            self.good = good

        def compare(self, q, a, b):
            return "A" if a == self.good else ("B" if b == self.good else "tie")

    assert both_orders(Prefers("mine"), "q", "mine", "base")[0] == "win"
    assert both_orders(Prefers("base"), "q", "mine", "base")[0] == "loss"


def test_math_reads_the_original_release_directory(assets):
    """MATH as released (test/<subject>/<n>.json, problem/level/type/solution, no answer field): the same
    problems, golds (last \\boxed{} of the solution) and subjects as the MATH-500-style JSONL fixture."""
    from gemkit.builtin.benchmarks.math import Math, MathConfig

    def key(items):
        return sorted((it["problem"], it["gold"], it["subset"]) for it in items)

    release = Math(MathConfig(data=str(assets / "benchmarks" / "MATH"))).load()
    jsonl = Math(MathConfig(data=str(assets / "benchmarks" / "math.jsonl"))).load()
    assert len(release) == 4 and key(release) == key(jsonl)
