"""MaskGIT evaluation's arguments: the output suffix and the reference images (which split, how many)."""

from __future__ import annotations

import pytest

from fsq.config import TokenizerExperiment, load_config
from fsq.data import SourceUnavailable, load_images
from fsq.evaluation.maskgit import evaluate_maskgit, reference_images


@pytest.mark.parametrize("suffix", ["val", "_val/x", "/tmp"])
def test_a_suffix_that_is_no_file_name_tail_is_refused(tmp_path, suffix):
    with pytest.raises(ValueError, match="suffix must start with '_'"):
        evaluate_maskgit(tmp_path, suffix=suffix)


def test_reference_images_come_from_the_named_split_and_refuse_too_few(tmp_path):
    try:
        load_images("mnist", "val", limit=1)
    except SourceUnavailable as error:
        pytest.skip(str(error))
    cfg = load_config(TokenizerExperiment, [], ["data.image_size=16"])
    picked = reference_images(cfg, "val", 50, seed=3)
    val = load_images("mnist", "val", image_size=16).images
    assert picked.shape == (50, 1, 16, 16) and picked.dtype == val.dtype
    assert all(any(bool((p == v).all()) for v in val[:5000]) for p in picked[:5])  # drawn from val itself
    assert (reference_images(cfg, "val", 50, seed=3) == picked).all()  # same seed, same images
    assert not (reference_images(cfg, "val", 50, seed=4) == picked).all()
    with pytest.raises(ValueError, match="eval.reference_split='val' has 5000 images, fewer than the 6000"):
        reference_images(cfg, "val", 6000, seed=0)
