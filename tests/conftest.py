"""Shared fixtures. The Hub is switched off before transformers or datasets is imported."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GEMKIT_STRICT_PLUGINS", "0")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ASSETS = Path(__file__).parent / "assets"
SUITE_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _suite_threads():
    """Every test starts with the suite's thread count and no gemkit thread choice: an in-process
    ``gemkit`` command applies its policy (:mod:`gemkit.threads`), whose automatic choice would
    otherwise follow the machine's load (``adapt_threads``) in the tests after it."""
    yield
    import gemkit.threads

    gemkit.threads._CHOICE = None
    torch.set_num_threads(SUITE_THREADS)


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded SmolLM2 tokenizer (real vocabulary and chat template)."""
    from gemkit.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture
def tiny_bundle():
    """A fresh random-initialised tiny Llama (seed 0) with the embedded tokenizer, fp32 on CPU."""
    from gemkit.models import ModelSpec, load_model

    return load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=0))


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests are skipped on a machine without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster with 2 CPUs for the whole test session (starting one takes ~20 s here).

    ``gemkit bench`` reuses a session already open in its process, and other processes connect to
    it by its address (``--ray-address``). No dashboard and a small object store keep it light.
    """
    import ray

    from gemkit.runner.ray_grid import start_local_ray

    start_local_ray(num_cpus=2, num_gpus=0)
    try:
        yield ray
    finally:
        ray.shutdown()
