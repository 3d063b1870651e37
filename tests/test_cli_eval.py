"""`gemkit eval`: table on stdout, metrics.json + items.jsonl written; bad input exits 2 naming the problem."""
import json

from gemkit.cli import main


def test_cli_eval_writes_metrics_and_items(assets, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--benchmark", "pairs", "--model", "random:tiny", "--device", "cpu",
                 "--data", str(assets / "benchmarks" / "pairs.csv"), "--limit", "4", "--set", "aggregate=mean",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert metrics["primary"] == "agreement" and metrics["conventions"]["aggregate"] == "mean" and len(rows) == 4
    assert metrics["metrics"]["agreement"] == sum(r["correct"] for r in rows) / 4
    assert "agreement *" in printed and "metrics.json" in printed


def test_cli_eval_errors_name_the_problem(assets, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answers": "a"}) + "\n")
    assert main(["eval", "--benchmark", "gsm8k", "--model", "random:tiny", "--device", "cpu", "--data", str(bad),
                 "--out", str(tmp_path / "o")]) == 2
    assert "field 'answer': missing" in capsys.readouterr().err
    assert main(["eval", "--benchmark", "rewardbench", "--set", "ties=maybe", "--model", "random:tiny",
                 "--out", str(tmp_path / "o")]) == 2
    assert "'ties' must be one of" in capsys.readouterr().err
    assert main(["eval", "--benchmark", "rewardbenc", "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean: rewardbench" in capsys.readouterr().err


def test_cli_eval_few_shot_flags_reach_the_benchmark(assets, tmp_path, capsys):
    """--num-fewshot 2 --fewshot-data FILE on gsm8k: 2 shots per item from the 5-row train file, recorded in
    metrics.json and printed; on a benchmark without few-shot the flag is an unknown option (exit 2)."""
    out = tmp_path / "out"
    code = main(["eval", "--benchmark", "gsm8k", "--model", "random:tiny", "--device", "cpu",
                 "--data", str(assets / "benchmarks" / "gsm8k.jsonl"), "--limit", "2", "--num-fewshot", "2",
                 "--fewshot-data", str(assets / "benchmarks" / "gsm8k_train.jsonl"), "--set", "max_new_tokens=4",
                 "--out", str(out)])
    assert code == 0
    conventions = json.loads((out / "metrics.json").read_text())["conventions"]
    assert conventions["num_fewshot"] == 2 and conventions["fewshot_source"].endswith("gsm8k_train.jsonl")
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [len(r["fewshot_lines"]) for r in rows] == [2, 2]
    assert "num_fewshot=2" in capsys.readouterr().out
    assert main(["eval", "--benchmark", "pairs", "--model", "random:tiny", "--num-fewshot", "1",
                 "--data", str(assets / "benchmarks" / "pairs.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "num_fewshot" in capsys.readouterr().err
