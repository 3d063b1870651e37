"""The group loop (sample → one forward → score → map → centre) and the SEGA / SFT objectives on random:tiny.

Generation is replaced by fixed candidates so every number can be recomputed by hand; everything
after it (encoding, the one forward pass, the scorer's view, advantages, the loss) is the real code.
"""
import pytest
import torch

import gemkit.gem.group as group_module
from gemkit.builtin.entropy import EntropyConfig, EntropyScorer
from gemkit.builtin.sega import Sega, SegaConfig
from gemkit.builtin.sft import SFT, SFTConfig
from gemkit.data.encoding import EncodedSequence, collate, encode_prompt, encode_sequence
from gemkit.data.records import PreferencePair
from gemkit.gem.group import COT_SYSTEM_PROMPT
from gemkit.generation import Generation, SamplingConfig
from gemkit.logprobs import response_logprobs
from gemkit.models import LoraSpec
from gemkit.ops import token_entropies
from gemkit.scoring import ScoreResult
from gemkit.testing import tiny_bundle as make_tiny
from gemkit.train import StepContext, TrainConfig

PROMPT = "What is 6 times 7?"
SHORT = "6 × 7 = 42.\nFinal Answer: 42"
LONG = "Step 1: 6 × 7 means six sevens.\nStep 2: 7 + 7 + 7 + 7 + 7 + 7 = 42.\nFinal Answer: 42"
LONGER = LONG + "\nI double-checked: 42 / 7 = 6, so the answer stands, and nothing else is needed here."
SAMPLING = SamplingConfig(max_new_tokens=64)
IDENTITY = staticmethod(lambda scores: scores.clone())


def fix_generation(monkeypatch, tokenizer, responses, finished):
    """Make the group loop 'sample' exactly ``responses`` (k = len(responses), one prompt)."""
    prompt_ids = encode_prompt(tokenizer, PROMPT, COT_SYSTEM_PROMPT)
    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses]
    generation = Generation([0] * len(ids), [prompt_ids] * len(ids), ids, list(responses), list(finished))
    monkeypatch.setattr(group_module, "generate", lambda *args, **kwargs: generation)
    return prompt_ids, ids


def context(bundle):
    return StepContext(bundle.model, bundle.tokenizer, TrainConfig(model="random:tiny", max_length=512), torch.device("cpu"))


def plain_forward(model, tokenizer, prompt_ids, response_ids, eos):
    """A separate, unbatched, eval-mode forward: per-token entropies and log π(a|q) of one candidate."""
    tail = [tokenizer.eos_token_id] if eos else []
    ids = torch.tensor([prompt_ids + response_ids + tail])
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt_ids):, None]).squeeze(-1)
    return token_entropies(logits)[:len(response_ids)], logp.sum()


class FixedScorer:
    """Returns the given scores, all candidates finished."""

    name = "fixed"

    def __init__(self, scores):
        self.scores = torch.tensor(scores)

    def score(self, inputs):
        n = len(self.scores)
        return ScoreResult(self.scores.clone(), torch.ones(n, dtype=torch.bool), [(0, 0)] * n)


def test_padding_invariance(monkeypatch, tokenizer):
    """SHORT scored as a group of one, and next to two longer candidates (more right padding, and
    one unfinished): its entropies, score and log-prob agree within 1e-5."""
    bundle = make_tiny()
    ctx, scorer = context(bundle), EntropyScorer(EntropyConfig())
    fix_generation(monkeypatch, tokenizer, [SHORT], [True])
    alone = ctx.score_groups([PROMPT], k=1, sampling=SAMPLING, scorer=scorer, mapping=IDENTITY)
    fix_generation(monkeypatch, tokenizer, [LONGER, SHORT, LONG], [True, True, False])
    batched = ctx.score_groups([PROMPT], k=3, sampling=SAMPLING, scorer=scorer, mapping=IDENTITY)
    n = int(alone.inputs.response_mask[0].sum())
    assert int(batched.inputs.response_mask[1].sum()) == n
    assert torch.allclose(alone.inputs.token_entropies[0, :n], batched.inputs.token_entropies[1, :n], atol=1e-5)
    assert batched.inputs.token_entropies[1, n:].abs().max() == 0  # padding carries nothing
    assert alone.result.scores[0].item() == pytest.approx(batched.result.scores[1].item(), abs=1e-5)
    assert alone.policy.sum()[0].item() == pytest.approx(batched.policy.sum()[1].item(), abs=1e-5)


