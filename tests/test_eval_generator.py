"""One engine choice for the generative benchmarks: ``gemkit eval --generator`` and the bench config's
``generator`` reach every benchmark's SamplingConfig through ``EvalContext.sampling``; vllm missing fails
before a model loads; the result's conventions say which engine generated.

vllm is an optional extra. Where a test needs ``generator=vllm`` to get past the install check, the
``vllm_spy`` fixture passes the check and replaces only the engine call: it records the ``sampling`` that
:func:`gemkit.generation.generate` hands to the vLLM branch and decodes with the HF path, so the
benchmark itself runs unchanged.
"""
import importlib.util
import json
from dataclasses import replace

import pytest

from gemkit.cli import main
from gemkit.errors import ConfigError
from gemkit.evaluation import evaluate


def _vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


@pytest.fixture
def vllm_spy(monkeypatch):
    """The ``sampling`` of every call that reached the vLLM branch of ``generate`` (decoded with HF instead)."""
    import gemkit.generation_vllm as generation_vllm
    from gemkit.generation import generate

    seen = []

    def spy(model, tokenizer, prompts, *, sampling, num_return_sequences=1, system=None):
        seen.append(sampling)
        return generate(model, tokenizer, prompts, sampling=replace(sampling, generator="hf"),
                        num_return_sequences=num_return_sequences, system=system)

    monkeypatch.setattr(generation_vllm, "check_vllm_installed", lambda: None)
    monkeypatch.setattr(generation_vllm, "generate_vllm", spy)
    return seen


GENERATIVE = {  # benchmark: options small enough for the tiny model
    "arithmetic": lambda a: {"limit": 2, "max_new_tokens": 4},
    "gsm8k": lambda a: {"data": str(a / "gsm8k.jsonl"), "limit": 2, "max_new_tokens": 4},
    "math": lambda a: {"data": str(a / "math.jsonl"), "limit": 2, "max_new_tokens": 4},
    "truthfulqa": lambda a: {"data": str(a / "truthfulqa_mc.jsonl"), "max_new_tokens": 4,
                             "generation_data": str(a / "truthfulqa_gen.jsonl")},
    "scorer-diagnostics": lambda a: {"limit": 2, "k": 2, "max_new_tokens": 4},
}


@pytest.mark.parametrize("benchmark", sorted(GENERATIVE))
def test_generator_reaches_every_generative_benchmark(benchmark, tiny_bundle, assets, tmp_path, vllm_spy):
    """evaluate(..., generator="vllm"): every generation of the benchmark took the vLLM branch with the
    benchmark's own decoding (greedy except scorer-diagnostics, which samples k candidates), and
    metrics.json records generator=vllm.
    Checked it can fail: arithmetic building its SamplingConfig directly again (not via ctx.sampling)
    leaves the spy empty and the conventions without a generator."""
    options = GENERATIVE[benchmark](assets / "benchmarks")
    result = evaluate(benchmark, tiny_bundle, options=options, out_dir=tmp_path, batch_size=2, generator="vllm")
    assert vllm_spy and all(s.generator == "vllm" and s.max_new_tokens == 4 for s in vllm_spy)
    assert all(s.do_sample == (benchmark == "scorer-diagnostics") for s in vllm_spy)
    assert result.conventions["generator"] == "vllm"
    assert json.loads((tmp_path / "metrics.json").read_text())["conventions"]["generator"] == "vllm"


def test_mt_bench_answers_both_sides_with_the_generator(tiny_bundle, assets, vllm_spy):
    """mt-bench (model and baseline answers, 2 turns each: 4 generate calls) decodes greedily on the context's
    generator; baseline=base with vllm is refused before any answer, since the engine serves merged LoRA
    weights and disable_adapter cannot reach it.
    Checked it can fail: answer_turns building SamplingConfig(max_new_tokens, do_sample=False) itself left
    the spy empty."""
    from gemkit.builtin.benchmarks.mt_bench import MTBench, MTBenchConfig
    from gemkit.evaluation.context import EvalContext

    class Tie:
        def compare(self, question, answer_a, answer_b):
            return "tie"

    data = str(assets / "benchmarks" / "mt_bench.jsonl")
    adapter = MTBench(MTBenchConfig(data=data, baseline="random:tiny", max_new_tokens=3, limit=2), judge=Tie())
    ctx = EvalContext(tiny_bundle, batch_size=2, generator="vllm")
    adapter.evaluate(ctx, adapter.load())
    assert len(vllm_spy) == 4 and all(s.generator == "vllm" and not s.do_sample for s in vllm_spy)
    assert ctx.generated_with == "vllm"
    base = MTBench(MTBenchConfig(data=data, baseline="base", max_new_tokens=3, limit=2), judge=Tie())
    lora_like = EvalContext(replace(tiny_bundle, model=_WithAdapter(tiny_bundle.model)), generator="vllm")
    with pytest.raises(ConfigError, match="baseline=base with generator=vllm"):
        base.evaluate(lora_like, base.load())
    assert len(vllm_spy) == 4  # refused before generating


