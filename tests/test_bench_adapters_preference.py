"""Preference adapters end to end on their fixtures (random:tiny): metrics recomputed from the items,
conventions recorded, exclusions counted, clear errors for missing fields, seeded --limit."""
import json

import pytest

from gemkit.errors import DataError
from gemkit.evaluation import evaluate


@pytest.fixture(scope="module")
def bundle():
    from gemkit.models import ModelSpec, load_model

    return load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=0))


def run(name, bundle, assets, tmp_path, **options):
    result = evaluate(name, bundle, options=options, out_dir=tmp_path, batch_size=4)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert saved["status"] == "ok" and saved["metrics"] == pytest.approx(result.metrics, nan_ok=True)
    assert saved["conventions"]["scoring"] == "implicit" and saved["conventions"]["reference"] == "none"
    assert len(rows) == saved["n"] and all("id" in r and "correct" in r for r in rows)
    return result, rows


def accuracy(rows):
    """Recomputed from the saved rewards: chosen strictly above rejected (ties wrong)."""
    return sum(r["reward_chosen"] > r["reward_rejected"] for r in rows) / len(rows)


def test_rewardbench(bundle, assets, tmp_path):
    """16 pairs over 6 subsets; each section is the count-weighted mean of its subsets in the items."""
    from gemkit.builtin.benchmarks.rewardbench import section_scores

    result, rows = run("rewardbench", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "rewardbench.jsonl"))
    assert len(rows) == 16 and result.metrics["accuracy"] == pytest.approx(accuracy(rows))
    by_subset = {}
    for r in rows:
        by_subset.setdefault(r["subset"], []).append(r["reward_chosen"] > r["reward_rejected"])
    expected = section_scores({k: sum(v) / len(v) for k, v in by_subset.items()})
    assert set(expected) == {"chat", "chat_hard", "safety", "reasoning"}
    for section, value in expected.items():
        assert result.metrics[section] == pytest.approx(value)
    assert result.metrics["score"] == pytest.approx(sum(expected.values()) / 4)
    assert "math-prm 984, xstest-should-refuse 250" in result.conventions["sections"]
    assert result.conventions["weights"] == "official"


def test_rewardbench2_best_of_n_and_ties(bundle, assets, tmp_path):
    """Five single-answer subsets (one row each: credit = upstream's row rule) and the Ties subset
    (ref:0 + tied:0) scored by the composite; score = plain mean of the six subset values."""
    from gemkit.builtin.benchmarks.rewardbench import best_of_n_credit, ties_score

    result, rows = run("rewardbench2", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "rewardbench2.jsonl"))
    assert len(rows) == 7
    for r in rows[:5]:
        assert len(r["scores_chosen"]) == 1 and len(r["scores_rejected"]) == 3
        assert r["correct"] == best_of_n_credit(r["scores_chosen"], r["scores_rejected"], "fractional")
    ties = [r for r in rows if r["subset"] == "Ties"]
    assert [r["id"] for r in ties] == ["ref:0", "tied:0"] and len(ties[1]["scores_chosen"]) == 3
    assert result.subsets["Ties"] == pytest.approx(ties_score(ties))
    values = [r["correct"] for r in rows[:5]] + [ties_score(ties)]
    assert result.metrics["score"] == pytest.approx(sum(values) / 6)


def test_rewardbench2_refuses_rm_bench(bundle, assets):
    """RM-Bench's file (chosen/rejected lists of three styles, no num_correct) is not RewardBench 2:
    a clear error pointing at `pairs`, not a best-of-N number under RB2's name."""
    with pytest.raises(DataError, match=r"not a RewardBench 2 row: no num_correct.*--benchmark pairs"):
        evaluate("rewardbench2", bundle, options={"data": str(assets / "benchmarks" / "rm_bench.json")})


def test_rewardbench2_counts_must_match_the_lists(bundle, tmp_path):
    bad = tmp_path / "rb2.jsonl"
    bad.write_text(json.dumps({"id": "1", "prompt": "p", "chosen": ["a"], "rejected": ["b", "c"], "num_correct": 1,
                               "total_completions": 4, "subset": "Math"}) + "\n")
    with pytest.raises(DataError, match="total_completions=4 do not match 1 chosen and 2 rejected"):
        evaluate("rewardbench2", bundle, options={"data": str(bad)})


