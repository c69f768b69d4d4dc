"""UViM models: the restricted oracle (shapes, context, code dropout, index round trip, checks) and the language
model (teacher forcing, causality, greedy decoding), plus gradients to every parameter of both."""

from __future__ import annotations

import pytest
import torch

from fsq.models.quantizer import QuantizerSpec
from fsq.models.uvim import LanguageModelSpec, OracleSpec, UViMLanguageModel, UViMOracle, code_keep_mask

B, SIZE, PATCH, GRID = 3, 8, 2, 2  # 8 px images, 2 px patches (4 x 4 patch grid), 2 x 2 codes
TARGET, CONTEXT, OUTPUT = 4, 3, 5


def oracle_spec(quantizer: str = "fsq", **changes) -> OracleSpec:
    base = dict(
        image_size=SIZE,
        target_channels=TARGET,
        context_channels=CONTEXT,
        output_channels=OUTPUT,
        patch=PATCH,
        width=16,
        encoder_depth=1,
        decoder_depth=1,
        heads=2,
        mlp_dim=32,
        code_grid=GRID,
        quantizer=QuantizerSpec(kind=quantizer, levels=[5, 3, 3], codebook_size=16, dim=8, recipe="uvim"),
    )
    return OracleSpec(**{**base, **changes})


def make_oracle(quantizer: str = "fsq", seed: int = 0, spread: bool = True, **changes) -> UViMOracle:
    torch.manual_seed(seed)
    oracle = UViMOracle(oracle_spec(quantizer, **changes))
    if spread:  # larger codes: exercise many levels of every channel
        with torch.no_grad():
            oracle.to_code.weight.mul_(20)
    return oracle


def inputs(seed: int = 1, batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, TARGET, SIZE, SIZE, generator=g), torch.rand(batch, CONTEXT, SIZE, SIZE, generator=g)


# ------------------------------------------------------------------------------------------------------ oracle
@pytest.mark.parametrize("quantizer, size", [("fsq", 45), ("vq", 16)])
def test_oracle_shapes(quantizer, size):
    oracle = make_oracle(quantizer).eval()
    target, context = inputs()
    out, q = oracle(target, context)
    assert out.shape == (B, OUTPUT, SIZE, SIZE) and out.dtype == torch.float32
    assert q.indices.shape == (B, GRID, GRID) and q.indices.dtype == torch.int64
    assert oracle.codebook_size == size
    assert 0 <= int(q.indices.min()) and int(q.indices.max()) < size
    code_width = 3 if quantizer == "fsq" else 8
    assert q.quantized.shape == (B, GRID * GRID, code_width)
    assert q.aux_loss.shape == () and torch.isfinite(q.aux_loss)


@pytest.mark.parametrize("code_grid", [1, 3, 4])
def test_oracle_code_grid_resizing(code_grid):
    """The token grid (4 x 4 here) is resized to any code grid in [1, 4] and back to full resolution."""
    oracle = make_oracle(code_grid=code_grid).eval()
    out, q = oracle(*inputs())
    assert out.shape == (B, OUTPUT, SIZE, SIZE) and q.indices.shape == (B, code_grid, code_grid)


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_without_context_the_output_ignores_the_context(quantizer):
    oracle = make_oracle(quantizer, use_context=False).eval()
    assert oracle.encoder_context is None and oracle.decoder_context is None
    target, context = inputs()
    other = torch.rand_like(context)
    out_none, q_none = oracle(target, None)
    out_a, q_a = oracle(target, context)
    out_b, q_b = oracle(target, other)
    assert torch.equal(out_none, out_a) and torch.equal(out_none, out_b)
    assert torch.equal(q_none.indices, q_a.indices) and torch.equal(q_none.indices, q_b.indices)
    torch.testing.assert_close(oracle.decode_indices(q_none.indices, None), out_none, rtol=0, atol=1e-5)


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_with_context_the_output_depends_on_it(quantizer):
    oracle = make_oracle(quantizer).eval()
    target, context = inputs()
    out_a, q = oracle(target, context)
    out_b, _ = oracle(target, torch.rand_like(context))
    assert not torch.allclose(out_a, out_b, atol=1e-4)
    # the decoder sees the context too: the same codes decode differently under another image
    assert not torch.allclose(
        oracle.decode_indices(q.indices, context), oracle.decode_indices(q.indices, context.flip(0))
    )


