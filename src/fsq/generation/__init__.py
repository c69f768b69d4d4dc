"""MaskGIT decoding: masking schedules and the iterative sampler (torch only, no model or config)."""

from fsq.generation.compression import compression_bits
from fsq.generation.mask_schedule import (
    SCHEDULES,
    decoding_counts,
    gamma,
    gamma_inverse,
    masked_after_step,
    power_schedule,
    qlds_order,
    random_mask,
    training_mask_count,
)
from fsq.generation.sampler import SampleResult, sample

__all__ = [
    "SCHEDULES",
    "compression_bits",
    "SampleResult",
    "decoding_counts",
    "gamma",
    "gamma_inverse",
    "masked_after_step",
    "power_schedule",
    "qlds_order",
    "random_mask",
    "sample",
    "training_mask_count",
]
