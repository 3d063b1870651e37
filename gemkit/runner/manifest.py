"""Provenance of a run: versions, git commit, hardware."""
from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from gemkit.threads import thread_record

PACKAGES = ["gemkit", "torch", "transformers", "peft", "datasets", "accelerate", "lm_eval", "pluggy", "trl"]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_threads": torch.get_num_threads(), "thread_policy": thread_record(),
                            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """gemkit version, commit and a hash of uncommitted changes to gemkit/: part of every cell's hash.

    Computed once per process, so the cells of one run agree even if the tree changes meanwhile.
    """
    version = f"{package_versions()['gemkit']}+{git_commit() or 'nogit'}"
    root = Path(__file__).resolve().parents[2]
    try:
        diff = subprocess.run(["git", "-C", str(root), "diff", "HEAD", "--", "gemkit"], capture_output=True,
                              timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return version
    return version + (f".dirty-{hashlib.sha256(diff).hexdigest()[:8]}" if diff else "")
