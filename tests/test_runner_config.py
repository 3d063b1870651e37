"""`gemkit bench` options: defaults < YAML < flags, unknown keys listed, every problem at once."""
from pathlib import Path

import pytest

from gemkit.cli import build_parser
from gemkit.cli.bench import resolve
from gemkit.errors import ConfigError
from gemkit.runner.bench import BenchConfig, plan_cells

ROOT = Path(__file__).resolve().parents[1]


def _resolve(*argv):
    return resolve(build_parser().parse_args(["bench", *argv]))


def test_default_yaml_is_what_make_bench_runs():
    assert _resolve("-c", str(ROOT / "benchmarks/default.yaml")) == _resolve("--methods", "sega,dpo") == BenchConfig()


def test_every_yaml_opens_with_the_command_that_runs_it():
    paths = sorted((ROOT / "benchmarks").glob("*.yaml"))
    assert {"default.yaml", "gem_paper.yaml"} <= {p.name for p in paths}
    for path in paths:
        lines = path.read_text().splitlines()
        opening = lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))]
        assert any(f"gemkit bench -c benchmarks/{path.name}" in line for line in opening), path.name


def test_gem_paper_yaml_mirrors_the_paper_and_resolves_every_name():
    """All six methods and seven benchmarks of Tables 1-3 resolve; rm-ppo trains its own reward model."""
    config = _resolve("-c", str(ROOT / "benchmarks/gem_paper.yaml"))
    assert config.methods == ["sft", "rm-ppo", "dpo", "pro", "ipo", "sega"]
    assert config.benchmarks == ["ultrafeedback", "pku-saferlhf", "rewardbench", "gsm8k", "math", "truthfulqa",
                                 "mt-bench"]
    config.validate()
    config.method_options["rm-ppo"] = {"reward_model": "runs/nowhere"}  # named, so it must exist
    with pytest.raises(ConfigError, match="'runs/nowhere' is not a gemkit checkpoint"):
        config.validate()


def test_flags_win_over_yaml(tmp_path):
    yaml_file = tmp_path / "b.yaml"
    yaml_file.write_text("methods: [ipo]\nshots: [8, 16]\nseeds: [1]\nsteps: 3\nmodel: random:tiny\n")
    config = _resolve("-c", str(yaml_file), "--shots", "4", "--steps", "2")
    assert (config.methods, config.shots, config.seeds, config.steps, config.model) == (["ipo"], [4], [1], 2,
                                                                                        "random:tiny")


def test_unknown_keys_and_bad_values_are_reported_together(tmp_path):
    yaml_file = tmp_path / "b.yaml"
    yaml_file.write_text("method: [dpo]\nshots: [ten]\nlr: fast\n")
    with pytest.raises(ConfigError) as info:
        _resolve("-c", str(yaml_file))
    message = str(info.value)
    assert "3 configuration problems" in message
    assert "unknown option 'method'. Did you mean 'methods'? Valid options: methods, benchmarks" in message
    assert "'shots' expects int, got 'ten'" in message and "'lr' expects float, got 'fast'" in message


def test_names_and_options_are_checked_before_any_model_loads():
    config = BenchConfig(methods=["dpx", "sega"], benchmarks=["arithmatic"], shots=[0],
                         method_options={"sega": {"kk": 3}, "ipo": {}, "ipx": {}})
    with pytest.raises(ConfigError) as info:
        config.validate()
    message = str(info.value)
    for expected in ("Unknown objective 'dpx'", "Did you mean: dpo", "Unknown benchmark 'arithmatic'",
                     "unknown option 'kk'", "method_options: Unknown objective 'ipx'. Did you mean: ipo",
                     "shots must be >= 1"):
        assert expected in message


def test_cell_ids_are_content_hashes():
    """Same inputs, same ids; another seed, lr or data fingerprint, another id; the base cell does not
    depend on the training data, so every method and data set shares it."""
    config = BenchConfig(methods=["dpo"], seeds=[1, 2], include_sft=False)
    ids = [c.cell_id for c in plan_cells(config, "data-a")]
    assert ids == [c.cell_id for c in plan_cells(config, "data-a")]
    assert ids[0].startswith("base-") and ids[1].startswith("dpo-s64-seed1-") and len(set(ids)) == 3
    other_data = [c.cell_id for c in plan_cells(config, "data-b")]
    assert other_data[0] == ids[0] and not set(other_data[1:]) & set(ids[1:])
    config.lr = 1e-5
    assert not set(c.cell_id for c in plan_cells(config, "data-a")[1:]) & set(ids[1:])


def test_the_runner_reads_what_each_objective_and_benchmark_declares(monkeypatch):
    """The runner names no plugin: step and batch defaults, option defaults, the ``--scorer`` option,
    a trained dependency and an SFT baseline all come from class attributes. Declaring them on dpo
    (and taking mt-bench's away) moves the behaviour with them: dpo plans 5 steps of 3 pairs with
    ``beta`` 0.3 and the scorer under ``judge_scorer``, sega keeps its own 12 × 2, mt-bench without
    ``compares_with_sft`` plans no SFT cell, and a declared (reference, sft) dependency applies only
    while the user leaves ``reference`` empty.
    Checked: with the runner's getattr on ``bench_steps`` removed, dpo plans the default 16 steps."""
    from gemkit.builtin.benchmarks.mt_bench import MTBench
    from gemkit.builtin.dpo import DPO
    from gemkit.runner.bench import trained_dependency

    monkeypatch.setattr(DPO, "bench_steps", 5, raising=False)
    monkeypatch.setattr(DPO, "bench_batch_size", 3, raising=False)
    monkeypatch.setattr(DPO, "bench_options", {"beta": 0.3}, raising=False)
    monkeypatch.setattr(DPO, "scorer_option", "judge_scorer", raising=False)
    config = BenchConfig(methods=["sega", "dpo"], benchmarks=["mt-bench"], scorer="entropy", include_base=False,
                         include_sft=False)
    assert config._method_options("dpo") == {"beta": 0.3, "judge_scorer": "entropy"}
    cells = {c.method: c.config for c in plan_cells(config, "data")}
    assert (cells["dpo"]["steps"], cells["dpo"]["batch_size"]) == (5, 3)
    assert (cells["sega"]["steps"], cells["sega"]["batch_size"], cells["sega"]["options"]["max_new_tokens"]) == (10, 2, 48)
    assert "sft" in cells and cells["dpo"]["baseline_cell"]  # mt-bench compares with SFT ...
    monkeypatch.setattr(MTBench, "compares_with_sft", False)
    assert "sft" not in {c.method for c in plan_cells(config, "data")}  # ... until it no longer declares it
    monkeypatch.setattr(DPO, "trained_dependency", ("reference", "sft"), raising=False)
    assert trained_dependency(config, "dpo") == ("reference", "sft")
    config.method_options["dpo"] = {"reference": "ckpt"}
    assert trained_dependency(config, "dpo") is None  # named by the user: nothing to train
