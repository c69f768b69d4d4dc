"""The video study's verdicts and claims on hand-made numbers (torch-free): each verdict follows from the gap of the
seed means against the seed spread (sum of the sample stds); a gap inside the spread is not resolved; one seed
is marked as such."""

from __future__ import annotations

import pytest

from fsq.studies.video import plan
from fsq.studies.video_claims import claims, markdown_table, verdict


def test_one_sided_verdicts_from_gap_and_spread():
    # means 22 vs 20: gap 2; stds 1 and 1 (values +-1): spread 2
    a, b = [21.0, 22.0, 23.0], [19.0, 20.0, 21.0]
    assert verdict(a, b, higher=True, margin=0.0, two_sided=False)[0] == "not resolved"  # gap 2 = spread 2
    assert verdict(a, b, higher=True, margin=-0.5, two_sided=False)[0] == "holds"  # 2.5 > 2
    assert verdict(b, a, higher=True, margin=0.5, two_sided=False)[0] == "fails"  # -2.5 < -2
    word, evidence = verdict([21.9, 22.0, 22.1], b, higher=True, margin=0.0, two_sided=False)
    assert word == "holds" and "gap +2 " in evidence and "seed spread 1.1" in evidence  # 0.1 + 1.0
    # lower is better (temporal error): A lower by 0.2 with spread 0.02 -> holds
    assert verdict([0.10, 0.11, 0.12], [0.30, 0.31, 0.32], higher=False, margin=0.0, two_sided=False)[0] == "holds"


def test_two_sided_and_single_seed_verdicts():
    assert verdict([1.0, 1.2], [2.0, 2.2], higher=True, margin=0.0, two_sided=True)[0] == "B better"  # 1 > 0.28
    assert verdict([1.0, 1.6], [1.2, 1.8], higher=True, margin=0.0, two_sided=True)[0] == "not resolved"
    word, evidence = verdict([22.0], [21.0], higher=True, margin=0.0, two_sided=True)
    assert word == "A better (single seed: not a test)" and "seed spread not measured" in evidence
    assert verdict([20.0], [21.0], higher=True, margin=0.0, two_sided=False)[0] == "fails (single seed: not a test)"


def _row(method, seed, psnr, temporal, codes=None):
    return {
        "name": f"{method}_{seed}",
        "method": method,
        "seed": seed,
        "bits_per_clip": 478.4,
        "psnr": psnr,
        "ssim": 0.8,
        "temporal_l1": temporal,
        "temporal_psnr": 30.0,
        "first_frame_psnr": psnr + 1,
        "later_frames_psnr": psnr,
        "psnr_per_frame": [psnr + 1, psnr],
        "ssim_per_frame": [0.8, 0.8],
        "codes_used": codes,
        "code_cap": 1000 if codes else None,
        "usage_of_cap": codes / 1000 if codes else None,
    }


def test_claims_print_the_numbers_their_verdicts_follow_from():
    rows = [
        *[_row("FSQ", s, p, 0.02, 500) for s, p in enumerate([22.0, 22.2, 22.4])],
        *[_row("VQ", s, p, 0.03, 200) for s, p in enumerate([21.9, 22.3, 22.5])],
        *[_row("naive", s, 19.0, 0.05) for s in range(3)],
    ]
    lines = claims(rows)
    fsq_vq = next(line for line in lines if line.startswith("PSNR, FSQ (A) vs VQ (B)"))
    assert "22.20 ± 0.20 dB vs 22.23 ± 0.31 dB" in fsq_vq and "two-sided, margin 0" in fsq_vq
    assert fsq_vq.endswith("**not resolved**.")
    naive = next(line for line in lines if line.startswith("PSNR, FSQ (A) vs naive (B)"))
    assert "one-sided (A > B), margin 0" in naive and naive.endswith("**holds**.")
    usage = next(line for line in lines if "countable codes used, FSQ (A) vs VQ (B)" in line)
    assert usage.endswith("**holds**.")
    assert not any("LFQ" in line for line in lines)  # no LFQ runs: no LFQ claims
    table = markdown_table(rows)
    assert "| FSQ | 478.4 | 3 | 22.20 ± 0.20 |" in table and "| naive | 478.4 | 3 | 19.00 ± 0.00 |" in table


def test_plan_names_runs_and_rejects_bad_input():
    runs = plan("blobs", "quick", [0, 1], ["frames.train.steps=3"])
    names = [entry["name"] for entry, _ in runs]
    assert names == [f"{kind}_s{s}" for s in (0, 1) for kind in ("video_fsq", "video_vq", "video_lfq", "frames_fsq")]
    cfgs = {entry["name"]: cfg for entry, cfg in runs}
    assert cfgs["video_vq_s1"].quantizer.kind == "vq" and cfgs["video_vq_s1"].train.seed == 1
    assert cfgs["video_lfq_s0"].quantizer.setting("dim") == 10 and cfgs["frames_fsq_s0"].train.steps == 3
    assert cfgs["video_fsq_s0"].train.steps == 2  # frames.* overrides reach the per-frame tokenizer only
    with pytest.raises(ValueError, match="runs on \\['blobs', 'moving_mnist'\\], not 'mnist'"):
        plan("mnist", "quick", [0], [])
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        plan("blobs", "gpu", [0], [])
    with pytest.raises(ValueError, match="distinct integers"):
        plan("blobs", "quick", [0, 0], [])


@pytest.mark.parametrize("data", ["blobs", "moving_mnist"])
def test_the_per_frame_config_spends_nearly_the_video_configs_bits_per_clip(data):
    """The study's two configs of a source: the per-frame image tokenizer within 99-100% of the video tokenizer's
    bits per clip (never more), trained on the same source's frames with the same steps."""
    import math

    from fsq.config import ConfigError, TokenizerExperiment, config_path, load_config
    from fsq.stages.signal_data import signal_shape
    from fsq.studies.video import SOURCES

    try:
        video, frames = (load_config(TokenizerExperiment, [config_path(p)]) for p in SOURCES[data])
    except ConfigError as error:  # the Moving MNIST tokenizer config comes with the Moving MNIST source's branch
        pytest.skip(str(error))
    t, h, w = signal_shape(video)
    factors = [math.prod(f[i] for f in video.model.downsample) for i in range(3)]
    video_bits = (t - 1) // factors[0] + 1
    video_bits *= (h // factors[1]) * (w // factors[2]) * math.log2(math.prod(video.quantizer.levels))
    side = frames.data.image_size // 2 ** (len(frames.model.channel_multipliers) - 1)
    frame_bits = t * side * side * math.log2(math.prod(frames.quantizer.levels))
    assert 0.99 * video_bits <= frame_bits <= video_bits
    assert frames.data.source == f"frames:{video.data.source}" and frames.data.image_size == video.data.image_size
    assert frames.train.steps == video.train.steps
    assert frames.train.batch_size == video.train.batch_size * t  # the same pixels per step
