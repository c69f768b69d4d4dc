"""FSQ's fused path: when it runs, and the ``torch.library`` ops that wrap its Triton kernels.

``kernel="auto"`` (the default of :class:`fsq.FSQ`) runs the fused Triton kernels on CUDA tensors when triton is
installed, and the eager torch path everywhere else; ``"eager"`` always takes the eager path; ``"triton"`` always
takes the fused one, which on CPU tensors needs Triton's interpreter (``TRITON_INTERPRET=1`` set before triton is
first imported; slow, meant for tests). Both paths give the same indices and bit-identical codes.

The kernels are wrapped as ``torch.library.custom_op`` s with fake (meta) implementations and a registered
backward, so ``torch.compile(fullgraph=True)`` traces through them without a graph break (they stay opaque to
inductor). Eager code calls the same kernels through a plain ``autograd.Function`` (:func:`quantize_eager`):
the custom-op dispatch adds host time to every call, which for small inputs is most of a step. triton itself is
imported only inside the ops, so ``import fsq`` never needs it.
"""

from __future__ import annotations

import importlib.util
import os

import torch

KERNELS: tuple[str, ...] = ("auto", "triton", "eager")


def _find_triton() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["triton"] = None (import blocked)
        return False


HAS_TRITON = _find_triton()


def check_kernel(kernel: str) -> str:
    """Validate a ``kernel`` choice; ``"triton"`` without triton installed is an error here, not at first use."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    if kernel == "triton" and not HAS_TRITON:
        raise RuntimeError("kernel='triton' needs the triton package (pip install triton); use 'auto' or 'eager'")
    return kernel


def use_triton(kernel: str, x: torch.Tensor) -> bool:
    """Whether the fused kernels process ``x`` under the ``kernel`` choice (see the module docstring)."""
    if kernel == "eager" or not HAS_TRITON:
        return False
    if x.is_cuda:
        return True
    if kernel == "auto":
        return False
    if x.device.type != "cpu" or os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            f"kernel='triton' runs on CUDA tensors, or on CPU tensors under Triton's interpreter "
            f"(TRITON_INTERPRET=1 set before triton is imported); got a {x.device.type} tensor"
            + ("" if x.device.type != "cpu" else " without TRITON_INTERPRET=1")
            + ". Use kernel='auto' or 'eager'."
        )
    return True


@torch.library.custom_op("fsq::quantize", mutates_args=())
def quantize(
    z: torch.Tensor, constants: torch.Tensor, index_constants: torch.Tensor, symmetric: bool, has_shift: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused FSQ of contiguous ``z`` (rows, d): codes in ``z``'s dtype and int64 indices (-1 for non-finite rows).

    ``constants``: float32 (5, d) shift, scale, offset, divisor, grad_scale; ``index_constants``: int64 (3, d)
    basis, digit offset, levels. Its gradient is FSQ's straight-through slope.
    """
    from fsq.quantizers import kernels

    return kernels.quantize(z, constants, index_constants, symmetric, has_shift)


@quantize.register_fake
def _(z, constants, index_constants, symmetric, has_shift):
    return torch.empty_like(z), z.new_empty(z.shape[0], dtype=torch.int64)


@torch.library.custom_op("fsq::quantize_backward", mutates_args=())
def quantize_backward(grad: torch.Tensor, z: torch.Tensor, constants: torch.Tensor, has_shift: bool) -> torch.Tensor:
    """``grad * grad_scale * (1 - tanh(z + shift)^2)``, in ``z``'s dtype (the slope is recomputed, not saved)."""
    from fsq.quantizers import kernels

    return kernels.quantize_backward(grad, z, constants, has_shift)


@quantize_backward.register_fake
def _(grad, z, constants, has_shift):
    return torch.empty_like(z)


def _setup_context(ctx, inputs, output) -> None:
    z, constants, _, _, has_shift = inputs
    ctx.save_for_backward(z, constants)
    ctx.has_shift = has_shift


def _backward(ctx, grad_codes, grad_indices):
    z, constants = ctx.saved_tensors
    grad_z = None if grad_codes is None else quantize_backward(grad_codes, z, constants, ctx.has_shift)
    return grad_z, None, None, None, None


quantize.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("fsq::indices_to_codes", mutates_args=())
def indices_to_codes(
    indices: torch.Tensor, constants: torch.Tensor, index_constants: torch.Tensor, symmetric: bool
) -> torch.Tensor:
    """Float32 codes (n, d) of int64 ``indices`` (n,), each in ``[0, codebook_size)`` (others: unspecified)."""
    from fsq.quantizers import kernels

    return kernels.indices_to_codes(indices, constants, index_constants, symmetric)


@indices_to_codes.register_fake
def _(indices, constants, index_constants, symmetric):
    return indices.new_empty((indices.shape[0], constants.shape[1]), dtype=torch.float32)


class _Quantize(torch.autograd.Function):
    """The fused forward and its straight-through backward, called directly (eager code; see the module doc)."""

    @staticmethod
    def forward(ctx, z, constants, index_constants, symmetric, has_shift):  # noqa: D102
        from fsq.quantizers import kernels

        codes, indices = kernels.quantize(z, constants, index_constants, symmetric, has_shift)
        ctx.save_for_backward(z, constants)
        ctx.has_shift = has_shift
        ctx.mark_non_differentiable(indices)
        return codes, indices

    @staticmethod
    def backward(ctx, grad_codes, grad_indices):  # noqa: D102
        from fsq.quantizers import kernels

        z, constants = ctx.saved_tensors
        grad_z = None if grad_codes is None else kernels.quantize_backward(grad_codes, z, constants, ctx.has_shift)
        return grad_z, None, None, None, None


def quantize_eager(
    z: torch.Tensor, constants: torch.Tensor, index_constants: torch.Tensor, symmetric: bool, has_shift: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quantize` (same kernels, same results), through the custom op only while ``torch.compile`` traces."""
    if torch.compiler.is_compiling():
        return quantize(z, constants, index_constants, symmetric, has_shift)
    return _Quantize.apply(z, constants, index_constants, symmetric, has_shift)
