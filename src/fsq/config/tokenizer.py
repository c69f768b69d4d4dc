"""The Stage I (tokenizer) experiment schema and its model presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from fsq.config.engine import SCHEMA_VERSION, Length, Range
from fsq.config.sections import (
    NonNegativeFloat,
    NonNegativeInt,
    OptimConfig,
    PositiveFloat,
    PositiveInt,
    QuantizerConfig,
    RunName,
    TrainConfig,
    require,
)
from fsq.config.sizes import check_image_size


@dataclass(frozen=True)
class DataConfig:
    # mnist | fashion | photos (in memory) | streamed: an image folder path, wds:SHARDS (.tar file, folder, glob,
    # brace pattern or remote URLs: https://, s3://, pipe:; {split} is replaced by the split), hf:DIR (a local
    # Hugging Face dataset: saved, imagefolder or parquet)
    # | signals: tones (audio) | blobs (video) (generated), speech (synthetic speech: `fsq data prepare speech`),
    # videos (real: opencv-doc clips), audio:DIR (.wav/.flac/.ogg/.npy files), video:DIR (.npy and video files:
    # .mp4 .avi .mkv .webm .mov .gif), audio:wds:SHARDS, video:wds:SHARDS
    # | frames:blobs: every frame of a generated video source's clips, as images (a per-frame image tokenizer)
    source: str = "mnist"
    image_size: PositiveInt = 28
    train_split: str = "train"
    eval_split: str = "test"
    train_limit: PositiveInt | None = None  # keep the first N training images
    eval_limit: PositiveInt | None = None  # evaluate on the first N held-out images (None: all)
    num_crops: PositiveInt | None = None  # photos: crops per split (None: the source's default)
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: the source's own
    on_error: Literal["skip", "raise"] = "skip"  # image folders: skip (and report) or raise on unreadable files
    cache_dir: str | None = None
    workers: int = 0  # DataLoader worker processes decoding streamed sources (0: decode in the training process)
    # streamed sources: random = shorter side to image_size + random crop + horizontal flip; center = centre
    # crop (evaluation always centre-crops); auto: random for streamed sources, the built-ins as loaded
    train_transform: Literal["auto", "random", "center"] = "auto"
    # signals with a time axis (audio: the generated `tones`; video: `blobs`): the time crop in samples or frames
    # (random in training, centred in evaluation; None: whole clips), and the rate the source must have (Hz for
    # audio, fps for video; None: the source's own; a mismatch is an error, never a silent resampling)
    length: PositiveInt | None = None  # audio / video: time crop in samples / frames (None: whole clips)
    sample_rate: PositiveFloat | None = None  # audio Hz / video fps the source must have (None: its own)
    resample: bool = False  # true: a source at another rate is resampled to data.sample_rate instead of refused
    # audio training: [lo, hi]: each crop played at a speed drawn uniformly from lo..hi (pitch and tempo together,
    # Kaldi's speed perturbation: as from a vocal tract of another length), a window of data.length x speed samples
    # resampled to data.length; evaluation never perturbs. None: off
    speed_perturb: list[PositiveFloat] | None = None

    def __post_init__(self) -> None:
        from fsq.config.engine import ConfigError

        if self.workers < 0:
            raise ConfigError(f"data.workers must be 0 or more, got {self.workers}")
        speeds = self.speed_perturb
        if speeds is not None and (len(speeds) != 2 or speeds[0] > speeds[1]):
            raise ConfigError(f"data.speed_perturb must be [lo, hi] with 0 < lo <= hi (e.g. [0.9, 1.1]), got {speeds}")
        for prefix in ("wds:", "hf:", "audio:", "video:", "frames:"):
            if self.source.startswith(prefix) and not self.source[len(prefix) :].strip():
                raise ConfigError(f"data.source={self.source!r} names no path after {prefix!r}")
        scheme = self.source.split(":", 1)[0]
        remote = self.source.startswith((f"{scheme}://", "pipe:"))  # WebDataset shards at URLs
        known = ("wds", "hf", "audio", "video", "frames")
        if ":" in self.source and scheme.isalnum() and len(scheme) > 1 and scheme not in known and not remote:
            raise ConfigError(
                f"data.source={self.source!r}: unknown prefix {scheme + ':'!r}; use wds:SHARDS, hf:DIR, a folder path, "
                "a shard URL (https://, s3://, pipe:) or mnist, fashion, photos"
            )


@dataclass(frozen=True)
class ModelConfig:
    preset: str | None = None  # a name from MODEL_PRESETS, overlaid by the keys given explicitly
    filters: PositiveInt = 32
    channel_multipliers: Annotated[list[PositiveInt], Length(min=1)] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: NonNegativeInt = 1
    num_groups: PositiveInt = 8  # GroupNorm groups (the paper's flax default is 32)
    dims: Annotated[int, Range(min=1, max=3)] = 2  # the signal's axes: 1 audio (Conv1d), 2 images, 3 video (Conv3d)
    # per downsampling (len(channel_multipliers) - 1 of them) a factor per axis, e.g. [[1, 2, 2], [2, 2, 2]] for
    # video (time, height, width); None: 2 on every axis
    downsample: list[Annotated[list[PositiveInt], Length(min=1)]] | None = None  # per stage, per axis; None: 2s
    causal: bool = False  # the first axis is time: causal padding, the first frame or sample encoded on its own
    # causal vqgan models: what the convolutions see before the first frame, copies of it or zeros
    time_padding: Literal["replicate", "zeros"] = "replicate"
    # causal vqgan models: time downsampled by stacking frames into channels (and upsampled by the inverse), not by
    # averaging and repeating frames
    time_to_depth: bool = False
    # causal 3-D vqgan models: frames stacked into the channels in groups of this many at the input (the first
    # frame alone), and unstacked at the output, before any convolution (time patchified as Cosmos' wavelet input
    # does): the whole network runs on 1 + k frames for 1 + time_patch * k, and time_factor includes it
    time_patch: PositiveInt = 1
    # 3-D vqgan models: (2+1)-D convolutions (3x3 over space, then 3 frames over time) instead of 3x3x3 ones
    factorized: bool = False
    # factorized models: their time convolutions start random (PyTorch's default) or as identity (passing the current
    # frame only: the model starts as a per-frame 2-D one)
    time_init: Literal["random", "identity"] = "random"
    # vqgan: MaskGIT's ResBlocks + GroupNorm + average pooling (any dims); seanet: a 1-D audio codec (SoundStream /
    # EnCodec / DAC): per downsampling, residual units of `dilations` then a strided conv (kernel 2 x factor)
    architecture: Literal["vqgan", "seanet"] = "vqgan"
    activation: Literal["elu", "snake"] = "elu"  # seanet: elu (SEANet, EnCodec) or snake (DAC; ~2.7x slower on CPU)
    dilations: Annotated[list[PositiveInt], Length(min=1)] = field(default_factory=lambda: [1, 3, 9])  # seanet


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # CPU-fast: 2 downsamplings (28 px -> 7x7 tokens, 16 px -> 4x4 tokens)
    "cpu-tiny": {"filters": 16, "channel_multipliers": [1, 2, 4], "num_res_blocks": 1, "num_groups": 8},
    "cpu-small": {"filters": 64, "channel_multipliers": [1, 2, 2], "num_res_blocks": 2, "num_groups": 16},
    # GPU: 3 downsamplings (64 px -> 8x8)
    "gpu-base": {"filters": 64, "channel_multipliers": [1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
    # the paper's MaskGIT VQGAN (vqgan_config.py): 256 px -> 16x16 tokens
    "paper": {"filters": 128, "channel_multipliers": [1, 1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
    # 1-D audio codecs (16 kHz): hop 2*4*5*8 = 320 samples -> 50 tokens/s; hop 2*4*8*10 = 640 -> 25 tokens/s
    "codec-50hz": {
        "architecture": "seanet",
        "dims": 1,
        "filters": 16,
        "channel_multipliers": [1, 2, 4, 8, 16],
        "downsample": [[2], [4], [5], [8]],
        "num_groups": 8,
    },
    "codec-25hz": {
        "architecture": "seanet",
        "dims": 1,
        "filters": 16,
        "channel_multipliers": [1, 2, 4, 8, 16],
        "downsample": [[2], [4], [8], [10]],
        "num_groups": 8,
    },
}


@dataclass(frozen=True)
class LossConfig:
    perceptual_weight: NonNegativeFloat = 0.0  # the paper: 0.1 (on ResNet-50 features)
    # efficientnet: EfficientNet-Lite0 feature distance (offline, not LPIPS); lpips: LPIPS (VGG16 + the lpips
    # package's calibrated heads; needs `pip install --no-deps lpips` and VGG16 weights, loss.vgg16_weights)
    perceptual_network: Literal["efficientnet", "lpips"] = "efficientnet"
    vgg16_weights: str | None = None  # torchvision's vgg16-397923af.pth (None: torch hub's cached copy)
    adversarial_weight: NonNegativeFloat = 0.0  # the paper uses 0.1
    adversarial_start: NonNegativeInt = 0  # generator adversarial loss and discriminator training start here
    r1_weight: NonNegativeFloat = 10.0
    # lazy R1 (StyleGAN2's lazy regularization): the penalty, a double backward through the discriminator, only on
    # every r1_every-th discriminator step, weighted r1_every x as much (the same mean pull, a cheaper step)
    r1_every: PositiveInt = 1
    discriminator_channels: PositiveInt = 64
    l2_weight: NonNegativeFloat = 1.0  # the mean squared error of [0, 1] signals (MaskGIT's L2): `rec_loss`
    # audio (model.dims 1): terms on the waveform in [-1, 1]
    l1_weight: NonNegativeFloat = 0.0  # waveform L1
    stft_weight: NonNegativeFloat = 0.0  # multi-resolution STFT: spectral convergence + log-magnitude L1
    complex_stft_weight: NonNegativeFloat = 0.0  # inside the STFT loss: its phase-aware complex-STFT L1 term
    stft_windows: Annotated[list[PositiveInt], Length(min=1)] = field(default_factory=lambda: [512, 1024, 2048])
    mel_weight: NonNegativeFloat = 0.0  # multi-scale log-mel L1 (DAC's), bands placed by the data's sample rate
    mel_windows: Annotated[list[PositiveInt], Length(min=1)] = field(default_factory=lambda: [64, 256, 1024])
    # stylegan: MaskGIT's image discriminator (non-saturating + R1); audio: multi-period (HiFi-GAN) and multi-
    # resolution complex-STFT (EnCodec) discriminators, least-squares loss, no R1, plus feature matching
    discriminator: Literal["stylegan", "audio"] = "stylegan"
    discriminator_periods: list[PositiveInt] = field(default_factory=lambda: [2, 3, 5, 7, 11])  # audio
    discriminator_windows: list[PositiveInt] = field(default_factory=lambda: [256, 512, 1024])  # audio
    feature_matching_weight: NonNegativeFloat = 0.0  # audio: L1 of the discriminator's features, fakes to reals


@dataclass(frozen=True)
class EvalConfig:
    batch_size: PositiveInt = 256
    fid_samples: NonNegativeInt = 200  # reconstruction FID images (0 disables); Inception: ~5 img/s on 2 CPU cores
    grid_size: PositiveInt = 8  # reconstruction grid: grid_size pairs of originals and reconstructions
    lpips: bool = False  # also LPIPS of the reconstructions (VGG16 weights from loss.vgg16_weights)
    # also the EfficientNet-Lite0 perceptual distance of the reconstructions (the perceptual loss's features and
    # form, not LPIPS; offline, the `perceptual` extra): its mean per image, under "perceptual"
    perceptual: bool = False
    speech_quality: bool = True  # audio: wideband PESQ and STOI where their packages and the sample rate allow
    audio_anchors: list[str] = field(default_factory=list)  # audio: classical codecs on the same clips, e.g.
    # [codec2-700C, codec2-2400, opus-6k] (Codec2 and Opus command-line tools; their metrics and bits/s beside ours)
    # images: classical codecs on the same held-out images at the tokenizer's bits per image, any of naive, jpeg,
    # webp, jpeg-payload, webp-payload (fsq.anchors.images; their PSNR, SSIM and real bits beside ours)
    image_anchors: list[Literal["naive", "jpeg", "webp", "jpeg-payload", "webp-payload"]] = field(default_factory=list)
    # audio: the evaluation's centred time crop in samples (None: data.length; clips shorter are left out). A crop
    # longer than data.length goes through the model in chunks of data.length, as `fsq encode` does (the last one
    # padded with silence, dropped after decoding). STOI needs about 0.8 s of speech: 0.25 s crops are too short
    length: PositiveInt | None = None
    # residual quantizers (residual_fsq, residual_vq): also score decoding only the first k stages, for each k
    # listed (the lower bitrates one model trained with quantize dropout serves); results under "depths"
    depths: list[PositiveInt] = field(default_factory=list)
    # audio, residual quantizers: also score the decoded latent their stages approximate (unquantized: the ceiling
    # every depth approaches, set by the latent's width, not by rounding); results under "unquantized"
    unquantized: bool = False


@dataclass(frozen=True)
class TokenizerExperiment:
    description: ClassVar[str] = "Stage I: an image tokenizer (VQ-GAN-style autoencoder with FSQ or VQ)"
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"model": MODEL_PRESETS}

    schema_version: int = SCHEMA_VERSION
    stage: Literal["tokenizer"] = "tokenizer"
    name: RunName = "tokenizer"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def fid_images(self) -> int:
        """Images evaluation sends through the Inception network (reconstruction FID; 0: none)."""
        return self.eval.fid_samples

    def __post_init__(self) -> None:
        m = self.model
        widths = [m.filters * k for k in m.channel_multipliers]
        require(
            m.architecture == "seanet" or all(w % m.num_groups == 0 for w in widths),  # seanet has no GroupNorm
            f"model.num_groups={m.num_groups} must divide every width {widths} (filters x channel_multipliers)",
        )
        require(self.data.channels in (None, 1, 3), f"data.channels must be 1, 3 or null, got {self.data.channels}")
        lw = self.loss
        audio_terms = {
            "loss.stft_weight": lw.stft_weight,
            "loss.complex_stft_weight": lw.complex_stft_weight,
            "loss.mel_weight": lw.mel_weight,
            "loss.feature_matching_weight": lw.feature_matching_weight,
        }
        for key, value in audio_terms.items():
            require(value == 0 or m.dims == 1, f"{key}={value} is an audio loss: it needs model.dims=1, got {m.dims}")
        require(
            lw.complex_stft_weight == 0 or lw.stft_weight > 0,
            "loss.complex_stft_weight weighs a term inside the STFT loss: set loss.stft_weight > 0 too",
        )
        require(
            lw.discriminator == "stylegan" or m.dims == 1,
            f"loss.discriminator=audio judges 1-D waveforms: it needs model.dims=1, got {m.dims}",
        )
        require(
            lw.feature_matching_weight == 0 or (lw.discriminator == "audio" and lw.adversarial_weight > 0),
            "loss.feature_matching_weight needs loss.discriminator=audio and loss.adversarial_weight > 0",
        )
        require(
            m.architecture == "vqgan" or m.dims == 1,
            f"model.architecture=seanet is a 1-D audio codec: it needs model.dims=1, got {m.dims}",
        )
        require(
            not self.eval.perceptual or m.dims == 2,
            f"eval.perceptual is an image metric (EfficientNet-Lite0 features): it needs model.dims=2, got {m.dims}",
        )
        require(
            not self.eval.image_anchors or m.dims == 2,
            f"eval.image_anchors={list(self.eval.image_anchors)} are image codecs: they need model.dims=2, "
            f"got {m.dims}",
        )
        require(
            len(set(self.eval.image_anchors)) == len(self.eval.image_anchors),
            f"eval.image_anchors lists an anchor twice: {list(self.eval.image_anchors)}",
        )
        require(
            not self.eval.audio_anchors or m.dims == 1,
            f"eval.audio_anchors={list(self.eval.audio_anchors)} are audio codecs: they need model.dims=1, "
            f"got {m.dims}",
        )
        require(
            self.data.speed_perturb is None or (m.dims == 1 and self.data.length is not None),
            f"data.speed_perturb={self.data.speed_perturb} resamples audio training crops: it needs model.dims=1 and "
            f"data.length, got model.dims={m.dims} and data.length={self.data.length}",
        )
        require(
            self.eval.length is None or m.dims == 1,
            f"eval.length={self.eval.length} is an audio evaluation crop: it needs model.dims=1, got {m.dims}",
        )
        residual_stages = self.quantizer.setting("num_stages")
        depths_fit = residual_stages is not None and all(k <= residual_stages for k in self.eval.depths)
        require(
            not self.eval.depths or depths_fit,
            f"eval.depths={self.eval.depths} names numbers of residual stages: it needs a residual quantizer "
            f"(residual_fsq, residual_vq) with at least that many stages, got quantizer.kind={self.quantizer.kind}"
            + (f" with {residual_stages} stages" if residual_stages is not None else ""),
        )
        require(
            not self.eval.unquantized or (residual_stages is not None and m.dims == 1),
            "eval.unquantized scores the latent a residual quantizer's stages approximate, in an audio evaluation: "
            f"it needs a residual quantizer (residual_fsq, residual_vq) and model.dims=1, got quantizer.kind="
            f"{self.quantizer.kind} and model.dims={m.dims}",
        )
        if m.downsample is not None:
            stages = len(m.channel_multipliers) - 1
            require(
                len(m.downsample) == stages and all(len(f) == m.dims for f in m.downsample),
                f"model.downsample={m.downsample} must hold {stages} entries (one per downsampling: "
                f"len(model.channel_multipliers) - 1) of {m.dims} factors (one per axis: model.dims={m.dims})",
            )
        elif m.dims == 2:  # images: the size against the downsamplings, the largest size, the memory it needs
            downsamplings = len(m.channel_multipliers) - 1
            what = f"model.channel_multipliers={list(m.channel_multipliers)}"
            check_image_size(self.data.image_size, downsamplings, self.train.batch_size, m.filters, what)
