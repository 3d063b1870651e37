"""Shared harness of the side-by-side performance scripts (issue 7).

Each script measures gemkit and a peer in the SAME run: same model, data, LoRA, batch, lengths,
precision and thread count. Absolute times on a shared machine are noise; the ratios of one run
are the result. Each side of a comparison runs in its own child process (one after the other,
never at once) so that its peak memory is its own: a process's peak RSS cannot be un-counted.

What lives here: the common flags, thread pinning, warm-up-excluded step timing, peak memory
(CPU: the kernel's RSS high-water mark, reset after warm-up; CUDA: the allocator's peak),
versions + hardware capture, nominal FLOPs and MFU for GPU runs, and appending a section to the
raw log ``reports/perf/log-<year>.md`` (``reports/perf.md`` is the hand-kept summary of it).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: the raw run log of this year; reports/perf.md summarises the current figures from it
REPORT = REPO / "reports" / "perf" / f"log-{_dt.date.today().year}.md"

# Dense peak TFLOP/s per GPU family, (bf16/fp16 tensor core, fp32 without TF32). Vendor datasheets;
# the SXM parts' numbers (PCIe H100: 756 / 51). Override with --peak-tflops for another part.
PEAK_TFLOPS: dict[str, tuple[float, float]] = {
    "H200": (989.0, 67.0),
    "H100 PCIe": (756.0, 51.0),
    "H100": (989.0, 67.0),
    "A100": (312.0, 19.5),
    "L40S": (362.0, 91.6),
    "L4": (121.0, 30.3),
    "A10": (125.0, 31.2),
}


# --------------------------------------------------------------------------------------------- flags
def base_parser(description: str, *, default_steps: int, default_warmup: int = 1) -> argparse.ArgumentParser:
    """The flags every perf script shares; scripts add their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="smollm2-135m", help="Model spec (smollm2-135m, random:tiny, a directory …).")
    parser.add_argument("--model-size", choices=["1b", "8b"], default=None,
                        help="Build random:1b / random:8b instead of --model (GPU runs; reports tokens/s and MFU).")
    parser.add_argument("--steps", type=int, default=default_steps, help="Timed steps per side (after warm-up).")
    parser.add_argument("--warmup", type=int, default=default_warmup, help="Untimed warm-up steps per side.")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="cpu or cuda (default: cuda if visible).")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="Precision of both sides (default: float32 on CPU, bfloat16 on CUDA).")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for both sides (default: all cores, at most 2 on CPU).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-tflops", type=float, default=None, help="Accelerator peak for MFU (default: table).")
    parser.add_argument("--no-report", action="store_true", help="Print the ratios but do not append to the raw log.")
    parser.add_argument("--report", default=str(REPORT), help="Markdown file the section is appended to.")
    parser.add_argument("--in-process", action="store_true",
                        help="Run both sides in this process (smoke tests: faster, but peak memory is not per side).")
    # Internal: run one side in this process and write its result as JSON.
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-json", default=None, help=argparse.SUPPRESS)
    return parser


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the device/dtype/threads defaults and the effective model name."""
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("Error: --device cuda was asked for but no CUDA GPU is visible")
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    if args.threads is None:
        cores = os.cpu_count() or 1
        args.threads = min(2, cores) if args.device == "cpu" else cores
    args.model_name = f"random:{args.model_size}" if args.model_size else args.model
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit(f"Error: --steps must be >= 1 and --warmup >= 0, got {args.steps} and {args.warmup}")
    return args


def setup_process(threads: int) -> None:
    """Offline Hub, quiet tokenizers, and the same torch thread count on every side."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


# ---------------------------------------------------------------------------------------- memory
def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory of this process from ``reset()`` on.

    CPU: the kernel's RSS high-water mark (``VmHWM``), reset by writing 5 to ``/proc/self/clear_refs``
    (Linux >= 4.0); where that is not allowed a 10 ms sampling thread tracks ``VmRSS`` instead.
    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
    """

    def __init__(self, device: str):
        self.device = device
        self.method = "cuda-allocator" if device == "cuda" else "VmHWM"
        self.baseline_mib = 0.0
        self._sampled = 0
        self._stop: threading.Event | None = None

    def reset(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline_mib = torch.cuda.memory_allocated() / 2**20
            return
        self.baseline_mib = (_status_kib("VmRSS") or 0) / 1024
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self._start_sampler()

    def _start_sampler(self) -> None:
        self.method = "VmRSS sampled every 10 ms"
        self._sampled = _status_kib("VmRSS") or 0
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():  # type: ignore[union-attr]
                self._sampled = max(self._sampled, _status_kib("VmRSS") or 0)
                time.sleep(0.01)

        threading.Thread(target=sample, daemon=True).start()

    def peak_mib(self) -> float:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20
        if self._stop is not None:
            return max(self._sampled, _status_kib("VmRSS") or 0) / 1024
        return (_status_kib("VmHWM") or 0) / 1024


# ----------------------------------------------------------------------------------------- timing
def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], *, steps: int, warmup: int, device: str) -> list[float]:
    """Seconds per call of ``fn`` for ``steps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def summarise(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "mean_s": statistics.fmean(times), "min_s": min(times),
            "max_s": max(times), "n": len(times)}


