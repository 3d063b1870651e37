"""``gemkit score`` on random:tiny: one line per candidate, fields consistent with Eq. 1 and Eq. 2."""
import json
import math
import re

import pytest

from gemkit.cli import main


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": "What is 2 + 3?", "answer": "5"},
            {"prompt": [{"role": "user", "content": "What is 7 times 6?"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_writes_one_consistent_line_per_candidate(prompts_file, tmp_path, capsys, tokenizer):
    """2 prompts × k=3 → 6 lines of up to 16 tokens, with the documented defaults λ = 1, ρ = 0.1,
    span=marker, fallback=tail:0.2 (docs/gem.md, Eq. 1 table).

    Span, from the documented rule: random weights never write "Final Answer" (checked on the
    decoded tokens), so every candidate takes the fallback: the last ⌈0.2·n⌉ tokens, finished=false.
    For n = 16 that is [12, 16) and the reasoning span is 12 tokens, m = max(1, ⌈0.1·12⌉) = 2.
    Score, Eq. 1 written out here: S = −mean(H[start:end]) + λ·mean(the m largest of H[:start]),
    with h_final and fork_entropy the two means. With the identity mapping reward = score and each
    prompt's advantages are score − group mean, so they sum to 0.

    Checked it can fail: flipping the sign of the fork term in entropy_score (``-h_final - lam * fork``)
    fails the score assertion; ``fixed_span`` returning ``(max(0, length - size - 1), length)`` fails
    the span assertion.
    """
    out = tmp_path / "candidates.jsonl"
    code = main(["score", "--model", "random:tiny", "--prompts", str(prompts_file), "-k", "3", "--max-new-tokens", "16",
                 "--out", str(out), "--device", "cpu", "--dtype", "float32", "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["prompt_id"], x["index"]) for x in lines] == [("p1", 0), ("p1", 1), ("p1", 2),
                                                             ("prompt-00002", 0), ("prompt-00002", 1), ("prompt-00002", 2)]
    assert any(len(x["token_ids"]) == 16 for x in lines)  # at least one candidate with m = 2 fork tokens
    for line in lines:
        ids, entropies = line["token_ids"], line["entropies"]
        n = len(ids)
        assert len(entropies) == n > 0
        text = tokenizer.decode(ids, skip_special_tokens=True)
        assert line["text"] == text
        assert not re.search(r"final\s+answer", text, re.IGNORECASE)
        start = n - math.ceil(0.2 * n)
        assert line["final_span"] == [start, n] and line["finished"] is False
        h_final = sum(entropies[start:]) / (n - start)
        reasoning = sorted(entropies[:start], reverse=True)
        m = max(1, math.ceil(0.1 * len(reasoning))) if reasoning else 0
        fork = sum(reasoning[:m]) / m if m else 0.0
        assert line["h_final"] == pytest.approx(h_final, abs=1e-5)
        assert line["fork_entropy"] == pytest.approx(fork, abs=1e-5)
        assert line["score"] == pytest.approx(-h_final + 1.0 * fork, abs=1e-5)
        assert line["reward"] == pytest.approx(line["score"], abs=1e-6)
        assert isinstance(line["eos"], bool)
    for first in (0, 3):
        group = lines[first:first + 3]
        mean = sum(x["score"] for x in group) / 3
        for x in group:
            assert x["advantage"] == pytest.approx(x["score"] - mean, abs=1e-5)
    assert "6 candidates for 2 prompts" in capsys.readouterr().out


def test_score_with_rank_mapping_on_builtin_prompts(tmp_path):
    """builtin:arithmetic?n=1 with k=4 and the rank mapping (docs/gem.md: r = (rank − (k−1)/2)/(k−1),
    tied scores share their mean rank). The 4 sampled candidates score differently (asserted), so the
    rewards are a permutation of (0 − 1.5)/3, (1 − 1.5)/3, … = {−½, −⅙, ⅙, ½}, each candidate's
    reward the one of its score's rank; the ranks are centred, so advantage = reward.

    Checked it can fail: ranking with ``<`` instead of ``>`` in RankMapping (rewards reversed) fails
    the per-candidate assertion.
    """
    out = tmp_path / "c.jsonl"
    code = main(["score", "--model", "random:tiny", "--prompts", "builtin:arithmetic?n=1", "-k", "4",
                 "--max-new-tokens", "5", "--mapping", "rank", "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["prompt_id"].startswith("arith-train")
    scores = [x["score"] for x in lines]
    assert len(set(scores)) == 4
    for x in lines:
        below = sum(s < x["score"] for s in scores)
        tied = sum(s == x["score"] for s in scores)
        rank = below + (tied - 1) / 2
        assert x["reward"] == pytest.approx((rank - 1.5) / 3, abs=1e-6)
        assert x["advantage"] == pytest.approx(x["reward"], abs=1e-6)
    assert sorted(round(x["reward"], 4) for x in lines) == [-0.5, -0.1667, 0.1667, 0.5]


def test_score_errors_before_loading_the_model(prompts_file, tmp_path, capsys):
    """A misspelt scorer, a bad scorer option and a bad prompts line each exit 2 with a teaching message."""
    base = ["score", "--model", "random:tiny", "--out", str(tmp_path / "x.jsonl"), "--quiet"]
    assert main(base + ["--prompts", str(prompts_file), "--scorer", "entropi"]) == 2
    assert "Did you mean: entropy" in capsys.readouterr().err
    assert main(base + ["--prompts", str(prompts_file), "--set", "span=middle"]) == 2
    assert "span rule must be" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"question": "no prompt"}\n')
    assert main(base + ["--prompts", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