class _WithAdapter:
    """Just enough of a PEFT model for mt-bench's baseline=base check (never asked to generate here)."""

    def __init__(self, model):
        self.model = model

    def disable_adapter(self):
        raise AssertionError("not reached")


def test_default_hf_is_recorded_and_scoring_benchmarks_record_none(tiny_bundle, assets, tmp_path, vllm_spy):
    """Without a choice the engine is hf (nothing reaches the vLLM branch, conventions say hf); a
    benchmark that only scores (pairs) records no generator, since nothing generated.
    Checked it can fail: recording the generator on every result (dropping evaluate()'s
    ``ctx.generated_with is not None`` test) failed this test."""
    result = evaluate("arithmetic", tiny_bundle, options={"limit": 2, "max_new_tokens": 4})
    assert result.conventions["generator"] == "hf" and not vllm_spy
    pairs = evaluate("pairs", tiny_bundle, options={"data": str(assets / "benchmarks" / "pairs.csv"), "limit": 2},
                     generator="vllm")
    assert "generator" not in pairs.conventions


def test_cli_eval_generator_flag_reaches_the_sampling(tmp_path, capsys, vllm_spy):
    """`gemkit eval --generator vllm` on arithmetic: the flag reaches the benchmark's SamplingConfig and is
    printed with the conventions.
    Checked it can fail: dropping generator=args.generator from the evaluate() call left the spy empty."""
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "arithmetic", "--model", "random:tiny", "--device", "cpu", "--limit", "2",
                 "--set", "max_new_tokens=4", "--generator", "vllm", "--out", str(out)]) == 0
    assert [s.generator for s in vllm_spy] == ["vllm"]
    assert "generator=vllm" in capsys.readouterr().out


def test_cli_eval_vllm_missing_exits_2_before_loading(tmp_path, capsys, monkeypatch):
    """Without vllm, `--generator vllm` exits 2 with the install hint and no model is loaded; an unknown
    engine is an argparse error (exit 2, the valid choices listed).
    Checked it can fail: without the check_generator call in gemkit/cli/eval.py the model loaded first."""
    if _vllm_installed():
        pytest.skip("vllm is installed here")
    import gemkit.cli.eval as cli_eval

    def no_load(*args, **kwargs):
        raise AssertionError("a model loaded before the generator was checked")

    monkeypatch.setattr(cli_eval, "_load", no_load)
    assert main(["eval", "--benchmark", "arithmetic", "--model", "random:tiny", "--generator", "vllm",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: generator=vllm needs the vllm package") and "pip install" in err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--benchmark", "arithmetic", "--generator", "sglang", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "choose from 'hf', 'vllm'" in capsys.readouterr().err


def test_bench_config_generator_is_validated_and_part_of_the_cell(tmp_path):
    """An unknown generator is one of the problems validate() reports (both values named); vllm without
    vllm is refused with the install hint; `gemkit bench --generator` fills the field; the generator is in
    every cell's hash, so --resume never reuses a cell that generated with the other engine.
    Checked it can fail: removing the check_generator call from BenchConfig.validate let 'sglang' through."""
    from gemkit.cli import build_parser
    from gemkit.cli.bench import resolve
    from gemkit.runner.plan import BenchConfig, plan_cells

    with pytest.raises(ConfigError) as exc:
        BenchConfig(generator="sglang", shots=[0]).validate()
    assert "generator must be one of hf, vllm, got 'sglang'" in str(exc.value) and "shots must be >= 1" in str(exc.value)
    if not _vllm_installed():
        with pytest.raises(ConfigError, match="pip install"):
            BenchConfig(generator="vllm").validate()
    args = build_parser().parse_args(["bench", "--generator", "vllm", "--out", str(tmp_path)])
    assert resolve(args).generator == "vllm"
    hf, vllm = (plan_cells(BenchConfig(methods=["dpo"], generator=g), "data") for g in ("hf", "vllm"))
    assert [c.config["generator"] for c in vllm] == ["vllm"] * len(vllm)
    assert not {c.cell_id for c in hf} & {c.cell_id for c in vllm}


def test_bench_cell_evaluates_with_the_configured_generator(tmp_path, vllm_spy):
    """run_cell on the base cell with generator=vllm: arithmetic's answers took the vLLM branch and the
    cell's record says generator=vllm.
    Checked it can fail: dropping generator=config.generator from run_cell's evaluate() call left the
    spy empty and the record at hf."""
    from gemkit.runner.cell import run_cell
    from gemkit.runner.plan import BenchConfig, Cell

    config = BenchConfig(methods=["dpo"], benchmarks=["arithmetic"], model="random:tiny", device="cpu", limit=2,
                         benchmark_options={"arithmetic": {"max_new_tokens": 4}}, generator="vllm",
                         out=str(tmp_path))
    record = run_cell(Cell("base", 0, 0, {"method": "base"}), config, [], tmp_path / "cell", progress=False)
    assert record.benchmarks["arithmetic"].error is None
    assert record.benchmarks["arithmetic"].conventions["generator"] == "vllm"
    assert [s.generator for s in vllm_spy] == ["vllm"]
