"""The one distributed seam: process-group setup, wrapping trainable modules, ``no_sync``, reductions, rank-0 work
and evaluation shards.

The same command runs alone or under ``torchrun --nproc-per-node=N -m fsq ...``: ``setup()`` reads ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` and starts NCCL on CUDA or gloo on the CPU, once per process; evaluation finds the
group that training or the CLI set up (:func:`current`). Everything that depends on the rank goes through here
(the :class:`DistInfo` methods): the loop wraps every trainable module of a phase (:meth:`DistInfo.wrap`, the GAN
discriminator too) and skips the gradient all-reduce on all but the last micro-batch (:func:`synced`); rank 0
writes (:meth:`DistInfo.on_main`); a rank takes its rows of a global batch (:meth:`DistInfo.rows`) and its share
of an evaluation (:meth:`DistInfo.shard`). Stages never read their rank: the seam and the data loaders, given
the ``DistInfo``, hand each rank its shard.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run (rank ``rank`` of ``world_size``, its device) and the rank-dependent work."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` as it trains: DDP-wrapped under torchrun (its gradients averaged over ranks in backward,
        its weights broadcast from rank 0 once), itself in a single process."""
        if not self.enabled:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor over the global batch: ``rank, rank + W, ...``, the rows whose items the
        step samplers (:class:`~fsq.data.sampler.StepBatchSampler`) give this rank."""
        return tensor[self.rank :: self.world_size]

    def shard(self, n: int) -> range:
        """This rank's share of ``range(n)`` for evaluation: every index exactly once over the ranks."""
        return shard_indices(n, self.rank, self.world_size)

    def on_main(self, work: Callable[[], T], otherwise: T) -> T:
        """Run ``work`` on rank 0 while the other ranks wait; returns its result there, ``otherwise`` elsewhere.

        For what one process writes (checkpoints, run-dir files, exported tokens) or computes alone (an
        evaluation run on one rank); the other ranks read what it wrote only after it is done.
        """
        result = work() if self.is_main else otherwise
        barrier()
        return result


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when available (one GPU per local rank), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device=cuda but CUDA is not available")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device("cpu")


DEFAULT_TIMEOUT_MINUTES = 10.0
_started: list[bool] = []  # one entry once this process started a process group (setup)


def started_a_group() -> bool:
    """Whether :func:`setup` started a process group in this process (it may be destroyed since)."""
    return bool(_started)


def setup(device: str = "auto", timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> DistInfo:
    """Initialise the process group when launched by torchrun (idempotent); a single process otherwise.

    ``timeout_minutes`` bounds every collective: a rank that fails or hangs stops the others after that long
    (torch's default is 30 minutes).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        dist.init_process_group(
            backend="nccl" if torch_device.type == "cuda" else "gloo", timeout=timedelta(minutes=timeout_minutes)
        )
        _started.append(True)
    return DistInfo(rank, world_size, local_rank, torch_device)


def current(device: str = "auto") -> DistInfo:
    """The process group :func:`setup` started (a single process when none was), without starting one."""
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, pick_device(device, local_rank))
    return DistInfo(0, 1, 0, pick_device(device))


@contextmanager
def synced(network: nn.Module, sync: bool) -> Iterator[None]:
    """Backward passes in the block all-reduce a DDP ``network``'s gradients only when ``sync`` (the last
    micro-batch of a step; the others accumulate locally under ``no_sync``); anything else is unaffected."""
    if sync or not isinstance(network, nn.parallel.DistributedDataParallel):
        yield
    else:
        with network.no_sync():
            yield


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group() -> Iterator[None]:
    """Destroys the process group (under torchrun) when the block ends. On a clean end every rank first waits for
    the others: a rank that destroyed the group and exited while another still ran its last work (rank 0 writing
    the run dir) could abort that one inside gloo ("terminate called without an active exception"). Garbage is
    collected first, so that DDP modules no longer in use drop their hold on the group and its threads end with it,
    not during the interpreter's finalization (the same abort; see :func:`leave`; measured as there: none of 200
    ranks aborted on a normal exit with this collection, 3 of 280 without). On an error the group is destroyed at
    once (the other ranks stop at their next collective's timeout)."""
    try:
        yield
    except BaseException:
        teardown()
        raise
    gc.collect()
    barrier()
    teardown()


def leave(code: int) -> NoReturn:
    """End this process now with exit status ``code``, standard streams flushed, skipping the interpreter's
    finalization (``atexit`` handlers, module teardown): how a torchrun worker of the ``fsq`` command ends.

    Gloo's worker threads outlive :func:`process_group`'s ``destroy_process_group`` (a DDP module still holds the
    group) and may drop the last reference to a tensor after the interpreter began finalizing; taking the GIL then
    ends the thread by a forced unwind that crosses a C++ destructor, which calls ``std::terminate``: the rank
    aborts ("terminate called without an active exception", SIGABRT) after its work is done, and torchrun reports
    a finished run as failed. Measured on the 2-core CPU machine (two ranks of gloo DDP train 3 steps, then barrier
    and destroy; 140 launches): 3 of 280 ranks aborted on a normal exit; none of 200 ended by this function. Whatever
    needs closing (writers, progress bars, data-loader workers) is closed by the command itself before it returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_true(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (``flag`` itself in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place; returns the tensor). A no-op in a single process."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def shard_indices(n: int, rank: int, world_size: int) -> range:
    """This rank's share of ``range(n)``: ``rank, rank + W, ...``. No padding: every index exactly once."""
    return range(rank, n, world_size)


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a (n_rank, ...) tensor from every rank (sizes may differ) on all ranks, rank order."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    sizes = [torch.zeros(1, dtype=torch.int64, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    longest = max(int(s) for s in sizes)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(s)] for g, s in zip(gathered, sizes)])
