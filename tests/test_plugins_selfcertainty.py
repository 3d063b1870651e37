"""Issue 9: the separately installed gemkit-selfcertainty distribution is found through its entry
point, listed with its distribution, and trains SEGA in place of the entropy scorer."""
import json

import pytest

from gemkit.cli import main
from gemkit.io import read_jsonl
from gemkit.manager import set_plugin_manager
from gemkit.registry import registry


@pytest.fixture(autouse=True)
def fresh_manager(monkeypatch):
    for var in ("GEMKIT_PLUGINS", "GEMKIT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    set_plugin_manager(None)
    yield
    set_plugin_manager(None)


def test_listed_with_its_distribution(capsys):
    assert main(["plugins", "list", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "selfcertainty")
    assert (row["kind"], row["plugin"], row["distribution"], row["version"]) == (
        "scorer", "selfcertainty", "gemkit-selfcertainty", "0.1.0")
    assert row["aliases"] == ["self-certainty"] and row["error"] is None


def test_blocked_by_allow_list_and_no_plugins(monkeypatch):
    monkeypatch.setenv("GEMKIT_PLUGINS", "someone-else")
    assert "selfcertainty" not in registry("scorer").names()
    monkeypatch.setenv("GEMKIT_PLUGINS", "gemkit-selfcertainty")  # distribution names are accepted too
    set_plugin_manager(None)
    assert "selfcertainty" in registry("scorer").names()


def test_sega_trains_with_selfcertainty_on_the_tiny_model(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--method", "sega", "--scorer", "selfcertainty", "--model", "random:tiny",
                 "--steps", "2", "--batch-size", "1", "--set", "k=2", "--set", "max_new_tokens=6",
                 "--device", "cpu", "--lora-r", "2", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["objective"]["scorer"]["name"] == "selfcertainty"
    log = list(read_jsonl(out / "train_log.jsonl"))
    assert [row["step"] for row in log] == [1, 2]
    # KL(U || p_t) >= 0, so the mean score is positive for a non-uniform random model; an empty
    # logits tensor would have raised instead (the scorer declares needs_logits = True).
    assert all(row["score_mean"] > 0 for row in log)
    assert (out / "checkpoint").is_dir()
