"""BLEU and ROUGE-L reproduce RadEval's published figures, and blank references are skipped.

The sample pairs below are test data from RadEval (github.com/jbdel/RadEval, MIT licence):
``tests/test_basics.py`` (six pairs, with the expected BLEU and ROUGE-L written there) and the
README's first example (two pairs, BLEU 0.36).
"""

from __future__ import annotations

import pytest
from sacrebleu.metrics.bleu import BLEU

from inference.metrics import REFERENCE_EMPTY, REFERENCE_MISSING, SKIPPED, metric_create

RADEVAL_REFS = [
    "No acute cardiopulmonary process.",
    "No radiographic findings to suggest pneumonia.",
    "1.Status post median sternotomy for CABG with stable cardiac enlargement and calcification "
    "of the aorta consistent with atherosclerosis.Relatively lower lung volumes with no focal "
    "airspace consolidation appreciated.Crowding of the pulmonary vasculature with possible "
    "minimal perihilar edema, but no overt pulmonary edema.No pleural effusions or "
    "pneumothoraces.",
    "1. Left PICC tip appears to terminate in the distal left brachiocephalic vein.2. Mild "
    "pulmonary vascular congestion.3. Interval improvement in aeration of the lung bases with "
    "residual streaky opacity likely reflective of atelectasis.Interval resolution of the left "
    "pleural effusion.",
    "No definite acute cardiopulmonary process.Enlarged cardiac silhouette could be accentuated "
    "by patient's positioning.",
    "Increased mild pulmonary edema and left basal atelectasis.",
]
RADEVAL_HYPS = [
    "No acute cardiopulmonary process.",
    "No radiographic findings to suggest pneumonia.",
    "Status post median sternotomy for CABG with stable cardiac enlargement and calcification of "
    "the aorta consistent with atherosclerosis.",
    "Relatively lower lung volumes with no focal airspace consolidation appreciated.",
    "Crowding of the pulmonary vasculature with possible minimal perihilar edema, but no overt "
    "pulmonary edema.",
    "No pleural effusions or pneumothoraces.",
]
README_REFS = [
    "Mild cardiomegaly with small bilateral pleural effusions and basilar atelectasis.",
    "No pleural effusions or pneumothoraces.",
]
README_HYPS = [
    "Mildly enlarged cardiac silhouette with small pleural effusions and dependent bibasilar "
    "atelectasis.",
    "No pleural effusions or pneumothoraces.",
]


def pairs_of(hyps: list[str], refs: list[str]) -> list[tuple[str | None, str | None]]:
    return list(zip(hyps, refs, strict=True))


def test_corpus_bleu_4_matches_radeval_published_value() -> None:
    bleu = metric_create("bleu")
    summary = bleu.summarise(bleu.score(pairs_of(RADEVAL_HYPS, RADEVAL_REFS)))
    assert summary["bleu_4"] == pytest.approx(0.16681006823938177, abs=5e-5)


def test_corpus_bleu_of_the_readme_example_rounds_to_radeval_value() -> None:
    bleu = metric_create("bleu")
    summary = bleu.summarise(bleu.score(pairs_of(README_HYPS, README_REFS)))
    assert round(summary["bleu_4"] or 0, 2) == 0.36


def test_rouge_l_mean_matches_radeval_published_value() -> None:
    rouge = metric_create("rouge_l")
    summary = rouge.summarise(rouge.score(pairs_of(RADEVAL_HYPS, RADEVAL_REFS)))
    assert summary["rouge_l"] == pytest.approx(0.44681719607092746, abs=5e-5)


def test_bleu_orders_fall_from_1_to_4_on_a_partial_match() -> None:
    bleu = metric_create("bleu")
    summary = bleu.summarise(bleu.score(pairs_of(RADEVAL_HYPS, RADEVAL_REFS)))
    assert summary["bleu_1"] >= summary["bleu_2"] >= summary["bleu_3"] >= summary["bleu_4"] > 0


def test_identical_reports_score_one_and_disjoint_reports_zero() -> None:
    report = "FINDINGS: Heart size is normal. No pleural effusion or pneumothorax."
    results = metric_create("bleu").score([(report, report), ("Cardiomegaly.", report)])
    assert results[0]["values"]["bleu_4"] == pytest.approx(1.0)
    assert results[1]["values"] == dict.fromkeys(("bleu_1", "bleu_2", "bleu_3", "bleu_4"), 0.0)
    rouge = metric_create("rouge_l").score([(report, report)])
    assert rouge[0]["values"]["rouge_l"] == pytest.approx(1.0)


def test_pair_bleu_is_sacrebleu_formula_on_that_pair() -> None:
    results = metric_create("bleu").score(pairs_of(RADEVAL_HYPS, RADEVAL_REFS))
    for hyp, ref, result in zip(RADEVAL_HYPS, RADEVAL_REFS, results, strict=True):
        for n in range(1, 5):
            expected = BLEU(tokenize="none", max_ngram_order=n, smooth_method="none")
            value = expected.corpus_score([hyp], [[ref]]).score / 100
            assert result["values"][f"bleu_{n}"] == pytest.approx(value, abs=1e-9)


def test_blank_or_missing_reference_is_named_and_skipped_not_scored_zero() -> None:
    for name in ("bleu", "rouge_l"):
        metric = metric_create(name)
        pairs = [
            ("No acute cardiopulmonary process.", None),
            ("No acute cardiopulmonary process.", "  \n "),
            ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
        ]
        results = metric.score(pairs)
        assert [r["status"] for r in results] == [SKIPPED, SKIPPED, "scored"]
        assert [r.get("reason") for r in results[:2]] == [REFERENCE_MISSING, REFERENCE_EMPTY]
        assert results[0]["values"] == {}
        assert metric.summarise(results)[metric.headline] == pytest.approx(1.0)


def test_summary_of_only_skipped_pairs_has_no_value() -> None:
    bleu = metric_create("bleu")
    assert bleu.summarise(bleu.score([("Cardiomegaly.", "")]))["bleu_4"] is None


def test_blank_candidate_is_scored_zero_because_the_model_wrote_nothing() -> None:
    result = metric_create("rouge_l").score([("", "Small left pleural effusion.")])[0]
    assert result["status"] == "scored"
    assert result["values"]["rouge_l"] == 0.0


def test_rouge_l_with_the_memoised_stemmer_equals_rouge_scores_default_tokenizer() -> None:
    from rouge_score import rouge_scorer

    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    hyps = [*RADEVAL_HYPS, *README_HYPS, "Opacities/effusions: worsening, RESOLVING; 12mm."]
    refs = [*RADEVAL_REFS, *README_REFS, "Effusion resolved, opacity worsened (1.2 cm)."]
    results = metric_create("rouge_l").score(pairs_of(hyps, refs))
    for hyp, ref, result in zip(hyps, refs, results, strict=True):
        expected = plain.score(ref, hyp)["rougeL"]
        assert result["values"]["rouge_l"] == expected.fmeasure
        assert result["values"]["rouge_l_precision"] == expected.precision
        assert result["values"]["rouge_l_recall"] == expected.recall


def test_bit_parallel_lcs_equals_rouge_scores_table_on_random_token_lists() -> None:
    import random

    from rouge_score.rouge_scorer import _lcs_table

    from inference.metrics.lexical import lcs_length

    rng = random.Random(0)
    for _ in range(500):
        a = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        expected = _lcs_table(a, b)[-1][-1] if a and b else 0
        assert lcs_length(a, b) == expected
