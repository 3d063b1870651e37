"""GEM's maths checked by hand: Eq. 1 on known entropies, the SEGA gradient, mappings, one-pass entropies."""
import math

import pytest
import torch

from gemkit.builtin.entropy import EntropyConfig, EntropyScorer
from gemkit.builtin.mappings import NoOptions, RankMapping, SoftmaxConfig, SoftmaxMapping
from gemkit.builtin.sega import SegaConfig, group_advantages, keep_mask
from gemkit.data.encoding import collate, encode_sequence
from gemkit.gem.entropy_score import entropy_score, fork_count
from gemkit.gem.spans import SpanRule, fixed_span, marker_span
from gemkit.logprobs import response_logprobs
from gemkit.ops import token_entropies
from gemkit.scoring import ScoringInputs

# Ten response-token entropies; the reasoning part has two clear "forks" (3.0 and 2.0).
H = torch.tensor([0.5, 3.0, 0.2, 2.0, 0.1, 0.3, 0.4, 0.6, 0.8, 1.0])


def test_eq1_marker_span():
    """Final span [7, 10): H_final = (0.6+0.8+1.0)/3 = 0.8. Reasoning = first 7 tokens, m = ⌈0.1·7⌉ = 1
    → fork = 3.0. S = −0.8 + 1.0·3.0 = 2.2."""
    score, h_final, fork = entropy_score(H, (7, 10), lam=1.0, top_m_ratio=0.1)
    assert (round(score, 6), round(h_final, 6), round(fork, 6)) == (2.2, 0.8, 3.0)


def test_eq1_tail_fraction_span():
    """tail:0.2 of n=10 → last ⌈2⌉ tokens [8,10): H_final = 0.9. Reasoning 8 tokens, ρ=0.25 → m=2:
    mean(3.0, 2.0) = 2.5. λ=0.4: S = −0.9 + 0.4·2.5 = 0.1."""
    span = fixed_span(SpanRule.parse("tail:0.2"), 10)
    assert span == (8, 10)
    score, h_final, fork = entropy_score(H, span, lam=0.4, top_m_ratio=0.25)
    assert math.isclose(score, 0.1, abs_tol=1e-6) and math.isclose(h_final, 0.9, rel_tol=1e-6) and math.isclose(fork, 2.5, rel_tol=1e-6)


def test_eq1_last_n_span_with_fixed_m():
    """last:3 → [7,10), H_final = 0.8; top_m_count=3 over 7 reasoning tokens: mean(3.0, 2.0, 0.5) = 11/6.
    λ=2: S = −0.8 + 2·11/6 = 2.8667."""
    span = fixed_span(SpanRule.parse("last:3"), 10)
    score, _, fork = entropy_score(H, span, lam=2.0, top_m_ratio=0.1, top_m_count=3)
    assert math.isclose(fork, 11 / 6, rel_tol=1e-6) and math.isclose(score, -0.8 + 2 * 11 / 6, rel_tol=1e-6)


def test_fork_count_rounds_up_and_caps():
    assert [fork_count(n, 0.1, None) for n in (0, 1, 9, 10, 11)] == [0, 1, 1, 1, 2]
    assert fork_count(4, 0.1, 10) == 4


def test_marker_span_is_found_in_token_space(tokenizer):
    ids = tokenizer("Step 1: 3 × 4 = 12.\nFinal Answer: 12", add_special_tokens=False)["input_ids"]
    start, end = marker_span(tokenizer, ids)
    assert tokenizer.decode(ids[start:end]).strip() == "12" and end == len(ids)
    no_marker = tokenizer("just some text", add_special_tokens=False)["input_ids"]
    assert marker_span(tokenizer, no_marker) is None


def test_scorer_flags_unfinished_and_uses_fallback(tokenizer):
    texts = ["Step 1: 2 + 2 = 4.\nFinal Answer: 4", "I am not sure about this one at all"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, rows))
    ids = torch.zeros(2, width, dtype=torch.long)
    mask = torch.zeros(2, width)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    ents = torch.rand(2, width) * mask
    result = EntropyScorer(EntropyConfig()).score(
        ScoringInputs(ids, mask, ents, torch.zeros(2, width), None, texts, tokenizer, 2))
    assert result.finished.tolist() == [True, False]
    n1 = len(rows[1])
    assert result.final_span[1] == (n1 - math.ceil(0.2 * n1), n1)
    expected0 = entropy_score(ents[0, :len(rows[0])], result.final_span[0], lam=1.0, top_m_ratio=0.1)[0]
    assert math.isclose(result.scores[0].item(), expected0, rel_tol=1e-6)