def test_context_is_required_when_used():
    oracle = make_oracle().eval()
    target, _ = inputs()
    with pytest.raises(ValueError, match=r"context: expected \(B, 3, 8, 8\), got None"):
        oracle(target, None)
    with pytest.raises(ValueError, match="context"):
        oracle.decode_indices(torch.zeros(B, GRID, GRID, dtype=torch.long), None)


def test_code_dropout_only_in_training_and_seeded():
    oracle = make_oracle()
    target, context = inputs(batch=8)
    oracle.eval()
    clean, q = oracle(target, context, torch.Generator().manual_seed(0))
    assert torch.equal(clean, oracle.decode(q.quantized, context))  # eval: no dropout, the generator is unused
    oracle.train()
    a, qa = oracle(target, context, torch.Generator().manual_seed(0))
    b, _ = oracle(target, context, torch.Generator().manual_seed(0))
    c, _ = oracle(target, context, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # deterministic given the generator
    assert not torch.equal(a, c)  # and the generator decides which codes drop
    assert not torch.equal(a, clean)  # training drops codes
    assert torch.equal(qa.indices, q.indices)  # dropout acts after quantization: the codes are unchanged
    expected = oracle.decode(oracle.drop_codes(qa.quantized, torch.Generator().manual_seed(0)), context)
    assert torch.equal(a, expected)
    # code_dropout=False: training mode decodes every code
    no_drop = make_oracle(code_dropout=False).train()
    out, q = no_drop(target, context, torch.Generator().manual_seed(0))
    assert torch.equal(out, no_drop.decode(q.quantized, context))


def test_drop_codes_zeroes_whole_positions():
    oracle = make_oracle()
    codes = torch.ones(64, 16, 3)
    dropped = oracle.drop_codes(codes, torch.Generator().manual_seed(3))
    assert torch.equal(dropped, oracle.drop_codes(codes, torch.Generator().manual_seed(3)))
    per_position = dropped.sum(-1)
    assert set(per_position.unique().tolist()) <= {0.0, 3.0}  # a position keeps all its channels or none
    kept = (per_position > 0).float().mean(1)  # per example keep rate ~ U[0, 1]
    assert kept.min() < 0.25 and kept.max() > 0.75
    assert 0.3 < float(kept.mean()) < 0.7


def test_a_keep_mask_drawn_for_a_global_batch_gives_each_rank_its_rows():
    """The mask drawn for the whole batch, then rows r, r + W, ...: what one process drops for those rows (so that
    N ranks drop codes as one process does); the mask given equals the one drawn from the same generator."""
    oracle = make_oracle().train()
    target, context = inputs(batch=8)
    whole, _ = oracle(target, context, torch.Generator().manual_seed(4))
    keep = code_keep_mask(8, GRID * GRID, torch.Generator().manual_seed(4))
    assert torch.equal(oracle(target, context, keep=keep)[0], whole)
    odd, _ = oracle(target[1::2], context[1::2], keep=keep[1::2])
    torch.testing.assert_close(odd, whole[1::2])  # rank 1 of 2
    with pytest.raises(ValueError, match=r"keep has shape \(8, 3\); the codes need \(8, 4\)"):
        oracle(target, context, keep=keep[:, :3])


def test_eval_forward_equals_decoding_its_indices_fsq():
    oracle = make_oracle().eval()
    target, context = inputs()
    out, q = oracle(target, context)
    assert torch.equal(oracle.decode_indices(q.indices, context), out)
    assert torch.equal(oracle.decode_indices(q.indices.flatten(1), context), out)  # (B, g*g) works too
    # encode is deterministic and its indices are what decode_indices inverts
    assert torch.equal(oracle.encode(target, context).indices, q.indices)
    assert torch.equal(oracle.quantizer.indices_to_quantized(q.indices.flatten(1)), q.quantized)


def test_decode_indices_round_trip_vq():
    oracle = make_oracle("vq").eval()
    target, context = inputs()
    out, q = oracle(target, context)
    torch.testing.assert_close(oracle.decode_indices(q.indices, context), out, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        oracle.quantizer.indices_to_quantized(q.indices.flatten(1)), q.quantized, rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_decode_indices_of_every_code(quantizer):
    """Any valid index grid decodes; out-of-range indices are refused."""
    oracle = make_oracle(quantizer).eval()
    _, context = inputs()
    k = oracle.codebook_size
    indices = torch.tensor([[0, 1], [k - 2, k - 1]]).expand(B, GRID, GRID)
    assert oracle.decode_indices(indices, context).shape == (B, OUTPUT, SIZE, SIZE)
    with pytest.raises(ValueError, match="out of range"):
        oracle.decode_indices(torch.full((B, GRID, GRID), k), context)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_size": 9}, "image_size 9 is not a multiple of the patch size 2"),
        ({"code_grid": 0}, r"code_grid must be in \[1, 4\]"),
        ({"code_grid": 5}, r"code_grid must be in \[1, 4\] \(the patch grid\), got 5"),
        ({"quantizer": "rvq"}, "unknown quantizer 'rvq'"),
        ({"width": 15}, "not divisible by heads"),
    ],
)
def test_invalid_oracle_specs(changes, message):
    with pytest.raises(ValueError, match=message):
        UViMOracle(oracle_spec(**changes))


