"""Reusable network blocks."""

from fsq.layers.resnet import Downsample, ResBlock, Upsample, group_norm
from fsq.layers.transformer import TransformerDecoder, TransformerEncoder, init_bert_

__all__ = ["Downsample", "ResBlock", "TransformerDecoder", "TransformerEncoder", "Upsample", "group_norm", "init_bert_"]
