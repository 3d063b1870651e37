"""Scorer diagnostics end to end on random:tiny: ``gemkit score --gold`` and the ``scorer-diagnostics`` benchmark.

A random model never writes a right answer, so the answer check is replaced by one that marks a
candidate right when its text has an even length: both classes then occur and every figure can be
recomputed here by hand from the written per-candidate rows (pair counting, per-prompt means).
"""
import json

import pytest

from gemkit.cli import main
from gemkit.errors import ConfigError
from gemkit.evaluation import answer_check, evaluate


def _even(text: str, gold: str) -> bool:
    return len(text) % 2 == 0


def _by_hand(groups):
    """Pooled AUROC by counting pairs, and the three per-prompt accuracies, from [(scores, correct)]."""
    pos = [s for scores, correct in groups for s, c in zip(scores, correct, strict=True) if c]
    neg = [s for scores, correct in groups for s, c in zip(scores, correct, strict=True) if not c]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    best = []
    for scores, correct in groups:
        top = [c for s, c in zip(scores, correct, strict=True) if s == max(scores)]
        best.append(sum(top) / len(top))
    return {"auroc": wins / (len(pos) * len(neg)) if pos and neg else None,
            "best_of_k_by_score": sum(best) / len(groups),
            "random_choice": sum(sum(c) / len(c) for _, c in groups) / len(groups),
            "oracle": sum(float(any(c)) for _, c in groups) / len(groups)}


def test_score_gold_writes_diagnostics_that_match_the_candidates(tmp_path, monkeypatch, capsys):
    """4 prompts × k=4: every line gets ``correct`` from the check; the JSON's AUROC and accuracies equal
    the pair count and per-prompt means recomputed from the lines. Checked: writing ``not check(...)``
    into the lines makes the line assertion fail."""
    monkeypatch.setitem(answer_check.CHECKS, "last-number", _even)
    out = tmp_path / "c.jsonl"
    code = main(["score", "--model", "random:tiny", "--prompts", "builtin:arithmetic?n=4", "-k", "4",
                 "--max-new-tokens", "7", "--gold", "--out", str(out), "--device", "cpu", "--dtype", "float32",
                 "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(line["correct"] == (len(line["text"]) % 2 == 0) for line in lines)
    groups = [([x["score"] for x in lines[i:i + 4]], [x["correct"] for x in lines[i:i + 4]]) for i in range(0, 16, 4)]
    expected = _by_hand(groups)
    assert expected["auroc"] is not None  # both classes occur (seed 0), so the AUROC is really compared
    saved = json.loads((tmp_path / "c.diagnostics.json").read_text())
    assert saved["check"] == "last-number" and saved["k"] == 4 and saved["diagnostics"]["n_candidates"] == 16
    for key, value in expected.items():
        if value is None:
            assert key in saved["diagnostics"]["undefined"]
        else:
            assert saved["metrics"][key] == pytest.approx(value)
    printed = capsys.readouterr().out
    assert "AUROC (pooled)" in printed and "oracle accuracy (pass@k)" in printed


def test_score_gold_needs_answers(tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "What is 2 + 3?"}) + "\n")
    code = main(["score", "--model", "random:tiny", "--prompts", str(prompts), "--gold", "--out",
                 str(tmp_path / "c.jsonl"), "--device", "cpu", "--quiet"])
    assert code == 2
    assert "--gold needs prompts with a gold 'answer'" in capsys.readouterr().err
    assert not (tmp_path / "c.jsonl").exists()


def test_score_help_says_how_to_get_diagnostics(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    assert "--gold" in text and "AUROC" in text and "pass@k" in text


def test_benchmark_records_diagnostics_consistent_with_its_rows(tiny_bundle, tmp_path, monkeypatch):
    """3 held-out problems × k=3: each row's best-of-k / oracle / random follow from its scores and
    correct_k; the aggregate metrics are their means and the pooled AUROC the pair count; rows carry no
    ``correct`` key (not a paired-test column). Checked: an oracle of min() instead of max() fails."""
    monkeypatch.setitem(answer_check.CHECKS, "last-number", _even)
    result = evaluate("scorer-diagnostics", tiny_bundle, options={"limit": 3, "k": 3, "max_new_tokens": 6},
                      out_dir=tmp_path, batch_size=2)
    rows = result.items
    assert len(rows) == 3 and all(len(r["scores"]) == len(r["correct_k"]) == 3 for r in rows)
    assert all("correct" not in r for r in rows)
    assert all(r["correct_k"] == [float(len(t) % 2 == 0) for t in r["generations"]] for r in rows)
    expected = _by_hand([(r["scores"], r["correct_k"]) for r in rows])
    for key, value in expected.items():
        if value is None:
            assert key not in result.metrics
        else:
            assert result.metrics[key] == pytest.approx(value)
    for r in rows:
        assert r["oracle"] == max(r["correct_k"]) and r["random_choice"] == pytest.approx(sum(r["correct_k"]) / 3)
    assert result.conventions["kind"] == "scorer-diagnostics" and result.primary == "best_of_k_by_score"
    assert json.loads((tmp_path / "metrics.json").read_text())["conventions"]["check"] == "last-number"


def test_benchmark_rejects_a_source_without_gold_answers():
    from gemkit.registry import registry

    with pytest.raises(ConfigError, match="choose from arithmetic, gsm8k, math"):
        registry("benchmark").get("scorer-diagnostics").make_config({"source": "rewardbench"})


@pytest.mark.parametrize(("text", "gold", "right"), [
    ("6 x 6 = 36 apples.\nThe answer is 36.", "36", True),   # right number, no marker: counted
    ("Final Answer: 36 = 6 x 6 = 6 apples.", "36", False),   # the last number is what counts
    ("In all 1,000 shells", "1000", True),                   # thousands separators dropped
    ("no number at all", "3", False),
])
def test_last_number_check_reads_the_last_number(text, gold, right):
    """The arithmetic diagnostics' default check equals the benchmark's flexible accuracy read."""
    assert answer_check.get_check("last-number")(text, gold) is right
