"""Models: the Stage I tokenizer (and, later, MaskGIT and UViM)."""

from fsq.models.autoencoder import Decoder, Encoder, Tokenizer, TokenizerSpec

__all__ = ["Decoder", "Encoder", "Tokenizer", "TokenizerSpec"]
