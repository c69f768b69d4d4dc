"""The tokenizer stage's signals: which kind of signal a config's data is, its shape, its splits and transforms.

Images (``mnist``, ``fashion``, ``photos``, folders, shards, Hugging Face datasets) keep the image path of
:mod:`fsq.stages.tokenizer`; the generated signals (``tones``: audio, ``blobs`` and ``moving_mnist``: video;
:mod:`fsq.data.synthetic_signals`), the real ``videos`` source (:mod:`fsq.data.videos`), the ``speech`` source
(synthetic speech, prepared into the cache; :mod:`fsq.data.speech_items`) and folders or WebDataset shards of
audio or video files (``audio:DIR``, ``video:DIR``, ``audio:wds:SHARDS``; :mod:`fsq.data.signal_files`) come
through here. The checks: the model's
``dims`` against the data's axes, the time crop against the clip length, the configured rate against the
source's (or resampled to it with ``data.resample``), and the image-only losses (perceptual features) against a
non-image signal; generated sources are checked before anything trains, files when they are read.
"""

from __future__ import annotations

import torch

from fsq.config import ConfigError, TokenizerExperiment
from fsq.data.resample import resample_time
from fsq.data.signal_files import SignalFolderItems, SignalShardItems
from fsq.data.signals import (
    AUDIO,
    IMAGE,
    VIDEO,
    SignalItems,
    SignalKind,
    SignalTransform,
    check_rate,
)
from fsq.data.speech_items import SpeechItems
from fsq.data.synthetic_signals import RATES, SOURCES, clip_length, generated_items
from fsq.data.videos import LENGTH as VIDEOS_LENGTH
from fsq.data.videos import NAME as VIDEOS
from fsq.data.videos import VideoClips, open_videos
from fsq.data.windows import WindowedItems

FOLDER_PREFIXES = {"audio:": AUDIO, "video:": VIDEO}
CACHED = {"speech": AUDIO}  # prepared into the cache, clips of any length (data.length crops them)


def _folder(source: str) -> tuple[SignalKind, str] | None:
    """(kind, path) of an ``audio:DIR`` / ``video:DIR`` source, else None."""
    for prefix, kind in FOLDER_PREFIXES.items():
        if source.startswith(prefix):
            return kind, source[len(prefix) :]
    return None


def is_signal_source(source: str) -> bool:
    """Whether ``data.source`` names audio or video: a generated source or an ``audio:``/``video:`` folder."""
    return source in SOURCES or source in CACHED or source == VIDEOS or _folder(source) is not None


def signal_kind(cfg: TokenizerExperiment) -> SignalKind:
    """The kind of signal the config's data source gives (every source but the generated ones and the audio and
    video folders gives images)."""
    folder = _folder(cfg.data.source)
    if cfg.data.source == VIDEOS:
        return VIDEO
    return folder[0] if folder else CACHED.get(cfg.data.source) or SOURCES.get(cfg.data.source, IMAGE)


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
    if cfg.train.channels_last:
        raise ConfigError(
            f"train.channels_last=true is the memory format of 4-D image weights; {kind.name} models "
            f"(Conv{kind.dims}d) do not use it: set it to false"
        )
    if cfg.loss.perceptual_weight > 0:
        raise ConfigError(
            f"loss.perceptual_weight={cfg.loss.perceptual_weight}: the perceptual loss uses image features "
            f"(EfficientNet on RGB images) and cannot judge {kind.name}; set it to 0"
        )
    if d.source == VIDEOS:  # real videos, cropped to data.length frames (default 17)
        return [d.length or VIDEOS_LENGTH, d.image_size, d.image_size]
    if _folder(d.source) or d.source in CACHED:  # clips of any length: the crop says the model's
        if d.length is None:
            clips = "its clips differ" if d.source in CACHED else "clips in a folder may differ"
            raise ConfigError(
                f"data.source={d.source!r}: {clips} in length; set data.length (the time crop "
                f"in {'samples' if kind.dims == 1 else 'frames'})"
            )
        return [d.length] if kind.dims == 1 else [d.length, d.image_size, d.image_size]
    clip = clip_length(d.source, d.length)
    if d.resample and d.sample_rate is not None:  # the clips after resampling
        clip = max(1, round(clip * d.sample_rate / RATES[d.source]))
    length = d.length or clip
    if length > clip:
        raise ConfigError(
            f"data.length={length}: a time crop longer than the clips of {d.source!r} ({kind.name} {kind.layout()} "
            f"with T={clip}); set data.length to {clip} or less"
        )
    return [length] if kind.dims == 1 else [length, d.image_size, d.image_size]


