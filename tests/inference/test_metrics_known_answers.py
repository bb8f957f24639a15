"""Known answers from the tools the field uses: the weight-free metrics reproduce RadEval's
regression snapshot, and the rule-based labeler reproduces the CheXpert labeler's own sample
reports file label for label.

The data are copied unchanged into ``tests/inference/data/`` with their source and licence
(``radeval/regression_samples.json``, ``chexpert_labeler/SOURCE.md`` and ``LICENSE``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from inference.metrics import metric_create
from inference.metrics.chexpert import OBSERVATIONS, label_report

DATA = Path(__file__).parent / "data"
RADEVAL = json.loads((DATA / "radeval" / "regression_samples.json").read_text())
PAIRS = list(zip(RADEVAL["hyps"], RADEVAL["refs"], strict=True))


def test_corpus_bleu_and_its_orders_match_radeval_to_four_decimals() -> None:
    bleu = metric_create("bleu")
    summary = bleu.summarise(bleu.score(PAIRS))
    detailed = RADEVAL["expected"]["detailed"]
    assert round(summary["bleu_4"], 4) == RADEVAL["expected"]["default"]["bleu"] == 0.0826
    for n in (1, 2, 3):
        assert round(summary[f"bleu_{n}"], 4) == detailed[f"bleu_{n}"]


def test_rouge_l_matches_radeval_per_pair_and_on_average() -> None:
    rouge = metric_create("rouge_l")
    results = rouge.score(PAIRS)
    expected = RADEVAL["expected"]["per_sample"]["rougeL"]
    assert [r["values"]["rouge_l"] for r in results] == pytest.approx(expected, abs=1e-12)
    summary = rouge.summarise(results)
    assert round(summary["rouge_l"], 4) == RADEVAL["expected"]["default"]["rougeL"] == 0.3224


def test_pair_bleu_matches_radeval_within_its_zero_guard() -> None:
    # RadEval's scorer adds tiny guards (1e-15, 1e-9) so an order with no match gives 3.5e-05
    # or 1e-16 where the unsmoothed formula gives 0: equal to four decimals, as published.
    results = metric_create("bleu").score(PAIRS)
    expected = RADEVAL["expected"]["per_sample"]["bleu"]
    assert [r["values"]["bleu_4"] for r in results] == pytest.approx(expected, abs=5e-5)


def _chexpert_rows() -> list[tuple[str, dict[str, int | None]]]:
    reports = list(csv.reader((DATA / "chexpert_labeler" / "sample_reports.csv").open()))
    with (DATA / "chexpert_labeler" / "labeled_reports.csv").open() as handle:
        labeled = list(csv.DictReader(handle))
    assert [r[0] for r in reports] == [row["Reports"] for row in labeled]
    return [
        (
            row["Reports"],
            {obs: None if row[obs] == "" else int(float(row[obs])) for obs in OBSERVATIONS},
        )
        for row in labeled
    ]


@pytest.mark.parametrize("index", range(4))
def test_the_labeler_reproduces_the_chexpert_labelers_sample_reports(index: int) -> None:
    report, expected = _chexpert_rows()[index]
    assert label_report(report) == expected
