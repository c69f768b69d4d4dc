"""The MaskGIT sampler with mock models: known tokens stay, no mask is left, the schedule is followed, seeds."""

from __future__ import annotations

import pytest
import torch

from fsq.generation import decoding_counts, sample

K, N, MASK = 10, 49, 10


def random_model(seed: int = 0):
    weights = torch.randn(N, K, generator=torch.Generator().manual_seed(seed))

    def tokens_to_logits(tokens):
        # depends on the visible tokens, so the sampler's state matters
        visible = (tokens != MASK).float().sum(1, keepdim=True)
        return weights.expand(tokens.shape[0], N, K) + 0.1 * visible.unsqueeze(-1)

    return tokens_to_logits


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_no_mask_left_and_schedule_followed():
    initial = torch.full((8, N), MASK)
    result = sample(random_model(), initial, mask_id=MASK, steps=12, generator=gen(0))
    assert not (result.tokens == MASK).any()
    assert ((result.tokens >= 0) & (result.tokens < K)).all()
    expected = decoding_counts(N, 12)
    for step, counts in enumerate(result.masked_per_step):
        assert (counts == expected[step]).all()


def test_known_tokens_never_rewritten():
    initial = torch.full((6, N), MASK)
    known = torch.rand(6, N, generator=gen(3)) < 0.4
    values = torch.randint(0, K, (6, N), generator=gen(4))
    initial[known] = values[known]
    seen = []

    def spy(tokens):
        seen.append(tokens.clone())
        return random_model()(tokens)

    result = sample(spy, initial, mask_id=MASK, steps=8, choice_temperature=4.5, generator=gen(1))
    assert torch.equal(result.tokens[known], values[known])
    for tokens in seen:  # known positions hold their value at every step, never MASK
        assert torch.equal(tokens[known], values[known])
    # once revealed, a token keeps its value until the end
    for before, after in zip(seen, seen[1:] + [result.tokens]):
        revealed = before != MASK
        assert torch.equal(after[revealed], before[revealed])


def test_reproducible_and_seed_dependent():
    initial = torch.full((4, N), MASK)
    a = sample(random_model(), initial, mask_id=MASK, generator=gen(7)).tokens
    b = sample(random_model(), initial, mask_id=MASK, generator=gen(7)).tokens
    c = sample(random_model(), initial, mask_id=MASK, generator=gen(8)).tokens
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_guidance_zero_equals_conditional():
    initial = torch.full((4, N), MASK)
    cond, uncond = random_model(0), random_model(1)
    plain = sample(cond, initial, mask_id=MASK, generator=gen(5)).tokens
    guided0 = sample(cond, initial, mask_id=MASK, guidance=0.0, uncond_tokens_to_logits=uncond, generator=gen(5))
    assert torch.equal(plain, guided0.tokens)
    guided = sample(cond, initial, mask_id=MASK, guidance=3.0, uncond_tokens_to_logits=uncond, generator=gen(5))
    assert not torch.equal(plain, guided.tokens)


def test_guidance_formula_pulls_away_from_unconditional():
    # cond prefers token 1 slightly, uncond prefers token 1 strongly; l = l_c + a (l_c - l_u) makes token 0 win
    def cond(tokens):
        logits = torch.full((*tokens.shape, K), -30.0)
        logits[..., 0], logits[..., 1] = 0.0, 0.5
        return logits

    def uncond(tokens):
        logits = torch.full((*tokens.shape, K), -30.0)
        logits[..., 0], logits[..., 1] = 0.0, 5.0
        return logits

    initial = torch.full((16, N), MASK)
    out = sample(cond, initial, mask_id=MASK, guidance=2.0, uncond_tokens_to_logits=uncond, generator=gen(0))
    assert (out.tokens == 0).float().mean() > 0.99  # l1 - l0 = 0.5 + 2 (0.5 - 5) = -8.5


def test_confident_tokens_first_without_choice_noise():
    # position p's best token has probability increasing with p: with choice temperature 0 the first step keeps
    # the most confident positions (the highest ones)
    logits = torch.zeros(N, K)
    logits[:, 0] = torch.linspace(0, 20, N)

    def model(tokens):
        return logits.expand(tokens.shape[0], N, K)

    initial = torch.full((1, N), MASK)
    seen = []

    def spy(tokens):
        seen.append(tokens.clone())
        return model(tokens)

    sample(spy, initial, mask_id=MASK, steps=12, choice_temperature=0.0, generator=gen(0))
    revealed = (seen[1][0] != MASK).nonzero().flatten().tolist()
    assert revealed == list(range(N - len(revealed), N))


def test_invalid_arguments():
    initial = torch.full((2, N), MASK)
    with pytest.raises(ValueError, match="guidance"):
        sample(random_model(), initial, mask_id=MASK, guidance=1.0)
    with pytest.raises(ValueError, match="int64"):
        sample(random_model(), initial.float(), mask_id=MASK)
    with pytest.raises(ValueError, match="returned"):
        sample(lambda t: torch.zeros(2, 3, K), initial, mask_id=MASK)
