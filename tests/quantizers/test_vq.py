"""Tests of the VQ baselines (fsq.quantizers.vq): gradient routing, nearest neighbour, EMA, splitting, entropy."""

from __future__ import annotations

import math

import pytest
import torch

from fsq.quantizers import vq as vq_module
from fsq.quantizers.base import QuantizerOutput
from fsq.quantizers.vq import VQ, VQ_RECIPES, VQLosses, entropy_loss, nearest_and_entropy, squared_distances


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------- gradient routing
def _routing_matches(z, codebook, indices, z_grad, codebook_grad, beta: float) -> bool:
    """True if the grads are those of ``beta * mean((z - sg(e))^2) + mean((sg(z) - e)^2)`` (beta on the encoder)."""
    e = codebook[indices]
    n = z.numel()
    expected_z = 2 * beta * (z - e) / n
    expected_cb = torch.zeros_like(codebook).index_add_(0, indices, 2 * (e - z) / n)
    return torch.allclose(z_grad, expected_z, atol=1e-7) and torch.allclose(codebook_grad, expected_cb, atol=1e-7)


def test_commitment_weight_routes_to_encoder_and_codebook_loss_to_codebook():
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe="maskgit_noentropy")
    z = torch.randn(2, 5, 4, generator=_gen(), requires_grad=True)
    out = vq(z)
    out.aux_loss.backward()
    flat_z, idx = z.detach().reshape(-1, 4), out.indices.reshape(-1)
    cb = vq.codebook.detach()
    assert _routing_matches(flat_z, cb, idx, z.grad.reshape(-1, 4), vq.codebook.grad, beta=0.25)
    unused = torch.ones(16, dtype=torch.bool)
    unused[idx] = False
    assert unused.any() and torch.all(vq.codebook.grad[unused] == 0)
    losses = vq.last_losses
    assert isinstance(losses, VQLosses)
    mse = ((flat_z - cb[idx]) ** 2).mean()
    torch.testing.assert_close(losses.commitment, mse)
    torch.testing.assert_close(losses.codebook, mse)
    torch.testing.assert_close(out.aux_loss, 1.25 * mse)


def test_routing_check_rejects_the_legacy_beta_on_codebook_bug():
    """taming-transformers' legacy form ``mean((sg(e) - z)^2) + beta * mean((e - sg(z))^2)`` must fail the check."""
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe="maskgit_noentropy")
    z = torch.randn(10, 4, generator=_gen(), requires_grad=True)
    idx = vq(z.detach()).indices
    codebook = vq.codebook.detach().clone().requires_grad_(True)
    e = codebook[idx]
    legacy = ((e.detach() - z) ** 2).mean() + 0.25 * ((e - z.detach()) ** 2).mean()
    legacy.backward()
    assert not _routing_matches(z.detach(), codebook.detach(), idx, z.grad, codebook.grad, beta=0.25)


def test_straight_through_gradient_is_identity():
    vq = VQ(32, 8)
    z = torch.randn(3, 7, 8, generator=_gen(1), requires_grad=True)
    vq(z).quantized.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))


def test_forward_output_contract():
    vq = VQ(32, 8)
    z = torch.randn(2, 3, 5, 8, generator=_gen(2))
    out = vq(z)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == z.shape and out.quantized.dtype == z.dtype
    assert out.indices.shape == (2, 3, 5) and out.indices.dtype == torch.int64
    assert out.aux_loss.shape == () and out.aux_loss.dtype == torch.float32
    torch.testing.assert_close(out.quantized, vq.indices_to_codes(out.indices))
    torch.testing.assert_close(vq.indices_to_quantized(out.indices), vq.indices_to_codes(out.indices))


def test_maskgit_init_is_jax_fan_in_uniform():
    torch.manual_seed(0)
    vq = VQ(1024, 16)
    bound = math.sqrt(3 / 1024)  # JAX variance_scaling: fan_in = shape[-2] = codebook_size
    assert vq.codebook.abs().max() <= bound
    assert vq.codebook.abs().max() > 0.95 * bound
    assert set(VQ_RECIPES) == {"maskgit", "maskgit_noentropy", "uvim", "uvim_nosplit", "uvim_short"}


