"""Automated metrics of candidate reports against reference reports, and how well a metric
agrees with expert judgement. Plain Python: the Celery job, the benchmark and a notebook call
the same code; torch and transformers are imported only when a model-based metric loads.
"""

from inference.metrics import bertscore, chexbert, chexpert, judge, lexical, radgraph
from inference.metrics.base import (
    CANDIDATE_MISSING,
    FAILED,
    REFERENCE_EMPTY,
    REFERENCE_MISSING,
    SCORED,
    SKIPPED,
    Metric,
    MetricError,
    PairFailure,
    metric_create,
    metric_names,
    register,
)

__all__ = [
    "CANDIDATE_MISSING",
    "FAILED",
    "REFERENCE_EMPTY",
    "REFERENCE_MISSING",
    "SCORED",
    "SKIPPED",
    "Metric",
    "MetricError",
    "PairFailure",
    "bertscore",
    "chexbert",
    "chexpert",
    "judge",
    "lexical",
    "metric_create",
    "metric_names",
    "radgraph",
    "register",
]