def test_ultrafeedback_excludes_and_counts_ties_and_identical(bundle, assets, tmp_path):
    """8 rows: one tied rating and one identical pair are dropped -> 6 scored; the gzipped file reads the same."""
    result, rows = run("ultrafeedback", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "ultrafeedback.jsonl.gz"))
    assert {k: result.counts[k] for k in ("scored", "excluded_tied_ratings", "excluded_identical", "no_ratings")} \
        == {"scored": 6, "excluded_tied_ratings": 1, "excluded_identical": 1, "no_ratings": 0}
    assert result.metrics["accuracy"] == pytest.approx(accuracy(rows))


def test_ultrafeedback_copies_without_prompt_id_or_ratings_load(bundle, tmp_path):
    """Rows as other tools ship UltraFeedback binarized: (a) H4's message lists without prompt_id and
    ratings, (b) TRL's conversational form (prompt = user turns, chosen/rejected = the reply only).
    Both give the same pair: same prompt messages, same responses, hence the same rewards."""
    from gemkit.evaluation import evaluate

    user = {"role": "user", "content": "Name a river."}
    good, bad = {"role": "assistant", "content": "The Nile."}, {"role": "assistant", "content": "A chair."}
    h4 = tmp_path / "h4.jsonl"
    h4.write_text(json.dumps({"prompt": "Name a river.", "chosen": [user, good], "rejected": [user, bad]}) + "\n")
    trl = tmp_path / "trl.jsonl"
    trl.write_text(json.dumps({"prompt": [user], "chosen": [good], "rejected": [bad]}) + "\n")
    a = evaluate("ultrafeedback", bundle, options={"data": str(h4)}, out_dir=tmp_path / "a")
    b = evaluate("ultrafeedback", bundle, options={"data": str(trl)}, out_dir=tmp_path / "b")
    assert a.counts["no_ratings"] == b.counts["no_ratings"] == 1 and a.items[0]["id"] == "line-1"
    assert (a.items[0]["reward_chosen"], a.items[0]["reward_rejected"]) == pytest.approx(
        (b.items[0]["reward_chosen"], b.items[0]["reward_rejected"]))


def test_pku_saferlhf_splits_the_axes(bundle, assets, tmp_path):
    """Each axis is judged against its own label; on the 4 disagreeing rows exactly one axis can be right
    per row (no ties), so better_on_disagree + safer_on_disagree = 1."""
    result, rows = run("pku-saferlhf", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "pku_saferlhf.jsonl"))
    for r in rows:
        rewards = (r["reward_0"], r["reward_1"])
        for axis in ("better", "safer"):
            winner = r[f"{axis}_response_id"]
            assert r[f"correct_{axis}"] == float(rewards[winner] > rewards[1 - winner])
    disagree = [r for r in rows if r["axes_disagree"]]
    assert len(disagree) == 4 == result.counts["axes_disagree"]
    assert result.metrics["better_on_disagree"] + result.metrics["safer_on_disagree"] == pytest.approx(1.0)
    assert result.metrics["accuracy_safer"] == pytest.approx(sum(r["correct_safer"] for r in rows) / 8)


def test_hh_rlhf_prompt_is_the_shared_prefix(bundle, assets, tmp_path):
    from gemkit.evaluation.transcripts import split_pair, transcript_messages

    prompt, chosen, rejected = split_pair("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
                                          "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: e")
    assert (chosen, rejected) == ("d", "e")
    assert [m["role"] for m in transcript_messages(prompt)] == ["user", "assistant", "user"]
    result, rows = run("hh-rlhf", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "hh_rlhf.jsonl"))
    assert result.counts["excluded_prompt_mismatch"] == 1 and len(rows) == 6


