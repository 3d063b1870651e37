"""`pairs` and the pair-scoring path on real-schema rows: LLMBar's label column, RM-Bench's style
grid and domain scores, identical pairs skipped and counted (or kept from the CLI), over-long pairs
skipped and named, a policy that is its own reference warned about, PKU-SafeRLHF's safety labels."""
import json

import pytest

from gemkit.cli import main
from gemkit.data.readers import parse_mapping, read_pairs
from gemkit.errors import DataError
from gemkit.evaluation import evaluate

LLMBAR_MAP = "prompt=input,chosen=output_1,rejected=output_2,label=label"


def test_llmbar_label_picks_the_preferred_output(assets):
    """label 1 keeps output_1 as chosen, label 2 makes output_2 chosen. The fixture's better answer
    always starts 'X is <definition>' and the worse one says 'a kind of fruit', so every chosen must be
    the definition. Checked: without the swap the label-2 rows (2 of 4) fail."""
    pairs = read_pairs(assets / "benchmarks" / "llmbar.json", parse_mapping(LLMBAR_MAP))
    raw = json.loads((assets / "benchmarks" / "llmbar.json").read_text())
    assert [r["label"] for r in raw] == [1, 2, 1, 2]
    for pair, row in zip(pairs, raw, strict=True):
        assert pair.chosen == row[f"output_{row['label']}"] and "fruit" not in pair.chosen
        assert "fruit" in pair.rejected and "label" not in pair.metadata


def test_label_outside_one_two_is_an_error(tmp_path):
    bad = tmp_path / "llmbar.json"
    bad.write_text(json.dumps([{"input": "q", "output_1": "a", "output_2": "b", "label": 0}]))
    with pytest.raises(DataError, match=r"field 'label': expected 1 \('output_1' preferred\) or 2"):
        read_pairs(bad, parse_mapping(LLMBAR_MAP))


def test_rm_bench_lists_become_every_chosen_rejected_combination(assets):
    """RM-Bench rows (3 styled chosen, 3 styled rejected; ids '<domain>/<n>' as in total_dataset.json):
    5 rows × 3 × 3 = 45 pairs; id 'code/1:2-3' is row 'code/1''s second chosen against its third
    rejected. Without expand_lists the lists are an error."""
    path = assets / "benchmarks" / "rm_bench.json"
    raw = json.loads(path.read_text())
    assert [sorted(r) for r in raw] == [["chosen", "domain", "id", "prompt", "rejected"]] * 5
    pairs = read_pairs(path, expand_lists=True)
    assert len(pairs) == 45
    pair = next(p for p in pairs if p.id == "code/1:2-3")
    assert (pair.chosen, pair.rejected) == (raw[1]["chosen"][1], raw[1]["rejected"][2])
    assert (pair.metadata["chosen_index"], pair.metadata["rejected_index"], pair.metadata["domain"]) == (2, 3, "code")
    with pytest.raises(DataError, match="expected a string or a chat message list"):
        read_pairs(path)


def grid_items(domain, row, credit):
    """Item rows and metadata of one RM-Bench row: every (chosen i, rejected j) with credit(i, j)."""
    items = [{"id": f"{domain}/{row}:{i}-{j}", "correct": credit(i, j)} for i in (1, 2, 3) for j in (1, 2, 3)]
    meta = {it["id"]: {"chosen_index": int(it["id"][-3]), "rejected_index": int(it["id"][-1]), "domain": domain}
            for it in items}
    return items, meta


