"""The rule-based CheXpert-style labeler follows the CheXpert labeler's documented rules, and its
label F1 compares a candidate with its reference.

The reports below are written for this test (no dataset text); each expected label follows the
CheXpert rules: a mention is negative under a negation, uncertain under a hedge, positive
otherwise; a report is positive for an observation if any mention is, then uncertain, then
negative; No Finding is positive only when nothing but support devices is positive or uncertain.
"""

from __future__ import annotations

import pytest

from inference.metrics import REFERENCE_EMPTY, metric_create
from inference.metrics.chexpert import OBSERVATIONS, label_report

SAMPLES: list[tuple[str, dict[str, int]]] = [
    (
        "FINDINGS: Heart size is normal. The mediastinal contours are unremarkable.\n"
        "No focal consolidation, pleural effusion, or pneumothorax.\n"
        "IMPRESSION: No acute cardiopulmonary process.",
        {
            "No Finding": 1,
            "Cardiomegaly": 0,
            "Enlarged Cardiomediastinum": 0,
            "Consolidation": 0,
            "Pleural Effusion": 0,
            "Pneumothorax": 0,
        },
    ),
    (
        "Endotracheal tube terminates 4 cm above the carina. Right internal jugular central "
        "venous catheter tip in the SVC. Moderate cardiomegaly. Interstitial edema with small "
        "bilateral pleural effusions. Left basilar opacity may represent atelectasis or "
        "pneumonia. No pneumothorax.",
        {
            "Support Devices": 1,
            "Cardiomegaly": 1,
            "Edema": 1,
            "Pleural Effusion": 1,
            "Lung Opacity": 1,
            "Atelectasis": -1,
            "Pneumonia": -1,
            "Pneumothorax": 0,
        },
    ),
    (
        "The previously seen right pleural effusion has resolved. A 1.5 cm nodule in the right "
        "upper lobe is unchanged. Pneumonia cannot be excluded in the left lower lobe. "
        "Acute fracture of the left seventh rib.",
        {
            "Pleural Effusion": 0,
            "Lung Lesion": 1,
            "Pneumonia": -1,
            "Fracture": 1,
        },
    ),
    (
        "Heart size is borderline. Mild pulmonary vascular congestion without frank edema, "
        "however small left pneumothorax is present. Pleural thickening at the right apex. "
        "No evidence of consolidation.",
        {
            "Cardiomegaly": -1,
            "Edema": 1,
            "Pneumothorax": 1,
            "Pleural Other": 1,
            "Consolidation": 0,
        },
    ),
    (
        "Possible widening of the mediastinum. Heart failure is suspected. Lungs are clear "
        "otherwise.",
        {"Enlarged Cardiomediastinum": -1, "Edema": -1, "Cardiomegaly": -1},
    ),
]


def expected_vector(labels: dict[str, int]) -> dict[str, int | None]:
    return {obs: labels.get(obs) for obs in OBSERVATIONS}


@pytest.mark.parametrize(("report", "labels"), SAMPLES, ids=[f"report-{i}" for i in range(5)])
def test_labeler_reproduces_the_expected_label_of_every_observation(
    report: str, labels: dict[str, int]
) -> None:
    assert label_report(report) == expected_vector(labels)


def test_support_devices_alone_still_count_as_no_finding() -> None:
    labels = label_report("PICC line tip in the lower SVC. Lungs are clear.")
    assert labels["Support Devices"] == 1
    assert labels["No Finding"] == 1


def test_negation_does_not_reach_past_a_new_finding_after_a_comma() -> None:
    labels = label_report("No pneumothorax, small left pleural effusion.")
    assert labels["Pneumothorax"] == 0
    assert labels["Pleural Effusion"] == 1


def test_identical_reports_have_label_f1_one() -> None:
    report = SAMPLES[1][0]
    result = metric_create("chexpert_f1").score([(report, report)])[0]
    assert result["values"] == {
        "chexpert_micro_f1_pos": 1.0,
        "chexpert_macro_f1_pos": 1.0,
        "chexpert_micro_f1_pos_unc": 1.0,
        "chexpert_macro_f1_pos_unc": 1.0,
    }


def test_pair_label_f1_by_hand() -> None:
    # Reference positives: Cardiomegaly, Edema, Pleural Effusion; uncertain: Pneumonia.
    reference = "Cardiomegaly with pulmonary edema and bilateral effusions. Possible pneumonia."
    # Candidate positives: Cardiomegaly, Pleural Effusion, Atelectasis.
    candidate = "Cardiomegaly. Bilateral pleural effusions with atelectasis."
    values = metric_create("chexpert_f1").score([(candidate, reference)])[0]["values"]
    # Positive: TP 2 (cardiomegaly, effusion), FP 1 (atelectasis), FN 1 (edema) -> 4/6.
    assert values["chexpert_micro_f1_pos"] == pytest.approx(4 / 6)
    # Macro over the 4 observations positive in either: 1, 1, 0, 0.
    assert values["chexpert_macro_f1_pos"] == pytest.approx(0.5)
    # Positive or uncertain adds pneumonia as a miss: TP 2, FP 1, FN 2 -> 4/7; macro 2/5.
    assert values["chexpert_micro_f1_pos_unc"] == pytest.approx(4 / 7)
    assert values["chexpert_macro_f1_pos_unc"] == pytest.approx(2 / 5)


def test_corpus_label_f1_pools_pairs_rather_than_averaging_them() -> None:
    metric = metric_create("chexpert_f1")
    results = metric.score(
        [
            ("Cardiomegaly.", "Cardiomegaly."),
            ("No acute process.", "Small right pleural effusion."),
            ("Pneumothorax.", None),
        ]
    )
    summary = metric.summarise(results)
    # Pooled: Cardiomegaly TP 1; effusion FN 1; No Finding FP 1 -> micro 2/4.
    assert summary["chexpert_micro_f1_pos"] == pytest.approx(0.5)
    # Per observation: Cardiomegaly 1, Effusion 0, No Finding 0 -> macro 1/3.
    assert summary["chexpert_macro_f1_pos"] == pytest.approx(1 / 3)
    assert results[2]["reason"] == "reference_missing"


def test_blank_reference_is_skipped_by_the_labeler_metric() -> None:
    result = metric_create("chexpert_f1").score([("Cardiomegaly.", "")])[0]
    assert result["status"] == "skipped"
    assert result["reason"] == REFERENCE_EMPTY
