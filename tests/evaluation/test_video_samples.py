"""Frame-by-frame judging of sampled clips: which frames the judge assigns to their clip's class."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsq.evaluation.video_samples import frame_agreement


class BrightnessJudge(nn.Module):
    """A stand-in judge: class = round(9 x mean brightness) of the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classes = (x.mean(dim=(1, 2, 3)) * 9).round().long()
        return nn.functional.one_hot(classes, 10).float()


def test_frame_agreement_marks_each_frame_of_each_clip():
    clips = torch.zeros(2, 1, 3, 8, 8)
    clips[0, :, 0], clips[0, :, 1], clips[0, :, 2] = 1 / 9, 1 / 9, 5 / 9  # class 1, 1, 5
    clips[1, :, :] = 2 / 9  # class 2 in every frame
    ok = frame_agreement(BrightnessJudge(), clips, torch.tensor([1, 3]))
    assert ok.tolist() == [[True, True, False], [False, False, False]]
    assert ok.double().mean().item() == pytest.approx(2 / 6)
