"""A plugin that raises inside a hook or a component method is named (plugin and distribution);
gemkit's own errors are not blamed on plugins; what does not touch the broken plugin keeps working."""
import pytest
from plugins_broken.fake_dist import BROKEN_ENTRY_POINTS, fake_dist

import gemkit
from gemkit.cli import main
from gemkit.errors import PluginError
from gemkit.manager import build_plugin_manager, set_plugin_manager
from gemkit.registry import blame, registry
from gemkit.testing import make_scoring_inputs

TINY_SEGA = ["train", "--method", "sega", "--model", "random:tiny", "--steps", "1", "--batch-size", "1",
             "--set", "k=2", "--set", "max_new_tokens=4", "--device", "cpu", "--lora-r", "2", "--quiet"]


@pytest.fixture(autouse=True)
def broken_installed(tmp_path, monkeypatch):
    for var in ("GEMKIT_PLUGINS", "GEMKIT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GEMKIT_STRICT_PLUGINS", "0")
    fake_dist(tmp_path / "site", monkeypatch, {k: BROKEN_ENTRY_POINTS[k] for k in ("flaky", "bad_loader", "good")})
    set_plugin_manager(None)
    yield
    set_plugin_manager(None)


def test_scorer_raising_during_training_is_named_with_its_distribution(tmp_path, capsys):
    with pytest.raises(ValueError, match="flaky scorer exploded"):  # a bug keeps its traceback
        main([*TINY_SEGA, "--scorer", "flaky", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert ("Error: scorer 'flaky' from plugin 'flaky' (gemkit-broken 0.0.1) raised ValueError: "
            "flaky scorer exploded on purpose") in err
    assert "GEMKIT_DISABLE_PLUGINS" in err


def test_same_run_with_a_working_scorer_is_unaffected(tmp_path):
    assert main([*TINY_SEGA, "--scorer", "good_len", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "checkpoint").is_dir()


def test_load_model_hook_raising_is_named_and_other_models_still_load(capsys):
    with pytest.raises(RuntimeError, match="bad_loader cannot parse"):
        main(["models", "info", "broken:thing", "--device", "cpu"])
    assert "Error: hook load_model from plugin 'bad_loader' (gemkit-broken 0.0.1) raised RuntimeError" in \
        capsys.readouterr().err
    assert main(["models", "info", "random:tiny", "--device", "cpu", "--json"]) == 0


def test_errors_in_gemkit_itself_are_not_blamed_on_a_plugin():
    scorer = registry("scorer").get("entropy").build()
    inputs = make_scoring_inputs(with_logits=False)
    inputs.tokenizer = None  # the built-in needs the tokenizer to find the final-answer marker
    with pytest.raises(AttributeError) as info:
        scorer.score(inputs)
    assert blame(info.value) is None


def test_register_hook_raising_is_reported_by_plugin_and_others_register(tmp_path, monkeypatch):
    fake_dist(tmp_path / "site2", monkeypatch, {"broken_register": BROKEN_ENTRY_POINTS["broken_register"]},
              name="gemkit-broken-register")
    pm = build_plugin_manager()
    scorers = registry("scorer", pm)
    assert {"entropy", "flaky", "good_len"} <= set(scorers.names())
    assert scorers.plugin_errors["broken_register"].startswith("RuntimeError: config file")
    record = pm.load_records["broken_register"]
    assert record.distribution == "gemkit-broken-register" and "register_scorers: RuntimeError" in record.error


def test_builtin_raising_while_registering_is_a_gemkit_bug_not_hidden(monkeypatch):
    import gemkit.builtin.entropy as builtin_entropy

    @gemkit.hookimpl
    def broken(register):
        raise RuntimeError("built-in bug")

    monkeypatch.setattr(builtin_entropy, "register_scorers", broken)
    pm = build_plugin_manager(load_entrypoints=False)
    with pytest.raises(PluginError, match=r"plugin 'entropy' \(gemkit\): register_scorers failed: RuntimeError"):
        registry("scorer", pm)