# --------------------------------------------------------------------------------------------- nearest neighbour
@pytest.mark.parametrize("recipe", ["maskgit_noentropy", "maskgit"])
def test_nearest_neighbour_matches_brute_force(recipe):
    torch.manual_seed(0)
    vq = VQ(64, 6, recipe=recipe)
    with torch.no_grad():
        vq.codebook.normal_()
    z = torch.randn(500, 6, generator=_gen(3))
    idx = vq(z).indices
    dist = torch.cdist(z.double(), vq.codebook.double()) ** 2
    chosen = dist.gather(1, idx.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(chosen, dist.min(1).values, rtol=0, atol=1e-5)
    assert (idx == dist.argmin(1)).float().mean() > 0.99


def test_chunked_nearest_equals_unchunked():
    vq = VQ(40, 5)
    x = torch.randn(333, 5, generator=_gen(4))
    cb = vq.get_codebook()
    full = vq.nearest(x, cb)
    assert torch.equal(vq.nearest(x, cb, chunk_elements=40 * 7), full)
    assert torch.equal(vq.nearest(x, cb, chunk_elements=1), full)
    assert torch.equal(full, squared_distances(x, cb).argmin(1))


# ---------------------------------------------------------------------------------------------------------- EMA
def _ema_vq(**kw) -> VQ:
    kw.setdefault("split_dead_codes", False)
    return VQ(4, 2, recipe="uvim", l2_normalize=False, standardize=False, ema_decay=0.5, **kw)


def test_ema_update_follows_discounted_counts_and_sums():
    vq = _ema_vq()
    with torch.no_grad():
        vq.ema_sums.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    old_sums, old_counts = vq.ema_sums.clone(), vq.ema_counts.clone()
    z = torch.tensor([[2.0, 0.2], [1.5, -0.2], [0.1, 3.0]])  # -> codes 0, 0, 1
    out = vq.train()(z)
    assert out.indices.tolist() == [0, 0, 1]
    torch.testing.assert_close(vq.ema_counts, torch.tensor([0.5 + 2, 0.5 + 1, 0.5, 0.5]))
    expected_sums = old_sums * 0.5
    expected_sums[0] += z[0] + z[1]
    expected_sums[1] += z[2]
    torch.testing.assert_close(vq.ema_sums, expected_sums)
    cb = vq.get_codebook()
    torch.testing.assert_close(cb[0], (0.5 * old_sums[0] + z[0] + z[1]) / 2.5)  # toward the mean (1.75, 0)
    assert (cb[0] - z[:2].mean(0)).norm() < (old_sums[0] - z[:2].mean(0)).norm()
    torch.testing.assert_close(cb[2:], old_sums[2:] / old_counts[2:, None])  # unused codes keep their value


def test_no_ema_update_in_eval_mode_and_buffers_persist():
    vq = _ema_vq().eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(torch.randn(8, 2, generator=_gen(5)))
    assert set(before) == {"ema_counts", "ema_sums"}
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items())
    assert not list(vq.parameters())


# ---------------------------------------------------------------------------------------------------- splitting
def test_dead_code_is_replaced_by_perturbed_copy_of_most_used():
    torch.manual_seed(0)
    vq = VQ(4, 3, recipe="uvim", l2_normalize=False, standardize=False, ema_decay=0.5, dead_code_threshold=0.1)
    codes = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [-5.0, -5.0, -5.0]])
    with torch.no_grad():
        vq.ema_sums.copy_(codes)
        vq.ema_counts.copy_(torch.tensor([1.0, 1.0, 1.0, 0.15]))  # code 3 is never used: 0.15 * 0.5 < 0.1
    z = torch.cat([codes[0].repeat(3, 1), codes[1].repeat(2, 1), codes[2].repeat(2, 1)]) + 0.01
    vq.train()(z)
    assert vq.last_num_splits == 1
    # before splitting: counts (3.5, 2.5, 2.5, 0.075); code 0 (most used) splits into slot 3
    torch.testing.assert_close(vq.ema_counts, torch.tensor([1.75, 2.5, 2.5, 1.75]))
    sum0 = 0.5 * codes[0] + 3 * (codes[0] + 0.01)
    torch.testing.assert_close(vq.ema_sums[0], sum0 / 2)
    ratio = vq.ema_sums[3] / (sum0 / 2)
    assert torch.all((ratio - 1).abs() <= 1e-3 + 1e-6) and not torch.equal(vq.ema_sums[3], vq.ema_sums[0])
    assert vq.ema_sums.shape == (4, 3) and vq.ema_counts.shape == (4,)


