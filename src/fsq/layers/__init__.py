"""Reusable network blocks."""

from fsq.layers.resnet import Downsample, ResBlock, Upsample, group_norm

__all__ = ["Downsample", "ResBlock", "Upsample", "group_norm"]
