"""The metrics overview as people and scripts read it: the JSON of the API, the rows of the
ReXVal-style CSV, and the scatter plots. One shape for the page, the API and the download."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from reviewapp.analysis.selectors import csv_cell_neutralise
from reviewapp.metrics.models import MetricResult
from reviewapp.metrics.selectors import MetricsOverview
from reviewapp.studies.models import ReaderStudy

_STYLE: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "radreview-metrics",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_COLOURS = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#4d4d4d"]


def overview_json(overview: MetricsOverview) -> dict[str, Any]:
    """The overview as plain JSON (ids as public ids, no report text)."""
    columns = overview.expert.columns
    return {
        "values": overview.values,
        "outcomes": [
            {"id": c.id, "label": c.label, "higher_is_worse": c.higher_is_worse} for c in columns
        ],
        "sources": [
            {
                "source": row["label"],
                "reports": row["reports"],
                "scored": row["scored"],
                "metric_means": dict(zip(overview.values, row["metrics"], strict=True)),
                "expert_means": dict(zip([c.id for c in columns], row["expert"], strict=True)),
            }
            for row in overview.source_rows
        ],
        "skipped": [
            {
                "imaging_study": str(item["study"].public_id),
                "report_version_id": str(item["report"].public_id),
                "source": item["source"],
                "reason": item["reason"],
            }
            for item in overview.skipped
        ],
        "agreement": overview.agreement,
        "source_agreement": overview.source_agreement,
        "resamples": overview.resamples,
    }


def _csv_number(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def rexval_rows(overview: MetricsOverview, *, reader_study: ReaderStudy) -> Iterator[list[str]]:
    """ReXVal-style rows: one per candidate report version, with every metric value, the
    expert outcomes averaged over readers, and each reader's error counts per category,
    clinically significant and not (the layout of ReXVal's per-rater error table)."""
    expert = overview.expert
    metric_names = sorted(
        {
            name
            for results in overview.results.values()
            for result in results.values()
            for name in result.values
        }
    )
    error_columns = [
        (reader, category, significant)
        for reader in expert.readers
        for category, _ in expert.categories
        for significant in (True, False)
    ]
    yield [
        "study",
        "imaging_study",
        "report_version_id",
        "report_version",
        "source",
        "reference_version_id",
        "status",
        "skip_reason",
        "failed_metrics",
        *metric_names,
        *[f"expert_{c.id}" for c in expert.columns],
        *[f"n_readers_{c.id}" for c in expert.columns],
        *[
            f"{reader}_{category}_{'significant' if significant else 'not_significant'}"
            for reader, category, significant in error_columns
        ],
    ]
    for pair in overview.pairs:
        results = overview.results.get(pair.key, {})
        values: dict[str, float] = {}
        reasons = {r.reason for r in results.values() if r.status == MetricResult.Status.SKIPPED}
        failed = {
            r.metric: r.reason for r in results.values() if r.status == MetricResult.Status.FAILED
        }
        scored = [r for r in results.values() if r.status == MetricResult.Status.SCORED]
        for result in scored:
            values.update(result.values)
        if not results:
            status = "not_computed"
        elif reasons:
            status = "skipped"
        elif failed:
            # A metric that failed (e.g. a judge's unparseable answer) is named, never a
            # blank value on a row called scored.
            status = "partly_failed" if scored else "failed"
        else:
            status = "scored"
        per_reader = expert.per_report.get(pair.candidate.id, {})
        errors = expert.errors.get(pair.candidate.id, {})
        yield [
            str(reader_study.public_id),
            str(pair.imaging_study.public_id),
            str(pair.candidate.public_id),
            str(pair.candidate.version),
            csv_cell_neutralise(
                pair.candidate.source.label if pair.candidate.source else pair.candidate.kind
            ),
            str(pair.reference.public_id) if pair.reference else "",
            status,
            ";".join(sorted(reasons)),
            csv_cell_neutralise("; ".join(f"{m}: {why}" for m, why in sorted(failed.items()))),
            *[_csv_number(values.get(name)) for name in metric_names],
            *[
                _csv_number(sum(v) / len(v) if (v := per_reader.get(c.id)) else None)
                for c in expert.columns
            ],
            *[str(len(per_reader.get(c.id, []))) for c in expert.columns],
            *[
                str(errors[reader].get((category, significant), 0)) if reader in errors else ""
                for reader, category, significant in error_columns
            ],
        ]


def rexval_csv(overview: MetricsOverview, *, reader_study: ReaderStudy) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rexval_rows(overview, reader_study=reader_study))
    return buffer.getvalue()


def scatter_svg(
    points: list[tuple[float, float, str]], *, x_label: str, y_label: str, title: str
) -> str:
    """One point per candidate report: the metric (x) against the readers' mean (y), coloured
    by source; a standalone SVG document (no script, no external reference)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
        sources = sorted({s for _, _, s in points})
        for n, source in enumerate(sources):
            xs = [x for x, _, s in points if s == source]
            ys = [y for _, y, s in points if s == source]
            ax.scatter(xs, ys, s=14, alpha=0.7, color=_COLOURS[n % len(_COLOURS)], label=source)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title, loc="left")
        ax.grid(alpha=0.3)
        if 1 < len(sources) <= 6:
            ax.legend(fontsize=7, frameon=False)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        return buffer.getvalue()