def test_no_split_recipe_keeps_dead_code():
    vq = VQ(4, 3, recipe="uvim_nosplit", l2_normalize=False, standardize=False, ema_decay=0.5)
    codes = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [-5.0, -5.0, -5.0]])
    with torch.no_grad():
        vq.ema_sums.copy_(codes)
        vq.ema_counts.copy_(torch.tensor([1.0, 1.0, 1.0, 0.15]))
    vq.train()(codes[:3].repeat(2, 1))
    assert vq.last_num_splits == 0
    torch.testing.assert_close(vq.ema_counts, torch.tensor([2.5, 2.5, 2.5, 0.075]))
    torch.testing.assert_close(vq.ema_sums[3], codes[3] * 0.5)


# ------------------------------------------------------------------------------------------------- entropy loss
def test_entropy_loss_hand_formula():
    d = torch.tensor([[0.0, 1.0], [2.0, 0.5]])
    p = torch.softmax(-d / 0.5, -1)
    sample = -(p * p.log()).sum(-1).mean()
    avg = p.mean(0)
    expected = sample + (avg * torch.log(avg + 1e-5)).sum()
    torch.testing.assert_close(entropy_loss(d, 0.5), expected)


def test_entropy_loss_prefers_confident_spread_assignments():
    cb = torch.eye(4) * 3
    spread = cb + 0.01 * torch.randn(4, 4, generator=_gen(6))
    collapsed = cb[:1].repeat(4, 1) + 0.01 * torch.randn(4, 4, generator=_gen(7))
    loss_spread = entropy_loss(squared_distances(spread, cb), 0.01)
    loss_collapsed = entropy_loss(squared_distances(collapsed, cb), 0.01)
    assert loss_spread < loss_collapsed
    assert loss_spread == pytest.approx(-math.log(4), abs=1e-3)  # confident and uniform: 0 - log K


def test_entropy_term_in_forward():
    vq = VQ(8, 3, recipe="maskgit")
    z = torch.randn(20, 3, generator=_gen(8), requires_grad=True)
    out = vq(z)
    expected = entropy_loss(squared_distances(z.detach(), vq.codebook.detach()), 0.01)
    torch.testing.assert_close(vq.last_losses.entropy, expected)
    mse = ((z.detach() - vq.codebook.detach()[out.indices]) ** 2).mean()
    torch.testing.assert_close(out.aux_loss, 1.25 * mse + 0.1 * expected)
    out.aux_loss.backward()
    assert z.grad is not None and vq.codebook.grad is not None


