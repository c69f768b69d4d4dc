"""The tokenizer stage's signals: which kind of signal a config's data is, its shape, its splits and transforms.

Images (``mnist``, ``fashion``, ``photos``, folders, shards, Hugging Face datasets) keep the image path of
:mod:`fsq.stages.tokenizer`; the generated signals (``tones``: audio, ``blobs``: video;
:mod:`fsq.data.synthetic_signals`) come through here. Each check is made before anything trains: the model's
``dims`` against the data's axes, the time crop against the clip length, the configured rate against the source's,
and the image-only losses (perceptual features) against a non-image signal.
"""

from __future__ import annotations

from fsq.config import ConfigError, TokenizerExperiment
from fsq.data.signals import IMAGE, SignalItems, SignalKind, SignalTransform, check_rate
from fsq.data.synthetic_signals import BLOBS_FRAMES, SOURCES, TONES_LENGTH, generated_items

CLIP_LENGTHS = {"tones": TONES_LENGTH, "blobs": BLOBS_FRAMES}


def is_signal_source(source: str) -> bool:
    """Whether ``data.source`` names a generated audio or video source."""
    return source in SOURCES


def signal_kind(cfg: TokenizerExperiment) -> SignalKind:
    """The kind of signal the config's data source gives (every source but the generated ones gives images)."""
    return SOURCES.get(cfg.data.source, IMAGE)


def signal_shape(cfg: TokenizerExperiment) -> list[int] | None:
    """The sizes of the model's input axes for the config's data (None for images: ``data.image_size`` squared).

    Raises a :class:`~fsq.config.ConfigError` naming both when ``model.dims`` is not the data's number of axes, when
    a time crop is longer than the source's clips, or when a non-image signal asks for the perceptual loss.
    """
    kind, d, m = signal_kind(cfg), cfg.data, cfg.model
    if m.dims != kind.dims:
        raise ConfigError(
            f"data.source={d.source!r} gives {kind.dims}-D {kind.name} signals {kind.layout()} but "
            f"model.dims={m.dims}: set model.dims={kind.dims}"
        )
    if kind is IMAGE:
        if d.length is not None or d.sample_rate is not None:
            raise ConfigError(f"data.length and data.sample_rate are for audio and video; {d.source!r} gives images")
        return None
    if cfg.loss.perceptual_weight > 0:
        raise ConfigError(
            f"loss.perceptual_weight={cfg.loss.perceptual_weight}: the perceptual loss uses image features "
            f"(EfficientNet on RGB images) and cannot judge {kind.name}; set it to 0"
        )
    clip = CLIP_LENGTHS[d.source]
    length = d.length or clip
    if length > clip:
        raise ConfigError(
            f"data.length={length}: a time crop longer than the clips of {d.source!r} ({kind.name} {kind.layout()} "
            f"with T={clip}); set data.length to {clip} or less"
        )
    return [length] if kind.dims == 1 else [length, d.image_size, d.image_size]


def open_signal_split(cfg: TokenizerExperiment, split: str, limit: int | None) -> SignalItems:
    """The clips of one split of a generated source (``limit`` of them; default 1024 train, 128 otherwise), its
    rate checked against ``data.sample_rate`` and its clip length against ``data.length``."""
    d = cfg.data
    items = generated_items(
        d.source, split, seed=cfg.train.seed, count=limit, image_size=d.image_size, channels=d.channels
    )
    check_rate(d.source, items.kind, items.rate, d.sample_rate)
    if d.length is not None:
        SignalTransform("center", items.kind, d.length).check(f"{d.source} ({split} split)", items.shape)
    return items


def signal_transform(cfg: TokenizerExperiment, items: SignalItems, train: bool) -> SignalTransform:
    """Training: a random time crop of ``data.length`` (and a random horizontal flip for video); evaluation and
    token export: the centred crop."""
    return SignalTransform("random" if train else "center", items.kind, cfg.data.length)