# -------------------------------------------------------------------------------------- sides
@dataclass
class SideResult:
    """What one side of a comparison measured (written as JSON by the child process)."""

    side: str
    label: str
    step_times_s: list[float]
    tokens_per_step: float
    peak_mib: float
    baseline_mib: float
    memory_method: str
    flops_per_step: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return statistics.median(self.step_times_s)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_step / self.median_s


def write_side(args: argparse.Namespace, result: SideResult) -> None:
    Path(args.result_json).write_text(json.dumps(asdict(result)))


def run_sides(script: str, argv: list[str], sides: list[str], *,
              in_process: Callable[[str, str], None] | None = None) -> dict[str, SideResult]:
    """Run each side as a child process of the same script, one after the other.

    ``in_process(side, result_path)`` runs a side in this process instead (smoke tests).
    """
    results: dict[str, SideResult] = {}
    for side in sides:
        if in_process is not None:
            with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
                path = handle.name
            in_process(side, path)
            results[side] = SideResult(**json.loads(Path(path).read_text()))
            os.unlink(path)
            continue
        with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
            path = handle.name
        command = [sys.executable, script, *argv, "--side", side, "--result-json", path]
        print(f"[perf] running side '{side}' …", flush=True)
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=str(REPO))
        if proc.returncode != 0:
            raise SystemExit(f"Error: side '{side}' failed with exit code {proc.returncode}: {shlex.join(command)}")
        results[side] = SideResult(**json.loads(Path(path).read_text()))
        os.unlink(path)
        print(f"[perf] side '{side}' done in {time.perf_counter() - started:.0f} s", flush=True)
    return results


