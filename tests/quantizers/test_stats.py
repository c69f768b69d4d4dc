"""Codebook statistics against hand counts; dense and sparse agree; FSQ level histograms; all-reduce."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist

from fsq import FSQ
from fsq.quantizers.stats import CodebookUsage


def test_hand_counted_statistics():
    usage = CodebookUsage(8)
    usage.update(torch.tensor([0, 0, 1, 3]))
    usage.update(torch.tensor([[3, 3], [0, 0]]))
    # counts: code 0 x4, code 1 x1, code 3 x3 -> 8 tokens, 3 of 8 codes used
    ids, counts = usage.counts()
    assert ids.tolist() == [0, 1, 3] and counts.tolist() == [4, 1, 3]
    s = usage.summary()
    assert s.tokens == 8 and s.codes_used == 3 and s.usage_fraction == 3 / 8
    p = [4 / 8, 1 / 8, 3 / 8]
    entropy = -sum(x * math.log2(x) for x in p)
    assert s.entropy_bits == pytest.approx(entropy, abs=1e-12)
    assert s.perplexity == pytest.approx(2**entropy, abs=1e-12)
    assert s.max_code_fraction == 0.5


def test_uniform_usage_gives_full_perplexity():
    usage = CodebookUsage(16)
    usage.update(torch.arange(16).repeat(5))
    s = usage.summary()
    assert s.usage_fraction == 1.0 and s.entropy_bits == pytest.approx(4.0) and s.perplexity == pytest.approx(16.0)


def test_empty_and_reset():
    usage = CodebookUsage(4)
    assert usage.summary().tokens == 0
    usage.update(torch.tensor([1]))
    usage.reset()
    assert usage.summary().codes_used == 0


def test_sparse_counts_equal_dense():
    indices = torch.randint(0, 5000, (3, 1000))
    dense, sparse = CodebookUsage(5000), CodebookUsage(5000, dense_limit=10)
    for row in indices:
        dense.update(row)
        sparse.update(row)
    assert not sparse.dense
    assert all(torch.equal(a, b) for a, b in zip(dense.counts(), sparse.counts()))
    assert dense.summary() == sparse.summary()


def test_huge_codebook_statistics_without_dense_counts():
    q = FSQ([8] * 20)  # 2**60 codes
    usage = CodebookUsage(q.codebook_size, levels=q.levels)
    usage.update(q(torch.randn(1000, 20)).indices)
    assert not usage.dense and usage.summary().tokens == 1000


def test_fsq_level_histograms_match_digits():
    q = FSQ([8, 5, 3])
    indices = q(torch.randn(2000, 3) * 2).indices
    usage = CodebookUsage(q.codebook_size, levels=q.levels)
    usage.update(indices)
    digits = q.indices_to_digits(indices)
    for channel, hist in enumerate(usage.level_histograms()):
        assert torch.equal(hist, torch.bincount(digits[:, channel], minlength=q.levels[channel]))


def test_bad_input_raises():
    usage = CodebookUsage(10)
    with pytest.raises(ValueError, match="outside the codebook"):
        usage.update(torch.tensor([10]))
    with pytest.raises(ValueError, match="outside the codebook"):
        usage.update(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integers"):
        usage.update(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="does not match"):
        CodebookUsage(10, levels=[3, 3])
    with pytest.raises(ValueError, match="level histograms need"):
        usage.level_histograms()


@pytest.mark.parametrize("dense_limit", [10**6, 10])
def test_all_reduce_single_process_group(tmp_path, dense_limit):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        usage = CodebookUsage(100, levels=[10, 10], dense_limit=dense_limit)
        usage.update(torch.tensor([1, 1, 57]))
        usage.all_reduce()
        ids, counts = usage.counts()
        assert ids.tolist() == [1, 57] and counts.tolist() == [2, 1]
        assert usage.level_histograms()[1].tolist() == [2, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    finally:
        dist.destroy_process_group()
