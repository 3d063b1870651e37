"""KTO with ``reference_cache``: every step's KL rows read log π_ref of exactly the rows it builds.

The mismatched KL rows depend on the shuffled micro-batch (example j's prompt with example j−1's
response), so the cache replays the engine's data order and stores every row those micro-batches
build. The runs here use 5 records, batch_size 2 and grad_accum 2 for 3 steps: 12 draws, so the
micro-batches cross two epoch boundaries and are not the fixed chunks [0, 1], [2, 3], [4] of the
training set (whose last chunk of one record cannot form a mismatch at all).
"""
from __future__ import annotations

import pytest

from gemkit.builtin.kto import KTO, KTOConfig
from gemkit.cli import main
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec
from gemkit.train import TrainConfig, train
from gemkit.train.reference_cache import planned_micro_batches

PAIRS = [PreferencePair(f"What is {i} + {i + 1}?", f"{i} + {i + 1} = {2 * i + 1}. Final Answer: {2 * i + 1}",
                        f"Final Answer: {2 * i}", id=f"p{i}") for i in range(5)]
LORA = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
LOGGED = ("loss", "kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected")


class RecordingKTO(KTO):
    """The real KTO objective; it also notes the record ids of each micro-batch the engine hands it."""

    def __init__(self, config: KTOConfig):
        super().__init__(config)
        self.drawn: list[list[str]] = []
        self.planned: list[list[str]] = []

    def setup(self, ctx):
        super().setup(ctx)
        self.planned = [[p.id for p in batch] for batch in planned_micro_batches(ctx)]

    def compute_loss(self, ctx, batch):
        self.drawn.append([p.id for p in batch])
        return super().compute_loss(ctx, batch)


def kto_run(out, lora: LoraSpec, options: dict, pairs=PAIRS, **overrides):
    config = TrainConfig(method="kto", model="random:tiny", out=str(out), max_steps=3, batch_size=2, grad_accum=2,
                         lr=5e-3, device="cpu", dtype="float32", max_length=96, seed=0, lora=lora,
                         objective=KTOConfig(**options), **overrides)
    objective = RecordingKTO(config.objective)
    result = train(config, pairs, objective=objective, progress=False)
    return list(read_jsonl(result.log_path)), objective


@pytest.mark.parametrize("lora", [LoraSpec(r=0), LORA], ids=["full-vs-frozen-copy", "lora-vs-adapters-off"])
def test_cached_reference_gives_the_same_losses_and_kl_as_a_live_reference(tmp_path, lora):
    """Two runs, identical but for where log π_ref comes from: a live reference (the frozen copy under
    full fine-tuning, the adapter-disabled base under LoRA) or the on-disk cache. Same initial weights
    ⇒ same reference ⇒ every logged step's loss, KL estimate z_ref and rewards agree to 1e-5. The
    engine really drew the replayed micro-batches, and they are not the training set's fixed chunks.
    z_ref > 0 at some step, so the KL rows' reference values are really compared (z_ref is clamped
    at 0, and it is 0 at step 1 where policy = reference).

    Checked it can fail: with the cache built as before (``open_reference_cache`` on chunks of the
    training set through ``encode_kto``) the cached run raised the batch_size >= 2 ConfigError on the
    last one-record chunk; with ``ReferenceCache.lookup`` returning the example rows' values for the
    KL rows (rows 2n..4n), both cases failed on the kl column at step 2 (3.8403 vs 3.8382 full,
    0.0716 vs 0.0694 LoRA). (Rotating the KL rows' values among themselves does not fail: z_ref is
    their mean.)
    """
    live, live_objective = kto_run(tmp_path / "live", lora, {})
    cached, cached_objective = kto_run(tmp_path / "cached", lora, {"reference_cache": str(tmp_path / "refcache")})
    assert cached_objective.cache is not None and live_objective.cache is None
    assert cached_objective.drawn == cached_objective.planned == live_objective.drawn
    chunks = [[p.id for p in PAIRS[i:i + 2]] for i in range(0, len(PAIRS), 2)]
    assert len(cached_objective.drawn) == 6 and cached_objective.drawn[:3] != chunks
    assert [row["step"] for row in cached] == [row["step"] for row in live] == [1, 2, 3]
    for ours, theirs in zip(cached, live, strict=True):
        for key in LOGGED:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-5), (ours["step"], key)
    assert max(row["kl"] for row in live) > 1e-4


def test_batch_size_one_with_reference_cache_exits_2_naming_the_fix(tmp_path, capsys):
    """``gemkit train --method kto --batch-size 1 --set reference_cache=DIR``: one pair per device cannot
    form a mismatched row, so the run stops before any step with exit 2 and says to raise batch_size.

    Checked it can fail: with the batch-size check removed from ``KTO.setup`` (and ``encode_kto``) the
    run trained (exit 0) with z_ref from each pair's own responses (exit code 0 == 2 failed).
    """
    out = tmp_path / "kto"
    code = main(["train", "--method", "kto", "--train", "builtin:arithmetic?n=4", "--out", str(out), "--steps", "1",
                 "--batch-size", "1", "--lora-r", "0", "--set", f"reference_cache={tmp_path / 'refcache'}",
                 "--model", "random:tiny", "--device", "cpu", "--dtype", "float32", "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert "kto needs batch_size >= 2 (got 1)" in captured.err + captured.out
    assert "set batch_size: 2 or more" in captured.err + captured.out
    assert not (out / "train_log.jsonl").exists() and not (tmp_path / "refcache").exists()


def test_one_record_training_set_is_refused(tmp_path):
    """One record and batch_size 2: every micro-batch is [p0, p0], whose KL rows are p0's own prompt with
    p0's own responses (z_ref would be the implied reward), so setup refuses it and names the fix.

    Checked it can fail: with ``records_problem`` left out of ``KTO.setup`` the run trained 3 steps.
    """
    with pytest.raises(ConfigError, match=r"kto needs at least 2 training records \(got 1\).*add records"):
        kto_run(tmp_path / "one", LoraSpec(r=0), {"reference_cache": str(tmp_path / "refcache")}, pairs=PAIRS[:1])