def test_invalid_oracle_inputs():
    oracle = make_oracle().eval()
    target, context = inputs()
    with pytest.raises(ValueError, match=r"target: expected \(B, 4, 8, 8\), got \(3, 3, 8, 8\)"):
        oracle(target[:, :3], context)
    with pytest.raises(ValueError, match=r"target: expected \(B, 4, 8, 8\), got \(3, 4, 16, 16\)"):
        oracle(torch.randn(B, TARGET, 16, 16), context)
    with pytest.raises(ValueError, match=r"target: expected \(B, 4, 8, 8\), got \(4, 8, 8\)"):
        oracle(target[0], context)
    with pytest.raises(ValueError, match=r"context: expected \(B, 3, 8, 8\), got \(3, 1, 8, 8\)"):
        oracle(target, context[:, :1])
    with pytest.raises(ValueError, match=r"context: expected \(B, 3, 8, 8\), got \(3, 3, 4, 4\)"):
        oracle.decode_indices(torch.zeros(B, GRID, GRID, dtype=torch.long), context[..., :4, :4])


def test_decode_refuses_a_wrong_code_grid():
    """A code grid of another size (or codes of another width) is an error, not silently resized."""
    oracle = make_oracle().eval()
    _, context = inputs()
    with pytest.raises(ValueError, match=r"codes: expected \(B, 4, 3\), got \(3, 9, 3\)"):
        oracle.decode_indices(torch.zeros(B, 3, 3, dtype=torch.long), context)
    with pytest.raises(ValueError, match=r"codes: expected \(B, 4, 3\), got \(3, 4, 2\)"):
        oracle.decode(torch.zeros(B, GRID * GRID, 2), context)


# ---------------------------------------------------------------------------------------------- language model
K, LENGTH = 11, 6


def lm_spec(**changes) -> LanguageModelSpec:
    base = dict(
        image_size=SIZE,
        context_channels=CONTEXT,
        codebook_size=K,
        sequence_length=LENGTH,
        patch=PATCH,
        width=16,
        encoder_depth=1,
        decoder_depth=2,
        heads=2,
        mlp_dim=32,
        dropout=0.1,
    )
    return LanguageModelSpec(**{**base, **changes})