def test_mappings():
    """softmax([0, ln 3]) = (¼, ¾); ranks of [3, 1, 2, 2] → [1, −½, 0, 0]·½ scale: (r − 1.5)/3."""
    s = torch.tensor([[0.0, math.log(3.0)]])
    assert torch.allclose(SoftmaxMapping(SoftmaxConfig())(s), torch.tensor([[0.25, 0.75]]))
    ranks = RankMapping(NoOptions())(torch.tensor([[3.0, 1.0, 2.0, 2.0]]))
    assert torch.allclose(ranks, torch.tensor([[0.5, -0.5, 0.0, 0.0]]))


def test_advantages_drop_trim_and_pairing():
    """r = [4, 1, 2, 5], finished = [1, 1, 0, 1]. drop → mean over {4,1,5} = 10/3."""
    rewards = torch.tensor([[4.0, 1.0, 2.0, 5.0]])
    finished = torch.tensor([[True, True, False, True]])
    keep = keep_mask(rewards, finished, SegaConfig(unfinished="drop"))
    adv = group_advantages(rewards, keep, scale_by_std=False)
    assert torch.allclose(adv, torch.tensor([[4 - 10 / 3, 1 - 10 / 3, 0.0, 5 - 10 / 3]]))
    paired = keep_mask(rewards, torch.ones_like(finished), SegaConfig(pair_top_bottom=True))
    assert paired.tolist() == [[0.0, 1.0, 0.0, 1.0]]
    trimmed = keep_mask(rewards, torch.ones_like(finished), SegaConfig(trim_bottom=1))
    assert trimmed.tolist() == [[1.0, 0.0, 1.0, 1.0]]


def test_sega_objective_loss_and_gradient_by_hand(tmp_path, monkeypatch):
    """The real ``sega`` objective (registry "objective") on the tiny model, k = 4, 2 prompts, scores we
    choose: S = [3, 1, 0, 2] in every group, identity mapping ⇒ r̄ = 1.5, A = [1.5, −0.5, −1.5, 0.5].
    Expected L = mean over prompts of −(1/4) Σ_i A_i · log π(a_i|q), with log π(a_i|q) from one plain
    forward per sampled candidate (tests/_objective_harness.py), value and every gradient at 1e-5.

    Checked on purpose: with the loss's sign flipped, with ÷k dropped, and with the mean over
    prompts replaced by a sum, this test fails."""
    from _objective_harness import PROMPTS, FixedScorer, independent_logps, lora_context, spy_on_groups

    from gemkit.builtin import sega as sega_module
    from gemkit.registry import registry

    ctx = lora_context(tmp_path, "sega")
    objective = registry("objective").get("sega").build({"k": 4, "max_new_tokens": 5, "temperature": 1.0})
    objective.scorer = FixedScorer([3.0, 1.0, 0.0, 2.0])
    groups = spy_on_groups(monkeypatch, sega_module)
    torch.manual_seed(0)
    output = objective.compute_loss(ctx, PROMPTS)
    advantages = torch.tensor([1.5, -0.5, -1.5, 0.5] * 2)
    assert torch.equal(groups[0].advantages.reshape(-1), advantages)
    sequence_logps = torch.stack([row.sum() for row in independent_logps(ctx.model, groups[0].batch)])
    expected = -(advantages * sequence_logps).view(2, 4).sum(-1).div(4).mean()
    assert float(output.loss) == pytest.approx(float(expected), abs=1e-5)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    for got, want in zip(torch.autograd.grad(output.loss, params), torch.autograd.grad(expected, params), strict=True):
        assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("rewards", [torch.full((1, 4), 0.3), torch.tensor([[0.7]])])
def test_equal_scores_or_single_candidate_give_zero_update(rewards):
    adv = group_advantages(rewards, torch.ones_like(rewards), scale_by_std=True)
    assert adv.abs().max().item() == 0.0


def test_single_pass_entropies_equal_a_separate_plain_forward(tiny_bundle):
    model, tok = tiny_bundle.model, tiny_bundle.tokenizer
    model.eval()
    seq = encode_sequence(tok, "What is 3 times 4?", "3 × 4 = 12.\nFinal Answer: 12")
    batch = collate([seq], tok.pad_token_id)
    one_pass = response_logprobs(model, batch, with_entropy=True)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids).logits[0, seq.response_start - 1:-1]
    separate = token_entropies(logits)
    assert torch.allclose(one_pass.token_entropies[0][one_pass.mask[0].bool()], separate, atol=1e-4)
