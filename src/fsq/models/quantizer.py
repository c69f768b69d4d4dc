"""The quantizer inside a model, as a spec: the configs' ``quantizer`` section itself.

A model spec holds a :class:`QuantizerSpec`: the registered family's section (``kind`` and that family's own
settings, :mod:`fsq.quantizers.registry`), so a stage passes its config section through unchanged and the model
builds it with ``spec.quantizer.build(channel_axis)``. ``QuantizerSpec(kind=..., **settings)`` gives the section of
that kind. Specs saved by fsq 0.1 (flat ``quantizer``/``code_dim``/``vq_dim``/``vq_recipe`` keys) and by fsq 0.2
(one section holding both built-in families' settings) still load through :func:`nested_quantizer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from fsq.quantizers.registry import LEGACY_SETTINGS, QuantizerSection

QuantizerSpec = QuantizerSection

LEGACY_KEYS = {"quantizer": "kind", "code_dim": "dim", "vq_dim": "dim", "vq_recipe": "recipe"}
# every flat key a spec saved by fsq 0.1 may hold beside the model's own settings (:func:`nested_quantizer` moves
# them inside), as the aliases a saved spec's check accepts
FLAT_KEYS = {**LEGACY_KEYS, **{name: name for name in LEGACY_SETTINGS}}


def nested_quantizer(spec: Mapping[str, Any], spec_fields: set[str]) -> dict[str, Any]:
    """A saved model spec with its quantizer as one ``QuantizerSpec`` (fsq 0.1's flat keys moved inside)."""
    out = dict(spec)
    quantizer = out.get("quantizer")
    if isinstance(quantizer, (Mapping, QuantizerSection)):
        return out
    names = LEGACY_SETTINGS | {f.name for f in fields(QuantizerSection)}
    moved = [k for k in out if k in LEGACY_KEYS or (k in names and k not in spec_fields)]
    flat = {LEGACY_KEYS.get(k, k): out.pop(k) for k in moved}
    out["quantizer"] = flat
    return out


def as_quantizer_spec(value: QuantizerSection | Mapping[str, Any]) -> QuantizerSection:
    """A :class:`QuantizerSpec` from itself or its dict (a saved spec)."""
    return value if isinstance(value, QuantizerSection) else QuantizerSection(**dict(value))