def make_lm(seed: int = 0, sharp: bool = True, **changes) -> UViMLanguageModel:
    torch.manual_seed(seed)
    lm = UViMLanguageModel(lm_spec(**changes))
    if sharp:  # spread the logits (BERT init makes them all ~0) so that greedy choices have clear margins
        with torch.no_grad():
            lm.head.weight.mul_(50)
            lm.token_embed.weight.mul_(20)
    return lm.eval()


def codes_and_context(seed: int = 2, batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (batch, LENGTH), generator=g), torch.rand(batch, CONTEXT, SIZE, SIZE, generator=g)


def test_lm_teacher_forced_logits_shape():
    lm = make_lm()
    codes, context = codes_and_context()
    logits = lm(context, codes)
    assert logits.shape == (B, LENGTH, K) and logits.dtype == torch.float32
    assert lm.bos_id == K
    # a (B, g, g) grid is read in raster order, like its flattening
    assert torch.equal(lm(context, codes.view(B, 2, 3)), logits)


def test_lm_is_causal():
    """The logits at position i depend only on the codes before i: changing code j changes no logit at <= j."""
    lm = make_lm()
    codes, context = codes_and_context()
    logits = lm(context, codes)
    for j in range(LENGTH):
        changed = codes.clone()
        changed[:, j] = (changed[:, j] + 1 + torch.arange(B)) % K
        other = lm(context, changed)
        torch.testing.assert_close(other[:, : j + 1], logits[:, : j + 1], rtol=0, atol=1e-5)
        if j + 1 < LENGTH:  # and the next position does see it
            assert (other[:, j + 1] - logits[:, j + 1]).abs().max() > 1e-3


def test_lm_depends_on_the_image():
    lm = make_lm()
    codes, context = codes_and_context()
    assert not torch.allclose(lm(context, codes), lm(context.flip(0), codes), atol=1e-4)


def test_generate_is_the_greedy_argmax_chain():
    lm = make_lm()
    _, context = codes_and_context(batch=5)
    generated = lm.generate(context)
    assert generated.shape == (5, LENGTH) and generated.dtype == torch.int64
    assert 0 <= int(generated.min()) and int(generated.max()) < K
    # teacher forcing on its own output reproduces it: every code is the argmax given the codes before it
    assert torch.equal(lm(context, generated).argmax(-1), generated)
    # and the same chain built position by position from teacher-forced logits (causality makes the rest moot)
    chain = torch.zeros_like(generated)
    for i in range(LENGTH):
        chain[:, i] = lm(context, chain)[:, i].argmax(-1)
    assert torch.equal(chain, generated)
    assert len(generated.unique()) > 1  # not a degenerate constant sequence
    assert torch.equal(lm.generate(context), generated)  # deterministic
    assert not lm.training


def test_lm_invalid_inputs():
    lm = make_lm()
    codes, context = codes_and_context()
    with pytest.raises(ValueError, match="expected 6 codes per sample, got 5"):
        lm(context, codes[:, :5])
    with pytest.raises(ValueError, match="expected 6 codes per sample, got 9"):
        lm(context, torch.zeros(B, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="image_size 10 is not a multiple of the patch size 4"):
        UViMLanguageModel(lm_spec(image_size=10, patch=4))


# ----------------------------------------------------------------------------------------------------- gradients
def _assert_all_grads(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
@pytest.mark.parametrize("use_context", [True, False])
def test_gradients_reach_every_oracle_parameter(quantizer, use_context):
    oracle = make_oracle(quantizer, use_context=use_context).train()
    target, context = inputs(batch=4)
    out, q = oracle(target, context, torch.Generator().manual_seed(0))
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    ((out * weights).mean() + q.aux_loss).backward()
    _assert_all_grads(oracle)
    if quantizer == "vq":  # the UViM recipe's codebook is an EMA buffer, updated by the training forward
        assert not any("ema" in n for n, _ in oracle.named_parameters())
        assert int(oracle.quantizer.ema_counts.gt(1).sum()) > 0


def test_gradients_reach_every_language_model_parameter():
    lm = make_lm(sharp=False).train()
    codes, context = codes_and_context(batch=4)
    logits = lm(context, codes)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), codes.flatten()).backward()
    _assert_all_grads(lm)
    # the BOS embedding and every code row used as an input get gradients; rows never fed in do not
    grad = lm.token_embed.weight.grad
    fed = set(codes[:, :-1].flatten().tolist()) | {lm.bos_id}
    assert all(bool(grad[i].abs().sum() > 0) == (i in fed) for i in range(K + 1))


