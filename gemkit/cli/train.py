"""``gemkit train --method NAME``: train any registered objective with the shared engine."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml
from accelerate import PartialState

from gemkit.config import config_from_dict, expand_dotted, parse_key_values, set_option
from gemkit.data.readers import load_pairs, parse_mapping
from gemkit.errors import ConfigError
from gemkit.models import LoraSpec
from gemkit.registry import registry
from gemkit.train import TrainConfig, train


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="Train a policy or reward model with any objective (sega, sft, dpo, …).")
    parser.add_argument("--method", help="Objective plugin name; `gemkit plugins list` shows them.")
    parser.add_argument("--model", help="Hub id, directory, smollm2-135m (default), random:<size>, or a gemkit "
                        "checkpoint (e.g. runs/sft/checkpoint; a LoRA one is merged and gets a fresh LoRA).")
    parser.add_argument("--train", dest="train_data", help="Training file or builtin:arithmetic (default).")
    parser.add_argument("--map", help="Field mapping, e.g. prompt=question,chosen=answer_pos,rejected=answer_neg.")
    parser.add_argument("--out", help="Output directory (checkpoint/, train_log.jsonl, config.json).")
    parser.add_argument("-c", "--config", help="YAML file with the same keys as the flags; flags win.")
    parser.add_argument("--steps", type=int, dest="max_steps", help="Optimiser steps.")
    parser.add_argument("--batch-size", type=int, help="Records per micro-batch.")
    parser.add_argument("--grad-accum", type=int, help="Micro-batches per optimiser step.")
    parser.add_argument("--lr", type=float, help="Peak learning rate.")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N.")
    parser.add_argument("--dtype", help="auto, float32, bfloat16, float16.")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"],
                        help="Autocast on fp32 weights (default: the accelerate config's, else no).")
    parser.add_argument("--gradient-checkpointing", action="store_true", default=None,
                        help="Recompute activations in the backward pass: less memory, more time.")
    parser.add_argument("--max-length", type=int, help="Max prompt+response tokens.")
    parser.add_argument("--truncation", choices=["left-prompt", "error"],
                        help="Over --max-length: cut prompts from the left (default; counted and reported) or stop.")
    parser.add_argument("--lora-r", type=int, help="LoRA rank; 0 = full fine-tuning.")
    parser.add_argument("--save-every", type=int, help="Steps between resumable checkpoints.")
    parser.add_argument("--nan-policy", choices=["stop", "skip"])
    parser.add_argument("--scorer", help="Shortcut for --set scorer=NAME (objectives that score candidates).")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="An objective option, dotted into a component (scorer.lam=0.5, mapping=softmax, "
                             "mapping.tau=0.5); repeatable.")
    parser.add_argument("--resume", action="store_true", help="Continue from OUT/resume (Ctrl-C saves it and exits "
                                                              "130; --save-every N keeps it during the run).")
    parser.add_argument("--tensorboard", action="store_true", help="Also log to TensorBoard under OUT/tb.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    parser.set_defaults(handler=run)


TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, str, dict[str, str]]:
    """Dataclass defaults < YAML file < flags; the objective options are checked before any model loads."""
    file_values: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        file_values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(file_values, dict):
            raise ConfigError(f"{path}: expected a mapping of options at the top level")
        file_values = expand_dotted(file_values)  # `objective.scorer.lam: 0.5` is the nested form
    data_source = file_values.pop("train_data", None) or "builtin:arithmetic"
    mapping = parse_mapping(file_values.pop("map", None))
    values = {**file_values}
    for key in TRAIN_KEYS - {"objective", "lora"}:
        flag = getattr(args, key, None)
        if flag is not None:
            values[key] = flag
    if args.train_data:
        data_source = args.train_data
    if args.map:
        mapping = parse_mapping(args.map)
    lora = dict(values.pop("lora", {}) or {})
    if args.lora_r is not None:
        lora["r"] = args.lora_r
    objective = values.pop("objective", None) or {}
    if not isinstance(objective, dict):
        raise ConfigError(f"objective: expected a mapping of the objective's options, got {objective!r}")
    objective = expand_dotted(objective)
    # Flags after the file, in the order given: `--set mapping=softmax --set mapping.tau=0.5`.
    for key, value in _parse_nested(parse_key_values(args.set)).items():
        set_option(objective, key, value)
    if args.scorer:
        set_option(objective, "scorer", args.scorer)
    if "method" not in values:
        raise ConfigError("--method is required (e.g. --method sega); `gemkit plugins list` shows the objectives")
    values.setdefault("out", f"runs/train-{values['method']}")
    config = config_from_dict(TrainConfig, values, where="train config")
    config.lora = config_from_dict(LoraSpec, lora, where="lora")
    if Path(config.model).is_dir():
        # The checkpoint's gemkit.json records this path as its base, so it must not depend on the cwd.
        config.model = str(Path(config.model).resolve())
    # Built (and checked) once here; the engine uses this object as it is.
    config.objective = registry("objective").get(config.method).make_config(objective)
    return config, data_source, mapping


def _parse_nested(options: dict[str, Any]) -> dict[str, Any]:
    """A JSON value on the command line (``scorer_options={"lam": 2}``, the older form of
    ``scorer.lam=2``) arrives as a string."""
    out = {}
    for key, value in options.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"option '{key}': invalid JSON {value!r} ({exc.msg})") from None
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    config, source, mapping = resolve_config(args)
    pairs = load_pairs(source, mapping)
    result = train(config, pairs, resume=args.resume, progress=not args.quiet, data_source=str(source))
    if not PartialState().is_main_process:  # under several processes, rank 0 alone reports
        return 130 if result.interrupted else 0
    state = "interrupted, resumable with --resume" if result.interrupted else "done"
    print(f"{config.method}: {state} after {result.steps} steps in {result.wall_s:.1f}s; "
          f"checkpoint {result.checkpoint}; metrics {result.log_path}")
    last = {k: round(v, 4) for k, v in result.last_metrics.items() if isinstance(v, float)}
    print("last step: " + ", ".join(f"{k}={v}" for k, v in last.items()))
    print(f"truncated prompts: {result.truncated_records} of {len(pairs)} records over max_length={config.max_length}")
    return 130 if result.interrupted else 0
