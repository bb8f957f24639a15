"""Automated metrics of candidate reports against reference reports, and how well a metric
agrees with expert judgement. Plain Python: the Celery job, the benchmark and a notebook call
the same code; torch and transformers are imported only when a model-based metric loads.
"""

from inference.metrics import bertscore, chexpert, lexical
from inference.metrics.base import (
    CANDIDATE_MISSING,
    REFERENCE_EMPTY,
    REFERENCE_MISSING,
    SCORED,
    SKIPPED,
    Metric,
    MetricError,
    metric_create,
    metric_names,
    register,
)

__all__ = [
    "CANDIDATE_MISSING",
    "REFERENCE_EMPTY",
    "REFERENCE_MISSING",
    "SCORED",
    "SKIPPED",
    "Metric",
    "MetricError",
    "bertscore",
    "chexpert",
    "lexical",
    "metric_create",
    "metric_names",
    "register",
]
