"""MaskGIT transformer: layout of special ids, shapes, tied head, the masked-only loss."""

from __future__ import annotations

import pytest
import torch

from fsq.models.maskgit import MaskGIT, MaskGITSpec, masked_token_loss


def tiny(norm_first: bool = True, num_classes: int = 10) -> MaskGIT:
    torch.manual_seed(0)
    spec = MaskGITSpec(
        codebook_size=20,
        num_classes=num_classes,
        grid_height=3,
        grid_width=4,
        width=32,
        depth=2,
        heads=4,
        mlp_dim=64,
        dropout=0.0,
        norm_first=norm_first,
    )
    return MaskGIT(spec).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_shapes_and_special_ids(norm_first):
    model = tiny(norm_first)
    assert model.mask_id == 30  # K + C, the last id
    assert model.token_embedding.num_embeddings == 31
    tokens = torch.randint(0, 20, (5, 3, 4))
    tokens[:, 0, 0] = model.mask_id
    logits = model(tokens, torch.tensor([0, 1, 2, -1, 9]))
    assert logits.shape == (5, 12, 20)  # logits over the codebook only
    assert torch.isfinite(logits).all()


def test_head_is_tied_to_the_token_embedding():
    model = tiny()
    tokens = torch.randint(0, 20, (2, 12))
    before = model(tokens, torch.tensor([1, 2]))
    with torch.no_grad():
        model.token_embedding.weight[3] += torch.randn(32)  # a codebook row is the output row of code 3
    after = model(tokens, torch.tensor([1, 2]))
    changed = (after - before).abs().amax(dim=(0, 1))
    assert changed[3] > 0.1
    assert changed[[0, 1, 2, 4]].max() < 1e-5  # inputs hold no code 3, so only its logits move


def test_labels_condition_and_minus_one_is_the_mask_class():
    model = tiny()
    tokens = torch.full((2, 12), model.mask_id)
    a = model(tokens, torch.tensor([1, 1]))
    b = model(tokens, torch.tensor([2, 2]))
    assert not torch.allclose(a, b)
    assert torch.allclose(model(tokens, torch.tensor([-1, -1])), model(tokens, None))


def test_invalid_inputs():
    model = tiny()
    with pytest.raises(ValueError, match="tokens"):
        model(torch.full((1, 12), 25), torch.tensor([0]))  # a class id in an image slot
    with pytest.raises(ValueError, match="12 tokens"):
        model(torch.zeros(1, 11, dtype=torch.long), torch.tensor([0]))
    with pytest.raises(ValueError, match="labels"):
        model(torch.zeros(1, 12, dtype=torch.long), torch.tensor([10]))
    with pytest.raises(ValueError, match="positions must be a bool tensor of shape \\(1, 12\\)"):
        model(torch.zeros(1, 12, dtype=torch.long), torch.tensor([0]), positions=torch.ones(1, 12))
    with pytest.raises(ValueError, match="3 rows of logits for 2 masked positions"):
        masked_token_loss(torch.zeros(3, 20), torch.zeros(1, 12, dtype=torch.long), torch.arange(12)[None] < 2)


def test_loss_ignores_unmasked_positions():
    torch.manual_seed(1)
    logits = torch.randn(4, 12, 20)
    targets = torch.randint(0, 20, (4, 12))
    mask = torch.rand(4, 12) < 0.5
    mask[:, 0] = True
    loss = masked_token_loss(logits, targets, mask)
    scrambled = logits.clone()
    scrambled[~mask] = torch.randn(int((~mask).sum()), 20) * 100
    other_targets = torch.where(mask, targets, (targets + 7) % 20)
    assert torch.equal(masked_token_loss(scrambled, other_targets, mask), loss)


def test_loss_value_without_smoothing():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 100.0  # position 0 predicted perfectly, positions 1-2 uniform
    targets = torch.tensor([[2, 1, 0]])
    mask = torch.tensor([[True, True, False]])
    loss = masked_token_loss(logits, targets, mask, label_smoothing=0.0)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(4.0)).item() / 2, rel=1e-5)


def test_gradients_reach_every_parameter():
    model = tiny().train()
    tokens = torch.randint(0, 20, (3, 12))
    mask = torch.rand(3, 12) < 0.6
    mask[:, :2] = True
    inputs = torch.where(mask, model.mask_id, tokens)
    loss = masked_token_loss(model(inputs, torch.tensor([0, -1, 3])), tokens, mask)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_masked_positions_alone_give_the_full_loss_and_gradients():
    """Training computes logits at the masked positions only: the same loss and gradients as all logits, masked."""
    torch.manual_seed(2)
    model = tiny().eval()  # no dropout: both passes see the same network
    tokens = torch.randint(0, 20, (4, 12))
    mask = torch.rand(4, 12) < 0.5
    mask[0] = False  # a row with nothing masked is left out of the mean by both
    mask[1, :3] = True
    inputs = torch.where(mask, model.mask_id, tokens)
    labels = torch.tensor([0, -1, 3, 5])
    full = masked_token_loss(model(inputs, labels), tokens, mask)
    full.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    picked = model(inputs, labels, positions=mask)
    assert picked.shape == (int(mask.sum()), 20)
    assert torch.allclose(picked, model(inputs, labels)[mask], atol=1e-6)
    loss = masked_token_loss(picked, tokens, mask)
    assert loss.item() == pytest.approx(full.item(), rel=1e-6)
    loss.backward()
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, expected[name], rtol=1e-4, atol=1e-7), name