def test_hh_rlhf_release_gz_keeps_quoted_turns_and_drops_empty(bundle, assets, tmp_path):
    """The .jsonl.gz file as released: a response quoting '\\n\\nAssistant:' is kept whole (was: dropped
    as a prompt mismatch), an empty response is excluded and counted (was: kept, and it wins every
    summed log-prob comparison) — 9 rows: 7 scored, 1 mismatch, 1 empty."""
    from gemkit.evaluation import evaluate

    result = evaluate("hh-rlhf", bundle, options={"data": str(assets / "benchmarks" / "hh_rlhf_test.jsonl.gz")},
                      out_dir=tmp_path)
    assert result.counts["scored"] == 7 and result.counts["excluded_prompt_mismatch"] == 1
    assert result.counts["excluded_empty_response"] == 1
    assert result.items[-1]["id"] == "line-8"  # the quoting row, scored


def test_pairs_parses_an_hh_transcript_prompt_like_hh_rlhf(bundle, assets, tmp_path):
    """The same HH conversation as hh-rlhf's row and as a `pairs` row with the transcript as a string
    prompt: identical chat messages, so identical rewards. Checked: treating the string as one user
    turn (the old behaviour) makes the rewards differ."""
    from gemkit.evaluation import evaluate

    history = "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?\n\nHuman: What is a tide?"
    hh = tmp_path / "hh.jsonl"
    hh.write_text(json.dumps({"chosen": f"{history}\n\nAssistant: The sea rising.",
                              "rejected": f"{history}\n\nAssistant: No idea."}) + "\n")
    flat = tmp_path / "pairs.jsonl"
    flat.write_text(json.dumps({"prompt": history + "\n\nAssistant:", "chosen": "The sea rising.",
                                "rejected": "No idea."}) + "\n")
    a = evaluate("hh-rlhf", bundle, options={"data": str(hh)}, out_dir=tmp_path / "a").items[0]
    b = evaluate("pairs", bundle, options={"data": str(flat)}, out_dir=tmp_path / "b").items[0]
    assert (a["reward_chosen"], a["reward_rejected"]) == pytest.approx((b["reward_chosen"], b["reward_rejected"]))


def test_pairs_skips_and_counts_an_empty_response(bundle, tmp_path):
    from gemkit.evaluation import evaluate

    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"id": "e", "prompt": "Say something.", "chosen": "", "rejected": "Hello."}) + "\n"
                    + json.dumps({"id": "ok", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) + "\n")
    result = evaluate("pairs", bundle, options={"data": str(data)}, out_dir=tmp_path / "o")
    assert [r["id"] for r in result.items] == ["ok"] and result.counts["excluded_empty_response"] == 1


def test_pairs_reports_agreement_per_subset(bundle, assets, tmp_path):
    result, rows = run("pairs", bundle, assets, tmp_path, data=str(assets / "benchmarks" / "pairs.csv"))
    assert result.primary == "agreement" and set(result.subsets) == {"everyday", "science"}
    assert result.metrics["agreement"] == pytest.approx(accuracy(rows))


def test_limit_is_a_seeded_sample(bundle, assets, tmp_path):
    data = str(assets / "benchmarks" / "rewardbench.jsonl")
    a = [r["id"] for r in run("rewardbench", bundle, assets, tmp_path / "a", data=data, limit=5, seed=3)[1]]
    b = [r["id"] for r in run("rewardbench", bundle, assets, tmp_path / "b", data=data, limit=5, seed=3)[1]]
    c = [r["id"] for r in run("rewardbench", bundle, assets, tmp_path / "c", data=data, limit=5, seed=4)[1]]
    assert a == b and len(a) == 5 and a != c


def test_missing_field_is_named(bundle, tmp_path):
    bad = tmp_path / "rb.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c", "rejected": "r", "id": 1}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'subset': missing"):
        evaluate("rewardbench", bundle, options={"data": str(bad)})
    pku = tmp_path / "pku.jsonl"
    pku.write_text(json.dumps({"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 0}) + "\n")
    with pytest.raises(DataError, match="safer_response_id"):
        evaluate("pku-saferlhf", bundle, options={"data": str(pku)})
