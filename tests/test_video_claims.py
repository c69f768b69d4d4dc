"""The video study's claims on hand-made numbers (torch-free): each verdict follows from the difference of the seed
means against twice its standard error (the shared tests of fsq.studies.verdicts); a difference inside that band
is not resolved; one seed is marked as such. And the study's plan and its configs at equal bits."""

from __future__ import annotations

import pytest

from fsq.config import TokenizerExperiment, config_path, load_config
from fsq.studies.tuning import LR_FACTORS
from fsq.studies.video import SOURCES, plan
from fsq.studies.video_claims import claims, markdown_table


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
        *[_row("per-frame FSQ", s, p, 0.01) for s, p in enumerate([22.1, 22.5, 21.8])],
    ]
    lines = claims(rows)
    # difference -0.033 dB, standard error sqrt(0.2^2/3 + 0.306^2/3) = 0.211: the band +-0.42 lies inside +-0.5 dB
    fsq_vq = next(line for line in lines if line.startswith("PSNR (higher is better), FSQ matches VQ within ±0.5 dB"))
    assert "22.20 ± 0.20 dB vs 22.23 ± 0.31 dB" in fsq_vq and "two-sided, margin ±0.5" in fsq_vq
    assert "standard error 0.211" in fsq_vq and fsq_vq.endswith("-> **yes**.")
    naive = next(line for line in lines if line.startswith("PSNR (higher is better), FSQ better than naive"))
    assert "one-sided" in naive and naive.endswith("-> **yes**.")  # +3.2 dB, band 2 x 0.115
    per_frame = next(line for line in lines if line.startswith("PSNR (higher is better), FSQ better than per-frame"))
    assert per_frame.endswith("-> **not resolved**.")  # +0.067 dB inside 2 x 0.23
    temporal = next(line for line in lines if line.startswith("temporal error"))
    assert "lower is better" in temporal and temporal.endswith("-> **no**.")  # 0.02 vs 0.01: per-frame steadier
    usage = next(line for line in lines if "countable codes used (higher is better), FSQ better than VQ" in line)
    assert usage.endswith("-> **yes**.")
    assert not any("LFQ" in line for line in lines)  # no LFQ runs: no LFQ claims
    single = claims([_row("FSQ", 0, 22.0, 0.02), _row("naive", 0, 19.0, 0.05)])
    assert single[0].endswith("-> **yes (single seed)**.") and "single seed" in single[0]
    table = markdown_table(rows)
    assert "| FSQ | 478.4 | 3 | 22.20 ± 0.20 |" in table and "| naive | 478.4 | 3 | 19.00 ± 0.00 |" in table


def test_plan_names_runs_and_rejects_bad_input():
    runs = plan("blobs", "quick", [0, 1], ["frames.train.steps=3"])
    names = [entry["name"] for entry, _ in runs]
    video_lr = load_config(TokenizerExperiment, [config_path(SOURCES["blobs"][0])], []).optim.lr
    frames_lr = load_config(TokenizerExperiment, [config_path(SOURCES["blobs"][1])], []).optim.lr
    rates = [f"{f * video_lr:g}" for f in LR_FACTORS]
    assert rates == [f"{video_lr / 2:g}", f"{video_lr:g}", f"{video_lr * 2:g}"]  # every method: 0.5x, 1x, 2x
    assert names == [
        name
        for s in (0, 1)
        for name in [
            *(f"video_{q}_lr{r}_s{s}" for q in ("fsq", "vq", "lfq") for r in rates),
            *(f"frames_fsq_lr{f * frames_lr:g}_s{s}" for f in LR_FACTORS),
        ]
    ]
    cfgs = {entry["name"]: cfg for entry, cfg in runs}
    entries = {entry["name"]: entry for entry, _ in runs}
    vq = f"video_vq_lr{rates[0]}_s1"
    assert cfgs[vq].quantizer.kind == "vq" and cfgs[vq].train.seed == 1
    assert cfgs[vq].optim.lr == entries[vq]["lr"] == LR_FACTORS[0] * video_lr
    assert cfgs[f"video_lfq_lr{rates[1]}_s0"].quantizer.setting("dim") == 10
    assert cfgs[f"frames_fsq_lr{frames_lr:g}_s0"].train.steps == 3
    assert cfgs[f"video_fsq_lr{rates[1]}_s0"].train.steps == 2  # frames.* overrides reach the per-frame tokenizer only
    with pytest.raises(ValueError, match="runs on \\['blobs', 'moving_mnist'\\], not 'mnist'"):
        plan("mnist", "quick", [0], [])
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        plan("blobs", "gpu", [0], [])
    with pytest.raises(ValueError, match="distinct integers"):
        plan("blobs", "quick", [0, 0], [])
    for override in ("optim.lr=0.01", "frames.optim.lr=0.01"):  # the study tunes the rate itself
        with pytest.raises(ValueError, match="sets optim.lr itself"):
            plan("blobs", "quick", [0], [override])


