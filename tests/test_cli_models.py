"""``gemkit models info``."""
import json

from gemkit.cli import main


def test_models_info_random_tiny_json(capsys):
    assert main(["models", "info", "random:tiny", "--json", "--device", "cpu", "--dtype", "float32"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "LlamaForCausalLM" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["parameters"] == info["trainable_parameters"] > 0
    assert info["vocab_size"] == 49152 and info["chat_template"] is True and info["source"] == "random:tiny"


def test_models_info_text_and_errors(capsys):
    assert main(["models", "info", "random:tiny", "--device", "cpu", "--dtype", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "bfloat16" in out and "chat template          present" in out and "M)" in out
    assert main(["models", "info", "/no/such/model-dir", "--device", "cpu"]) == 2
    assert "could not load '/no/such/model-dir'" in capsys.readouterr().err