def test_rm_bench_scores_follow_upstream_grid_and_domains():
    """By hand. chat: credit 1 where chosen style i >= rejected style j, so hard (j > i) = 0, normal = 1,
    easy (i > j) = 1, average 2/3. safety-refuse all right and safety-response all wrong pool into one
    'safety' domain: every cell 1/2, average 1/2. rm_bench_average = (2/3 + 1/2)/2 = 7/12; hard =
    (0 + 1/2)/2 = 1/4; normal = easy = (1 + 1/2)/2 = 3/4. (Pooling all 27 pairs would give 15/27; keeping
    the safety domains apart (2/3 + 1 + 0)/3 = 5/9.) Checked it can fail: with the domain not cut at '-'
    the average became 5/9, and with easy = i < j hard and easy swapped."""
    from gemkit.builtin.benchmarks.pairs import rm_bench_scores

    chat, chat_meta = grid_items("chat", 0, lambda i, j: float(i >= j))
    refuse, refuse_meta = grid_items("safety-refuse", 1, lambda i, j: 1.0)
    respond, respond_meta = grid_items("safety-response", 2, lambda i, j: 0.0)
    scores, domains = rm_bench_scores(chat + refuse + respond, {**chat_meta, **refuse_meta, **respond_meta})
    assert scores == pytest.approx({"rm_bench_average": 7 / 12, "rm_bench_hard": 1 / 4, "rm_bench_normal": 3 / 4,
                                    "rm_bench_easy": 3 / 4})
    assert domains == pytest.approx({"chat": 2 / 3, "safety": 1 / 2})
    assert rm_bench_scores([{"id": "a", "correct": 1.0}], {"a": {}}) == ({}, {})


def test_rm_bench_file_through_pairs_matches_upstream_formula(tiny_bundle, assets, tmp_path):
    """The fixture end to end: rm_bench_* recomputed from the saved rewards with upstream's matrix
    arithmetic (numpy triu/tril over a 3×3 grid per domain, strict '>', safety-* pooled), and
    agreement = the plain mean over all 45 pairs. Checked it can fail: with the domain not cut at '-'
    (safety-refuse and safety-response apart) subsets had 5 domains, not upstream's 4."""
    np = pytest.importorskip("numpy")
    result = evaluate("pairs", tiny_bundle, options={"data": str(assets / "benchmarks" / "rm_bench.json")},
                      out_dir=tmp_path)
    assert len(result.items) == 45
    grids = {}
    for item in result.items:
        row_id, cell = item["id"].split(":")
        domain = row_id.split("/")[0].split("-")[0]
        i, j = (int(x) - 1 for x in cell.split("-"))
        grids.setdefault(domain, {}).setdefault(row_id, np.zeros((3, 3)))[i, j] = \
            item["reward_chosen"] > item["reward_rejected"]
    per_domain = {}
    for domain, rows in grids.items():
        acc = sum(rows.values()) / len(rows)
        per_domain[domain] = (np.sum(np.triu(acc, 1)) / 3, np.mean(np.diag(acc)), np.sum(np.tril(acc, -1)) / 3)
    assert sorted(per_domain) == ["chat", "code", "math", "safety"]
    assert result.metrics["rm_bench_average"] == pytest.approx(np.mean([np.mean(v) for v in per_domain.values()]))
    for k, name in enumerate(("hard", "normal", "easy")):
        assert result.metrics[f"rm_bench_{name}"] == pytest.approx(np.mean([v[k] for v in per_domain.values()]))
    assert result.subsets == pytest.approx({d: np.mean(v) for d, v in per_domain.items()})
    assert result.metrics["agreement"] == pytest.approx(
        sum(r["reward_chosen"] > r["reward_rejected"] for r in result.items) / 45)


def test_llmbar_file_through_the_documented_command(assets, tmp_path):
    """docs/metrics.md's LLMBar command (--set map=... with its commas and '=' signs) on the fixture
    JSON array: 4 pairs, ids line-1..4 (LLMBar rows have no id), agreement = the share of saved rows
    with reward_chosen > reward_rejected, no rm_bench_* scores (not list rows). Checked it can fail:
    with rm_bench_scores counting rows that did not come from lists, rm_bench_* appeared here."""
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "pairs", "--model", "random:tiny", "--device", "cpu",
                 "--data", str(assets / "benchmarks" / "llmbar.json"), "--set", f"map={LLMBAR_MAP}",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["line-1", "line-2", "line-3", "line-4"]
    assert sorted(metrics["metrics"]) == ["agreement"]
    assert metrics["metrics"]["agreement"] == pytest.approx(
        sum(r["reward_chosen"] > r["reward_rejected"] for r in rows) / 4)


