"""A component inside a config (SEGA's scorer and mapping, GRPO's reward, PRO's scorer) is named and
configured one way: dotted keys on the command line and in YAML, typed at once, did-you-mean at any
depth, checked by `gemkit bench` before the first cell, built once and handed on."""
from __future__ import annotations

import dataclasses

import pytest

from gemkit.builtin.sega import Sega, SegaConfig
from gemkit.cli import build_parser, main
from gemkit.cli.train import resolve_config
from gemkit.components import MappingSpec, ScorerSpec, component_problems
from gemkit.config import expand_dotted, set_option
from gemkit.errors import ConfigError
from gemkit.train import TrainConfig
from gemkit.train.engine import build_objective


def _train_config(*argv: str):
    return resolve_config(build_parser().parse_args(["train", *argv]))[0]


def test_set_option_nests_dotted_keys_and_turns_a_name_into_a_group():
    """`mapping=softmax` then `mapping.tau=0.5` → {"name": "softmax", "tau": 0.5}; in the other order
    the name lands in the group too; a scalar cannot take a dotted child."""
    tree: dict = {}
    set_option(tree, "mapping", "softmax")
    set_option(tree, "mapping.tau", 0.5)
    set_option(tree, "method_options.sega.k", 3)
    assert tree == {"mapping": {"name": "softmax", "tau": 0.5}, "method_options": {"sega": {"k": 3}}}
    assert expand_dotted({"scorer.lam": 1, "scorer": "entropy"}) == {"scorer": {"lam": 1, "name": "entropy"}}
    with pytest.raises(ConfigError, match="'k' is 4, not a group"):
        set_option({"k": 4}, "k.x", 1)


def test_train_flags_configure_nested_components_typed():
    """--set scorer.lam=0.5 gives EntropyConfig(lam=0.5) (a float, not the string '0.5'); --set
    mapping=softmax --set mapping.tau=0.5 gives SoftmaxConfig(tau=0.5); the rest keep defaults."""
    objective = _train_config("--method", "sega", "--set", "scorer.lam=0.5", "--set", "mapping=softmax",
                              "--set", "mapping.tau=0.5", "--set", "k=3").objective
    assert isinstance(objective, SegaConfig) and objective.k == 3
    assert objective.scorer.name == "entropy" and objective.scorer.options.lam == 0.5
    assert objective.scorer.options.top_m_ratio == 0.1
    assert objective.mapping == MappingSpec.make("softmax", {"tau": 0.5})


def test_older_json_form_and_yaml_forms_mean_the_same_spec(tmp_path):
    """`scorer_options={"lam": 0.25}` (the documented older form), a nested YAML mapping and a dotted
    YAML key all give the same ScorerSpec; a flag after the file wins."""
    older = _train_config("--method", "sega", "--set", 'scorer_options={"lam": 0.25, "span": "last:2"}')
    path = tmp_path / "run.yaml"
    path.write_text("# gemkit train -c run.yaml\nmethod: sega\nobjective:\n  scorer: {name: entropy, lam: 0.25}\n"
                    "  scorer.span: last:2\n  mapping.tau: 2.0\n  mapping: softmax\n")
    nested = _train_config("-c", str(path))
    assert older.objective.scorer == nested.objective.scorer == ScorerSpec.make("entropy", {"lam": 0.25,
                                                                                           "span": "last:2"})
    assert nested.objective.mapping.options.tau == 2.0
    flagged = _train_config("-c", str(path), "--set", "scorer.lam=0.75")
    assert flagged.objective.scorer.options.lam == 0.75 and flagged.objective.scorer.options.span == "last:2"


@pytest.mark.parametrize("argv, expected", [
    (["--set", "scorer.lamda=1"], "unknown option 'scorer.lamda'. Did you mean 'scorer.lam'?"),
    (["--set", 'scorer_options={"lamda": 1}'], "Did you mean 'scorer.lam'?"),
    (["--set", "mapping=softmax", "--set", "mapping.temperature=2"], "unknown option 'mapping.temperature'"),
    (["--set", "mapping=softmx"], "Unknown mapping 'softmx'. Did you mean: softmax?"),
    (["--set", "scorer.lam=high"], "'scorer.lam' expects float, got 'high'"),
])
def test_nested_mistakes_exit_2_naming_the_key(tmp_path, capsys, argv, expected):
    out = tmp_path / "bad"
    code = main(["train", "--method", "sega", *argv, "--out", str(out), "--model", "random:tiny", "--quiet"])
    assert code == 2 and expected in capsys.readouterr().err
    assert not out.exists()


def test_engine_uses_the_built_objective_config_as_is():
    """The CLI builds SegaConfig once; the objective the engine makes holds that very object (a
    rebuild from a dict would give an equal but different one)."""
    config = _train_config("--method", "sega", "--set", "scorer.lam=0.5")
    objective = build_objective(config)
    assert isinstance(objective, Sega) and objective.config is config.objective
    assert objective.scorer.config is config.objective.scorer.options
    from_dict = build_objective(TrainConfig(method="sega", objective={"scorer": {"lam": 0.5}}))
    assert from_dict.config == config.objective and from_dict.config is not config.objective


def test_direct_construction_in_python_takes_names_too():
    """SegaConfig(scorer="entropy", mapping={"name": "softmax", "tau": 3}) resolves like the CLI."""
    config = SegaConfig(scorer="entropy", mapping={"name": "softmax", "tau": 3})
    assert config.mapping.options.tau == 3.0 and config.scorer == ScorerSpec.make("entropy")
    assert dataclasses.asdict(config)["mapping"] == {"name": "softmax", "options": {"tau": 3.0}}


def test_component_problems_walks_every_level():
    """GRPO's reward and PRO's scorer are checked like SEGA's; a clean config has no problems."""
    assert component_problems("objective", "sega", {"scorer": "entropy", "mapping.tau": 1}) == [
        "objective 'sega': mapping 'identity': unknown option 'mapping.tau'. Valid options: none"]
    assert "Did you mean 'reward.lam'?" in component_problems("objective", "grpo",
                                                              {"reward": "entropy", "reward.lamb": 1})[0]
    assert "Did you mean 'scorer.lam'?" in component_problems("objective", "pro", {"scorer.lamda": 1})[0]
    assert component_problems("objective", "grpo", {"reward": "answer", "k": 2}) == []


def test_bench_rejects_a_misspelt_nested_key_before_any_cell(tmp_path, capsys):
    """`gemkit bench` with method_options.sega.scorer_options.lamda exits 2 naming the key and the
    right one; nothing of the run is written."""
    path = tmp_path / "bench.yaml"
    path.write_text("# gemkit bench -c bench.yaml\nmethods: [sega, dpo]\nmodel: random:tiny\n"
                    "method_options:\n  sega: {scorer_options: {lamda: 1.0}, mapping: softmax, mapping.tua: 2}\n")
    out = tmp_path / "run"
    assert main(["bench", "-c", str(path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'scorer.lamda'. Did you mean 'scorer.lam'?" in err
    assert "unknown option 'mapping.tua'. Did you mean 'mapping.tau'?" in err
    assert not out.exists()