def test_without_gradients_the_entropy_term_is_computed_in_blocks(monkeypatch):
    """Tokenizing with an entropy-recipe VQ (no autograd) never builds the N x K matrix: same indices and loss."""
    x = torch.randn(37, 3, generator=_gen(9))
    cb = torch.randn(50, 3, generator=_gen(10))
    full = squared_distances(x, cb)
    for chunk in (50, 50 * 4, 10**9):  # one row per block, several rows, all at once
        indices, entropy = nearest_and_entropy(x, cb, 0.3, chunk_elements=chunk)
        assert torch.equal(indices, full.argmin(1))
        torch.testing.assert_close(entropy, entropy_loss(full, 0.3), rtol=1e-5, atol=1e-6)
    vq = VQ(50, 3, recipe="maskgit").eval()
    with torch.no_grad():
        vq.codebook.copy_(cb)
        out = vq(x)
    assert torch.equal(out.indices, full.argmin(1))
    torch.testing.assert_close(vq.last_losses.entropy, entropy_loss(full, 0.01), rtol=1e-5, atol=1e-6)
    calls = []
    original = vq_module.squared_distances
    monkeypatch.setattr(vq_module, "squared_distances", lambda a, b: calls.append(a.shape[0]) or original(a, b))
    with torch.no_grad():
        vq(torch.randn(vq_module.DISTANCE_CHUNK_ELEMENTS // 50 + 5, 3, generator=_gen(11)))
    assert len(calls) == 2 and max(calls) == vq_module.DISTANCE_CHUNK_ELEMENTS // 50  # blocks, not one matrix


# --------------------------------------------------------------------------------------------- layouts, dtypes
def test_channel_first_equals_channel_last():
    torch.manual_seed(0)
    last = VQ(16, 3)
    first = VQ(16, 3, channel_axis=1)
    first.load_state_dict(last.state_dict())
    z = torch.randn(2, 3, 4, 5, generator=_gen(9))
    a, b = first(z), last(z.permute(0, 2, 3, 1))
    assert a.indices.shape == (2, 4, 5)
    assert torch.equal(a.indices, b.indices)
    torch.testing.assert_close(a.quantized, b.quantized.permute(0, 3, 1, 2))
    torch.testing.assert_close(a.aux_loss, b.aux_loss)
    assert first.indices_to_codes(a.indices).shape == (2, 3, 4, 5)


def test_bf16_input_and_autocast():
    vq = VQ(32, 4)
    z16 = torch.randn(6, 5, 4, generator=_gen(10)).bfloat16()
    out = vq(z16)
    assert out.quantized.dtype == torch.bfloat16 and out.aux_loss.dtype == torch.float32
    assert torch.equal(out.indices, vq(z16.float()).indices)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = vq(z16)
        auto32 = vq(z16.float())
    assert torch.equal(auto.indices, out.indices) and auto.quantized.dtype == torch.bfloat16
    assert auto32.quantized.dtype == torch.float32 and torch.equal(auto32.indices, out.indices)


# ------------------------------------------------------------------------------------------------------- errors
def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown VQ recipe 'vqgan'.*maskgit.*uvim"):
        VQ(8, 4, recipe="vqgan")
    with pytest.raises(ValueError, match="codebook_size must be a positive integer"):
        VQ(0, 4)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        VQ(8, 0)
    vq = VQ(8, 4)
    with pytest.raises(ValueError, match="has 3 channels.*expected dim=4"):
        vq(torch.randn(2, 3))
    with pytest.raises(ValueError, match="1 non-finite value"):
        vq(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"indices out of range.*\[0, 7\]"):
        vq.indices_to_codes(torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="indices out of range"):
        vq.indices_to_codes(torch.tensor([-1]))
    with pytest.raises(ValueError, match="codebook_weight must be 0 with an EMA codebook"):
        VQ(8, 4, recipe="uvim", codebook_weight=1.0)
    VQ(8, 4, check_finite=False)(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))  # opt-out: no raise


# --------------------------------------------------------------------------------------------------------- uvim
def test_uvim_standardises_inputs():
    torch.manual_seed(0)
    vq = VQ(32, 8, recipe="uvim").eval()
    z = torch.randn(4, 10, 8, generator=_gen(11))
    out = vq(z)
    assert torch.equal(vq(3.0 * z + 2.0).indices, out.indices)
    cb = vq.get_codebook()
    torch.testing.assert_close(cb.norm(dim=-1), torch.ones(32))
    torch.testing.assert_close(out.quantized, cb[out.indices])
    assert out.aux_loss == 0 and vq.recipe.commitment_weight == 0.0


def test_uvim_training_step_updates_buffers_only():
    torch.manual_seed(0)
    vq = VQ(16, 4, recipe="uvim").train()
    before = vq.ema_counts.clone()
    z = torch.randn(64, 4, generator=_gen(12), requires_grad=True)
    out = vq(z)
    assert not torch.equal(vq.ema_counts, before)
    assert float(vq.ema_counts.sum()) == pytest.approx(0.995 * 16 + 64, rel=1e-5)
    out.quantized.sum().backward()  # gradient passes through the standardisation
    assert torch.isfinite(z.grad).all()


def test_ema_update_all_reduces_under_distributed(tmp_path):
    """One-process gloo group: the all-reduce / broadcast path runs and (world size 1) changes nothing."""
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    z = torch.randn(32, 4, generator=_gen(13))
    torch.manual_seed(0)
    plain = VQ(8, 4, recipe="uvim", dead_code_threshold=2.0).train()
    torch.manual_seed(0)
    reduced = VQ(8, 4, recipe="uvim", dead_code_threshold=2.0).train()
    plain(z)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        reduced(z)
    finally:
        dist.destroy_process_group()
    assert reduced.last_num_splits == plain.last_num_splits > 0
    torch.testing.assert_close(reduced.ema_counts, plain.ema_counts)


def test_entropy_loss_equals_the_textbook_formula_without_subnormal_probabilities():
    """MaskGIT's entropy loss at its temperature 0.01: the same value and gradient as softmax / log_softmax of the
    raw affinities, while its probabilities stay normal floats (the raw ones are mostly subnormal, which made the
    loss 4x slower on a CPU). The composition (:func:`entropy_loss_reference`) matches the textbook formula's
    float32 gradient; the fused :func:`entropy_loss` (gradient by hand) matches the exact gradient in float64 and is
    as accurate in float32 as the textbook formula itself, both measured against float64."""
    from fsq.quantizers.vq import _entropy_of_mean, assignment_log_probs, entropy_loss_reference

    g = torch.Generator().manual_seed(0)
    x, codebook = torch.randn(512, 16, generator=g), 0.05 * torch.randn(256, 16, generator=g)
    distances = (x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)).requires_grad_(True)

    def textbook(d: torch.Tensor) -> torch.Tensor:
        affinity = -d / 0.01
        probs = affinity.softmax(-1)
        return -(probs * affinity.log_softmax(-1)).sum(-1).mean() - _entropy_of_mean(probs.mean(0))

    reference = textbook(distances)
    (expected,) = torch.autograd.grad(reference, distances)
    scale = float(expected.abs().max())  # float32 rounding of another order of operations, at the gradient's scale
    for loss in (entropy_loss_reference, entropy_loss):
        value = loss(distances, 0.01)
        torch.testing.assert_close(value, reference, rtol=1e-6, atol=1e-6)
    (grad,) = torch.autograd.grad(entropy_loss_reference(distances, 0.01), distances)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5 * scale)
    exact64 = distances.detach().double().requires_grad_(True)
    (truth,) = torch.autograd.grad(textbook(exact64), exact64)
    (fused64,) = torch.autograd.grad(entropy_loss(exact64, 0.01), exact64)
    torch.testing.assert_close(fused64, truth, rtol=1e-9, atol=1e-12 * scale)  # the hand-written gradient is exact
    (fused,) = torch.autograd.grad(entropy_loss(distances, 0.01), distances)
    fused_error = float((fused.double() - truth).abs().max())
    textbook_error = float((expected.double() - truth).abs().max())  # float32's own rounding: about 5e-5 of scale
    assert fused_error <= 1.25 * textbook_error, (fused_error, textbook_error)  # measured: 1.02x
    tiny = torch.finfo(torch.float32).tiny  # the smallest normal float

    def subnormal(p: torch.Tensor) -> int:
        return int(((p > 0) & (p < tiny)).sum())

    assert subnormal((-distances.detach() / 0.01).softmax(-1)) > 1000  # the raw formula's probabilities: many subnormal
    assert subnormal(assignment_log_probs(distances, 0.01).detach().exp()) == 0


