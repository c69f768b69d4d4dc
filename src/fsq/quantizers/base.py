"""What every quantizer in :mod:`fsq` shares: the return type, argument checks, and device handling."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch


class QuantizerOutput(NamedTuple):
    """What a quantizer's ``forward`` returns.

    Attributes:
        quantized: the quantized tensor, same shape and dtype as the input (straight-through gradient).
        indices: int64 code indices, the input's shape without the channel axis (plus a trailing axis of
            size ``num_codebooks`` / ``num_stages`` for grouped and residual quantizers).
        aux_loss: scalar float32 training loss the quantizer asks to be added (zero for FSQ).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    aux_loss: torch.Tensor


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as a Python int ``>= minimum``, or ``ValueError`` naming ``name``.

    Integers (Python, numpy, 0-d integer tensors) and integral floats (``8.0``) pass; bools, strings, non-integral
    or non-finite numbers are refused, never converted (``int("5")`` would silently accept a string).
    """
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_complex():
        value = value.item()
    kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ValueError(f"{name} = {value!r} is not an integer; {name} must be {kind}")
    number = int(value) if isinstance(value, numbers.Integral) else int(float(value))  # exact for big ints
    if number < minimum:
        raise ValueError(f"{name} = {value!r} is < {minimum}; {name} must be {kind}")
    return number


def as_index_tensor(x: Any, what: str, device: torch.device) -> torch.Tensor:
    """``x`` (an integer tensor, or a Python int / nested list of ints) as an integer tensor; ``TypeError`` else.

    Lists are accepted everywhere an index or digit tensor is, and land on ``device`` (the quantizer's).
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x, device=device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{what} must be an integer tensor or a (nested) list of ints, got {x!r}") from error
        if x.numel() == 0:
            x = x.long()
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{what} must be an integer tensor, got {x.dtype}")
    return x


def as_float_tensor(x: Any, what: str, device: torch.device) -> torch.Tensor:
    """``x`` (a real tensor, or a number / nested list of numbers) as a floating-point tensor; ``TypeError`` else."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x, dtype=torch.float32, device=device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"{what} must be a floating-point tensor or a (nested) list of numbers, got {x!r}"
            ) from error
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{what} must be a real tensor, got {x.dtype}")
    return x if x.is_floating_point() else x.float()


def resolve_axis(channel_axis: int, ndim: int) -> int:
    """``channel_axis`` of a ``ndim``-d tensor as a non-negative axis; ``ValueError`` when it is out of range."""
    axis = channel_axis if channel_axis >= 0 else ndim + channel_axis
    if not 0 <= axis < ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for a {ndim}-d tensor")
    return axis


def checked_input_axis(z: Any, name: str, dim: int, channel_axis: int) -> int:
    """The channel axis of a quantizer's input ``z`` after checking it: a floating-point tensor (``TypeError``
    else), the axis in range and ``dim`` channels on it (``ValueError`` naming both else). ``name``: the quantizer."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"{name} input must be a floating-point tensor, got {getattr(z, 'dtype', type(z).__name__)}")
    axis = resolve_axis(channel_axis, z.ndim)
    if z.shape[axis] != dim:
        raise ValueError(
            f"{name} input has {z.shape[axis]} channels on axis {channel_axis} (shape {tuple(z.shape)}), "
            f"expected dim={dim}"
        )
    return axis


def host_checks(x: torch.Tensor) -> bool:
    """Whether checks that read ``x``'s values on the host can run: not while compiling, not on the meta device
    (shapes only, no values)."""
    return x.device.type != "meta" and not torch.compiler.is_compiling()


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """A context that disables autocast on ``device_type``; a no-op where autocast does not exist (``meta``)."""
    if device_type in ("cpu", "cuda") or torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


@runtime_checkable
class Quantizer(Protocol):
    """What models need of any quantizer module (FSQ, ResidualFSQ, VQ, LFQ, BSQ, or a registered family's).

    ``quantizer(z)`` returns :class:`QuantizerOutput`; ``indices_to_quantized(indices)`` gives back what it
    returned as ``quantized`` (float32); ``codebook_size`` counts the codes one index addresses.
    """

    codebook_size: int
    channel_axis: int

    def __call__(self, z: torch.Tensor) -> QuantizerOutput: ...

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
