"""A stage defined outside the package: registered with ``fsq.stages.register`` (or declared as an entry point in
the ``fsq.stages`` group), it trains, evaluates and exports through the ``fsq`` command line like a built-in one.

The stage is a toy: an FSQ autoencoder of random 8-vectors, with its own schema, step function, evaluation and
bundle, defined here and nowhere in ``fsq``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fsq.stages
from fsq import checkpoint as ckpt
from fsq import rundir
from fsq.cli import main
from fsq.config import SCHEMAS, ConfigError, OptimConfig, TrainConfig, register_schema, resume_hash, stage_names
from fsq.config.engine import SCHEMA_VERSION
from fsq.data.sampler import StepBatchSampler
from fsq.inference.sampling import run_metadata
from fsq.io import write_json_atomic
from fsq.quantizers import FSQ
from fsq.stages import LoadedRun, Phase, RunPhase, Stage, StepOutput


@dataclass(frozen=True)
class ToyData:
    samples: int = 256  # random vectors to train on (the held-out set has as many)
    dim: int = 8


@dataclass(frozen=True)
class ToyModel:
    levels: list[int] = field(default_factory=lambda: [5, 5, 5])  # FSQ levels of the bottleneck


@dataclass(frozen=True)
class ToyExperiment:
    description: ClassVar[str] = "A toy FSQ autoencoder of random vectors (a test's stage)"

    schema_version: int = SCHEMA_VERSION
    stage: Literal["toy"] = "toy"
    name: str = "toy"
    data: ToyData = field(default_factory=ToyData)
    model: ToyModel = field(default_factory=ToyModel)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.02, beta1=0.9))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=40, batch_size=32, ema_decay=0.0))


class ToyAutoencoder(nn.Module):
    def __init__(self, dim: int, levels: list[int]) -> None:
        super().__init__()
        self.spec = {"dim": dim, "levels": list(levels)}
        self.encoder, self.quantizer, self.decoder = (
            nn.Linear(dim, len(levels)),
            FSQ(levels),
            nn.Linear(len(levels), dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.quantizer(self.encoder(x))
        return self.decoder(out.quantized), out.indices


def vectors(cfg: ToyExperiment, split: str) -> torch.Tensor:
    seed = cfg.train.seed + (0 if split == "train" else 1)
    return torch.randn(cfg.data.samples, cfg.data.dim, generator=torch.Generator().manual_seed(seed))


def phases(cfg: ToyExperiment, run_dir: Path, dist: Any, run: RunPhase) -> None:
    data = vectors(cfg, "train")
    sampler = StepBatchSampler(len(data), cfg.train.batch_size, seed=cfg.train.seed, rank=0, world_size=1)
    torch.manual_seed(cfg.train.seed)
    model = ToyAutoencoder(cfg.data.dim, cfg.model.levels)

    def step_fn(network: nn.Module, x: torch.Tensor, step: int) -> StepOutput:
        reconstruction, _ = network(x)
        return StepOutput(F.mse_loss(reconstruction, x), {})

    o = cfg.optim
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
    batch = lambda step: data[sampler.indices(step)]  # noqa: E731
    run(Phase("train", run_dir, model, optimizer, o, cfg.train.steps, batch, step_fn, spec=model.spec))


def load_run(run_dir: Path, use_ema: bool = True) -> LoadedRun:
    cfg = fsq.config.read_run_config(run_dir)
    build = lambda spec: ToyAutoencoder(spec["dim"], spec["levels"])  # noqa: E731
    model, step = ckpt.load_latest_model(run_dir, build, use_ema, expected_config_hash=resume_hash(cfg))
    return LoadedRun(Path(run_dir), cfg, step, {"autoencoder": model})


@torch.no_grad()
def evaluate(run_dir: str | Path, *, cfg: ToyExperiment, trained: Any = None) -> dict[str, Any]:
    run = fsq.stages.load_run(run_dir)
    model = run.model("autoencoder", ToyAutoencoder)
    x = vectors(cfg, "test")
    reconstruction, indices = model(x)
    results = {
        "step": run.step,
        "mse": float(F.mse_loss(reconstruction, x)),
        "codes_used": int(indices.unique().numel()),
    }
    path = rundir.eval_path(run_dir, run.step)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, path)
    return results


@dataclass
class ToyBundle:
    model: ToyAutoencoder
    metadata: dict[str, Any]

    @classmethod
    def from_run(cls, run_dir: Path) -> ToyBundle:
        run = fsq.stages.load_run(run_dir)
        return cls(run.model("autoencoder", ToyAutoencoder), run_metadata(run.cfg, run.step, run_dir))

    def save_pretrained(self, directory: str | Path, *, card: str | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ckpt.save_safetensors_atomic(self.model.state_dict(), directory / "model.safetensors")
        (directory / "config.json").write_text(json.dumps({"spec": self.model.spec, "metadata": self.metadata}))
        (directory / "README.md").write_text(card or "")


STAGE = Stage(
    schema=ToyExperiment,
    phases=phases,
    final_step=lambda cfg: cfg.train.steps,
    load_run=load_run,
    evaluate=evaluate,
    export=ToyBundle.from_run,
    usage="```python\nbundle = load_toy({ref})\n```",
)


@pytest.fixture
def toy_registered() -> Iterator[Stage]:
    fsq.stages.register(STAGE)
    try:
        yield STAGE
    finally:
        fsq.stages.unregister("toy")


@pytest.fixture
def toy_config(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text("stage: toy\nname: toy_run\ntrain:\n  threads: 1\n  progress: false\n  log_every: 10\n")
    return path


def _baseline_mse() -> float:
    """The held-out vectors' mean square: what reconstructing every vector as zero scores."""
    return float(vectors(ToyExperiment(), "test").square().mean())