def _trial_study(tmp_path, val):
    """A study folder with FSQ and VQ video runs at two rates and two seeds, each with a held-out and a val
    evaluation: ``val[(method, lr)]`` gives the val PSNR of both seeds (None: not evaluated yet)."""
    import json

    runs = []
    for method in ("FSQ", "VQ"):
        for lr in (0.0015, 0.003):
            for seed in (0, 1):
                name = f"video_{method.lower()}_lr{lr:g}_s{seed}"
                folder = tmp_path / "runs" / name / "eval"
                folder.mkdir(parents=True)
                e = {"step": 5, "psnr": 20.0 + 1000 * lr + seed, "codebook_size": 1000, "tokens": 10, "codes_used": 7}
                (folder / "step_000005.json").write_text(json.dumps(e))
                if val[(method, lr)] is not None:
                    (folder / "step_000005_val.json").write_text(json.dumps({"psnr": val[(method, lr)] + seed}))
                runs.append(
                    {"name": name, "label": method, "role": "video", "seed": seed, "lr": lr, "run_dir": f"runs/{name}"}
                )
    return {"runs": runs}


def test_each_method_is_reported_at_the_rate_chosen_on_val(tmp_path):
    from fsq.studies.tuning import choose_rates, tuning_table
    from fsq.studies.video_claims import collect, trials

    val = {("FSQ", 0.0015): 25.0, ("FSQ", 0.003): 26.0, ("VQ", 0.0015): 24.0, ("VQ", 0.003): 23.0}
    study = _trial_study(tmp_path, val)
    found = trials(tmp_path, study)
    assert len(found) == 8 and {t["val_psnr"] for t in found} == {23.0, 24.0, 25.0, 26.0, 27.0}
    chosen = choose_rates(found)
    assert chosen == {"FSQ": 0.003, "VQ": 0.0015}  # by val, although VQ's held-out PSNR is higher at 0.003
    rows = collect(tmp_path, study)
    assert [(r["method"], r["name"]) for r in rows] == [
        ("FSQ", "video_fsq_lr0.003_s0"),
        ("FSQ", "video_fsq_lr0.003_s1"),
        ("VQ", "video_vq_lr0.0015_s0"),
        ("VQ", "video_vq_lr0.0015_s1"),
    ]
    table = tuning_table(found, chosen)
    assert "| VQ | 0.0015 | 2 | 24.50 ± 0.71 | 22.00 ± 0.71 | yes |" in table
    assert "| VQ | 0.003 | 2 | 23.50 ± 0.71 | 23.50 ± 0.71 |  |" in table
    # a method with a trial not yet evaluated on val has no chosen rate, so no rows (never the held-out best)
    val[("VQ", 0.003)] = None
    late = _trial_study(tmp_path / "late", val)
    assert choose_rates(trials(tmp_path / "late", late)) == {"FSQ": 0.003}
    assert {r["method"] for r in collect(tmp_path / "late", late)} == {"FSQ"}
    # equal val means: the lower rate
    tie = _trial_study(tmp_path / "tie", {k: 25.0 for k in val})
    assert choose_rates(trials(tmp_path / "tie", tie)) == {"FSQ": 0.0015, "VQ": 0.0015}


def test_tasks_tokenizers_leaves_out_stage2_and_bad_tasks_are_refused(tmp_path):
    from fsq.studies.video import run

    full = [entry["role"] for entry, _ in plan("moving_mnist", "quick", [0], [])]
    assert full.count("stage2") == 3
    stage2 = [entry for entry, _ in plan("moving_mnist", "quick", [0], []) if entry["role"] == "stage2"]
    assert all(entry["tokenizer"] is None for entry in stage2)  # set by the run: the rate chosen on val
    stage1 = [entry["role"] for entry, _ in plan("moving_mnist", "quick", [0], [], stage2=False)]
    assert stage1 == ["video"] * 3 * len(LR_FACTORS) + ["frames"] * len(LR_FACTORS)
    for tasks in (["stage2"], ["tokenizers", "samples"]):
        with pytest.raises(ValueError, match="--tasks are tokenizers"):
            run("video", tmp_path, overrides=[], options={"preset": "quick", "tasks": tasks})
    assert not any(tmp_path.iterdir())  # refused before any work


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