@pytest.mark.parametrize("temperature", [0.05, 0.3, 2.0])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 40)])
def test_fused_entropy_loss_has_the_compositions_value_and_gradient(shape, temperature):
    """The hand-written gradient of :func:`entropy_loss` against autograd through :func:`entropy_loss_reference`, on
    gradients reaching both the inputs and the codebook through the distances: exact in float64 (and ``gradcheck``),
    and in float32 as close to the float64 truth as the composition is (one row, one code: a constant loss with a
    zero gradient)."""
    from fsq.quantizers.vq import entropy_loss_reference

    g = torch.Generator().manual_seed(shape[0] * 31 + shape[1])
    n, k = shape
    x, codebook = torch.randn(n, 4, generator=g), torch.randn(k, 4, generator=g)

    def gradients(loss, dtype):
        xs, cs = x.to(dtype).requires_grad_(True), codebook.to(dtype).requires_grad_(True)
        value = loss(squared_distances(xs, cs), temperature)
        (2.5 * value).backward()
        return [value.detach().double(), xs.grad.double(), cs.grad.double()]

    truth = gradients(entropy_loss_reference, torch.float64)
    for fused64, exact in zip(gradients(entropy_loss, torch.float64), truth, strict=True):
        torch.testing.assert_close(fused64, exact, rtol=1e-9, atol=1e-12)
    fused, composed = gradients(entropy_loss, torch.float32), gradients(entropy_loss_reference, torch.float32)
    for ours, theirs, exact in zip(fused, composed, truth, strict=True):
        scale = float(exact.abs().max()) if exact.ndim else abs(float(exact))
        ours_error, their_error = float((ours - exact).abs().max()), float((theirs - exact).abs().max())
        assert ours_error <= 1.5 * their_error + 1e-6 * scale + 1e-9, (ours_error, their_error, scale)
    distances = squared_distances(x.double(), codebook.double()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda d: entropy_loss(d, temperature), (distances,))