def write_pairs(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


ROWS = [{"id": "a", "prompt": "Say hi.", "chosen": "Hi there!", "rejected": "Go away."},
        {"id": "same", "prompt": "Say yes.", "chosen": "Yes.", "rejected": "Yes."},
        {"id": "b", "prompt": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair."}]


def test_identical_pair_is_skipped_and_counted_not_fatal(tiny_bundle, tmp_path):
    """3 rows, one identical: 2 scored, excluded_identical = 1 and its id recorded."""
    data = write_pairs(tmp_path / "p.jsonl", ROWS)
    result = evaluate("pairs", tiny_bundle, options={"data": data}, out_dir=tmp_path / "o")
    assert [r["id"] for r in result.items] == ["a", "b"]
    assert result.counts["excluded_identical"] == 1 and result.conventions["excluded_identical_ids"] == ["same"]


def test_allow_identical_from_the_cli_keeps_and_ties_it(assets, tmp_path, capsys):
    """--set allow_identical=true: all 3 scored; the identical pair ties (same reward), so the tie
    count is at least 1 and its credit is 0 (ties=wrong)."""
    data = write_pairs(tmp_path / "p.jsonl", ROWS)
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "pairs", "--model", "random:tiny", "--device", "cpu", "--data", data,
                 "--set", "allow_identical=true", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {r["id"]: r for r in map(json.loads, (out / "items.jsonl").read_text().splitlines())}
    assert metrics["counts"]["scored"] == 3 and metrics["counts"]["excluded_identical"] == 0
    assert rows["same"]["reward_chosen"] == rows["same"]["reward_rejected"] and rows["same"]["correct"] == 0.0
    assert metrics["counts"]["ties"] >= 1


def test_over_long_pair_is_skipped_named_and_counted(tiny_bundle, tmp_path):
    """max_length=48: a 300-word response cannot fit even with its prompt cut, so that pair is
    skipped (warning names it), the other two are scored; before, the whole run aborted."""
    rows = [ROWS[0], {"id": "long", "prompt": "Tell a story.", "chosen": "word " * 300, "rejected": "No."}, ROWS[2]]
    data = write_pairs(tmp_path / "p.jsonl", rows)
    with pytest.warns(UserWarning, match=r"1 item\(s\) skipped.*max_length=48.*\(long\)"):
        result = evaluate("pairs", tiny_bundle, options={"data": data, "max_length": 48}, out_dir=tmp_path / "o")
    assert [r["id"] for r in result.items] == ["a", "b"]
    assert result.counts["excluded_too_long"] == 1 and result.conventions["excluded_too_long_ids"] == ["long"]


def test_policy_that_is_its_own_reference_warns_and_counts_ties(tmp_path):
    """Fresh LoRA adapters (B = 0) make the policy equal its base: with reference=base every implicit
    reward is β·0 = 0, every pair ties, and the run says so (tie count = 2, a warning) instead of a
    bare 0.0."""
    from gemkit.models import LoraSpec, ModelSpec, load_model

    bundle = load_model(ModelSpec(name="random:tiny", seed=0), lora=LoraSpec(r=4))
    data = write_pairs(tmp_path / "p.jsonl", [ROWS[0], ROWS[2]])
    with pytest.warns(UserWarning, match="all 2 scored pairs tie.*its own reference"):
        result = evaluate("pairs", bundle, options={"data": data, "reference": "base"}, out_dir=tmp_path / "o")
    assert result.counts["ties"] == 2 and result.metrics["agreement"] == 0.0
    assert all(r["reward_chosen"] == r["reward_rejected"] == 0.0 for r in result.items)


def test_pku_safe_rate_of_the_model_choice(tiny_bundle, assets, tmp_path):
    """safe_rate_model_choice = mean over untied rows of is_response_k_safe for k = the higher-reward
    response, recomputed from the item rows; the annotators' sides give the reference rates."""
    result = evaluate("pku-saferlhf", tiny_bundle, options={"data": str(assets / "benchmarks" / "pku_saferlhf.jsonl")},
                      out_dir=tmp_path)
    rows = result.items
    picked = [r[f"is_response_{int(r['reward_1'] > r['reward_0'])}_safe"] for r in rows
              if r["reward_0"] != r["reward_1"]]
    assert result.metrics["safe_rate_model_choice"] == pytest.approx(sum(picked) / len(picked))
    assert result.metrics["safe_rate_safer"] == pytest.approx(
        sum(r[f"is_response_{r['safer_response_id']}_safe"] for r in rows) / len(rows))
    # In the fixture the safer response is always labelled safe: a check that the labels were read.
    assert result.metrics["safe_rate_safer"] == 1.0 and result.metrics["safe_rate_better"] < 1.0
