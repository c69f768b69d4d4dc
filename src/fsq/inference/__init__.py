"""Inference with trained runs: sampling (``fsq sample``) and dense prediction (``fsq predict``)."""
