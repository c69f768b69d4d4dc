"""Typed experiment configs: nested dataclasses are the schema, YAML files merge left to right, dotted overrides.

``load_config(TokenizerExperiment, ["configs/tokenizer/fsq_mnist.yaml", "configs/presets/smoke.yaml"],
["train.steps=20", "quantizer.levels=[8,5,5,5]"])`` merges the dataclass defaults, each file in order and then
the overrides, and returns a frozen dataclass. Unknown keys and wrong types raise :class:`ConfigError` listing
the valid keys. ``model.preset`` names a preset whose values sit under the keys given explicitly.
This module imports no torch, so configs can be checked and reports written without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

SCHEMA_VERSION = 1
T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


# ------------------------------------------------------------------------------------------------------ schema
@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist"  # mnist | fashion | photos | a folder path
    image_size: int = 28
    train_split: str = "train"
    eval_split: str = "test"
    train_limit: int | None = None  # keep the first N training images
    eval_limit: int | None = None  # evaluate on the first N held-out images (None: all)
    num_crops: int | None = None  # photos: crops per split (None: the source's default)
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: the source's own
    on_error: str = "skip"  # image folders: skip (and report) or raise on unreadable files
    cache_dir: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    preset: str | None = None  # a name from MODEL_PRESETS, overlaid by the keys given explicitly
    filters: int = 32
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    num_groups: int = 8  # GroupNorm groups (the paper's flax default is 32)


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # CPU-fast: 2 downsamplings (28 px -> 7x7 tokens, 16 px -> 4x4 tokens)
    "cpu-tiny": {"filters": 16, "channel_multipliers": [1, 2, 4], "num_res_blocks": 1, "num_groups": 8},
    "cpu-small": {"filters": 64, "channel_multipliers": [1, 2, 2], "num_res_blocks": 2, "num_groups": 16},
    # GPU: 3 downsamplings (64 px -> 8x8)
    "gpu-base": {"filters": 64, "channel_multipliers": [1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
    # the paper's MaskGIT VQGAN (vqgan_config.py): 256 px -> 16x16 tokens
    "paper": {"filters": 128, "channel_multipliers": [1, 1, 2, 2, 4], "num_res_blocks": 2, "num_groups": 32},
}


@dataclass(frozen=True)
class QuantizerConfig:
    kind: str = "fsq"  # fsq | vq
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # fsq
    variant: str = "paper"  # fsq: paper | atanh | symmetric
    codebook_size: int = 1024  # vq
    dim: int = 256  # vq: code width (the encoder's last layer outputs this many channels)
    recipe: str = "maskgit"  # vq: maskgit | maskgit_noentropy | uvim | uvim_nosplit


@dataclass(frozen=True)
class LossConfig:
    perceptual_weight: float = 0.0  # EfficientNet-Lite0 feature loss (not LPIPS); the paper uses 0.1 (ResNet-50)
    adversarial_weight: float = 0.0  # the paper uses 0.1
    adversarial_start: int = 0  # generator adversarial loss and discriminator training start here
    r1_weight: float = 10.0
    discriminator_channels: int = 64


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    beta1: float = 0.0  # the paper's Adam(0, 0.99)
    beta2: float = 0.99
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | constant
    grad_clip: float | None = None
    discriminator_lr: float | None = None  # None: same as lr


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64  # global, over all ranks
    seed: int = 0
    ema_decay: float = 0.999  # EMA of the generator weights, used for evaluation (0 disables)
    log_every: int = 25
    checkpoint_every: int = 500
    keep_last: int = 2
    threads: int | None = None  # torch CPU threads (None: leave torch's default)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    eval_at_end: bool = True
    progress: bool = True


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 256
    fid_samples: int = 200  # images for reconstruction FID (0 disables); Inception runs ~5 img/s on a 2-core CPU
    grid_size: int = 8  # reconstruction grid: grid_size pairs of originals and reconstructions


@dataclass(frozen=True)
class TokenizerExperiment:
    schema_version: int = SCHEMA_VERSION
    name: str = "tokenizer"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ------------------------------------------------------------------------------------------ Stage II: MaskGIT
@dataclass(frozen=True)
class TokenDataConfig:
    tokenizer: str = ""  # the Stage I run dir: decodes samples; tokenizes the data when `tokens` is not given
    tokenizer_config: str | None = None  # the Stage I config that trains `tokenizer` (used by `fsq study maskgit`)
    tokens: str | None = None  # a `fsq tokenize` folder of the training split (None: tokenize into the run dir)
    train_split: str = "train"
    eval_split: str = "test"  # held-out tokens for the compression cost
    train_limit: int | None = None


@dataclass(frozen=True)
class TransformerConfig:
    preset: str | None = None  # a name from TRANSFORMER_PRESETS, overlaid by the keys given explicitly
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1
    norm_first: bool = True  # pre-LN; false: BERT post-LN as MaskGIT


TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": {"width": 128, "depth": 4, "heads": 4, "mlp_dim": 512, "dropout": 0.1, "norm_first": True},
    "cpu-small": {"width": 256, "depth": 6, "heads": 8, "mlp_dim": 1024, "dropout": 0.1, "norm_first": True},
    "gpu-base": {"width": 512, "depth": 12, "heads": 8, "mlp_dim": 2048, "dropout": 0.1, "norm_first": True},
    # maskgit_class_cond_config.py: BERT post-LN, 24 layers, 768 wide, 16 heads, MLP 3072
    "paper": {"width": 768, "depth": 24, "heads": 16, "mlp_dim": 3072, "dropout": 0.1, "norm_first": False},
}


@dataclass(frozen=True)
class MaskingConfig:
    schedule: str = "cosine"  # cosine | linear | square | cubic | sqrt
    min_ratio: float = 0.45  # at least this fraction of tokens masked in every training batch (paper App. A.4.2)
    label_drop: float = 0.1  # fraction of class labels replaced by MASK (classifier-free guidance)
    label_smoothing: float = 0.1
    class_conditional: bool = True


@dataclass(frozen=True)
class SamplingEvalConfig:
    num_samples: int = 1000  # samples (spread over the classes) for class accuracy, usage and FID
    steps: int = 12
    choice_temperature: float = 4.5  # the paper's value for 256 tokens; small grids do better near 1-2
    temperature: float = 1.0
    guidance: list[float] = field(default_factory=lambda: [0.0, 1.0])  # CFG weights evaluated (0: none)
    fid_samples: int = 500  # of the samples, how many go into sampling FID / precision / recall (0: skip)
    fid_guidance: list[float] | None = None  # the CFG weights that get FID / P / R (None: all; Inception is slow)
    pr_k: int = 3  # nearest neighbours of the precision / recall manifolds (ADM suite)
    classifier_steps: int = 1000  # training steps of the class judge (cached per data source and steps)
    speed_steps: list[int] = field(default_factory=lambda: [1, 4, 8, 12])  # sampling speed measured for each T
    speed_batch: int = 100
    compression_steps: int = 12  # M2T deterministic schedule (power alpha, QLDS order)
    compression_alpha: float = 2.2
    compression_samples: int = 1000  # held-out token grids for the compression cost (0: skip)
    batch_size: int = 250
    grid_per_class: int = 10  # images per class in the sample grid
    seed: int = 0


@dataclass(frozen=True)
class MaskGITExperiment:
    schema_version: int = SCHEMA_VERSION
    name: str = "maskgit"
    data: TokenDataConfig = field(default_factory=TokenDataConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimConfig = field(  # maskgit_class_cond_config.py: AdamW(0.9, 0.96), wd 0.045, lr 1e-4, 5k warmup
        default_factory=lambda: OptimConfig(lr=1e-4, beta1=0.9, beta2=0.96, weight_decay=0.045, warmup_steps=5000)
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: SamplingEvalConfig = field(default_factory=SamplingEvalConfig)


# ------------------------------------------------------------------------------------------------------ UViM
@dataclass(frozen=True)
class TaskConfig:
    name: str = "depth"  # depth | colorization | panoptic
    depth_bins: int = 64  # depth: target bins over [0, max_depth]
    max_depth: float = 10.0
    max_instances: int = 8  # panoptic: instance slots per image (the scenes hold at most scene.max_objects)


@dataclass(frozen=True)
class DenseDataConfig:
    image_size: int = 32
    train_size: int = 4000  # scenes rendered / photo crops for training
    eval_size: int = 500
    min_objects: int = 1  # scenes
    max_objects: int = 5
    cache_dir: str | None = None  # photos (colorization)


@dataclass(frozen=True)
class OracleConfig:
    preset: str | None = None  # a name from ORACLE_PRESETS, overlaid by the keys given explicitly
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.0
    code_grid: int = 4  # code positions per side (the paper: 16 x 16 = 256 codes)
    use_context: bool = True  # the image as context for encoder and decoder (the paper's ablation turns it off)
    code_dropout: bool = True


ORACLE_PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": {"patch": 4, "width": 128, "encoder_depth": 2, "decoder_depth": 2, "heads": 4, "mlp_dim": 512},
    # big_vision uvim vit.py: 512 px, patch 16, width 768, encoder 6, decoder 12, 12 heads, 16 x 16 codes
    "paper": {
        "patch": 16,
        "width": 768,
        "encoder_depth": 6,
        "decoder_depth": 12,
        "heads": 12,
        "mlp_dim": 3072,
        "code_grid": 16,
    },
}


@dataclass(frozen=True)
class LanguageModelConfig:
    patch: int = 4
    width: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.1


@dataclass(frozen=True)
class UViMTrainConfig:
    oracle_steps: int = 1000
    lm_steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    keep_last: int = 2
    threads: int | None = None
    device: str = "auto"
    precision: str = "auto"
    eval_at_end: bool = True
    progress: bool = True


@dataclass(frozen=True)
class UViMEvalConfig:
    batch_size: int = 250
    fid_samples: int = 0  # colorization: Inception FID of this many predictions vs the real photos (0: skip)
    grid_size: int = 8


@dataclass(frozen=True)
class UViMExperiment:
    schema_version: int = SCHEMA_VERSION
    name: str = "uvim"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DenseDataConfig = field(default_factory=DenseDataConfig)
    model: OracleConfig = field(default_factory=OracleConfig)
    quantizer: QuantizerConfig = field(  # the paper's FSQ [7,5,5,5,5]; VQ: 4096 codes, UViM recipe
        default_factory=lambda: QuantizerConfig(levels=[7, 5, 5, 5, 5], codebook_size=4096, dim=128, recipe="uvim")
    )
    lm: LanguageModelConfig = field(default_factory=LanguageModelConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, beta1=0.9, beta2=0.95, weight_decay=1e-5, warmup_steps=100)
    )
    lm_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, beta1=0.9, beta2=0.95, weight_decay=1e-6, warmup_steps=100)
    )
    train: UViMTrainConfig = field(default_factory=UViMTrainConfig)
    eval: UViMEvalConfig = field(default_factory=UViMEvalConfig)


# Model presets of each experiment schema (``model.preset``).
PRESETS: dict[type, dict[str, dict[str, Any]]] = {
    TokenizerExperiment: MODEL_PRESETS,
    MaskGITExperiment: TRANSFORMER_PRESETS,
    UViMExperiment: ORACLE_PRESETS,
}

# Keys a resumed run may change (everything else must match the run dir's config).
RESUMABLE_CHANGES = (
    "train.steps",
    "train.oracle_steps",
    "train.lm_steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_last",
    "train.threads",
)
RESUMABLE_PREFIXES = ("eval.", "train.progress", "train.eval_at_end")


# ----------------------------------------------------------------------------------------------- conversion
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int, float, str, bool, list[X], X | None, dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {sorted(f.name for f in dataclasses.fields(tp))}")
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key(s) {[prefix + k for k in unknown]}; valid keys under '{where or '<root>'}': {names}"
        )
    defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls) if f.default_factory is not MISSING}
    kwargs = {}
    for name, value in data.items():
        default = defaults.get(name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = merge(to_dict(default), value)  # keys not given keep this schema's default for the section
        kwargs[name] = _convert(value, hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain nested dict of a config dataclass (lists stay lists)."""
    return dataclasses.asdict(config)


