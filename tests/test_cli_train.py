"""``gemkit train`` on random:tiny: any registered objective, YAML < flags, checkpoints that reload."""
import json

import pytest
import torch

from gemkit.cli import build_parser, main
from gemkit.cli.train import resolve_config
from gemkit.errors import ConfigError
from gemkit.registry import registry

BASE = ["--model", "random:tiny", "--device", "cpu", "--dtype", "float32", "--quiet"]


def read_log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_sft_full_finetune_saves_a_checkpoint_that_reloads(tmp_path):
    """2 SFT steps with --lora-r 0: two log rows, a resolved config, and a checkpoint whose weights
    differ from the seed-0 initial ones (so it was trained) and score the data like the run's model."""
    from gemkit.models import ModelSpec, load_model
    from gemkit.train import load_trained

    out = tmp_path / "sft"
    code = main(["train", "--method", "sft", "--train", "builtin:arithmetic?n=8", "--out", str(out), "--steps", "2",
                 "--batch-size", "2", "--lr", "1e-3", "--lora-r", "0", *BASE])
    assert code == 0
    rows = read_log(out)
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss"] > 0 for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["method"] == "sft" and config["train"]["lora"]["r"] == 0
    trained = load_trained(out / "checkpoint", device="cpu", dtype="float32").model
    initial = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=0)).model
    diffs = [float((a - b).abs().max()) for a, b in zip(trained.state_dict().values(), initial.state_dict().values(), strict=True)]
    assert max(diffs) > 0
    assert torch.isfinite(next(trained.parameters())).all()


def test_sega_logs_its_metrics_and_takes_scorer_options(tmp_path):
    """One SEGA step (k=2, 4 new tokens) with LoRA: the log row has every SEGA metric plus the engine's
    grad norm, lr and tokens/s; the nested scorer option arrives typed in the saved config."""
    out = tmp_path / "sega"
    code = main(["train", "--method", "sega", "--train", "builtin:arithmetic?n=4", "--out", str(out), "--steps", "1",
                 "--batch-size", "1", "--scorer", "entropy", "--set", "k=2", "--set", "max_new_tokens=4",
                 "--set", "scorer.lam=0.5", "--set", "scorer.span=last:2", *BASE])
    assert code == 0
    (row,) = read_log(out)
    for key in ("loss", "score_mean", "h_final_mean", "fork_entropy_mean", "response_length", "frac_finished",
                "advantage_std", "grad_norm", "lr", "tokens_per_s"):
        assert key in row, key
    assert row["response_length"] <= 4
    objective = json.loads((out / "config.json").read_text())["objective"]
    assert objective["k"] == 2 and objective["scorer"]["name"] == "entropy"
    assert objective["scorer"]["options"]["lam"] == 0.5 and objective["scorer"]["options"]["span"] == "last:2"
    assert (out / "checkpoint" / "gemkit.json").is_file()


def test_yaml_file_is_overridden_by_flags(tmp_path):
    """YAML says 5 steps, lr 0.01 and k=3; the flag --steps 1 wins, lr and k come from the file."""
    path = tmp_path / "run.yaml"
    path.write_text("# gemkit train -c run.yaml\nmethod: sega\nmax_steps: 5\nlr: 0.01\nobjective:\n  k: 3\n")
    args = build_parser().parse_args(["train", "-c", str(path), "--steps", "1", "--out", str(tmp_path / "o")])
    config, source, _ = resolve_config(args)
    assert (config.max_steps, config.lr, config.objective.k, source) == (1, 0.01, 3, "builtin:arithmetic")


def test_every_registered_objective_resolves_with_its_defaults(tmp_path):
    """The command is generic: each objective in the registry resolves with no options (nothing loads),
    or — when it needs an input no default can give, like rm-ppo's reward model — says what to pass."""
    names = registry("objective").names()
    assert {"sega", "sft"} <= set(names)
    for name in names:
        args = build_parser().parse_args(["train", "--method", name, "--out", str(tmp_path / name)])
        try:
            config, _, _ = resolve_config(args)
        except ConfigError as exc:
            assert "needs" in str(exc) or "required" in str(exc), f"{name}: {exc}"
            continue
        assert config.method == name


@pytest.mark.parametrize("argv, message", [
    (["--method", "sega", "--set", "kk=2"], "kk"),
    (["--method", "segaa"], "Did you mean: sega"),
    (["--method", "sega", "--set", "k=two"], "k"),
    (["--method", "sega", "--scorer", "entropi"], "Did you mean: entropy"),
])
def test_bad_options_exit_2_before_training(tmp_path, capsys, argv, message):
    out = tmp_path / "bad"
    assert main(["train", *argv, "--out", str(out), "--steps", "1", *BASE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and message in err
    assert not (out / "train_log.jsonl").exists()
