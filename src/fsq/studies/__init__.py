"""The paper's studies, each with its plan, its run and its (torch-free) report: ``KINDS`` maps a study kind to
its module, which has ``write_report(study_dir)``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from fsq.studies import codebook, codec, maskgit, photos, uvim, video
from fsq.studies.common import read_study

KINDS: dict[str, ModuleType] = {
    "codebook-size": codebook,
    "levels": codebook,
    "maskgit": maskgit,
    "uvim": uvim,
    "video": video,
    "codec": codec,
    "photos": photos,
}


def write_report(study_dir: str | Path) -> Path:
    """Rebuild a study folder's report from its run dirs, by the kind its ``study.json`` records."""
    return KINDS[read_study(study_dir)["kind"]].write_report(study_dir)
