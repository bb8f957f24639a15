"""The metric interface, the per-pair result shape and the registry.

A metric scores candidate reports against reference reports, one ``(candidate, reference)``
pair at a time but in one call, so that a metric can vectorise across the batch (n-gram
statistics into numpy arrays, token embeddings into one padded tensor). Every pair gets one
result dict, in order::

    {"status": "scored", "values": {"bleu_4": 0.31, ...}, "detail": {...}}
    {"status": "skipped", "reason": "reference_empty", "values": {}, "detail": {}}
    {"status": "failed", "reason": "judge_unparseable", "values": {}, "detail": {}}

A missing or blank reference is named and skipped, never scored: a zero there would read as
"the candidate is wrong" when the truth is "there is nothing to compare against", and it would
drag every mean and correlation computed from the stored values. A blank *candidate* is scored
(it is a model's failure to write, and the metric should say so).

A pair the metric itself could not score (a judge model whose answer has none of the counts
the prompt asked for) is *failed*, with a stable reason and no values: one metric's failure
for one report, named, never a zero; the other metrics of that pair are unaffected.

``detail`` holds what a corpus-level summary needs beyond the values (BLEU's n-gram counts,
the labeler's label vectors), so a summary can be recomputed from stored results without
rescoring. Nothing here logs or raises with report text in the message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from inference.types import InferenceError

Tier = Literal["weight-free", "model"]
Pair = tuple[str | None, str | None]  # (candidate, reference)
Result = dict[str, Any]

SCORED = "scored"
SKIPPED = "skipped"
FAILED = "failed"
# Reasons a pair is not scored; stable strings, stored beside the pair.
REFERENCE_MISSING = "reference_missing"
REFERENCE_EMPTY = "reference_empty"
CANDIDATE_MISSING = "candidate_missing"


class MetricError(InferenceError):
    """A metric cannot run (unknown name, bad parameter, a model directory that does not
    load); ``str()`` is safe to show and says what to change, ``code`` is stable."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def skip_reason(candidate: str | None, reference: str | None) -> str | None:
    """Why this pair cannot be scored, or None when it can."""
    if reference is None:
        return REFERENCE_MISSING
    if not reference.strip():
        return REFERENCE_EMPTY
    if candidate is None:
        return CANDIDATE_MISSING
    return None


@dataclass(frozen=True)
class PairFailure:
    """What ``_score_valid`` returns for a pair the metric could not score; ``reason`` is a
    stable code (``judge_unparseable``) stored beside the pair."""

    reason: str


Scored = tuple[dict[str, float], dict[str, Any]] | PairFailure


class Metric(ABC):
    """One automated metric. Subclasses set the class attributes and implement
    ``_score_valid``; ``score`` does the skipping so no metric can score a blank reference."""

    name: ClassVar[str]
    # Bump when a change to the code changes any value, so stored results say which rules made them.
    version: ClassVar[str]
    tier: ClassVar[Tier]
    # The keys of ``values`` in every scored result.
    value_names: ClassVar[tuple[str, ...]]
    # The one value a table shows for this metric (e.g. BLEU-4 of BLEU-1...4).
    headline: ClassVar[str]
    # True when a larger value means a candidate closer to the reference.
    higher_is_better: ClassVar[bool] = True
    # Pairs per scoring call in a job: fewer for a slow metric, so its progress bar moves.
    batch_pairs: ClassVar[int] = 250

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)

    def describe(self) -> dict[str, Any]:
        """Name, version, tier and parameters: what a stored result carries to be reproducible."""
        return {
            "name": self.name,
            "version": self.version,
            "tier": self.tier,
            "params": dict(self.params),
            "values": list(self.value_names),
            "headline": self.headline,
        }

    def score(self, pairs: Sequence[Pair]) -> list[Result]:
        """Score each (candidate, reference) pair; skipped pairs say why and carry no values."""
        results: list[Result | None] = [None] * len(pairs)
        valid: list[int] = []
        for index, (candidate, reference) in enumerate(pairs):
            reason = skip_reason(candidate, reference)
            if reason is None:
                valid.append(index)
            else:
                results[index] = {"status": SKIPPED, "reason": reason, "values": {}, "detail": {}}
        if valid:
            candidates = [pairs[i][0] or "" for i in valid]
            references = [pairs[i][1] or "" for i in valid]
            scored = self._score_valid(candidates, references)
            if len(scored) != len(valid):
                raise MetricError(
                    f"Metric {self.name} returned {len(scored)} results for {len(valid)} pairs.",
                    code="metric_result_count",
                )
            for index, item in zip(valid, scored, strict=True):
                if isinstance(item, PairFailure):
                    results[index] = {
                        "status": FAILED, "reason": item.reason, "values": {}, "detail": {},
                    }  # fmt: skip
                else:
                    values, detail = item
                    results[index] = {"status": SCORED, "values": values, "detail": detail}
        return [r for r in results if r is not None]

    @abstractmethod
    def _score_valid(self, candidates: list[str], references: list[str]) -> Sequence[Scored]:
        """(values, detail), or a PairFailure, for each pair; every reference is non-blank."""

    def summarise(self, results: Sequence[Result]) -> dict[str, float | None]:
        """Corpus-level values over the scored results; the mean unless the metric defines its
        own corpus statistic (BLEU). Skipped and failed results are left out, never counted as
        zero."""
        scored = [r["values"] for r in results if r["status"] == SCORED]
        return {
            name: (sum(v[name] for v in scored) / len(scored) if scored else None)
            for name in self.value_names
        }


_REGISTRY: dict[str, type[Metric]] = {}


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator: make a metric available by its name."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise MetricError(f"Two metrics are named {cls.name}.", code="metric_name_taken")
    _REGISTRY[cls.name] = cls
    return cls


def metric_names(*, tier: Tier | None = None) -> list[str]:
    """The registered metric names, in registration order, optionally of one tier."""
    return [name for name, cls in _REGISTRY.items() if tier is None or cls.tier == tier]


def metric_create(name: str, params: Mapping[str, Any] | None = None) -> Metric:
    """Build a registered metric with its parameters; an unknown name says which exist."""
    cls = _REGISTRY.get(name)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise MetricError(f"No metric is named {name!r}; known: {known}.", code="metric_unknown")
    factory: Callable[..., Metric] = cls
    try:
        return factory(**dict(params or {}))
    except TypeError as exc:
        raise MetricError(
            f"Metric {name} does not take these parameters: {exc}", code="metric_bad_params"
        ) from exc
