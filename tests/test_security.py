"""Security guarantees (docs/reliability.md): no remote code without a flag, no pickle on load,
safetensors on save, no secrets in configs, only safe YAML, plugins only from the allow-list."""
import argparse
import ast
import dataclasses
import re
from pathlib import Path

import pytest

import gemkit
from gemkit.cli import build_parser
from gemkit.models import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "gemkit").rglob("*.py")) + sorted((ROOT / "plugins").glob("*/*.py"))


def calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield node


def dotted(func: ast.AST) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return "?." + ".".join(reversed(parts))  # a method of a call result, e.g. model.copy().eval()
    parts.append(func.id)
    return ".".join(reversed(parts))


def all_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield parser, action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_actions(sub)


def test_the_source_scan_sees_the_package():
    assert ROOT / "gemkit" / "train" / "checkpoint.py" in SOURCES and len(SOURCES) > 30


def test_every_torch_load_passes_weights_only_true():
    found = []
    for path in SOURCES:
        for node in calls(path):
            if dotted(node.func) == "torch.load":
                found.append(path)
                weights_only = [kw for kw in node.keywords if kw.arg == "weights_only"]
                assert weights_only and isinstance(weights_only[0].value, ast.Constant) and \
                    weights_only[0].value.value is True, f"{path}:{node.lineno}: torch.load without weights_only=True"
    assert found, "expected the trainer-state loader to call torch.load"
    assert not any("from torch import load" in p.read_text() for p in SOURCES)


def test_no_pickle_eval_exec_or_unsafe_yaml():
    banned = {"pickle.load", "pickle.loads", "eval", "exec", "yaml.load", "yaml.unsafe_load", "yaml.full_load",
              "dill.load", "joblib.load", "marshal.loads"}
    offenders = [f"{p.relative_to(ROOT)}:{n.lineno} {dotted(n.func)}" for p in SOURCES for n in calls(p)
                 if dotted(n.func) in banned]
    assert offenders == []


def test_trust_remote_code_is_off_unless_a_flag_says_so():
    assert ModelSpec().trust_remote_code is False
    flags = [(p.prog, a) for p, a in all_actions(build_parser()) if a.dest == "trust_remote_code"]
    assert flags, "gemkit models info must offer --trust-remote-code"
    for prog, action in flags:
        assert isinstance(action, argparse._StoreTrueAction) and action.default is False, prog
    literal = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in SOURCES for n in calls(p)
               for kw in n.keywords if kw.arg == "trust_remote_code"
               and isinstance(kw.value, ast.Constant) and kw.value.value is True]
    assert literal == []


def test_builtin_loader_forwards_trust_remote_code_only_when_asked(monkeypatch):
    """The flag travels ModelSpec -> tokenizer and from_pretrained; the default sends False."""
    import transformers

    import gemkit.builtin.models as hf

    seen = []

    def fake_from_pretrained(path, **kwargs):
        seen.append(kwargs["trust_remote_code"])
        raise OSError("stop here")

    monkeypatch.setattr(hf, "load_tokenizer", lambda name, **kwargs: seen.append(kwargs["trust_remote_code"]))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    for flag in (False, True):
        with pytest.raises(gemkit.ModelLoadError):
            hf.load_model(ModelSpec(name="some/model", trust_remote_code=flag), "policy")
    assert seen == [False, False, True, True]


def test_cli_flag_sets_trust_remote_code(monkeypatch):
    import gemkit.cli.models as models_cli

    specs = []

    def fake_load(spec, **kwargs):
        specs.append(spec)
        raise gemkit.ModelLoadError("stop here")

    monkeypatch.setattr(models_cli, "load_model", fake_load)
    assert gemkit.cli.main(["models", "info", "some/model"]) == 2
    assert gemkit.cli.main(["models", "info", "some/model", "--trust-remote-code"]) == 2
    assert [s.trust_remote_code for s in specs] == [False, True]


def test_weights_are_saved_as_safetensors(tmp_path):
    """A 1-step full fine-tune and a LoRA run: weights only as *.safetensors, never *.bin / pickles."""
    from gemkit.data.arithmetic import builtin_train_pairs
    from gemkit.models import LoraSpec
    from gemkit.train import TrainConfig, train

    pairs = builtin_train_pairs(4)
    for lora_r in (0, 2):
        out = tmp_path / f"r{lora_r}"
        config = TrainConfig(method="sft", model="random:tiny", out=str(out), max_steps=1, batch_size=2,
                             device="cpu", save_every=0, lora=LoraSpec(r=lora_r, alpha=4, target_modules=["q_proj"]))
        result = train(config, pairs, progress=False)
        files = [p.name for p in result.checkpoint.iterdir()]
        assert any(name.endswith(".safetensors") for name in files), files
        assert not [n for n in files if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))], files
    save_calls = [n for p in SOURCES for n in calls(p) if dotted(n.func).endswith("save_pretrained")
                  and "model" in dotted(n.func)]
    for node in save_calls:
        kw = {k.arg: k.value for k in node.keywords}
        assert "safe_serialization" in kw and kw["safe_serialization"].value is True, node.lineno


def test_no_config_field_can_hold_a_secret():
    """API keys come from the environment only: no Config field, CLI flag or YAML key carries one."""
    from gemkit.registry import KINDS, registry
    from gemkit.train import TrainConfig

    secret = re.compile(r"(api_?key|secret|password|access_?token|auth)", re.IGNORECASE)
    configs = [TrainConfig, ModelSpec] + [registry(kind).get(name).cls.Config for kind in KINDS
                                          for name in registry(kind).names()]
    bad = [f"{c.__qualname__}.{f.name}" for c in configs for f in dataclasses.fields(c) if secret.search(f.name)]
    bad += [f"{p.prog} {a.option_strings}" for p, a in all_actions(build_parser()) if secret.search(a.dest or "")]
    assert bad == []
