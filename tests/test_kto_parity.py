"""KTO's mismatched KL rows: the same (prompt, response) pairing as TRL 1.16's real KTOTrainer, never an
example with its own responses, and batch_size < 2 refused as TRL refuses it.

TRL's side is its real dataset preparation: a ``KTOTrainer`` built around the tiny model on the
unpaired examples in gemkit's row order (n chosen, then n rejected) with per-device batch 2n,
whose ``train_dataset`` then holds the ``KL_completion_ids`` that TRL's own rotation made.

Checked on purpose: with encode_kto's rotation reversed (example j+1's response) the parity test
fails, and with the batch-size check removed the refusal tests fail.
"""
from __future__ import annotations

import copy

import pytest
import torch

from gemkit.builtin.kto import KTO, KTOConfig, encode_kto
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.testing import tiny_bundle
from gemkit.train import StepContext, TrainConfig

TAGS = ["alpha", "bravo", "charlie"]
PAIRS = [PreferencePair(f"Question {t}?", f"good {t}", f"bad {t}", id=t) for t in TAGS]


def context(batch_size: int = 3) -> StepContext:
    bundle = tiny_bundle(seed=0)
    return StepContext(model=bundle.model, tokenizer=bundle.tokenizer, device=torch.device("cpu"),
                       config=TrainConfig(method="kto", model="random:tiny", max_length=96, batch_size=batch_size))


def tag_of(text: str) -> str:
    found = [t for t in TAGS if t in text]
    assert len(found) == 1, text
    return found[0]


def test_kl_rows_equal_trl_kto_trainer(tmp_path):
    """Examples 0..5 = (x_a, good a), (x_b, good b), (x_c, good c), (x_a, bad a), (x_b, bad b), (x_c, bad c).
    TRL rotates completions by +1: KL row j = (x_j, y_{j−1}) ⇒ responses [bad c, good a, good b, good c,
    bad a, bad b] on prompts [a, b, c, a, b, c]. gemkit's rows 6..11 must be exactly those."""
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from trl import KTOConfig as TRLKTOConfig
    from trl import KTOTrainer

    ctx = context()
    examples = {"prompt": [p.prompt for p in PAIRS] * 2, "completion": [p.chosen for p in PAIRS] +
                [p.rejected for p in PAIRS], "label": [True] * 3 + [False] * 3}
    args = TRLKTOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=6, report_to=[], use_cpu=True,
                        max_length=96)
    trainer = KTOTrainer(model=ctx.model, ref_model=copy.deepcopy(ctx.model), args=args,
                         train_dataset=datasets.Dataset.from_dict(examples), processing_class=ctx.tokenizer)
    decode = ctx.tokenizer.decode
    theirs = [(tag_of(decode(row["prompt_ids"])), decode(row["KL_completion_ids"], skip_special_tokens=True).strip())
              for row in trainer.train_dataset]

    encoded = encode_kto(ctx, PAIRS)
    ours = []
    for row in range(6, 12):
        real = encoded.attention_mask[row].bool()
        ids, response = encoded.input_ids[row][real], encoded.response_mask[row][real].bool()
        ours.append((tag_of(decode(ids[~response])), decode(ids[response], skip_special_tokens=True).strip()))
    assert ours == theirs
    assert [r for _, r in ours] == ["bad charlie", "good alpha", "good bravo", "good charlie", "bad alpha", "bad bravo"]


def test_no_kl_row_pairs_an_example_with_its_own_responses():
    """n = 2 and n = 3: every mismatched row's response belongs to a different pair than its prompt."""
    ctx = context()
    decode = ctx.tokenizer.decode
    for n in (2, 3):
        encoded = encode_kto(ctx, PAIRS[:n])
        for row in range(2 * n, 4 * n):
            real = encoded.attention_mask[row].bool()
            ids, response = encoded.input_ids[row][real], encoded.response_mask[row][real].bool()
            assert tag_of(decode(ids[~response])) != tag_of(decode(ids[response]))


def test_batch_size_one_is_refused():
    """One pair ⇒ its two examples share the prompt, so z_ref would be the implied reward: refused
    both when the run starts (setup, from batch_size) and by encode_kto itself."""
    with pytest.raises(ConfigError, match="kto needs batch_size >= 2 \\(got 1\\)"):
        KTO(KTOConfig()).setup(context(batch_size=1))
    with pytest.raises(ConfigError, match="batch_size >= 2"):
        encode_kto(context(), PAIRS[:1])


def test_a_record_drawn_twice_in_one_micro_batch_is_never_matched_with_its_own_prompt():
    """A micro-batch that spans an epoch boundary can hold a record twice: [a, b, a]. The j − 1
    rotation would match example 0 (x_a, good a) with example 5's bad a and example 3 (x_a, bad a)
    with example 2's good a, both responses to x_a. gemkit skips back to the nearest example of
    another prompt instead; with distinct prompts the rotation is TRL's (above).
    Checked it can fail: with the plain j − 1 rotation restored, rows 6 and 9 pair x_a with a's responses."""
    from gemkit.builtin.kto import kto_rows

    batch = [PAIRS[0], PAIRS[1], PAIRS[0]]
    prompts, responses = kto_rows(batch)
    mismatched = list(zip(prompts[6:], responses[6:], strict=True))
    assert all(tag_of(prompt) != tag_of(response) for prompt, response in mismatched)
    # example j takes j − 1 wherever that is another prompt: x_b (example 1) takes good a (example 0)
    assert mismatched[1] == (PAIRS[1].prompt, "good alpha")


def test_micro_batches_of_one_prompt_are_refused_before_training():
    """Two records with one prompt (different responses): every micro-batch has one prompt, so there
    is no mismatched row; setup replays the run's micro-batches and refuses, and kto_rows refuses such
    a batch itself. Checked it can fail: without the setup check, setup passed."""
    from gemkit.builtin.kto import kto_rows

    same = [PreferencePair("Question alpha?", "good alpha", "bad alpha", id="1"),
            PreferencePair("Question alpha?", "fine alpha", "poor alpha", id="2")]
    ctx = context(batch_size=2)
    ctx.records = same
    with pytest.raises(ConfigError, match="share one prompt"):
        KTO(KTOConfig()).setup(ctx)
    with pytest.raises(ConfigError, match="share one prompt"):
        kto_rows(same)
