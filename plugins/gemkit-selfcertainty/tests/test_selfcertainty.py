"""The self-certainty scorer: hand-worked values, the conformance kit, and its registration."""
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from gemkit_selfcertainty import SelfCertaintyConfig, SelfCertaintyScorer, token_self_certainty  # noqa: E402

from gemkit.testing import check_scorer, make_scoring_inputs  # noqa: E402


def test_two_token_vocabulary_by_hand():
    """V = 2, z = [0, log 3] -> p = [1/4, 3/4].

    KL(U || p) = ½·log(½ / ¼) + ½·log(½ / ¾) = ½·log 2 + ½·log(2/3) = ½·log(4/3) ≈ 0.143841.
    Formula: logsumexp = log 4, mean z = ½·log 3, log V = log 2 -> log 4 − ½·log 3 − log 2 = ½·log(4/3).
    """
    z = torch.tensor([[0.0, math.log(3.0)]])
    assert token_self_certainty(z).item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)


def test_uniform_is_zero_and_shift_invariant():
    """Equal logits give p = U, so KL(U || U) = 0; adding a constant to z leaves p_t unchanged."""
    assert token_self_certainty(torch.full((3, 5, 7), 2.5)).abs().max().item() < 1e-6
    z = torch.randn(2, 4, 11, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(token_self_certainty(z), token_self_certainty(z + 100.0), atol=1e-4)


def test_matches_direct_kl_and_chunking_does_not_matter():
    z = torch.randn(3, 5, 50, generator=torch.Generator().manual_seed(1)) * 4
    logp = torch.log_softmax(z, -1)
    direct = (-(math.log(50)) - logp.mean(-1))  # −log V − (1/V) Σ_v log p_t(v)
    assert torch.allclose(token_self_certainty(z), direct, atol=1e-5)
    assert torch.allclose(token_self_certainty(z, chunk_tokens=1), token_self_certainty(z, chunk_tokens=1000), atol=1e-6)
    bf16 = token_self_certainty(z.bfloat16())
    assert bf16.dtype == torch.float32 and torch.allclose(bf16, direct, atol=0.1)


def test_score_is_mean_over_response_tokens_only():
    inputs = make_scoring_inputs()
    result = SelfCertaintyScorer().score(inputs)
    per_token = token_self_certainty(inputs.logits)
    for i in range(len(inputs.texts)):
        length = int(inputs.response_mask[i].sum())
        assert result.scores[i].item() == pytest.approx(per_token[i, :length].mean().item(), abs=1e-5)
    assert result.finished.tolist() == ["Final Answer" in text for text in inputs.texts]


def test_more_peaked_candidate_scores_higher():
    inputs = make_scoring_inputs(logits_scale=1.0)
    inputs.logits[0] = inputs.logits[0] * 5.0  # sharper distributions at every position of candidate 0
    scores = SelfCertaintyScorer().score(inputs).scores
    assert scores[0] > scores[1:].max()


def test_conforms_to_scorer_contract():
    check_scorer(SelfCertaintyScorer(SelfCertaintyConfig(chunk_tokens=7)))


def test_missing_logits_and_bad_config_are_user_errors():
    from gemkit.errors import ConfigError, GemkitError

    with pytest.raises(GemkitError, match="needs raw logits"):
        SelfCertaintyScorer().score(make_scoring_inputs(with_logits=False))
    with pytest.raises(ConfigError, match="chunk_tokens must be >= 1, got 0"):
        SelfCertaintyConfig(chunk_tokens=0)