def test_one_pass_entropies_equal_a_separate_plain_forward(monkeypatch, tokenizer):
    """LoRA with dropout 0.5 and the model in train mode: the entropies the scorer sees (from the
    update's own forward) equal a separate eval-mode forward per candidate within 1e-4, EOS excluded;
    the log-prob with grad includes the EOS of finished candidates and equals the plain one."""
    bundle = make_tiny(lora=LoraSpec(r=4, dropout=0.5))
    bundle.model.train()
    responses, finished = [SHORT, LONG], [True, False]
    prompt_ids, ids = fix_generation(monkeypatch, tokenizer, responses, finished)
    group = context(bundle).score_groups([PROMPT], k=2, sampling=SAMPLING, scorer=EntropyScorer(EntropyConfig()),
                         mapping=IDENTITY)
    assert bundle.model.training and group.policy.token_logps.requires_grad
    for row, (response, eos) in enumerate(zip(ids, finished, strict=True)):
        entropies, logp = plain_forward(bundle.model, tokenizer, prompt_ids, response, eos)
        assert torch.allclose(group.inputs.token_entropies[row, :len(response)], entropies, atol=1e-4)
        assert group.policy.sum()[row].item() == pytest.approx(logp.item(), abs=1e-4)
        assert int(group.policy.lengths[row]) == len(response) + eos


def test_given_candidates_are_scored_by_the_model_passed_without_sampling(monkeypatch, tokenizer):
    """``candidates=`` scores another policy's responses with this model: nothing is sampled, and the
    scorer sees this model's entropies of exactly those tokens (a separate plain forward, 1e-4). A
    count that is not k per prompt is refused. Checked it can fail: with ``candidates`` ignored (the
    group samples its own), the entropies differ and the monkeypatched ``generate`` raises."""
    bundle = make_tiny()

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled although candidates were given")

    monkeypatch.setattr(group_module, "generate", no_sampling)
    prompt_ids = encode_prompt(tokenizer, PROMPT, COT_SYSTEM_PROMPT)
    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in (SHORT, LONG)]
    given = Generation([0, 0], [prompt_ids] * 2, ids, [SHORT, LONG], [True, False])
    scorer = EntropyScorer(EntropyConfig())
    group = group_module.score_groups(bundle.model, bundle.tokenizer, [PROMPT], k=2, sampling=SAMPLING, scorer=scorer,
                                      mapping=IDENTITY, candidates=given)
    assert group.generation is given
    for row, (response, eos) in enumerate(zip(ids, [True, False], strict=True)):
        entropies, _ = plain_forward(bundle.model, tokenizer, prompt_ids, response, eos)
        assert torch.allclose(group.inputs.token_entropies[row, :len(response)], entropies, atol=1e-4)
    with pytest.raises(ValueError, match="candidates hold 2 responses; expected k = 3"):
        group_module.score_groups(bundle.model, bundle.tokenizer, [PROMPT], k=3, sampling=SAMPLING, scorer=scorer,
                                  mapping=IDENTITY, candidates=given)


def test_sega_gradient_is_the_hand_built_policy_gradient(monkeypatch, tokenizer):
    """Scores S = [1, −0.5, 0.2, 0.9], identity mapping: r̄ = 1.6/4 = 0.4, A = [0.6, −0.9, −0.2, 0.5].
    Loss = −(1/4) Σ A_i log π(a_i|q); its gradient must equal −(1/4) Σ A_i ∇log π(a_i|q) built from
    four separate single-candidate forwards."""
    bundle = make_tiny()
    responses, finished = [SHORT, LONG, "42", LONGER], [True, True, False, True]
    prompt_ids, ids = fix_generation(monkeypatch, tokenizer, responses, finished)
    objective = Sega(SegaConfig(k=4))
    objective.scorer = FixedScorer([1.0, -0.5, 0.2, 0.9])
    out = objective.compute_loss(context(bundle), [PreferencePair(PROMPT, "", "")])
    advantages = torch.tensor([0.6, -0.9, -0.2, 0.5])
    params = [p for p in bundle.model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out.loss, params)
    expected = [torch.zeros_like(p) for p in params]
    loss_by_hand = 0.0
    for a, response, eos in zip(advantages, ids, finished, strict=True):
        seq = EncodedSequence(prompt_ids + response + ([tokenizer.eos_token_id] if eos else []), len(prompt_ids))
        logp = response_logprobs(bundle.model, collate([seq], tokenizer.pad_token_id)).sum()[0]
        loss_by_hand -= float(a) * logp.item() / 4
        for acc, g in zip(expected, torch.autograd.grad(logp, params), strict=True):
            acc -= a * g / 4
    assert out.loss.item() == pytest.approx(loss_by_hand, rel=1e-4)
    for g, e in zip(grads, expected, strict=True):
        assert torch.allclose(g, e, atol=1e-5)
    assert out.metrics["advantage_std"] == pytest.approx(advantages.std().item(), abs=1e-5)


