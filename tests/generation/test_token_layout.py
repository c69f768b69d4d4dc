"""Token layouts (:mod:`fsq.generation.token_layout`): residual stages and FSQ digit groups as Stage II tokens, the
exact inverse, the blocks being the FSQ indices of their channels, and what cannot be laid out refused by name."""

from __future__ import annotations

import pytest
import torch

from fsq.generation.token_layout import TokenLayout, layout_for
from fsq.quantizers.fsq import FSQ


def test_one_token_per_position_is_the_identity():
    layout = layout_for(1000, levels=[8, 5, 5, 5])
    assert layout == TokenLayout(1, 1, 1000, False) and layout.slots == 1 and layout.vocabulary == 1000
    assert layout.recorded is None  # nothing for a manifest to record: the tokens are the indices
    assert layout_for(625, num_stages=2, stages=1).recorded == {
        "stages": 1,
        "groups": 1,
        "group_size": 625,
        "residual": True,
    }
    indices = torch.randint(0, 1000, (3, 4, 5))
    assert torch.equal(layout.to_tokens(indices), indices) and layout.grid((4, 5)) == (4, 5)
    assert torch.equal(layout.to_indices(indices), indices)


def test_digit_groups_are_the_fsq_indices_of_their_channel_blocks():
    wide, half = FSQ([5] * 8), FSQ([5] * 4)
    layout = layout_for(wide.codebook_size, levels=[5] * 8, groups=2, grid_rank=1)
    assert (layout.group_size, layout.slots, layout.grid((50,))) == (625, 2, (50, 2))
    digits = torch.randint(0, 5, (6, 50, 8))
    indices = wide.digits_to_indices(digits)
    tokens = layout.to_tokens(indices)
    assert tokens.shape == (6, 50, 2)
    assert torch.equal(tokens[..., 0], half.digits_to_indices(digits[..., :4]))  # channels 0-3: the first token
    assert torch.equal(tokens[..., 1], half.digits_to_indices(digits[..., 4:]))
    assert torch.equal(layout.to_indices(tokens), indices)


def test_residual_stages_are_kept_stage_major_and_restored():
    layout = layout_for(625, levels=[5] * 4, num_stages=3, stages=2, groups=2, grid_rank=1)
    assert (layout.stages, layout.groups, layout.group_size, layout.residual, layout.slots) == (2, 2, 25, True, 4)
    indices = torch.randint(0, 625, (2, 7, 3))
    tokens = layout.to_tokens(indices)
    assert tokens.shape == (2, 7, 4)
    assert torch.equal(tokens[..., 0] + 25 * tokens[..., 1], indices[..., 0])  # stage 0's groups first
    assert torch.equal(tokens[..., 2] + 25 * tokens[..., 3], indices[..., 1])
    assert torch.equal(layout.to_indices(tokens), indices[..., :2])  # the leading stages, as decode_indices takes
    every = layout_for(625, num_stages=3)  # stages=None: all of them, whole indices
    assert (every.slots, every.group_size) == (3, 625) and torch.equal(every.to_tokens(indices), indices)
    one = layout_for(625, num_stages=3, stages=1)  # the first stage alone: the plain grid
    assert one.grid((7,)) == (7,) and torch.equal(one.to_indices(one.to_tokens(indices)), indices[..., :1])


def test_round_trip_over_many_layouts():
    g = torch.Generator().manual_seed(0)
    for levels, groups in [([8, 8, 8], 3), ([4, 4, 2, 8], 2), ([2] * 12, 4), ([3] * 6, 3), ([7, 7], 1)]:
        size = int(torch.tensor(levels).prod())
        for stages in (1, 2):
            layout = layout_for(size, levels=levels, num_stages=2, stages=stages, groups=groups, grid_rank=2)
            indices = torch.randint(0, size, (4, 3, 3, 2), generator=g)
            tokens = layout.to_tokens(indices)
            assert int(tokens.max()) < layout.vocabulary and layout.vocabulary**groups == size
            assert torch.equal(layout.to_indices(tokens), indices[..., :stages])
            assert TokenLayout.from_dict(layout.to_dict()) == layout


def test_what_cannot_be_laid_out_is_refused_by_name():
    with pytest.raises(ValueError, match="stages=2: the VQ has no residual stages"):
        layout_for(512, stages=2, describe="the VQ")
    with pytest.raises(ValueError, match="stages=4: .* has 2 stages"):
        layout_for(625, num_stages=2, stages=4)
    with pytest.raises(ValueError, match="groups=2 writes FSQ indices .* has no levels"):
        layout_for(1024, groups=2)
    with pytest.raises(ValueError, match=r"levels \[8, 5, 5, 5\] of .* cannot be cut into 2 consecutive"):
        layout_for(1000, levels=[8, 5, 5, 5], groups=2)
    with pytest.raises(ValueError, match="cannot be cut into 2"):
        layout_for(64, levels=[2, 8, 4], groups=2)  # 8 x 8 in all, but no block boundary gives 8
    with pytest.raises(ValueError, match="video grids have no room"):
        layout_for(625, levels=[5] * 4, groups=2, grid_rank=3)
    layout_for(625, levels=[5] * 4, grid_rank=3)  # one token per position: any grid
    layout = layout_for(625, levels=[5] * 4, groups=2, grid_rank=1)
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 24\]"):
        layout.to_indices(torch.full((1, 3, 2), 25))
    with pytest.raises(ValueError, match=r"expected tokens \(N, \*grid, 2\)"):
        layout.to_indices(torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 624\]"):
        layout.to_tokens(torch.tensor([[625]]))
    with pytest.raises(ValueError, match="residual indices"):
        layout_for(625, num_stages=2, stages=2).to_tokens(torch.zeros(2, 5, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown token layout keys"):
        TokenLayout.from_dict({"stages": 1, "groups": 1, "group_size": 4, "residual": False, "extra": 1})