def test_a_registered_stage_trains_evaluates_and_exports_through_the_cli(toy_registered, toy_config, tmp_path, capsys):
    assert "toy" in stage_names() and SCHEMAS["toy"] is ToyExperiment
    assert main(["config"]) == 0 and "A toy FSQ autoencoder of random vectors" in capsys.readouterr().out
    assert main(["config", "--schema", "toy"]) == 0 and "model.levels" in capsys.readouterr().out

    run = tmp_path / "run"
    assert main(["train", "toy", str(toy_config), "train.steps=40", "--run-dir", str(run)]) == 0
    trained = json.loads(rundir.eval_path(run, 40).read_text())
    assert trained["step"] == 40 and trained["mse"] < 0.8 * _baseline_mse()  # it learned: 3 of 8 dims kept
    assert ckpt.latest_checkpoint(run) is not None and (run / rundir.CONFIG).is_file()

    rundir.eval_path(run, 40).unlink()
    assert main(["eval", str(run)]) == 0
    assert str(rundir.eval_path(run, 40)) in capsys.readouterr().out
    assert json.loads(rundir.eval_path(run, 40).read_text()) == trained  # the same weights, the same numbers

    loaded = fsq.stages.load_run(run)
    assert loaded.cfg.stage == "toy" and loaded.step == 40 and list(loaded.models) == ["autoencoder"]
    with pytest.raises(KeyError, match="holds no model 'tokenizer'"):
        loaded.model("tokenizer", nn.Module)

    bundle = tmp_path / "bundle"
    assert main(["export", str(run), str(bundle)]) == 0
    weights = ckpt.load_safetensors(bundle / "model.safetensors")
    state = loaded.model("autoencoder", ToyAutoencoder).state_dict()
    assert weights.keys() == state.keys() and all(torch.equal(weights[k], state[k]) for k in state)
    assert json.loads((bundle / "eval.json").read_text()) == trained
    card = (bundle / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\nlibrary_name: fsq\ntags:\n") and "\n- toy\n" in card
    assert "\n---\n\n# bundle\n\nA toy FSQ autoencoder of random vectors (a test's stage).\n" in card
    assert 'bundle = load_toy("bundle")' in card and "| mse |" in card and "stage: toy" in card
    assert json.loads((bundle / "config.json").read_text())["metadata"]["stage"] == "toy"


def test_an_unregistered_stage_is_refused_by_name(toy_config, tmp_path, capsys):
    assert "toy" not in stage_names()
    with pytest.raises(SystemExit):  # argparse: not one of the stage choices
        main(["train", "toy", str(toy_config)])
    assert "invalid choice: 'toy'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown stage 'toy'; valid stages"):
        fsq.stages.get_stage("toy")


def test_an_entry_point_stage_loads_when_first_named(toy_config, tmp_path, monkeypatch, capsys):
    """A package that declares ``toy = test_external_stage:STAGE`` in the ``fsq.stages`` group: its name is a CLI
    choice before anything of it is imported, and training it loads and registers it."""
    dist = tmp_path / "site" / "toy_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[fsq.stages]\ntoy = {__name__}:STAGE\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        assert "toy" in stage_names() and "toy" not in SCHEMAS and "toy" not in fsq.stages.STAGES
        run = tmp_path / "run"
        assert main(["train", "toy", str(toy_config), "train.steps=4", "--run-dir", str(run)]) == 0
        assert fsq.stages.STAGES["toy"] is STAGE and SCHEMAS["toy"] is ToyExperiment
        assert json.loads(rundir.eval_path(run, 4).read_text())["step"] == 4
    finally:
        fsq.stages.unregister("toy")


def test_registration_refuses_a_second_stage_of_a_name_and_a_schema_without_one(toy_registered):
    assert fsq.stages.register(STAGE) is STAGE  # the same stage again: a no-op
    impostor = Stage(ToyExperiment, phases, lambda cfg: 1, load_run, evaluate, ToyBundle.from_run)
    with pytest.raises(ValueError, match="'toy' is registered already"):
        fsq.stages.register(impostor)

    @dataclass(frozen=True)
    class Nameless:
        name: str = "x"

    with pytest.raises(ConfigError, match="needs a `stage` field"):
        register_schema(Nameless)
    with pytest.raises(TypeError, match="takes a Stage"):
        fsq.stages.register(ToyExperiment)  # type: ignore[arg-type]
