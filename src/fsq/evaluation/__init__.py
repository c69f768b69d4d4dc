"""Per-stage evaluation of run dirs, built on the stage parts (:mod:`fsq.stages`); metrics are :mod:`fsq.metrics`."""