def open_signal_split(
    cfg: TokenizerExperiment, split: str, limit: int | None
) -> SignalItems | SignalFolderItems | SignalShardItems | SpeechItems | VideoClips:
    """The clips of one split: of a generated source (``limit`` of them; default 1024 train, 128 otherwise), its
    rate checked against ``data.sample_rate`` and its clip length against ``data.length``; of an audio or video
    folder (:class:`~fsq.data.signal_files.SignalFolderItems`: each file checked when read); of the prepared
    ``speech`` source (:class:`~fsq.data.speech_items.SpeechItems`); or of the ``videos`` source (``limit`` clips of
    its split's videos, retimed to ``data.sample_rate``, default 10 fps)."""
    d = cfg.data
    if d.source == "speech":
        return SpeechItems(
            split,
            cache_dir=d.cache_dir,
            rate=d.sample_rate,
            min_length=d.length,
            channels=d.channels,
            on_error=d.on_error,
            limit=limit,
            resample=d.resample,
        )
    if d.source == VIDEOS:
        return open_videos(
            split,
            image_size=d.image_size,
            length=d.length or VIDEOS_LENGTH,
            rate=d.sample_rate,
            channels=d.channels,
            count=limit,
            cache_dir=d.cache_dir,
            seed=cfg.train.seed,
        )
    folder = _folder(d.source)
    if folder is not None:
        kind, path = folder
        if path.startswith("wds:") or path.endswith(".tar"):
            return SignalShardItems(
                path.removeprefix("wds:"),
                split,
                kind,
                rate=d.sample_rate,
                min_length=d.length,
                channels=d.channels,
                limit=limit,
            )
        return SignalFolderItems(
            path,
            split,
            kind,
            rate=d.sample_rate,
            min_length=d.length,
            channels=d.channels,
            on_error=d.on_error,
            limit=limit,
            resample=d.resample,
        )
    items = generated_items(
        d.source,
        split,
        seed=cfg.train.seed,
        count=limit,
        image_size=d.image_size,
        channels=d.channels,
        length=d.length,
        cache_dir=d.cache_dir,
    )
    if d.resample and d.sample_rate is not None and items.rate != d.sample_rate:
        assert items.rate is not None
        clips = torch.stack([resample_time(c, items.rate, d.sample_rate) for c in items.clips])
        items = SignalItems(clips, items.kind, source=items.source, split=split, rate=d.sample_rate)
    check_rate(d.source, items.kind, items.rate, d.sample_rate)
    if d.length is not None:
        SignalTransform("center", items.kind, d.length).check(f"{d.source} ({split} split)", items.shape)
    return items


def signal_transform(
    cfg: TokenizerExperiment,
    items: SignalItems | SignalFolderItems | SignalShardItems | SpeechItems | VideoClips | WindowedItems,
    train: bool,
) -> SignalTransform:
    """Training: a random time crop of ``data.length`` (video: a random ``data.image_size`` square in space and a
    random horizontal flip; audio with ``data.speed_perturb``: played at a random speed); evaluation and token
    export: the centred crops (``videos``: its fixed clips)."""
    size = cfg.data.image_size if items.kind.dims == 3 else None
    length = cfg.data.length or (VIDEOS_LENGTH if cfg.data.source == VIDEOS else None)
    speeds = cfg.data.speed_perturb
    speed = (float(speeds[0]), float(speeds[1])) if speeds is not None and train else None
    return SignalTransform("random" if train else "center", items.kind, length, size=size, speed=speed)
