"""``gemkit bench``: the method × shots × seed grid, trained and evaluated cell by cell."""
from gemkit.runner.bench import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
