"""``gemkit score`` on random:tiny: one line per candidate, fields consistent with Eq. 1 and Eq. 2."""
import json
import math

import pytest

from gemkit.cli import main
from gemkit.gem.entropy_score import entropy_score


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": "What is 2 + 3?", "answer": "5"},
            {"prompt": [{"role": "user", "content": "What is 7 times 6?"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_writes_one_consistent_line_per_candidate(prompts_file, tmp_path, capsys):
    """2 prompts × k=3 → 6 lines. For each line: len(entropies) = len(token_ids); the score equals
    Eq. 1 recomputed from the written entropies and span (λ=1, ρ=0.1); with the identity mapping
    reward = score and each prompt's advantages are score − group mean, so they sum to 0."""
    out = tmp_path / "candidates.jsonl"
    code = main(["score", "--model", "random:tiny", "--prompts", str(prompts_file), "-k", "3", "--max-new-tokens", "6",
                 "--out", str(out), "--device", "cpu", "--dtype", "float32", "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["prompt_id"], x["index"]) for x in lines] == [("p1", 0), ("p1", 1), ("p1", 2),
                                                             ("prompt-00002", 0), ("prompt-00002", 1), ("prompt-00002", 2)]
    import torch

    for line in lines:
        n = len(line["token_ids"])
        assert len(line["entropies"]) == n and 0 <= line["final_span"][0] <= line["final_span"][1] == n
        recomputed = entropy_score(torch.tensor(line["entropies"]), tuple(line["final_span"]), lam=1.0,
                                   top_m_ratio=0.1)[0]
        assert line["score"] == pytest.approx(recomputed, abs=1e-4)
        assert line["reward"] == pytest.approx(line["score"], abs=1e-6)
        assert isinstance(line["finished"], bool) and isinstance(line["eos"], bool)
        assert all(0 <= h <= math.log(49152) + 1e-3 for h in line["entropies"])
    for first in (0, 3):
        group = lines[first:first + 3]
        mean = sum(x["score"] for x in group) / 3
        assert sum(x["advantage"] for x in group) == pytest.approx(0.0, abs=1e-5)
        assert group[0]["advantage"] == pytest.approx(group[0]["score"] - mean, abs=1e-5)
    assert "6 candidates for 2 prompts" in capsys.readouterr().out


def test_score_with_rank_mapping_on_builtin_prompts(tmp_path):
    """builtin:arithmetic?n=1 with k=4 and the rank mapping: rewards are the centred ranks, a
    permutation of {−½, −⅙, ⅙, ½} when the 4 scores differ."""
    out = tmp_path / "c.jsonl"
    code = main(["score", "--model", "random:tiny", "--prompts", "builtin:arithmetic?n=1", "-k", "4",
                 "--max-new-tokens", "5", "--mapping", "rank", "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["prompt_id"].startswith("arith-train")
    if len({x["score"] for x in lines}) == 4:
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
