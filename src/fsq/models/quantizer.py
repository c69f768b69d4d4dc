"""The quantizer inside a model, as a spec: the same fields, by the same names, as the configs' ``quantizer`` section.

A model spec holds a :class:`QuantizerSpec` (``kind``, ``levels``, ``variant`` for FSQ; ``codebook_size``, ``dim``,
``recipe`` for VQ), so a stage builds it from its config section by name (``QuantizerSpec(**section)``) rather
than copying and renaming fields; a test keeps the two field lists identical. Specs saved by fsq 0.1 (flat
``quantizer``/``code_dim``/``vq_dim``/``vq_recipe`` keys) still load through :func:`nested_quantizer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fsq.quantizers import FSQ, VQ
from fsq.quantizers.fsq import Variant


@dataclass(frozen=True)
class QuantizerSpec:
    kind: str = "fsq"  # fsq | vq
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # fsq
    variant: Variant = "paper"  # fsq
    codebook_size: int = 1024  # vq
    dim: int = 256  # vq: the code width
    recipe: str = "maskgit"  # vq

    @property
    def code_width(self) -> int:
        """Channels of a code: ``len(levels)`` for FSQ, ``dim`` for VQ."""
        return len(self.levels) if self.kind == "fsq" else self.dim

    def build(self, channel_axis: int) -> FSQ | VQ:
        """The quantizer module this spec describes."""
        if self.kind == "fsq":
            return FSQ(self.levels, variant=self.variant, channel_axis=channel_axis)
        if self.kind == "vq":
            return VQ(self.codebook_size, self.dim, recipe=self.recipe, channel_axis=channel_axis)
        raise ValueError(f"unknown quantizer {self.kind!r}; choose 'fsq' or 'vq'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LEGACY_KEYS = {"quantizer": "kind", "code_dim": "dim", "vq_dim": "dim", "vq_recipe": "recipe"}


def nested_quantizer(spec: Mapping[str, Any], spec_fields: set[str]) -> dict[str, Any]:
    """A saved model spec with its quantizer as one ``QuantizerSpec`` (fsq 0.1's flat keys moved inside)."""
    out = dict(spec)
    quantizer = out.get("quantizer")
    if isinstance(quantizer, (Mapping, QuantizerSpec)):
        return out
    names = {f.name for f in fields(QuantizerSpec)}
    moved = [k for k in out if k in LEGACY_KEYS or (k in names and k not in spec_fields)]
    flat = {LEGACY_KEYS.get(k, k): out.pop(k) for k in moved}
    out["quantizer"] = flat
    return out


def as_quantizer_spec(value: QuantizerSpec | Mapping[str, Any]) -> QuantizerSpec:
    """A :class:`QuantizerSpec` from itself or its dict (a saved spec)."""
    return value if isinstance(value, QuantizerSpec) else QuantizerSpec(**dict(value))
