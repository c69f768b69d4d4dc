"""Frame prediction: the given leading latent frames are never masked in training, never scored by the loss, and
never changed by the sampler; with none given, training masks are the unconditional ones draw for draw."""

from __future__ import annotations

import pytest
import torch

from fsq.generation import random_mask, sample
from fsq.generation.conditioning import (
    conditioned_initial,
    conditioned_training_mask,
    given_pixel_frames,
    given_positions,
)
from fsq.models.maskgit import MaskGIT, MaskGITSpec, masked_token_loss

GRID = (3, 2, 2)  # (t, h, w): 4 tokens per latent frame
K = 7


def tiny_model() -> MaskGIT:
    return MaskGIT(MaskGITSpec(codebook_size=K, num_classes=0, grid=list(GRID), width=16, depth=1, heads=2, mlp_dim=32))


def test_given_positions_and_pixel_frames():
    assert given_positions(GRID, 0) == 0 and given_positions(GRID, 1) == 4 and given_positions(GRID, 2) == 8
    with pytest.raises(ValueError, match=r"leaves nothing to predict: the token grid \(3, 2, 2\) has 3 latent"):
        given_positions(GRID, 3)
    with pytest.raises(ValueError, match=r"needs a video tokenizer"):
        given_positions((7, 7), 1)
    # causal 9 frames -> 3 latent frames (x4 in time): latent 0 is frame 0 alone, latent 1 frames 1-4
    assert given_pixel_frames(9, 3, 1, causal=True) == 1 and given_pixel_frames(9, 3, 2, causal=True) == 5
    assert given_pixel_frames(8, 2, 1, causal=False) == 4 and given_pixel_frames(17, 5, 0, causal=True) == 0


def test_training_mask_never_covers_the_given_frames():
    for step in range(20):
        g = torch.Generator().manual_seed(step)
        count = 1 + step % 8
        mask = conditioned_training_mask(16, 12, 4, count, generator=g)
        assert mask.shape == (16, 12) and not mask[:, :4].any() and (mask.sum(1) == count).all()
    with pytest.raises(ValueError, match=r"count must be in \[1, 8\]"):
        conditioned_training_mask(2, 12, 4, 9)


def test_no_frames_given_is_the_unconditional_mask_draw_for_draw():
    a = conditioned_training_mask(8, 12, 0, 5, generator=torch.Generator().manual_seed(3))
    b = random_mask(8, 12, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_the_loss_ignores_the_given_tokens():
    torch.manual_seed(0)
    model = tiny_model()
    targets = torch.randint(0, K, (4, 12))
    mask = conditioned_training_mask(4, 12, 4, 5, generator=torch.Generator().manual_seed(1))
    logits = torch.randn(4, 12, K, requires_grad=True)
    loss = masked_token_loss(logits, targets, mask)
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[:, :4].abs().sum() == 0 and grad[:, 4:].abs().sum() > 0  # no gradient reaches a given position
    changed = targets.clone()
    changed[:, :4] = (changed[:, :4] + 1) % K  # other targets at the given positions: the same loss
    assert torch.equal(masked_token_loss(logits, changed, mask), loss)
    inputs = torch.where(mask, torch.full_like(targets, model.mask_id), targets)
    assert (inputs[:, :4] == targets[:, :4]).all()  # the model sees the given tokens


def test_the_sampler_never_changes_the_given_tokens():
    torch.manual_seed(0)
    model = tiny_model()
    real = torch.randint(0, K, (6, *GRID))
    initial = conditioned_initial(real, 4, model.mask_id)
    assert torch.equal(initial[:, :4], real.flatten(1)[:, :4]) and (initial[:, 4:] == model.mask_id).all()
    seen = []

    def spy(tokens):
        seen.append(tokens.clone())
        return model(tokens)

    out = sample(spy, initial, mask_id=model.mask_id, steps=4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out.tokens[:, :4], real.flatten(1)[:, :4]) and not (out.tokens == model.mask_id).any()
    assert all(torch.equal(t[:, :4], real.flatten(1)[:, :4]) for t in seen)  # at every step, not just the end


def test_generate_keeps_the_condition_and_names_a_wrong_one():
    from fsq.inference.sampling import generate

    torch.manual_seed(0)
    model = tiny_model()
    real = torch.randint(0, K, (5, *GRID))
    out = generate(model, None, num=5, steps=3, batch_size=2, condition=real, condition_frames=1)
    assert out.shape == (5, *GRID) and torch.equal(out[:, 0], real[:, 0])  # batches of 2, 2, 1: every row kept
    assert not torch.equal(out[:, 1:], real[:, 1:])  # the rest is sampled
    with pytest.raises(ValueError, match=r"condition_frames=1 needs condition token grids of shape \(4, 3, 2, 2\)"):
        generate(model, None, num=4, steps=3, condition=real, condition_frames=1)
    with pytest.raises(ValueError, match="leaves nothing to predict"):
        generate(model, None, num=5, steps=3, condition=real, condition_frames=3)
