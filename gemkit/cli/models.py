"""``gemkit models info SPEC``: what a model spec resolves to."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gemkit.models import ModelSpec, count_parameters, load_model


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="Inspect models.")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="Parameters, dtype, device, chat template and cache path of a model.")
    info.add_argument("spec", help="Hub id, local directory, smollm2-135m or random:tiny|135m|1b|8b.")
    info.add_argument("--device", default="auto")
    info.add_argument("--dtype", default="auto")
    info.add_argument("--trust-remote-code", action="store_true", help="Allow code shipped with a hub model to run.")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    bundle = load_model(ModelSpec(name=args.spec, device=args.device, dtype=args.dtype,
                                  trust_remote_code=args.trust_remote_code))
    total, trainable = count_parameters(bundle.model)
    info = {
        "spec": args.spec, "source": bundle.source, "architecture": type(bundle.model).__name__,
        "parameters": total, "trainable_parameters": trainable, "dtype": str(bundle.dtype).replace("torch.", ""),
        "device": str(bundle.device), "vocab_size": len(bundle.tokenizer),
        "chat_template": bool(getattr(bundle.tokenizer, "chat_template", None)), "cache_path": bundle.cache_path,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:<22} {value}")
    return 0
