"""How many CPU threads torch uses, and how its OpenMP threads wait: a policy for busy machines.

Why (issue 18): on a shared machine, greedy decoding with torch's defaults (one thread per CPU,
libgomp's spinning wait) slows far beyond a fair share of the CPUs;
benchmarks/perf_contention.py measures it and reports/perf/contention.md records the runs.
Two things go wrong under contention:

- **Spin-waiting.** This torch build runs its intra-op pool (and MKL) on GNU OpenMP (libgomp).
  Between parallel regions libgomp's idle threads spin for ~300 000 iterations before sleeping.
  A decode step is thousands of tiny parallel regions, so the spinning thread burns the share of
  the core the working thread needed. ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep at
  once. On an idle machine the spinning is what makes those regions cheap (passive waiting made
  idle greedy decoding 1.57x slower, reports/perf/contention.md), so :func:`set_wait_policy` sets
  PASSIVE only when other runnable tasks are seen at start-up, like the thread count below.
  libgomp reads the policy when it is loaded, i.e. when torch is imported, so
  :func:`set_wait_policy` must run before that (the CLI does it first thing in ``main``).
  ``KMP_BLOCKTIME`` is the Intel/LLVM runtime's knob and does nothing here; ``GOMP_SPINCOUNT``
  is libgomp's finer one. A user's own setting of any of the three wins.
- **More threads than free cores.** Every parallel region ends in a barrier, so a region runs at
  the pace of its most-descheduled thread. With fewer idle cores than threads, one thread does
  the same work with no barrier to wait at. :func:`choose_threads` therefore takes
  ``min(usable CPUs, idle CPUs)``, at least 1, where usable CPUs are the affinity mask capped by
  the cgroup CPU quota, and idle CPUs are usable CPUs minus the other runnable tasks seen at
  start-up (``procs_running`` in ``/proc/stat``, averaged over a few samples).

Precedence: ``--threads N`` > ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` > a caller's own
``torch.set_num_threads`` (detected as a count different from torch's default) > the automatic
choice. The choice is decided at start; an automatic one is revisited between units of work
(:func:`adapt_threads`), since load may arrive later. The start-time record
(:meth:`ThreadChoice.to_dict`) goes into each run's ``config.json`` and the bench manifest.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gemkit.errors import ConfigError

#: environment variables that fix the intra-op thread count, in the order they are honoured
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: environment variables that set how idle OpenMP threads wait; any of them set means "the user decided"
WAIT_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


@dataclass
class ThreadChoice:
    """The thread count in force and where it came from (logged in config.json and the manifest)."""

    threads: int = field(metadata={"help": "torch intra-op threads."})
    source: str = field(metadata={"help": "--threads, OMP_NUM_THREADS, MKL_NUM_THREADS, caller or auto."})
    usable_cpus: int = field(metadata={"help": "CPUs this process may use: affinity mask capped by the cgroup quota."})
    busy_cpus: float | None = field(default=None, metadata={"help": "Other runnable tasks seen at start (auto only)."})
    wait_policy: str = field(default="", metadata={"help": "How idle OpenMP threads wait, and who set it."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_thread_count(text: str, where: str) -> int:
    """A positive integer thread count; OpenMP's nested form ``4,2`` counts its first level."""
    head = text.strip().split(",")[0].strip()
    try:
        value = int(head)
    except ValueError:
        raise ConfigError(f"{where}: expected a positive whole number of threads, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"{where}: expected a positive whole number of threads, got {text!r}")
    return value


def env_thread_count(environ: Mapping[str, str]) -> tuple[str, int] | None:
    """(variable, count) of the first of ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` that is set and non-empty."""
    for name in THREAD_ENV:
        if environ.get(name, "").strip():
            return name, parse_thread_count(environ[name], f"environment variable {name}")
    return None


def cgroup_cpu_quota(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup allows (quota ÷ period), None when unlimited or unknown.

    cgroup v2 (``0::/path`` in ``/proc/self/cgroup``): ``cpu.max`` holds ``"<quota|max> <period>"``.
    cgroup v1 (a line whose controllers include ``cpu``): ``cpu.cfs_quota_us`` (−1 = unlimited) and
    ``cpu.cfs_period_us``. Every ancestor's limit applies too, so the smallest along the path wins.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            limits += _limits_along(root, path, _v2_limit)
        elif "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                if mount.is_dir():
                    limits += _limits_along(mount, path, _v1_limit)
                    break
    return min(limits) if limits else None


def _limits_along(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    parts = [p for p in path.strip("/").split("/") if p]
    found = []
    for depth in range(len(parts) + 1):
        value = read(mount.joinpath(*parts[:depth]))
        if value is not None:
            found.append(value)
    return found


def _v2_limit(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" or int(period) <= 0 else int(quota) / int(period)


def _v1_limit(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cpus(affinity: int | None = None, quota: float | None = None) -> int:
    """min(CPUs in the affinity mask, ⌈cgroup quota⌉), at least 1 (defaults: read from this process)."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, limit)


def own_running_threads(tasks: Path = Path("/proc/self/task")) -> int:
    """Threads of this process in state R (running or runnable) now, at least 1 (the caller)."""
    running = 0
    for stat in tasks.glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        running += text[text.rfind(")") + 2:][:1] == "R"  # the state follows "(comm) "
    return max(1, running)


def busy_cpus(stat: Path = Path("/proc/stat"), samples: int = 8, interval_s: float = 0.01,
              tasks: Path = Path("/proc/self/task")) -> float | None:
    """Mean number of runnable tasks of other processes (``procs_running`` − this process's running
    threads), None if unreadable.

    An instantaneous count, sampled ``samples`` times ``interval_s`` apart, rather than the load
    average, which lags a change in load by about a minute. This process's own threads (e.g. OpenMP
    workers still spinning after a parallel region) are not counted as load.
    """
    counts = []
    for i in range(samples):
        try:
            text = stat.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("procs_running "):
                counts.append(max(0, int(line.split()[1]) - own_running_threads(tasks)))
        if i + 1 < samples:
            time.sleep(interval_s)
    return sum(counts) / len(counts) if counts else None


def auto_threads(usable: int, busy: float | None) -> int:
    """min(usable, ⌊usable − busy + ½⌋), at least 1: one thread per CPU nobody else is running on."""
    if busy is None:
        return usable
    return max(1, min(usable, math.floor(usable - busy + 0.5)))


def set_wait_policy(environ: MutableMapping[str, str] | None = None, modules: Mapping[str, Any] | None = None,
                    busy: Callable[[], float | None] = busy_cpus) -> str:
    """Make idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) when the machine is busy at start.

    Busy: at least half a runnable task besides this process on average (:func:`busy_cpus`), or
    unknown. On an idle machine libgomp's default spinning is kept. A user's own wait setting always
    wins. Returns a description for the record. Effective only before torch (and so libgomp) is loaded.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    chosen = [f"{name}={environ[name]}" for name in WAIT_ENV if environ.get(name, "").strip()]
    if chosen:
        return f"{', '.join(chosen)} (from the environment)"
    if "torch" in modules:
        return "runtime default (torch was already imported, too late to set OMP_WAIT_POLICY)"
    seen = busy()
    if seen is not None and seen < 0.5:
        return f"runtime default (idle at start, {seen:.2f} other runnable tasks: spinning threads decode faster)"
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    where = "unknown load" if seen is None else f"{seen:.2f} other runnable tasks at start"
    return f"OMP_WAIT_POLICY=PASSIVE (set by gemkit before torch was imported; {where})"


def torch_default_counts(cpu_dir: Path = Path("/sys/devices/system/cpu")) -> set[int]:
    """Counts torch picks by itself when nothing is set: CPUs in the affinity mask, all CPUs, physical cores.

    (MKL's default is the physical cores, libgomp's the affinity mask.) A current count outside
    this set was set by a caller; a caller who chose one of these cannot be told apart.
    """
    counts = {usable_cpus(), os.cpu_count() or 1}
    siblings = {p.read_text().strip() for p in cpu_dir.glob("cpu[0-9]*/topology/thread_siblings_list")}
    if siblings:
        counts.add(len(siblings))
    return counts


def choose_threads(requested: int | None, *, environ: Mapping[str, str], current: int, usable: int,
                   defaults: set[int], busy: Callable[[], float | None] = busy_cpus) -> ThreadChoice:
    """Decide the thread count by the precedence in the module docstring.

    ``current`` is torch's thread count now; outside ``defaults`` (:func:`torch_default_counts`)
    it was set by a caller, whose choice is kept.
    """
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads: expected a positive whole number of threads, got {requested}")
        return ThreadChoice(requested, "--threads", usable)
    from_env = env_thread_count(environ)
    if from_env is not None:
        return ThreadChoice(from_env[1], from_env[0], usable)
    if current not in defaults:
        return ThreadChoice(current, "caller", usable)
    seen = busy()
    return ThreadChoice(auto_threads(usable, seen), "auto", usable, None if seen is None else round(seen, 2))


_CHOICE: ThreadChoice | None = None


def apply_thread_policy(requested: int | None = None, wait_policy: str | None = None) -> ThreadChoice:
    """Choose the thread count, give it to torch, and remember it for :func:`thread_record`."""
    global _CHOICE
    import torch

    choice = choose_threads(requested, environ=os.environ, current=torch.get_num_threads(),
                            usable=usable_cpus(quota=cgroup_cpu_quota()), defaults=torch_default_counts())
    choice.wait_policy = wait_policy or set_wait_policy()
    torch.set_num_threads(choice.threads)
    _CHOICE = choice
    return choice


def adapt_threads(busy: Callable[[], float | None] = lambda: busy_cpus(samples=4, interval_s=0.005)) -> int:
    """Re-decide an automatic thread count for the load now; returns the count in force.

    Load that arrives after start-up is the case the start-time choice cannot see: two threads whose
    cores are taken spin and wait at every barrier (measured: 8.5 s instead of 0.4 s per decoded
    prompt, issue 18). Called between units of work (a generation batch, a scoring batch, a training
    step; about 20 ms), it applies :func:`auto_threads` again, down to one thread (which never waits
    for a partner) while other processes keep the CPUs busy and back up when they leave. Only an
    ``auto`` choice is changed: ``--threads``, ``OMP_NUM_THREADS`` and a caller's count are kept.
    """
    import torch

    if _CHOICE is None or _CHOICE.source != "auto":
        return torch.get_num_threads()
    wanted = auto_threads(_CHOICE.usable_cpus, busy())
    if wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)
    return wanted


def thread_record() -> dict[str, Any]:
    """The policy's record if it was applied in this process, else torch's count as found."""
    if _CHOICE is not None:
        return _CHOICE.to_dict()
    import torch

    return {"threads": torch.get_num_threads(), "source": "not set by gemkit"}