def test_fresh_fsq_oracle_spreads_its_codes():
    """Regression: with BERT's std-0.02 init on the code projection every code rounded to the centre level."""
    oracle = make_oracle("fsq", spread=False, code_grid=4).eval()
    target, context = inputs(batch=16)
    assert torch.unique(oracle.encode(target, context).indices).numel() > 20


# ------------------------------------------------------------------------------------------------- image input
def test_both_models_read_the_image_in_minus_one_one():
    """The image comes in [0, 1] and reaches both patch embeddings as 2 x - 1; a spec without the flag (saved
    before it existed) reads it as given, so an old checkpoint predicts as it was trained."""
    target, context = inputs()
    oracle = make_oracle().eval()
    legacy = UViMOracle(OracleSpec.from_dict({k: v for k, v in oracle.spec.to_dict().items() if k != "center_image"}))
    legacy.load_state_dict(oracle.state_dict())
    assert oracle.spec.center_image and not legacy.eval().spec.center_image
    torch.testing.assert_close(oracle(target, context)[0], legacy(target, context * 2 - 1)[0])
    lm = make_lm()
    saved = {k: v for k, v in lm.spec.to_dict().items() if k != "center_image"}
    old_lm = UViMLanguageModel(LanguageModelSpec.from_dict(saved)).eval()
    old_lm.load_state_dict(lm.state_dict())
    assert lm.spec.center_image and not old_lm.spec.center_image
    assert LanguageModelSpec.from_dict(lm.spec.to_dict()) == lm.spec
    torch.testing.assert_close(lm.encode_image(context), old_lm.encode_image(context * 2 - 1))
    assert not torch.allclose(lm.encode_image(context), old_lm.encode_image(context), atol=1e-3)


def test_lm_tells_look_alike_images_apart_after_a_short_overfit():
    """Regression: the synthetic scenes share one grey (about 0.6) and differ by about 0.1 per pixel. Read in
    [0, 1], that grey was a near-constant offset of every image token and the language model learned the codes'
    marginal instead of the image: at the CPU budget it decoded one code sequence for every image. Four such
    images with codes of their own: after 100 steps the first code (which only the image can tell) must be learned
    (its cross-entropy was still about ln 4 = 1.39, chance among the four, with the image in [0, 1]) and greedy
    decoding must give every image its own codes."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n, codebook, length = 4, 32, 4
    images = 0.6 + 0.05 * torch.randn(n, CONTEXT, SIZE, SIZE, generator=g)
    codes = torch.randperm(codebook, generator=g)[: n * length].view(n, length)
    spec = lm_spec(codebook_size=codebook, sequence_length=length, patch=4, decoder_depth=1, dropout=0.0)
    lm = UViMLanguageModel(spec)
    optimizer = torch.optim.Adam(lm.parameters(), lr=3e-3)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(lm(images, codes).flatten(0, 1), codes.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    lm.eval()
    with torch.no_grad():
        first = torch.nn.functional.cross_entropy(lm(images, codes)[:, 0], codes[:, 0])
    assert float(first) < 0.7, f"the first code's cross-entropy is {float(first):.2f}: the image is not used"
    assert torch.equal(lm.generate(images), codes)