# ------------------------------------------------------------------------------------ FLOPs / MFU
def matmul_params(model: Any) -> int:
    """Parameters that take part in matmuls per token: every weight except the input embedding,
    plus the LM head even when it is tied to the embedding (it is still a [d, V] matmul)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    total = sum(p.numel() for p in base.parameters())  # a tied weight is counted once
    embed = base.get_input_embeddings().weight
    head = base.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.data_ptr()
    return total if tied else total - embed.numel()


def attention_flops_per_token(config: Any, context: float) -> float:
    """Forward attention score + value FLOPs per token at average context ``context``: 4·L·d·ctx."""
    return 4.0 * config.num_hidden_layers * config.hidden_size * context


def nominal_flops(model: Any, *, forward_tokens: float = 0.0, train_tokens: float = 0.0,
                  context: float = 0.0) -> float:
    """Model FLOPs of one step, the same formula for both sides so MFU ratios equal speed ratios.

    A forward costs 2·N per token (N = matmul parameters) plus attention; a LoRA training token
    costs 3× that (forward + activation gradients + the small adapter weight gradients, counted
    as a full backward: the usual 6·N convention). ``forward_tokens`` are no-grad tokens
    (generation, reference passes); ``train_tokens`` go through forward and backward.
    """
    config = getattr(model, "config", None)
    per_token = 2.0 * matmul_params(model) + (attention_flops_per_token(config, context) if config else 0.0)
    return per_token * forward_tokens + 3.0 * per_token * train_tokens


def peak_flops(args: argparse.Namespace) -> float | None:
    """Peak FLOP/s of the accelerator for MFU, or None on CPU / unknown parts."""
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if args.device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    for key, (low, fp32) in PEAK_TFLOPS.items():
        if key in name:
            return (fp32 if args.dtype == "float32" else low) * 1e12
    return None


# ------------------------------------------------------------------------------------ environment
def environment(args: argparse.Namespace) -> dict[str, str]:
    """Versions and hardware, for the report."""
    import importlib.metadata as md

    import torch

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "absent"

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = _meminfo_gib()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gemkit"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        commit += " (+ uncommitted gemkit changes)" if dirty else ""
    except OSError:
        commit = "unknown"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min; the machine is shared)"
    except OSError:
        load = "unknown"
    return {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": version("transformers"),
        "peft": version("peft"), "trl": version("trl"), "gemkit commit": commit,
        "cpu": f"{cpu}, {os.cpu_count()} logical cores, {mem}", "gpu": gpu,
        "threads": str(args.threads), "device": args.device, "dtype": args.dtype, "model": args.model_name,
        "load average at start": load,
    }


def _meminfo_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def command_line() -> str:
    script = os.path.relpath(sys.argv[0], REPO)
    return shlex.join([".venv/bin/python", script, *sys.argv[1:]])


# ---------------------------------------------------------------------------------------- report
def side_table(results: dict[str, SideResult], *, mfu_peak: float | None) -> list[str]:
    head = "| side | median s/step | min–max s | tokens/step | tokens/s | peak memory MiB | Δ over start MiB |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if mfu_peak:
        head += " MFU |"
        sep += "---:|"
    rows = [head, sep]
    for r in results.values():
        row = (f"| {r.label} | {r.median_s:.3f} | {min(r.step_times_s):.3f}–{max(r.step_times_s):.3f} | "
               f"{r.tokens_per_step:.0f} | {r.tokens_per_s:.1f} | {r.peak_mib:.0f} | {r.peak_mib - r.baseline_mib:.0f} |")
        if mfu_peak:
            mfu = (r.flops_per_step / r.median_s / mfu_peak) if r.flops_per_step else None
            row += f" {mfu:.1%} |" if mfu is not None else " n/a |"
        rows.append(row)
    return rows


def append_report(path: str | Path, *, title: str, env: dict[str, str], body: list[str], ratios: list[str],
                  notes: list[str] | None = None) -> None:
    """Append one dated section (command, environment, table, ratios, notes) to the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {title} — {when}", "", "```", command_line(), "```", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += [""] + body + ["", "**Ratios**", ""] + [f"- {r}" for r in ratios]
    if notes:
        lines += ["", "**Notes**", ""] + [f"- {n}" for n in notes]
    new_file = not path.exists()
    with path.open("a", encoding="utf-8") as handle:
        if new_file:
            handle.write("# gemkit performance against peers (issue 7)\n\nEach section below is appended by a "
                         "`benchmarks/perf_*.py` run; ratios within one run are the result, absolute times on a "
                         "shared machine are not.\n\n")
        handle.write("\n".join(lines) + "\n\n")
    print(f"[perf] appended to {path}")


def print_ratios(ratios: list[str]) -> None:
    """The ratios are the script's last lines."""
    print("")
    for line in ratios:
        print(line)


