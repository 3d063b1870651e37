"""The two-method bench grid on the tiny model that the runner tests share (not a test module)."""
from gemkit.runner.bench import BenchConfig


def tiny_bench_config(out, **overrides) -> BenchConfig:
    """sega + dpo on ``random:tiny``: one step, 3 items, 6-token answers; ``overrides`` replace fields."""
    options = dict(methods=["sega", "dpo"], benchmarks=["arithmetic", "arithmetic-pref"], model="random:tiny", steps=1, batch_size=2, lora_r=4, limit=3,
                   out=str(out), device="cpu", benchmark_options={"arithmetic": {"max_new_tokens": 6}},
                   method_options={"sega": {"k": 2, "max_new_tokens": 6}}, include_sft=False)
    options.update(overrides)
    return BenchConfig(**options)
