"""F1CheXbert: the CheXbert labeler rebuilt from a local directory holding the published
checkpoint's layout (tiny random BERT built here), its heads read in CheXbert's order and class
mapping, and the label F1 arithmetic on hand-made label sets, checked against scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from inference.metrics import MetricError, metric_create
from inference.metrics.chexbert import (
    ALL_COLUMNS,
    CONDITIONS,
    FIVE_COLUMNS,
    corpus_f1,
    pair_f1,
    present,
)
from tests.inference.tiny_models import build_chexbert

# Head -> class: Cardiomegaly positive, Edema uncertain, Pneumothorax negative, the rest blank.
HEADS = {CONDITIONS.index("Cardiomegaly"): 1, CONDITIONS.index("Edema"): 3,
         CONDITIONS.index("Pneumothorax"): 2}  # fmt: skip
EXPECTED = dict.fromkeys(CONDITIONS) | {
    "Cardiomegaly": 1,
    "Edema": -1,
    "Pneumothorax": 0,
}
TEXT = "FINDINGS: Mild cardiomegaly.\nNo pleural effusion or pneumothorax."


@pytest.mark.parametrize("layout", ["published", "bare", "safetensors"])
def test_the_checkpoint_heads_decide_the_labels_in_chexberts_order(
    tmp_path: Path, layout: str
) -> None:
    directory = build_chexbert(tmp_path / "chexbert", HEADS, layout=layout)
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    assert metric.label([TEXT, "the lungs are clear ."]) == [EXPECTED, EXPECTED]  # type: ignore[attr-defined]


def test_no_finding_head_has_two_classes(tmp_path: Path) -> None:
    directory = build_chexbert(tmp_path / "chexbert", {13: 1})
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    (labels,) = metric.label([TEXT])  # type: ignore[attr-defined]
    assert labels["No Finding"] == 1
    assert {labels[c] for c in CONDITIONS[:13]} == {None}


def test_identical_labels_score_one_and_results_carry_the_labels_and_checkpoint(
    tmp_path: Path,
) -> None:
    directory = build_chexbert(tmp_path / "chexbert", HEADS)
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    results = metric.score([(TEXT, "Heart size is normal."), (TEXT, None)])
    assert results[0]["values"] == {
        "chexbert_micro_f1_14": 1.0,
        "chexbert_macro_f1_14": 1.0,
        "chexbert_micro_f1_5": 1.0,
        "chexbert_macro_f1_5": 1.0,
    }
    assert results[0]["detail"]["candidate_labels"] == EXPECTED
    assert results[1] == {
        "status": "skipped",
        "reason": "reference_missing",
        "values": {},
        "detail": {},
    }
    params = metric.describe()["params"]
    assert params["uncertain_as_positive"] is True
    assert len(params["checkpoint_sha256"]) == 64


def _labels(**given: int) -> dict[str, int | None]:
    return dict.fromkeys(CONDITIONS) | {k.replace("_", " "): v for k, v in given.items()}


CAND_1 = _labels(Cardiomegaly=1, Edema=-1)
REF_1 = _labels(Cardiomegaly=1, Pleural_Effusion=1)
CAND_2 = _labels(No_Finding=1)
REF_2 = _labels(No_Finding=1)


def test_pair_f1_known_answers() -> None:
    cand, ref = present(CAND_1), present(REF_1)
    # Present: Cardiomegaly in both, Edema (uncertain) only in the candidate, effusion only in
    # the reference: tp 1, fp 1, fn 1.
    assert pair_f1(cand, ref, ALL_COLUMNS) == pytest.approx((0.5, 1 / 3))
    assert pair_f1(cand, ref, FIVE_COLUMNS) == pytest.approx((0.5, 1 / 3))
    strict = present(CAND_1, uncertain_as_positive=False)
    assert pair_f1(strict, ref, ALL_COLUMNS) == pytest.approx((2 / 3, 0.5))
    # Nothing present in either report: full agreement, not 0.
    assert pair_f1(present(_labels()), present(_labels()), FIVE_COLUMNS) == (1.0, 1.0)


def test_corpus_f1_is_scikit_learns_micro_and_macro_with_zero_for_absent_labels() -> None:
    cand = np.array([present(CAND_1), present(CAND_2)])
    ref = np.array([present(REF_1), present(REF_2)])
    micro14, macro14 = corpus_f1(cand, ref, ALL_COLUMNS)
    micro5, macro5 = corpus_f1(cand, ref, FIVE_COLUMNS)
    assert (micro14, macro14) == pytest.approx((4 / 6, 2 / 14))
    assert (micro5, macro5) == pytest.approx((0.5, 1 / 5))
    for columns, micro, macro in ((ALL_COLUMNS, micro14, macro14), (FIVE_COLUMNS, micro5, macro5)):
        y_true, y_pred = ref[:, list(columns)].astype(int), cand[:, list(columns)].astype(int)
        assert micro == pytest.approx(f1_score(y_true, y_pred, average="micro", zero_division=0))
        assert macro == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_summarise_gives_the_corpus_figures_from_stored_labels(tmp_path: Path) -> None:
    metric = metric_create("f1chexbert", {"model_dir": str(tmp_path)})
    results = [
        {"status": "scored", "values": {}, "detail": {"candidate_labels": c, "reference_labels": r}}
        for c, r in ((CAND_1, REF_1), (CAND_2, REF_2))
    ]
    results.append({"status": "skipped", "reason": "reference_empty", "values": {}, "detail": {}})
    summary = metric.summarise(results)
    assert summary["chexbert_micro_f1_14"] == pytest.approx(4 / 6)
    assert summary["chexbert_macro_f1_5"] == pytest.approx(1 / 5)


def test_a_directory_without_the_checkpoint_names_it(tmp_path: Path) -> None:
    directory = build_chexbert(tmp_path / "chexbert", HEADS)
    (directory / "chexbert.pth").unlink()
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    with pytest.raises(MetricError) as failure:
        metric.score([(TEXT, TEXT)])
    assert failure.value.code == "metric_model_missing_file"
    assert "chexbert.pth" in str(failure.value)
    assert str(directory) in str(failure.value)


def test_a_checkpoint_of_another_architecture_is_refused_with_what_differs(
    tmp_path: Path,
) -> None:
    import torch

    directory = build_chexbert(tmp_path / "chexbert", HEADS)
    state = torch.load(directory / "chexbert.pth", weights_only=True)["model_state_dict"]
    del state["module.linear_heads.13.weight"]
    torch.save({"model_state_dict": state}, directory / "chexbert.pth")
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    with pytest.raises(MetricError) as failure:
        metric.score([(TEXT, TEXT)])
    assert failure.value.code == "metric_model_load"
    assert "linear_heads.13.weight" in str(failure.value)


def test_a_checkpoint_saved_by_an_older_transformers_with_position_ids_loads(
    tmp_path: Path,
) -> None:
    import torch

    directory = build_chexbert(tmp_path / "chexbert", HEADS)
    checkpoint = torch.load(directory / "chexbert.pth", weights_only=True)
    checkpoint["model_state_dict"]["module.bert.embeddings.position_ids"] = torch.arange(
        128
    ).unsqueeze(0)
    torch.save(checkpoint, directory / "chexbert.pth")
    metric = metric_create("f1chexbert", {"model_dir": str(directory)})
    assert metric.label([TEXT]) == [EXPECTED]  # type: ignore[attr-defined]
