"""Model specs, the one loader, the embedded default and random-initialised models."""
from gemkit.models.loader import (
    apply_lora,
    count_parameters,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
)
from gemkit.models.spec import EMBEDDED_MODEL, LoraSpec, ModelBundle, ModelSpec

__all__ = [
    "EMBEDDED_MODEL", "LoraSpec", "ModelBundle", "ModelSpec", "apply_lora", "count_parameters", "load_model",
    "load_tokenizer", "resolve_device", "resolve_dtype",
]
