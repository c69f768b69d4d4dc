"""The distributed seam and the loop/stage contract, without data or a process group: micro-batch splitting, a
rank's rows and evaluation shard, rank-0 work; a small stage defined here trains a model and a critic through
the loop (the critic's step gets every micro-batch's passed tensors; accumulating equals one batch; it resumes);
and no stage reads its rank."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import fsq.stages
from fsq import distributed
from fsq.checkpoint import load_safetensors
from fsq.config import TokenizerExperiment, load_config
from fsq.distributed import DistInfo
from fsq.stages.base import Critic, Phase, RunPhase, Stage, StepOutput
from fsq.training import loop

CPU = torch.device("cpu")


def test_micro_batches_split_every_tensor_and_share_the_rest():
    batch = {"x": torch.arange(8).view(4, 2), "pair": (torch.arange(4), None), "ratio": 0.5}
    parts = loop.micro_batches(batch, 2)
    assert len(parts) == 2
    assert parts[1]["x"].tolist() == [[4, 5], [6, 7]] and parts[1]["pair"][0].tolist() == [2, 3]
    assert parts[0]["pair"][1] is None and parts[0]["ratio"] == parts[1]["ratio"] == 0.5
    assert loop.micro_batches(batch, 1) == [batch]  # one pass: the batch itself, unsplit
    with pytest.raises(ValueError, match="batch of 4 does not split into 3 equal micro-batches"):
        loop.micro_batches(batch, 3)


def test_a_ranks_rows_shard_and_rank_zero_work():
    one, second = DistInfo(0, 1, 0, CPU), DistInfo(1, 3, 1, CPU)
    rows = torch.arange(7)
    assert one.rows(rows).tolist() == rows.tolist() and second.rows(rows).tolist() == [1, 4]
    assert list(one.shard(5)) == [0, 1, 2, 3, 4] and list(second.shard(7)) == [1, 4]
    assert one.on_main(lambda: "done", "waited") == "done"
    assert second.on_main(lambda: pytest.fail("rank 1 must not run rank-0 work"), "waited") == "waited"
    model = nn.Linear(2, 2)
    assert one.wrap(model) is model  # a single process trains the module itself
    with distributed.synced(model, sync=False):  # only a DDP module skips its all-reduce
        model(torch.ones(1, 2)).sum().backward()
    assert model.weight.grad is not None
    assert distributed.current("cpu") == one  # no process group: one process, none started


# ---- a small stage defined here: a linear model, a linear critic on what the model's step passes on ----------
def _toy_stage(calls: list[tuple[int, int]]) -> Stage:
    def phases(cfg, run_dir: Path, dist: DistInfo, run: RunPhase) -> nn.Module:
        torch.manual_seed(cfg.train.seed)
        model, judge = nn.Linear(3, 3), nn.Linear(3, 1)

        def batch(step: int) -> torch.Tensor:
            rows = torch.randn(cfg.train.batch_size, 3, generator=torch.Generator().manual_seed(step))
            return dist.rows(rows)

        def step_fn(network: nn.Module, x: torch.Tensor, step: int) -> StepOutput:
            out = network(x)
            return StepOutput((out - x.flip(1)).square().mean(), {"rows": float(len(x))}, {"x": x, "out": out.detach()})

        def judge_step(network: nn.Module, passed: dict[str, torch.Tensor], step: int) -> StepOutput:
            calls.append((step, len(passed["x"])))
            loss = network(passed["out"]).mean() - network(passed["x"]).mean()
            return StepOutput(loss, {"judge": loss.detach()})

        optimizer = torch.optim.Adam(judge.parameters(), lr=0.01)
        critic = Critic("judge", judge, optimizer, "judge_optimizer", judge_step, lr=0.01, start=1)
        phase = Phase(
            name="toy",
            run_dir=run_dir,
            model=model,
            optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
            optim=cfg.optim,
            steps=cfg.train.steps,
            batch=batch,
            loss=step_fn,
            spec={},
            critic=critic,
            accumulates=True,
        )
        run(phase)
        return model

    unused = lambda *args, **kwargs: pytest.fail("not called here")  # noqa: E731
    return Stage(TokenizerExperiment, phases, lambda cfg: cfg.train.steps, unused, evaluate=unused, export=unused)


def _cfg(*overrides: str) -> TokenizerExperiment:
    base = ["train.steps=4", "train.batch_size=8", "train.checkpoint_every=2", "train.log_every=2"]
    return load_config(TokenizerExperiment, [], [*base, "train.progress=false", "train.device=cpu", *overrides])


def test_a_stage_defined_here_trains_a_model_and_its_critic_through_the_loop(tmp_path):
    calls: list[tuple[int, int]] = []
    loop.train(_toy_stage(calls), _cfg(), tmp_path / "one")
    assert calls == [(1, 8), (2, 8), (3, 8)]  # from the critic's start on, after each step
    loop.train(_toy_stage(calls := []), _cfg("train.accumulate=2"), tmp_path / "two")
    assert calls == [(s, 4) for s in (1, 1, 2, 2, 3, 3)]  # every micro-batch, not only the last
    folder = "checkpoints/step_000004"
    for name in ("model", "judge"):  # gradients accumulated over micro-batches == one batch, critic included
        a = load_safetensors(tmp_path / "one" / folder / f"{name}.safetensors")
        b = load_safetensors(tmp_path / "two" / folder / f"{name}.safetensors")
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
    assert (tmp_path / "one" / folder / "optimizer.pt").is_file()

    def kill(phase: str, step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        loop.train(_toy_stage([]), _cfg(), tmp_path / "resumed", hooks=[kill])
    loop.train(_toy_stage([]), _cfg(), tmp_path / "resumed")
    for name in ("model", "judge"):  # the critic's weights and optimizer come back from the checkpoint
        a = load_safetensors(tmp_path / "one" / folder / f"{name}.safetensors")
        b = load_safetensors(tmp_path / "resumed" / folder / f"{name}.safetensors")
        assert all(torch.equal(a[key], b[key]) for key in a), name


# ---- stages never read their rank ------------------------------------------------------------------------------
RANK_FIELDS = {"rank", "world_size", "local_rank", "is_main", "enabled"}


def test_no_stage_reads_its_rank():
    """A stage gets its rows, shards and rank-0 work from the seam; it may only hand its ``DistInfo``'s rank on to
    a data loader by keyword (``rank=dist.rank``: the loader gives each rank its share of the global batch)."""
    broken = []
    for path in sorted(Path(fsq.stages.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        handed_on = {
            id(keyword.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            for keyword in node.keywords
            if keyword.arg in RANK_FIELDS
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in RANK_FIELDS and id(node) not in handed_on:
                broken.append(f"{path.name}:{node.lineno} reads .{node.attr}")
    assert not broken, "\n".join(broken)