def verdict(value: float, target: float, *, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "MET" if ok else "MISSED"


# ------------------------------------------------------------------------------ the two step loops
def run_gemkit_engine(args: argparse.Namespace, config: Any, pairs: list[Any], bundle: Any,
                      memory: PeakMemory) -> tuple[list[float], list[dict[str, Any]]]:
    """Train with gemkit's engine; returns the timed steps' seconds (the engine's own ``step_time_s``:
    zero_grad → loss → backward → clip → optimizer/scheduler step) and their log rows.

    The peak-memory window opens at the first timed step (the objective's first call after warm-up).
    """
    from gemkit.io import read_jsonl
    from gemkit.train.engine import build_objective, train

    objective = build_objective(config)
    original = objective.compute_loss
    calls = {"n": 0}

    def compute_loss(ctx: Any, batch: list[Any]) -> Any:
        if calls["n"] == args.warmup:
            memory.reset()
        calls["n"] += 1
        return original(ctx, batch)

    objective.compute_loss = compute_loss  # type: ignore[method-assign]
    sync(args.device)
    train(config, pairs, bundle=bundle, objective=objective, progress=False)
    rows = [row for row in read_jsonl(Path(config.out) / "train_log.jsonl") if "step_time_s" in row][args.warmup:]
    return [row["step_time_s"] for row in rows], rows


def trl_step_callback(args: argparse.Namespace, memory: PeakMemory) -> Any:
    """A TrainerCallback timing each optimizer step (on_step_begin → on_step_end, which brackets
    GRPO's generation and scoring too) and opening the peak-memory window after warm-up."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, targs: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == args.warmup:
                memory.reset()
            sync(args.device)
            self._start = time.perf_counter()

        def on_step_end(self, targs: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync(args.device)
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def trl_precision_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """TRL defaults to bf16 mixed precision and gradient checkpointing; gemkit runs the model in
    the dtype it was loaded in, without checkpointing. Match gemkit: no autocast, no checkpointing."""
    return dict(bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=args.device == "cpu", report_to=[],
                save_strategy="no", logging_steps=1, dataloader_num_workers=0, seed=args.seed,
                disable_tqdm=True)


def profile_top(fn: Callable[[], Any], *, device: str, rows: int = 15) -> list[str]:
    """Run ``fn`` under torch.profiler; the top ops by self time as markdown table rows."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:rows]
    total = sum(getattr(e, key) for e in prof.key_averages()) or 1.0
    out = ["| op | self time ms | share | calls |", "|---|---:|---:|---:|"]
    for e in events:
        out.append(f"| `{e.key}` | {getattr(e, key) / 1000:.1f} | {getattr(e, key) / total:.1%} | {e.count} |")
    del torch
    return out


# ------------------------------------------------------------------- the gemkit-vs-TRL scripts' frame
def version_of(name: str) -> str:
    import importlib.metadata as md

    return md.version(name)


def measure_side(args: argparse.Namespace, side: Callable[..., SideResult], *side_args: Any) -> SideResult:
    """``side(args, *side_args)``, under torch.profiler with ``--profile`` (its top ops kept in ``extra``)."""
    if not getattr(args, "profile", False):
        return side(args, *side_args)
    holder: dict[str, SideResult] = {}
    table = profile_top(lambda: holder.setdefault("r", side(args, *side_args)), device=args.device)
    holder["r"].extra["profile"] = table
    return holder["r"]


def in_process_runner(args: argparse.Namespace, run_side: Callable[[argparse.Namespace], None]
                      ) -> Callable[[str, str], None] | None:
    """With ``--in-process``: run a side by calling ``run_side`` here instead of in a child process."""
    if not args.in_process:
        return None

    def run(side: str, path: str) -> None:
        run_side(argparse.Namespace(**{**vars(args), "side": side, "result_json": path}))

    return run


@dataclass
class Comparison:
    """How one gemkit-vs-peer script names its sides and its target."""

    title: str  # the report section's title
    ours: str  # "SEGA", "gemkit"
    peer: str  # "TRL GRPO", "TRL"
    peer_short: str  # "TRL", in the tokens line
    target_speedup: float
    workload: str  # one sentence: what a step is and how it was timed
    tokens: str  # the last ratio line's label: "generated tokens per step"


def compare_and_report(args: argparse.Namespace, env: dict[str, str], results: dict[str, SideResult],
                       spec: Comparison) -> None:
    """The speed and peak-memory ratios of sides ``gemkit`` and ``trl``: table, ratios (printed last),
    notes on missed targets, profiles, and the report section."""
    g, t = results["gemkit"], results["trl"]
    speedup = t.median_s / g.median_s
    memory_ratio = g.peak_mib / t.peak_mib
    body = side_table(results, mfu_peak=peak_flops(args)) + ["", spec.workload]
    ratios = [
        f"speed, {spec.peer} s/step ÷ {spec.ours} s/step: {speedup:.2f}x (target >= {spec.target_speedup}x: "
        f"{verdict(speedup, spec.target_speedup)})",
        f"peak memory, {spec.ours} ÷ {spec.peer}: {memory_ratio:.2f} (target <= 1.00: "
        f"{verdict(memory_ratio, 1.0, higher_is_better=False)})",
        f"{spec.tokens}, {spec.ours} / {spec.peer_short}: {g.tokens_per_step:.0f} / {t.tokens_per_step:.0f}",
    ]
    notes = []
    if speedup < spec.target_speedup:
        notes.append(f"speed target missed by {spec.target_speedup - speedup:.2f}x ({speedup:.2f}x against "
                     f"{spec.target_speedup}x)")
    if memory_ratio > 1.0:
        notes.append(f"memory target missed: {spec.ours} peaks {g.peak_mib - t.peak_mib:.0f} MiB above {spec.peer}")
    for r in results.values():
        if "profile" in r.extra:
            body += ["", f"torch.profiler, {r.label}, whole run (top ops by self time):", ""] + r.extra["profile"]
    if getattr(args, "profile", False):
        notes.append("run under torch.profiler: times include profiler overhead on both sides")
    if not args.no_report:
        append_report(args.report, title=spec.title, env=env, body=body, ratios=ratios, notes=notes)
    print("\n".join(body))
    print_ratios(ratios)
