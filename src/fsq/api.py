"""The Python API for training and evaluation: what ``fsq train`` and ``fsq eval`` do, from a script or notebook.

    import fsq

    result = fsq.train("fsq_mnist", "smoke", overrides=["train.steps=20"], run_dir="runs/mine")
    numbers = fsq.evaluate(result["run_dir"], fid_samples=0)

``fsq.train`` takes shipped config names, YAML files (merged in order, as on the command line) or a config
object (:func:`fsq.config.load_config`), and validates exactly as the CLI does: unknown keys, wrong types and
ranges (:class:`fsq.config.ConfigError`), the optional dependencies the config needs (FID, a perceptual loss, a
``hf:`` source), a run dir that holds another config's run, a run dir in use. ``fsq.evaluate`` takes a run dir;
a bundle is refused with the reason (its card holds its numbers). Both return the dicts the CLI prints.

``fsq.encode`` / ``fsq.decode`` use a tokenizer as a codec (``fsq encode`` / ``fsq decode``): a signal or its file
to a codes file and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

RUNS = Path("runs")  # where run dirs go by default: runs/<name> (the config's `name`)


def load(*configs: str | Path, overrides: Sequence[str] = (), stage: str | None = None) -> Any:
    """The validated config of ``configs`` (names or YAML files, merged in order) with dotted ``overrides``.

    ``stage`` (tokenizer, maskgit, uvim) defaults to the one the first file records."""
    from fsq.config import ConfigError, load_stage_config, resolve_configs

    if not configs:
        raise ConfigError("give at least one config: a shipped name (fsq_mnist), or a YAML file")
    return load_stage_config(resolve_configs(list(configs), stage), list(overrides), stage=stage)


def default_run_dir(cfg: Any) -> Path:
    """``runs/<name>``: where ``fsq train`` writes when no run dir is given."""
    return RUNS / cfg.name


def train(
    *configs: Any,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run and evaluate its final step, as ``fsq train STAGE CONFIG... [overrides]``.

    ``configs``: shipped names or YAML files (merged in order), or one config object (then ``overrides`` apply
    to it). ``run_dir`` defaults to ``runs/<name>``. Returns ``{"run_dir", "step"}`` and ``"eval"`` when the
    final step was evaluated now.
    """
    from fsq import app
    from fsq.config import ConfigError, with_overrides
    from fsq.distributed import process_group

    if len(configs) == 1 and not isinstance(configs[0], (str, Path)):
        cfg = with_overrides(configs[0], list(overrides))
        if stage is not None and cfg.stage != stage:
            raise ConfigError(f"the config is a {cfg.stage!r} config, not a {stage!r} one")
    else:
        cfg = load(*configs, overrides=overrides, stage=stage)
    with process_group():
        return app.train(cfg, Path(run_dir) if run_dir is not None else default_run_dir(cfg))


def evaluate(run_dir: str | Path, overrides: Sequence[str] = (), fid_samples: int | None = None) -> dict[str, Any]:
    """Evaluate a run dir's newest checkpoint on its held-out split (writes ``eval/step_N.json``), as ``fsq eval``.

    ``overrides`` may change ``eval.*`` settings; ``fid_samples`` is ``eval.fid_samples``."""
    from fsq import app
    from fsq.distributed import process_group

    extra = [f"eval.fid_samples={fid_samples}"] if fid_samples is not None else []
    with process_group():
        return app.evaluate(run_dir, [*overrides, *extra])


def encode(
    model: Any,
    signal: Any,
    *,
    out: str | Path | None = None,
    rate: float | None = None,
    resample: bool = False,
    device: str = "cpu",
    tile: bool = False,
) -> Any:
    """Encode a signal to codes with a tokenizer, as ``fsq encode MODEL INPUT --out codes.npz``.

    ``model``: a tokenizer run dir, a bundle folder, a shipped name (``mnist-fsq``), a hub repo id, or what
    :func:`fsq.inference.codec.open_model` returned. ``signal``: a file (``.wav``, an image, ``.npy``, ``.gif``,
    a video file with the ``video`` extra) or a tensor or array ``(C, *axes)`` (uint8, or float in ``[0, 1]``). Timed
    signals longer than the model's input are encoded in chunks (:mod:`fsq.inference.codec`); ``rate`` is the rate
    of an input without one (default: the model's); ``resample`` brings another rate to the model's; ``tile`` cuts
    an image of another size than the model's into tiles of its size (``fsq encode --tile``). Returns an
    :class:`~fsq.inference.codec.Encoded` (``.codes``: header and indices, ``.real_time_factor``); ``out``
    writes the codes file (``.npz``)."""
    import numpy as np
    import torch

    from fsq.inference import codec

    opened = model if isinstance(model, codec.CodecModel) else codec.open_model(model, device)
    if isinstance(signal, (str, Path)):
        return codec.encode_file(opened, signal, out, rate=rate, resample=resample, tile=tile)
    if not isinstance(signal, torch.Tensor):  # a numpy array
        signal = torch.from_numpy(np.ascontiguousarray(signal))
    encoded = codec.encode(opened, signal, rate=rate, resample=resample, tile=tile)
    if out is not None:
        encoded.codes.save(out)
    return encoded


def decode(model: Any, codes: Any, *, out: str | Path | None = None, device: str = "cpu") -> Any:
    """Decode codes back to a signal with the tokenizer that wrote them, as ``fsq decode MODEL codes.npz --out F``.

    ``codes``: a codes file, or the ``Encoded`` / ``Codes`` :func:`encode` returned. Returns a
    :class:`~fsq.inference.codec.Decoded` (``.signal``: float32 ``(C, *axes)``, ``.rate``); ``out`` writes it
    (``.wav``, ``.png``, ``.npy``, ``.gif``; the extension picks the format). Codes of another model are refused."""
    from fsq.data.media import check_output, write_signal
    from fsq.inference import codec
    from fsq.inference.codes import Codes

    opened = model if isinstance(model, codec.CodecModel) else codec.open_model(model, device)
    if isinstance(codes, (str, Path)):
        return codec.decode_file(opened, codes, out)
    held = codes.codes if isinstance(codes, codec.Encoded) else codes
    if not isinstance(held, Codes):
        raise TypeError(f"codes must be a codes file, Encoded or Codes, got {type(codes).__name__}")
    if out is not None:
        check_output(out, opened.kind)
    decoded = codec.decode(opened, held)
    if out is not None:
        write_signal(out, decoded.signal, decoded.kind, decoded.rate)
    return decoded
