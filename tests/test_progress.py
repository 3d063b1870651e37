"""Evaluation progress: every evaluation that decodes or scores shows items done and an ETA on stderr.

tqdm writes its bar to stderr; capsys captures it. Bars show ``done/total`` and ``<ETA`` in
tqdm's ``[elapsed<remaining, rate]`` format, so the checks read those markers.
"""
from gemkit.evaluation import evaluate
from gemkit.generation import SamplingConfig, generate


def test_decoding_benchmark_shows_prompts_done_and_an_eta(tiny_bundle, capsys):
    """arithmetic with 3 items and batch size 2: the bar counts prompts (2, then 3 of 3), not batches.

    The old per-batch bar would end at 2/2 with batch/s and fail this (reasoned, not run: the
    machine was too loaded to rerun it)."""
    evaluate("arithmetic", tiny_bundle, options={"limit": 3, "max_new_tokens": 2}, batch_size=2)
    err = capsys.readouterr().err
    assert "eval arithmetic" in err and "3/3" in err and "prompt/s" in err and "<" in err


def test_scoring_benchmark_shows_sequences_done(tiny_bundle, capsys):
    """arithmetic-pref with 3 pairs = 6 (prompt, response) sequences, labelled by the evaluation."""
    evaluate("arithmetic-pref", tiny_bundle, options={"limit": 3}, batch_size=4)
    err = capsys.readouterr().err
    assert "eval arithmetic-pref" in err and "6/6" in err and "seq/s" in err


def test_no_bar_outside_an_evaluation_or_when_switched_off(tiny_bundle, capsys):
    """Decoding outside an evaluation (GEM's candidates during training) stays silent, and so does
    an evaluation with progress=False (the parallel bench workers)."""
    generate(tiny_bundle.model, tiny_bundle.tokenizer, ["1+1?"], sampling=SamplingConfig(max_new_tokens=2, do_sample=False))
    evaluate("arithmetic", tiny_bundle, options={"limit": 2, "max_new_tokens": 2}, progress=False)
    assert "eval" not in capsys.readouterr().err
