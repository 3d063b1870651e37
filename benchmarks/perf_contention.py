"""gemkit under CPU contention: slowdown of fixed work with N busy processes, old vs new thread policy.

    .venv/bin/python benchmarks/perf_contention.py                  # smollm2-135m, ~3-5 min on 2 cores
    .venv/bin/python benchmarks/perf_contention.py --model random:tiny --new-tokens 4 --report /tmp/c.md  # smoke

The fixed work (issue 18): the base cell's greedy decoding (``gemkit.generation.generate``, CoT
system prompt, ``--prompts`` held-out arithmetic questions in one batch, ``--new-tokens`` each) and
``--dpo-steps`` DPO steps (LoRA r=16, batch of 2 pairs) through gemkit's training engine. Each
measurement runs in a fresh process (the OpenMP wait policy is read once, when torch loads), after
one untimed warm-up decode:

- ``current``: torch's defaults, as gemkit ran before (intra-op threads = CPUs, libgomp spinning);
- ``fix``: :mod:`gemkit.threads` as the CLI applies it (``OMP_WAIT_POLICY=PASSIVE`` before torch
  loads; threads = usable CPUs that other runnable tasks leave idle, at least 1).

Each policy runs once on the machine as it is ("idle") and once while the script keeps N busy
processes (``while True: pass``, one per usable CPU by default) running; they are killed in a
``finally``. Slowdown = loaded time ÷ idle time, per policy and per piece of work.

Fair share. C usable CPUs, our process plus N busy single-thread processes, a fair scheduler. Counting
our process as one claimant, it is owed C/(N+1) CPUs when N+1 > C (else a whole CPU each). Work that
runs on one CPU alone then takes (N+1)/C times as long: the fair-share slowdown F = max(1, (N+1)/C)
(2 busy on 2 CPUs: F = 1.5). Work that used all C CPUs alone would be owed less relative to what it
had (N+1 ×), so F is the strict reference. If B other runnable tasks were already present ("idle"
is not idle on a shared machine), the same argument gives F_B = max(1, (B+N+1)/C) / max(1, (B+1)/C);
both are printed. Target (issue 18): the fix's slowdown ≤ 1.5 × F.

Work that ran on T threads when idle (the fix keeps C threads on an idle machine) is owed, by a
scheduler fair per thread as Linux's is, T·C/(N+T) CPUs instead of T: F_T = max(1, (N+T)/C) /
max(1, T/C) (T = C = N = 2: F_2 = 2), also printed. F_T is the fair share the target applies to:
F_1 cannot be met by work that used both CPUs when idle. On one thread under the load it gets
C/(N+1) = 2/3 of a CPU, so its time is 1.5 × its one-thread idle time, which is about 1.6 × its
two-thread idle time: about 2.4× in all, above 1.5 × F_1 = 2.25× for any policy short of taking more
than its fair share.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.5
POLICIES = ("current", "fix")
WORK = ("decode", "dpo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=4, help="Held-out arithmetic prompts decoded in one batch.")
    parser.add_argument("--new-tokens", type=int, default=16, help="Greedy tokens per prompt.")
    parser.add_argument("--dpo-steps", type=int, default=2, help="DPO steps timed (the time is per step).")
    parser.add_argument("--busy", type=int, help="Busy processes of the controlled load (default: usable CPUs).")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="Seconds one measurement may take; a run past it counts as '> timeout'.")
    parser.add_argument("--report", default=str(REPO / "reports" / "perf" / "contention.md"),
                        help="Markdown file the result section is appended to.")
    parser.add_argument("--policies", default=",".join(POLICIES), help="Comma-separated subset of current,fix.")
    parser.add_argument("--plain-linear", action="store_true",
                        help="Decode with F.linear instead of gemkit.cpu_matmul's weight-major product (to measure it).")
    parser.add_argument("--worker", choices=POLICIES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------- one measurement
def worker(args: argparse.Namespace) -> None:
    """Time the fixed work under one policy in this (fresh) process; print one JSON line."""
    begun = time.perf_counter()
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    sys.path.insert(0, str(REPO))
    from gemkit.threads import apply_thread_policy, set_wait_policy, thread_record

    wait = set_wait_policy() if args.worker == "fix" else "runtime default"  # before torch loads
    import torch

    choice = apply_thread_policy(None, wait).to_dict() if args.worker == "fix" else thread_record()
    from gemkit.data.arithmetic import builtin_heldout, builtin_train_pairs
    from gemkit.gem.group import COT_SYSTEM_PROMPT
    from gemkit.generation import SamplingConfig, generate
    from gemkit.models import LoraSpec, ModelSpec, load_model
    from gemkit.train import TrainConfig, train

    if args.plain_linear:
        import contextlib

        import gemkit.generation

        gemkit.generation.weight_major_linears = lambda model: contextlib.nullcontext()
    bundle = load_model(ModelSpec(name=args.model, device="cpu", dtype="float32", seed=0))
    questions = [item["question"] for item in builtin_heldout(args.prompts, 1)]

    def decode(tokens: int) -> None:
        generate(bundle.model, bundle.tokenizer, questions, sampling=SamplingConfig(max_new_tokens=tokens, do_sample=False),
                 system=COT_SYSTEM_PROMPT, batch_size=len(questions))

    record = {"threads": torch.get_num_threads(), "policy": choice, "wait": wait, "ready_s": time.perf_counter() - begun}
    decode(2)  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    decode(args.new_tokens)
    record["decode"] = time.perf_counter() - started
    print(json.dumps(record), flush=True)  # a run cut by --timeout still reports what it finished
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(method="dpo", model=args.model, out=out, max_steps=args.dpo_steps, batch_size=2,
                             device="cpu", dtype="float32", lora=LoraSpec(r=16), max_length=256)
        result = train(config, builtin_train_pairs(8, 0), progress=False)
    record["dpo"] = result.wall_s / result.steps
    print(json.dumps(record), flush=True)


def measure(args: argparse.Namespace, policy: str) -> dict[str, Any] | None:
    """Run one worker; what it finished before ``--timeout`` (None: not even the decoding)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    command = [sys.executable, __file__, "--worker", policy, "--model", args.model, "--prompts", str(args.prompts),
               "--new-tokens", str(args.new_tokens), "--dpo-steps", str(args.dpo_steps)]
    command += ["--plain-linear"] if args.plain_linear else []
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired as exc:  # on POSIX, exc.stdout holds what was printed so far
        return last_record(exc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"Error: the {policy} worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return last_record(proc.stdout)


def last_record(stdout: str | bytes | None) -> dict[str, Any] | None:
    text = stdout.decode() if isinstance(stdout, bytes) else (stdout or "")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def busy_load(count: int) -> list[subprocess.Popen]:
    """``count`` single-thread processes spinning at full speed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.wait()


# ------------------------------------------------------------------------------------------ the run
def fair_share(cpus: int, busy: int, background: float = 0.0, threads: int = 1) -> float:
    """max(1, (B+N+T)/C) / max(1, (B+T)/C): the slowdown a fair scheduler owes work that ran on T
    threads when idle (docstring; T = 1 work that used one CPU, T = C work that used every CPU)."""
    return max(1.0, (background + busy + threads) / cpus) / max(1.0, (background + threads) / cpus)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(REPO))
    from gemkit.threads import busy_cpus, cgroup_cpu_quota, usable_cpus

    cpus = usable_cpus(quota=cgroup_cpu_quota())
    busy = args.busy if args.busy is not None else cpus
    started = time.perf_counter()
    loadavg_start = Path("/proc/loadavg").read_text().split()[:4]
    background = busy_cpus(samples=20, interval_s=0.05) or 0.0
    results: dict[tuple[str, str], dict[str, Any] | None] = {}
    spinner_ids: list[int] = []
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies or set(policies) - set(POLICIES):
        raise SystemExit(f"Error: --policies takes a comma-separated subset of {','.join(POLICIES)}, got {args.policies!r}")
    for policy in policies:
        print(f"[{policy}] idle ...", flush=True)
        results[policy, "idle"] = measure(args, policy)
        print(f"[{policy}] with {busy} busy processes ...", flush=True)
        load = busy_load(busy)
        spinner_ids += [proc.pid for proc in load]
        try:
            time.sleep(0.5)  # let the spinners get scheduled before the worker starts
            results[policy, "loaded"] = measure(args, policy)
        finally:
            stop(load)
    loadavg_end = Path("/proc/loadavg").read_text().split()[:4]
    nominal, corrected = fair_share(cpus, busy), fair_share(cpus, busy, background)
    lines, ratios = table(results, args.timeout), []
    for policy in policies:
        idle_threads = (results[policy, "idle"] or {}).get("threads", 1)
        owed = fair_share(cpus, busy, threads=idle_threads)
        for work in WORK:
            value = slowdown(results, policy, work, args.timeout)
            ratios.append(f"slowdown {work}, {policy}: {value} (fair share {nominal:.2f} for one-CPU work, "
                          f"{owed:.2f} for the {idle_threads} threads it used idle; with background "
                          f"{corrected:.2f}; target ≤ {TARGET * nominal:.2f}, or {TARGET * owed:.2f} for "
                          f"{idle_threads} threads)")
    header = [f"### Contention run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
              f"- command: `{' '.join([Path(sys.executable).name, 'benchmarks/perf_contention.py', *(argv or sys.argv[1:])])}`",
              f"- model {args.model}; decode {args.prompts} prompts × {args.new_tokens} greedy tokens; "
              f"{args.dpo_steps} DPO steps (time per step); decode matmul: "
              f"{'F.linear (--plain-linear)' if args.plain_linear else 'weight-major (gemkit.cpu_matmul)'}",
              f"- usable CPUs C = {cpus}; controlled load N = {busy} busy processes; background runnable tasks "
              f"B ≈ {background:.1f} (procs_running at start); busy process ids: "
              f"{' '.join(map(str, spinner_ids))}",
              f"- /proc/loadavg at start {' '.join(loadavg_start)}, at end {' '.join(loadavg_end)}; "
              f"run took {time.perf_counter() - started:.0f} s",
              f"- fair-share slowdown F = max(1, (N+1)/C) = {nominal:.2f}; with the background "
              f"max(1, (B+N+1)/C) / max(1, (B+1)/C) = {corrected:.2f}", ""]
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    with report.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(header + lines + ["", "**Ratios**", ""] + [f"- {r}" for r in ratios]) + "\n\n")
    print("\n".join(lines))
    print("\n".join(ratios))


def seconds(record: dict[str, Any] | None, work: str, timeout: float) -> str:
    return f"cut at {timeout:.0f} s" if record is None or work not in record else f"{record[work]:.2f}"


def slowdown(results: dict[tuple[str, str], dict[str, Any] | None], policy: str, work: str, timeout: float) -> str:
    idle, loaded = results[policy, "idle"] or {}, results[policy, "loaded"] or {}
    if work not in idle:
        return "n/a (the idle run was cut by --timeout first)"
    if work not in loaded:
        return "n/a (the loaded run was cut by --timeout first)"
    return f"{loaded[work] / idle[work]:.2f}×"


def table(results: dict[tuple[str, str], dict[str, Any] | None], timeout: float) -> list[str]:
    rows = ["| policy | phase | threads | start-up s | decode s | DPO s/step | thread choice |",
            "|---|---|---|---|---|---|---|"]
    for (policy, phase), record in results.items():
        if record is None:
            rows.append(f"| {policy} | {phase} | ? | cut at {timeout:.0f} s | | | |")
            continue
        choice = f"{record['policy'].get('source')}, busy {record['policy'].get('busy_cpus')}; {record['wait']}"
        rows.append(f"| {policy} | {phase} | {record['threads']} | {record['ready_s']:.1f} | "
                    f"{seconds(record, 'decode', timeout)} | {seconds(record, 'dpo', timeout)} | {choice} |")
    return rows


if __name__ == "__main__":
    main()
