"""One loader for every model: resolves device and dtype, asks the ``load_model`` hook, adds LoRA."""
from __future__ import annotations

import os
from typing import Any

import torch

from gemkit.errors import ModelLoadError
from gemkit.models.spec import EMBEDDED_MODEL, LoraSpec, ModelBundle, ModelSpec


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device '{device}' was asked for but no CUDA GPU is visible; use --device cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on a CUDA GPU that supports it, fp32 otherwise (bf16 on CPU stalled DPO here)."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_tokenizer(name: str, *, trust_remote_code: bool = False, revision: str | None = None) -> Any:
    """Tokenizer of a hub id or directory; ``smollm2-135m``/``random:*`` use the embedded one."""
    from transformers import AutoTokenizer

    if name == EMBEDDED_MODEL or name.startswith("random:"):
        from gemkit.models.embedded import ensure_embedded_cache

        path: str = str(ensure_embedded_cache())
    else:
        path = name
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(name, exc)) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _not_found_message(name: str, exc: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = " (HF_HUB_OFFLINE=1 is set, so nothing is downloaded)" if offline else ""
    return (f"could not load '{name}'{hint}: {exc}. Give a local directory, a reachable hub id, "
            f"'{EMBEDDED_MODEL}' (the embedded default) or 'random:tiny'.")


def load_model(spec: ModelSpec | str, *, role: str = "policy", lora: LoraSpec | None = None, pm: Any = None) -> ModelBundle:
    """Load ``spec`` through the ``load_model`` hook, place it, and wrap it with LoRA if asked.

    ``lora=None`` or ``lora.r == 0`` leaves every weight trainable (full fine-tuning).
    """
    from gemkit.manager import get_plugin_manager

    spec = ModelSpec(name=spec) if isinstance(spec, str) else spec
    pm = pm or get_plugin_manager()
    bundle = pm.hook.load_model(spec=spec, role=role)
    if bundle is None:
        raise ModelLoadError(f"no plugin could load model '{spec.name}'")
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    bundle.model.to(device=device, dtype=dtype)
    if lora is not None and lora.r > 0:
        bundle.model = apply_lora(bundle.model, lora, task=spec.task)
    return bundle


def apply_lora(model: Any, lora: LoraSpec, *, task: str = "causal-lm") -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    available = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in available]
    if missing:
        raise ModelLoadError(f"LoRA target modules {missing} are not in this model; it has e.g. "
                             f"{sorted(n for n in available if n.endswith('proj'))[:8]}")
    depth = getattr(model.config, "num_hidden_layers", None)
    if lora.layers is not None and depth is not None and max(lora.layers) >= depth:
        raise ModelLoadError(f"LoRA layers {lora.layers} go past this model's {depth} layers (indices 0 to {depth - 1})")
    # SEQ_CLS makes peft train and save the ``score`` head in full (modules_to_save) next to the adapter.
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
        layers_to_transform=list(lora.layers) if lora.layers is not None else None,
        task_type=TaskType.SEQ_CLS if task == "reward" else TaskType.CAUSAL_LM,
    )
    return get_peft_model(model, config)


def count_parameters(model: Any) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
