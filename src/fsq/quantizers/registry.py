"""Quantizer families by name: each family's settings (its config section), builder and what callers ask of it.

A family is one :class:`Family` registration: its ``name`` (the ``quantizer.kind`` of a config), its ``section``
(a frozen dataclass of ``kind`` and the family's own settings: the config section and the model spec at once),
``build(section, channel_axis)`` and the questions statistics, token export and reports ask (per-channel level
digits for histograms, per-step metrics, indices per token position). Callers ask these, never test a kind::

    section = QuantizerSection(kind="lfq", dim=12)      # the family's section (any registered kind)
    quantizer = section.build(channel_axis=1)
    family_of(quantizer).level_digits(quantizer, indices)

Built in: ``fsq`` (:class:`~fsq.quantizers.fsq.FSQ`), ``residual_fsq`` (:class:`~fsq.quantizers.residual.
ResidualFSQ`), ``vq`` (:class:`~fsq.quantizers.vq.VQ`), ``lfq`` (:class:`~fsq.quantizers.lfq.LFQ`) and ``bsq``
(:class:`~fsq.quantizers.bsq.BSQ`). A family defined elsewhere registers the same way (:func:`register`), or
is declared by its package as an entry point of the ``fsq.quantizers`` group (``round = my_pkg.quant:FAMILY``, a
:class:`Family`), loaded when its kind is first named (so every torchrun rank finds it by name).

This module imports no torch (configs read the sections without it); builders import their module when called.
Sections saved by fsq 0.1/0.2 held both built-in families' settings at once (``kind``, ``levels``, ``variant``,
``codebook_size``, ``dim``, ``recipe``): such a section still loads, keeping the settings of its own kind.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Annotated, Any, ClassVar, Literal

DEFAULT_KIND = "fsq"
ENTRY_POINTS = "fsq.quantizers"  # the entry-point group of families defined in other packages
# the one flat section of fsq 0.1/0.2, both families' settings at once (read back for saved runs and specs)
LEGACY_SETTINGS = frozenset({"kind", "levels", "variant", "codebook_size", "dim", "recipe"})


# ------------------------------------------------------------------------------------- value constraints
@dataclass(frozen=True)
class Bounds:
    """``Annotated[int | float, Bounds(...)]``: inclusive bounds (``open_min`` makes the lower one strict).

    The config engine calls ``check``; a ``ValueError`` becomes its ``ConfigError`` (same words as its ``Range``).
    """

    min: float | None = None
    max: float | None = None
    open_min: bool = False

    def check(self, value: Any, where: str) -> None:
        low = self.min is None or (value > self.min if self.open_min else value >= self.min)
        high = self.max is None or value <= self.max
        if not (low and high and value == value):  # NaN fails every bound
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            raise ValueError(f"{where}: {value!r} is outside {'(' if self.open_min else '['}{lo}, {hi}]")


@dataclass(frozen=True)
class MinItems:
    """``Annotated[list[...], MinItems(n)]``: a list of at least ``n`` items."""

    min: int = 1

    def check(self, value: Any, where: str) -> None:
        if len(value) < self.min:
            raise ValueError(f"{where}: needs at least {self.min} item(s), got {value!r}")


Levels = Annotated[list[Annotated[int, Bounds(min=2)]], MinItems(1)]
PositiveInt = Annotated[int, Bounds(min=1)]
Weight = Annotated[float, Bounds(min=0)]
Temperature = Annotated[float, Bounds(min=0, open_min=True)]
Bits = Annotated[int, Bounds(min=1, max=62)]  # int64 indices


# ------------------------------------------------------------------------------------------------ sections
class _SectionType(type):
    """``QuantizerSection(kind=..., **settings)`` builds the section of that kind (the family's own class)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is QuantizerSection:
            if len(args) > 1:
                raise TypeError("QuantizerSection takes the kind alone by position; give the settings by name")
            return section(**dict(zip(["kind"], args)), **kwargs)
        return super().__call__(*args, **kwargs)


@dataclass(frozen=True)
class QuantizerSection(metaclass=_SectionType):
    """A quantizer's settings: ``kind`` (a registered family) and that family's own fields.

    Calling this base class builds the registered family's section: ``QuantizerSection(kind="vq", dim=64)`` is a
    :class:`VQSection`. The config engine reads a ``quantizer`` section through :meth:`config_variant`.
    """

    variant_key: ClassVar[str] = "kind"  # the config engine picks the section class by this key

    kind: str = DEFAULT_KIND  # fsq | residual_fsq | vq | residual_vq | lfq | bsq (or a family registered by name)

    def __post_init__(self) -> None:
        expected = family(self.kind).section
        if not isinstance(self, expected):
            raise ValueError(f"kind {self.kind!r} has the section {expected.__name__}, not {type(self).__name__}")

    @classmethod
    def config_variant(cls, value: Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
        """The section class of a config mapping's ``kind`` and the mapping to read into it.

        Raises ``ValueError("kind: ...")`` for an unregistered kind; a saved fsq 0.1/0.2 section (the six flat
        settings) keeps the settings of its own kind.
        """
        kind = value.get("kind", DEFAULT_KIND)
        try:
            entry = _lookup(kind) if isinstance(kind, str) else None
        except ValueError as error:  # a declared family that does not load
            raise ValueError(f"kind: {error}") from error
        if entry is None:
            raise ValueError(f"kind: {kind!r} is not one of {kinds()}")
        chosen = entry.section
        return chosen, _without_legacy(chosen, dict(value))

    @classmethod
    def config_variants(cls) -> dict[str, type]:
        """Every registered kind and its section class (what ``fsq config --schema`` lists)."""
        return {name: family(name).section for name in kinds()}

    @property
    def code_width(self) -> int:
        """Channels of one code: what the encoder's last layer outputs and the decoder's first takes."""
        raise NotImplementedError(f"{type(self).__name__} must define code_width")

    def build(self, channel_axis: int) -> Any:
        """The quantizer module these settings describe, with channels on ``channel_axis``."""
        return family(self.kind).build(self, channel_axis)

    def describe(self) -> str:
        """One line for model cards (``FSQ, levels [8, 5, 5, 5]``)."""
        return family(self.kind).describe(self)

    def report(self) -> dict[str, Any]:
        """What evaluation files record about the quantizer: its ``quantizer`` kind and ``levels`` (or None)."""
        levels = getattr(self, "levels", None)
        return {"quantizer": self.kind, "levels": list(levels) if levels is not None else None}

    def setting(self, name: str) -> Any:
        """The value of setting ``name``, None where this family has no such setting."""
        return getattr(self, name, None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FSQSection(QuantizerSection):
    kind: str = "fsq"
    levels: Levels = field(default_factory=lambda: [8, 5, 5, 5])  # one integer >= 2 per code channel
    variant: Literal["paper", "atanh", "symmetric"] = "paper"  # the rounding numerics (see fsq.quantizers.fsq)

    @property
    def code_width(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class ResidualFSQSection(FSQSection):
    kind: str = "residual_fsq"
    num_stages: PositiveInt = 2  # FSQ stages, each quantizing the previous ones' residual (indices: one per stage)
    # training: the probability that a sample keeps only its first k stages (k uniform in 1..num_stages), so one
    # model decodes every depth (SoundStream / EnCodec / DAC quantizer dropout); 0 disables it
    quantize_dropout: Annotated[float, Bounds(min=0, max=1)] = 0.0


@dataclass(frozen=True)
class VQSection(QuantizerSection):
    kind: str = "vq"
    codebook_size: PositiveInt = 1024
    dim: PositiveInt = 256  # code width (the encoder's last layer outputs this many channels)
    recipe: Literal["maskgit", "maskgit_noentropy", "uvim", "uvim_nosplit", "uvim_short"] = "maskgit"

    @property
    def code_width(self) -> int:
        return self.dim


@dataclass(frozen=True)
class ResidualVQSection(VQSection):
    kind: str = "residual_vq"
    # no entropy term by default: MaskGIT's (temperature 0.01) spreads the later stages' codes over residuals far
    # smaller than the codebook's scale, and a third stage then made the reconstruction worse (measured in tests)
    recipe: Literal["maskgit", "maskgit_noentropy", "uvim", "uvim_nosplit", "uvim_short"] = "maskgit_noentropy"
    num_stages: PositiveInt = 2  # VQ stages, each quantizing the previous ones' residual (indices: one per stage)
    quantize_dropout: Annotated[float, Bounds(min=0, max=1)] = 0.0  # as residual_fsq's


@dataclass(frozen=True)
class LFQSection(QuantizerSection):
    kind: str = "lfq"
    dim: Bits = 10  # bits per token: the codebook has 2^dim codes
    entropy_weight: Weight = 0.1  # weight of (per-sample entropy - diversity_weight * codebook entropy)
    diversity_weight: Weight = 1.0  # weight of the codebook (batch) entropy inside the entropy term
    commitment_weight: Weight = 0.25  # weight of mean((z - sg(q))^2)
    temperature: Temperature = 0.01  # of the code distribution softmax(-||z - code||^2 / temperature)

    @property
    def code_width(self) -> int:
        return self.dim


@dataclass(frozen=True)
class BSQSection(LFQSection):
    kind: str = "bsq"
    temperature: Temperature = 0.1  # of the code distribution; u's channels are about 1/sqrt(dim) in size


def _without_legacy(chosen: type, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` less the other family's settings when it is a saved fsq 0.1/0.2 section (all flat settings)."""
    if {"levels", "codebook_size", "dim", "recipe"} <= set(value):
        own = {f.name for f in dataclasses.fields(chosen)}
        return {k: v for k, v in value.items() if k in own or k not in LEGACY_SETTINGS}  # unknown keys stay, named
    return value


def section(**settings: Any) -> QuantizerSection:
    """The section of ``settings["kind"]`` (default ``fsq``) holding the other settings.

    A setting the family lacks is a ``ValueError`` naming its settings (fsq 0.1/0.2's flat settings of the other
    built-in family are dropped: saved specs hold them).
    """
    family(settings.get("kind", DEFAULT_KIND))  # an unknown kind: the error names the registered ones
    chosen, values = QuantizerSection.config_variant(settings)
    own = [f.name for f in dataclasses.fields(chosen)]
    unknown = sorted(k for k in values if k not in own and k not in LEGACY_SETTINGS)
    if unknown:
        kind = values.get("kind", DEFAULT_KIND)
        raise ValueError(f"quantizer kind {kind!r} has no setting(s) {unknown}; its settings: {own}")
    result: QuantizerSection = chosen(**{k: v for k, v in values.items() if k in own})
    return result


# ------------------------------------------------------------------------------------------------ families
def _no_metrics(quantizer: Any) -> dict[str, float]:
    return {}


def _one(quantizer: Any) -> int:
    return 1


@dataclass(frozen=True)
class Family:
    """One quantizer family.

    Attributes:
        name: its ``quantizer.kind``.
        section: its settings dataclass (a :class:`QuantizerSection` subclass whose ``kind`` default is ``name``).
        build: ``(section, channel_axis) -> module``.
        module: the class of the modules it builds, or ``"package.module:Class"`` (imported when first asked).
        describe: ``section -> str``, one line for model cards.
        level_digits: ``(module, indices) -> (N, channels)`` int64 digits: the level each token takes on each
            code channel (histograms); None where codes are not a product of per-channel levels (VQ).
        step_metrics: ``module -> {name: value}`` logged after each training step (e.g. VQ codebook splits).
        indices_per_token: ``module -> int``: indices per token position (residual stages; 1 for most).
    """

    name: str
    section: type
    build: Callable[[Any, int], Any]
    module: type | str
    describe: Callable[[Any], str]
    level_digits: Callable[[Any, Any], Any] | None = None
    step_metrics: Callable[[Any], dict[str, float]] = _no_metrics
    indices_per_token: Callable[[Any], int] = _one

    def module_class(self) -> type:
        if isinstance(self.module, type):
            return self.module
        path, _, attr = self.module.partition(":")
        resolved: type = getattr(importlib.import_module(path), attr)
        return resolved


_FAMILIES: dict[str, Family] = {}


def register(entry: Family, *, replace: bool = False) -> Family:
    """Add a family (``replace=True`` to redefine a name); returns it. Its section's ``kind`` default must be
    its name, so that a default section is of its own kind."""
    if not replace and entry.name in _FAMILIES:
        raise ValueError(f"quantizer family {entry.name!r} is already registered (pass replace=True to redefine it)")
    if not (isinstance(entry.section, type) and issubclass(entry.section, QuantizerSection)):
        raise TypeError(f"family {entry.name!r}: section must be a QuantizerSection subclass, got {entry.section!r}")
    default = {f.name: f.default for f in dataclasses.fields(entry.section)}["kind"]
    if default != entry.name:
        raise ValueError(f"family {entry.name!r}: its section's kind defaults to {default!r}, not its name")
    _FAMILIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a family (tests that register their own)."""
    _FAMILIES.pop(name, None)


def _declared() -> list[str]:
    """The kinds other packages declare as ``fsq.quantizers`` entry points."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINTS)})


def _lookup(name: str) -> Family | None:
    """The family of ``name``: registered, or declared as an entry point (imported and registered now)."""
    if name in _FAMILIES:
        return _FAMILIES[name]
    found = list(metadata.entry_points(group=ENTRY_POINTS, name=name))
    if not found:
        return None
    if len(found) > 1:
        values = ", ".join(sorted(ep.value for ep in found))
        raise ValueError(f"quantizer {name!r} is declared by several {ENTRY_POINTS} entry points: {values}")
    try:
        loaded = found[0].load()
    except (ImportError, AttributeError) as error:
        raise ValueError(f"quantizer {name!r}: its entry point {found[0].value!r} does not load: {error}") from error
    if name not in _FAMILIES:  # importing it may have registered it
        if not isinstance(loaded, Family) or loaded.name != name:
            raise ValueError(f"the {ENTRY_POINTS} entry point {name!r} must name a Family called {name!r}")
        register(loaded)
    return _FAMILIES[name]


def kinds() -> list[str]:
    """The family names: the registered ones in registration order, then those other packages declare."""
    return [*_FAMILIES, *(name for name in _declared() if name not in _FAMILIES)]


def family(name: str) -> Family:
    """The family of kind ``name`` (``ValueError`` naming the known kinds otherwise)."""
    entry = _lookup(name)
    if entry is None:
        raise ValueError(f"unknown quantizer {name!r}; registered kinds: {kinds()}")
    return entry


def family_of(quantizer: Any) -> Family:
    """The family whose module class ``quantizer`` is (the most derived registered class it is an instance of)."""
    matches = [f for f in _FAMILIES.values() if isinstance(quantizer, f.module_class())]
    if not matches:
        raise ValueError(f"{type(quantizer).__name__} belongs to no registered quantizer family ({kinds()})")
    return max(matches, key=lambda f: len(f.module_class().__mro__))


# ----------------------------------------------------------------------------------- the built-in families
def _build_fsq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.fsq import FSQ

    return FSQ(s.levels, variant=s.variant, channel_axis=channel_axis)


def _build_residual_fsq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.residual import ResidualFSQ

    return ResidualFSQ(
        s.levels, s.num_stages, variant=s.variant, channel_axis=channel_axis, quantize_dropout=s.quantize_dropout
    )


def _build_vq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.vq import VQ

    return VQ(s.codebook_size, s.dim, recipe=s.recipe, channel_axis=channel_axis)


def _build_residual_vq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.residual_vq import ResidualVQ

    return ResidualVQ(
        s.codebook_size,
        s.dim,
        s.num_stages,
        recipe=s.recipe,
        channel_axis=channel_axis,
        quantize_dropout=s.quantize_dropout,
    )


def _binary_settings(s: Any) -> dict[str, Any]:
    names = ("entropy_weight", "diversity_weight", "commitment_weight", "temperature")
    return {name: getattr(s, name) for name in names}


def _build_lfq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.lfq import LFQ

    return LFQ(s.dim, channel_axis=channel_axis, **_binary_settings(s))


def _build_bsq(s: Any, channel_axis: int) -> Any:
    from fsq.quantizers.bsq import BSQ

    return BSQ(s.dim, channel_axis=channel_axis, **_binary_settings(s))


def _digits(quantizer: Any, indices: Any) -> Any:
    return quantizer.indices_to_digits(indices.reshape(-1))


def _first_stage_digits(quantizer: Any, indices: Any) -> Any:
    return quantizer.stage0.indices_to_digits(indices[..., 0].reshape(-1))


def _vq_splits(quantizer: Any) -> dict[str, float]:
    return {"splits": float(quantizer.last_num_splits)} if quantizer.uses_ema else {}


register(
    Family(
        "fsq",
        FSQSection,
        _build_fsq,
        "fsq.quantizers.fsq:FSQ",
        describe=lambda s: f"FSQ, levels {list(s.levels)}",
        level_digits=_digits,
    )
)
register(
    Family(
        "residual_fsq",
        ResidualFSQSection,
        _build_residual_fsq,
        "fsq.quantizers.residual:ResidualFSQ",
        describe=lambda s: f"residual FSQ, {s.num_stages} stages of levels {list(s.levels)}",
        level_digits=_first_stage_digits,
        indices_per_token=lambda q: int(q.num_stages),
    )
)
register(
    Family(
        "vq",
        VQSection,
        _build_vq,
        "fsq.quantizers.vq:VQ",
        describe=lambda s: f"VQ, {s.codebook_size} codes of width {s.dim}",
        step_metrics=_vq_splits,
    )
)
register(
    Family(
        "residual_vq",
        ResidualVQSection,
        _build_residual_vq,
        "fsq.quantizers.residual_vq:ResidualVQ",
        describe=lambda s: f"residual VQ, {s.num_stages} stages of {s.codebook_size} codes of width {s.dim}",
        indices_per_token=lambda q: int(q.num_stages),
    )
)
register(
    Family(
        "lfq",
        LFQSection,
        _build_lfq,
        "fsq.quantizers.lfq:LFQ",
        describe=lambda s: f"LFQ, 2^{s.dim} codes ({s.dim} sign bits)",
        level_digits=_digits,
    )
)
register(
    Family(
        "bsq",
        BSQSection,
        _build_bsq,
        "fsq.quantizers.bsq:BSQ",
        describe=lambda s: f"BSQ, 2^{s.dim} codes ({s.dim} sign bits on the unit sphere)",
        level_digits=_digits,
    )
)
