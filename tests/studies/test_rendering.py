"""The canonical renderer: an original report reaches the reader with no mark of its source, and
with every clinical sentence it had."""

from __future__ import annotations

import re

import pytest

from reviewapp.studies import rendering
from reviewapp.studies.rendering import section_render
from tests.studies.report_corpus import (
    FORBIDDEN_PATTERNS,
    FORBIDDEN_WORDS,
    Variant,
    variants,
)

VARIANTS = variants()
ALLOWED_CAPITALS = {"PICC", "SVC"}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".").lower()


def _rendered(variant: Variant) -> str:
    return section_render(variant.findings) + "\n" + section_render(variant.impression)


def test_the_corpus_has_at_least_sixty_distinct_originals() -> None:
    assert len({(v.findings, v.impression) for v in VARIANTS}) >= 60
    # ...in every layout, placement and case the generator knows.
    assert {v.name.split("-")[1] for v in VARIANTS} >= {"prose", "numbered", "dashes", "bullets"}
    assert sum(v.name.endswith("-caps") for v in VARIANTS) >= 20


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_no_mark_of_the_original_survives_rendering(variant: Variant) -> None:
    text = _rendered(variant)
    for word in FORBIDDEN_WORDS:
        assert not re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", text, re.IGNORECASE), (
            word,
            text,
        )
    for pattern in FORBIDDEN_PATTERNS:
        assert not pattern.search(text), (pattern.pattern, text)
    shouting = [w for w in re.findall(r"\b[A-Z]{3,}\b", text) if w not in ALLOWED_CAPITALS]
    assert not shouting, text


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_clinical_sentence_of_the_original_is_kept(variant: Variant) -> None:
    text = _norm(_rendered(variant))
    for sentence in variant.kept:
        assert _norm(sentence) in text, (sentence, text)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_a_decorated_original_reads_exactly_like_the_same_findings_written_plainly(
    variant: Variant,
) -> None:
    # The AI side writes plain prose: once rendered, the two must be indistinguishable in form.
    assert section_render(variant.findings) == section_render(variant.clean_findings)
    assert section_render(variant.impression) == section_render(variant.clean_impression)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_rendering_a_rendering_changes_nothing(variant: Variant) -> None:
    # Edited reports are stored from rendered text and rendered again: offsets must hold.
    for text in (variant.findings, variant.impression):
        once = section_render(text)
        assert section_render(once) == once


def test_plain_prose_as_a_model_writes_it_is_left_alone() -> None:
    text = (
        "The lungs are clear. The cardiac silhouette is within normal limits. A 2.3 cm nodule "
        "in the RUL may represent a granuloma. There is mild T12 wedging."
    )
    assert section_render(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "The 3.5 x 2.1 cm mass at C5-6 narrows the canal by 2/3. Findings may reflect a 10-12 mm "
        "nodule.",
        "Stable 4 mm nodule (series 3, image 45). Heart size is normal; no effusion.",
        "There is a history of prior sternotomy. The patient is status post CABG.",
        "Lines and tubes: The ET tube terminates 5 cm above the carina.",
    ],
)
def test_measurements_levels_and_clinical_words_are_not_taken_for_tells(text: str) -> None:
    assert section_render(text) == text


def test_a_signature_attestation_and_dictation_line_are_all_removed() -> None:
    findings = (
        "FINDINGS: The lungs are clear. No acute disease. Electronically signed by Jane Okafor, "
        "MD, 01/02/2020 10:32.\nI have personally reviewed the images and agree with the "
        "findings.\nReport dictated by Dr Lindqvist (resident) on 01/02/2020.\n"
        "RADIOLOGIST: TOMAS LINDQVIST, M.D."
    )
    assert section_render(findings) == "The lungs are clear. No acute disease."


def test_a_date_inside_a_finding_is_neutralised_and_the_finding_kept() -> None:
    assert (
        section_render("Compared with 01/02/2020 there is a new right basal opacity.")
        == "Compared with the prior study there is a new right basal opacity."
    )
    assert (
        section_render("The radiograph of March 3, 2019 showed a nodule, now resolved.")
        == "The radiograph showed a nodule, now resolved."
    )


def test_case_level_sections_are_dropped_but_a_finding_on_their_line_is_kept() -> None:
    text = "TECHNIQUE: PA and lateral. The lungs are clear.\nINDICATION: 65-year-old with\ncough."
    assert section_render(text) == "The lungs are clear."


def test_addendum_marker_goes_and_its_clinical_text_stays() -> None:
    text = "No acute disease.\n*** ADDENDUM ***\nA 6 mm nodule is seen on the lateral view."
    assert section_render(text) == "No acute disease. A 6 mm nodule is seen on the lateral view."


def test_numbered_bulleted_and_prose_impressions_render_alike() -> None:
    prose = section_render("Cardiomegaly. Small left effusion. No pneumothorax.")
    for listed in (
        "1. Cardiomegaly.\n2. Small left effusion.\n3. No pneumothorax.",
        "1) Cardiomegaly 2) small left effusion 3) no pneumothorax",
        "- cardiomegaly\n- small left effusion\n- no pneumothorax",
        "\u2022 Cardiomegaly\n\u2022 Small left effusion\n\u2022 No pneumothorax",
        "CARDIOMEGALY.\nSMALL LEFT EFFUSION.\nNO PNEUMOTHORAX.",
    ):
        assert section_render(listed) == prose, listed


def test_a_shouted_line_inside_a_normal_report_is_calmed_and_acronyms_kept() -> None:
    assert (
        section_render("The ET tube is in place. NO PNEUMOTHORAX ON THE PA VIEW.")
        == "The ET tube is in place. No pneumothorax on the PA view."
    )


def test_a_doctor_named_in_a_clinical_sentence_becomes_the_clinician() -> None:
    assert (
        section_render("Recommend CT as requested by Dr. Okafor.")
        == "Recommend CT as requested by the clinician."
    )


def test_the_renderer_declares_its_version() -> None:
    assert rendering.RENDERER_VERSION == 2
    assert next(name for name, _ in rendering.PIPELINE) == "unify whitespace"