@pytest.mark.parametrize("scores", [[0.3, 0.3, 0.3], [0.7]])
def test_equal_scores_or_single_candidate_give_zero_update(monkeypatch, tokenizer, scores):
    """Equal scores (or k = 1): every A_i = S_i − S̄ = 0, so the loss and every gradient are exactly 0,
    with and without the std scaling."""
    bundle = make_tiny()
    fix_generation(monkeypatch, tokenizer, [SHORT, LONG, LONGER][:len(scores)], [True] * len(scores))
    for scale in (False, True):
        objective = Sega(SegaConfig(k=len(scores), scale_by_std=scale))
        objective.scorer = FixedScorer(scores)
        out = objective.compute_loss(context(bundle), [PreferencePair(PROMPT, "", "")])
        params = [p for p in bundle.model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(out.loss, params, allow_unused=True)
        assert out.loss.item() == 0.0
        assert all(g is None or g.abs().max().item() == 0.0 for g in grads)


def test_sft_masks_prompt_and_padding(tokenizer):
    """Two pairs of different lengths: loss = (NLL₁ + NLL₂)/(n₁ + n₂) where NLL_i sums −log π over the
    chosen tokens (+EOS) of pair i scored alone; the prompts and the shorter row's padding add nothing."""
    bundle = make_tiny()
    pairs = [PreferencePair(PROMPT, SHORT, "x"), PreferencePair("Add 2 and 2.", LONGER, "y")]
    ctx = StepContext(bundle.model, tokenizer, TrainConfig(model="random:tiny"), torch.device("cpu"))
    out = SFT(SFTConfig()).compute_loss(ctx, pairs)
    nll, tokens = 0.0, 0
    for pair in pairs:
        seq = encode_sequence(tokenizer, pair.prompt, pair.chosen)
        scores = response_logprobs(bundle.model, collate([seq], tokenizer.pad_token_id))
        nll -= scores.sum().item()
        tokens += seq.response_length
    assert out.num_tokens == tokens
    assert out.loss.item() == pytest.approx(nll / tokens, rel=1e-5)


def test_prompts_cut_to_fit_a_sampled_group_are_counted_in_the_step_context(monkeypatch, tokenizer):
    """max_length = len(prompt) + 3: LONG (>3 tokens + EOS) needs its prompt cut, SHORT too, so both
    candidates count; the count lands in ``ctx.truncated_sequences``, which the engine logs."""
    bundle = make_tiny(lora=LoraSpec(r=4))
    prompt_ids, ids = fix_generation(monkeypatch, tokenizer, [SHORT, LONG], [True, True])
    ctx = StepContext(bundle.model, bundle.tokenizer,
                      TrainConfig(model="random:tiny", max_length=len(prompt_ids) + 3), torch.device("cpu"))
    assert min(len(r) for r in ids) + 1 > 3
    group = ctx.score_groups([PROMPT], k=2, sampling=SAMPLING, scorer=FixedScorer([1.0, 0.0]), mapping=IDENTITY)
    assert group.truncated == 2 and ctx.truncated_sequences == 2
    ctx.score_groups([PROMPT], k=2, sampling=SAMPLING, scorer=FixedScorer([1.0, 0.0]), mapping=IDENTITY)
    assert ctx.truncated_sequences == 4


def test_sega_logs_scorer_diagnostics_when_the_prompt_has_a_gold_answer(monkeypatch, tokenizer):
    """Gold 42; candidates SHORT (Final Answer: 42, right), '…Final Answer: 41' (wrong), LONG (42, right),
    '42' (no marker, wrong): correct = [1, 0, 1, 0]. Scores [1.0, 0.5, 0.6, 0.9]: right {1.0, 0.6} vs
    wrong {0.5, 0.9} → 1.0 beats both, 0.6 beats 0.5 → U = 3 of 4 pairs (AUROC 3/4, one mixed prompt);
    best-of-k: the top (1.0) is right → 1; mean correctness 2/4; oracle 1. Without a gold answer no diag/*
    key is logged.
    Checked: ranking the candidates by −score (AUROC 1/4, best-of-k 0) fails."""
    bundle = make_tiny()
    responses = [SHORT, "6 × 7 = 41.\nFinal Answer: 41", LONG, "42"]
    fix_generation(monkeypatch, tokenizer, responses, [True] * 4)
    objective = Sega(SegaConfig(k=4))
    objective.scorer = FixedScorer([1.0, 0.5, 0.6, 0.9])
    out = objective.compute_loss(context(bundle), [PreferencePair(PROMPT, "", "", answer="42")])
    assert {k: v for k, v in out.metrics.items() if k.startswith("diag/")} == pytest.approx(
        {"diag/correct_mean": 0.5, "diag/best_of_k_by_score": 1.0, "diag/oracle": 1.0, "diag/auroc_wins": 3.0,
         "diag/auroc_pairs": 4.0, "diag/auroc_within_sum": 0.75, "diag/mixed_prompts": 1.0})
    out = objective.compute_loss(context(bundle), [PreferencePair(PROMPT, "", "")])
    assert not any(k.startswith("diag/") for k in out.metrics)
