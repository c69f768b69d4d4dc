"""The quantizers' check for NaN/Inf input: raised at the call, or later without stopping the GPU.

A check that raises inside ``forward`` must read a device value on the host, which on CUDA stalls the host until
the GPU has finished all queued work (measured on an H100: 0.1-0.7 ms per FSQ step, more than the fused kernels
themselves). So the check has modes, chosen by ``check_finite``:

- ``"sync"``: reduce, read the result, raise at the call (exact count of bad values in the message);
- ``"deferred"``: reduce on the device, copy the one-element flag to pinned host memory without waiting, and raise
  at a later call of the same module (the first whose poll finds the flag's copy complete and false), or at
  :func:`check_pending` (which waits). The error names the call that saw the bad input;
- ``"auto"`` (``check_finite=True``, the default): ``"sync"`` for CPU tensors (the CPU computes synchronously, so
  raising at the call costs nothing extra), ``"deferred"`` for CUDA tensors;
- ``"off"`` (``check_finite=False``): no check; indices of non-finite inputs are unspecified.

Under ``torch.compile`` nothing can raise inside a graph (the quantizers mark such positions with index -1
instead), and while a CUDA graph is being captured the check is skipped (a captured copy would not run again
per replay in a way the host could follow). Meta tensors (shapes only) are never checked.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import torch
from torch import nn

MODES: tuple[str, ...] = ("auto", "sync", "deferred", "off")
MAX_PENDING = 64  # flags in flight per module; beyond this the oldest is waited for (bounded host memory)


def check_mode(check_finite: bool | str) -> str:
    """The mode of a ``check_finite`` argument: ``True`` is ``"auto"``, ``False`` is ``"off"``."""
    if check_finite is True:
        return "auto"
    if check_finite is False:
        return "off"
    if isinstance(check_finite, str) and check_finite in MODES:
        return check_finite
    raise ValueError(f"check_finite must be True, False or one of {MODES}, got {check_finite!r}")


def effective_mode(mode: str, x: torch.Tensor) -> str:
    """What ``mode`` does for input ``x``: ``"sync"``, ``"deferred"`` or ``"off"`` (also ``"off"`` while compiling or
    capturing a CUDA graph, and for meta tensors: see the module docstring)."""
    if mode == "off" or torch.compiler.is_compiling() or x.device.type == "meta":  # meta tensors hold no values
        return "off"
    if x.is_cuda and torch.cuda.is_current_stream_capturing():
        return "off"
    if mode == "auto":
        return "deferred" if x.is_cuda else "sync"
    return mode


class NonFiniteInputError(ValueError):
    """NaN or Inf in a quantizer's input (a ``ValueError``, so ``except ValueError`` keeps working)."""


class PendingChecks:
    """The deferred flags of one module: ``(call number, host copy of "all finite", CUDA event or None)``.

    Not copied by ``copy.deepcopy`` or pickling (a copy starts with none pending): events cannot be copied, and
    a copy of a module has not seen the original's inputs.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.calls = 0
        self._queue: collections.deque[tuple[int, torch.Tensor, torch.cuda.Event | None]] = collections.deque()

    def __deepcopy__(self, memo: dict) -> PendingChecks:
        return PendingChecks(self.owner)

    def __getstate__(self) -> dict:
        return {"owner": self.owner, "calls": 0, "_queue": collections.deque()}

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, all_finite: torch.Tensor) -> None:
        """Queue a 0-dim bool tensor (on any device) that is false when the call's input held NaN/Inf."""
        self.calls += 1
        if all_finite.is_cuda:
            host = all_finite.to("cpu", non_blocking=True)  # lands in pinned memory; read only once the event is done
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = all_finite, None
        self._queue.append((self.calls, host, event))
        while len(self._queue) > MAX_PENDING:
            self._pop()

    def poll(self, wait: bool = False) -> None:
        """Raise :class:`NonFiniteInputError` for the oldest completed flag that is false; ``wait`` finishes all."""
        while self._queue:
            event = self._queue[0][2]
            if event is not None and torch.cuda.is_current_stream_capturing():
                return  # no event queries inside a CUDA graph capture
            if not wait and event is not None and not event.query():
                return
            self._pop()

    def _pop(self) -> None:
        call, host, event = self._queue.popleft()
        if event is not None:
            event.synchronize()
        if not bool(host):
            self._queue.clear()  # later calls saw outputs of a broken model: report the first bad call only
            raise NonFiniteInputError(
                f"{self.owner} input contained non-finite values (NaN or Inf) in forward call {call}, found after "
                "the call (check_finite='deferred', the default on CUDA, checks without stopping the GPU; "
                "check_finite='sync' raises at the call). Fix the encoder, or pass check_finite=False to skip "
                "the check"
            )


def check_pending(module: nn.Module) -> None:
    """Wait for the deferred non-finite checks of every quantizer in ``module`` and raise if one found NaN/Inf.

    Training loops call it before saving a checkpoint; call it after the last batch of an evaluation run on a
    GPU (a deferred check otherwise raises only at the quantizer's next call).
    """
    for pending in _pending_in(module):
        pending.poll(wait=True)


def _pending_in(module: nn.Module) -> Iterator[PendingChecks]:
    for sub in module.modules():
        pending = getattr(sub, "_pending_checks", None)
        if isinstance(pending, PendingChecks):
            yield pending