# ------------------------------------------------------------------------------------------ files, overrides
def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, anything else in ``overlay`` replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML config file (safe loader); an empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> dict[str, Any]:
    """``"train.steps=20"`` -> ``{"train": {"steps": 20}}``; the value is parsed as YAML (``[8,5]``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from error
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _apply_presets(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    model = data.get("model")
    presets = PRESETS.get(cls, {})
    if isinstance(model, dict) and model.get("preset") is not None:
        name = model["preset"]
        if name not in presets:
            raise ConfigError(f"model.preset: unknown preset {name!r}; valid presets: {sorted(presets)}")
        data = dict(data, model=merge(presets[name], model))
    return data


def load_config(
    cls: type[T], files: list[str | Path] = (), overrides: list[str] = (), base: dict[str, Any] | None = None
) -> T:
    """Defaults <- ``base`` <- each file in order <- each override; validated into ``cls``."""
    data: dict[str, Any] = dict(base or {})
    for path in files:
        data = merge(data, read_yaml(path))
    for text in overrides:
        data = merge(data, parse_override(text))
    data = _apply_presets(cls, data)
    data.setdefault("schema_version", SCHEMA_VERSION)
    if data["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"schema_version {data['schema_version']} is not supported (this fsq reads {SCHEMA_VERSION})")
    return from_dict(cls, data)


def experiment_class(data: dict[str, Any]) -> type:
    """The schema of a run dir's ``config.yaml``: MaskGIT runs have ``masking``, UViM runs ``task``."""
    if "masking" in data:
        return MaskGITExperiment
    if "task" in data:
        return UViMExperiment
    return TokenizerExperiment


def dump_yaml(config: Any) -> str:
    """The config as YAML text (what a run dir's ``config.yaml`` holds)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def config_hash(config: Any, ignore: tuple[str, ...] = (), ignore_prefixes: tuple[str, ...] = ()) -> str:
    """A short stable hash of the config, leaving out the dotted keys in ``ignore`` / under ``ignore_prefixes``."""
    flat = {k: v for k, v in flatten(to_dict(config)).items() if k not in ignore and not k.startswith(ignore_prefixes)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def differing_keys(a: Any, b: Any) -> list[str]:
    """Dotted keys whose values differ between two configs of the same schema."""
    fa, fb = flatten(to_dict(a)), flatten(to_dict(b))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
