"""When UViM's codebook splitting can act: the paper's threshold 0.1 at momentum 0.995 needs 459 idle steps, the
``"uvim_short"`` recipe 30; in a short run only the latter splits, and its usage rises."""

from __future__ import annotations

import math

import torch

from fsq.quantizers.vq import SHORT_RUN_DEAD_STEPS, VQ, VQ_RECIPES, dead_code_threshold


def _first_split_step(recipe: str, steps: int) -> int | None:
    """Feed one constant vector (so every code but one is idle from the start); the step of the first split."""
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe=recipe).train()
    z = torch.tensor([[1.0, -1.0, 0.5, 0.0]]).repeat(8, 1)
    for step in range(1, steps + 1):
        vq(z)
        if vq.last_num_splits:
            return step
    return None


def test_the_recipes_thresholds_follow_the_arithmetic():
    assert VQ_RECIPES["uvim"].dead_code_threshold == 0.1 and VQ_RECIPES["uvim"].ema_decay == 0.995
    short = VQ_RECIPES["uvim_short"]
    assert short.ema_decay == 0.995 and short.split_dead_codes
    assert math.isclose(short.dead_code_threshold, 0.995**SHORT_RUN_DEAD_STEPS) and SHORT_RUN_DEAD_STEPS == 30
    assert math.isclose(dead_code_threshold(0.995, 30), 0.8604, abs_tol=1e-4)
    # everything else is the paper's recipe
    assert {k: v for k, v in vars(short).items() if k != "dead_code_threshold"} == {
        k: v for k, v in vars(VQ_RECIPES["uvim"]).items() if k != "dead_code_threshold"
    }


def test_paper_threshold_splits_only_after_459_idle_steps():
    assert math.floor(math.log(0.1) / math.log(0.995)) == 459
    assert _first_split_step("uvim", 470) in (460, 461)  # count 0.995**n < 0.1 first at n = 460


def test_short_threshold_splits_after_30_idle_steps():
    assert _first_split_step("uvim_short", 40) in (30, 31, 32)  # 0.995**n < 0.995**30 (float32 rounding)


def _train(recipe: str, steps: int) -> tuple[int, int]:
    """(splits summed over ``steps``, codes used on held-out data) of a VQ on 64 clustered 8-d blobs."""
    torch.manual_seed(0)
    centres = torch.randn(64, 8) * 3
    vq = VQ(256, 8, recipe=recipe).train()
    splits = 0
    for _ in range(steps):
        z = centres[torch.randint(64, (128,))] + 0.3 * torch.randn(128, 8)
        vq(z)
        splits += vq.last_num_splits
    vq.eval()
    held_out = centres.repeat_interleave(8, 0) + 0.3 * torch.randn(512, 8)
    return splits, int(vq(held_out).indices.unique().numel())


def test_in_a_short_run_only_the_short_recipe_splits_and_usage_rises():
    paper_splits, paper_used = _train("uvim", 120)
    short_splits, short_used = _train("uvim_short", 120)
    nosplit_splits, nosplit_used = _train("uvim_nosplit", 120)
    assert paper_splits == 0 and nosplit_splits == 0
    assert short_splits > 0
    assert paper_used == nosplit_used  # no split happened: the same run
    assert short_used > paper_used + 10, (short_used, paper_used)
