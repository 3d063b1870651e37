"""``gemkit models info SPEC``: what a model spec resolves to (size, dtype, device, tokenizer, cache)."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gemkit.models import ModelSpec, count_parameters, load_model


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="Inspect models.")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="Parameters, dtype, device, architecture, vocabulary, chat template and "
                                       "cache path of a model.")
    info.add_argument("spec", help="Hub id, local directory, smollm2-135m (embedded) or random:tiny|135m|1b|8b.")
    info.add_argument("--device", default="auto", help="auto (CUDA if visible, else CPU), cpu, cuda, cuda:N.")
    info.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                      help="auto: bf16 on a capable GPU, else float32.")
    info.add_argument("--revision", help="Hub revision (branch, tag or commit).")
    info.add_argument("--trust-remote-code", action="store_true", help="Allow code shipped with a hub model to run.")
    info.add_argument("--json", action="store_true", help="Print a JSON object.")
    info.set_defaults(handler=run_info)


def model_info(spec: ModelSpec) -> dict[str, Any]:
    """The facts ``gemkit models info`` prints, as a JSON-ready dict."""
    bundle = load_model(spec)
    total, trainable = count_parameters(bundle.model)
    config = getattr(bundle.model, "config", None)
    return {
        "spec": spec.name,
        "source": bundle.source,
        "architecture": type(bundle.model).__name__,
        "model_type": getattr(config, "model_type", None),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "parameters": total,
        "trainable_parameters": trainable,
        "dtype": str(bundle.dtype).replace("torch.", ""),
        "device": str(bundle.device),
        "vocab_size": len(bundle.tokenizer),
        "embedding_rows": getattr(config, "vocab_size", None),
        "max_positions": getattr(config, "max_position_embeddings", None),
        "chat_template": bool(getattr(bundle.tokenizer, "chat_template", None)),
        "cache_path": bundle.cache_path,
    }


def _human(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count:,} ({count / size:.1f}{unit})"
    return f"{count:,}"


def run_info(args: argparse.Namespace) -> int:
    info = model_info(ModelSpec(name=args.spec, device=args.device, dtype=args.dtype, revision=args.revision,
                                trust_remote_code=args.trust_remote_code))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key.endswith("parameters"):
            value = _human(value)
        elif key == "chat_template":
            value = "present" if value else "none (plain-text prompts)"
        print(f"{key.replace('_', ' '):<22} {'-' if value is None else value}")
    return 0
