from __future__ import annotations

import copy

import pytest
from django.core.exceptions import ValidationError

from reviewapp.studies import protocols
from reviewapp.studies.protocols import Sides

# DESIGN.md section 5.1, verbatim.
MEDGEMINI_WORDING = {
    "ai_much_better": (
        "AI report captures key clinically relevant findings that are not found in original "
        "report. AI report would result in correct patient management and original report "
        "would not."
    ),
    "ai_better": (
        "AI report captures more relevant findings, but both would result in the same correct "
        "patient management."
    ),
    "similar": (
        "Both reports capture similar findings in the image and would result in correct "
        "patient management."
    ),
    "original_better": (
        "Original report captures more relevant findings, but both would result in the same "
        "correct patient management."
    ),
    "original_much_better": (
        "Original report captures key clinically relevant findings that are not found in AI "
        "report. original report would result in correct patient management and AI report "
        "would not."
    ),
    "neither_correct": "Neither report would result in correct patient management.",
}
RUBRIC_NAMES = {
    "candidate": "AI report",
    "Candidate": "AI report",
    "original": "original report",
    "Original": "Original report",
}


@pytest.mark.parametrize("key", protocols.TEMPLATE_KEYS)
def test_every_builtin_template_passes_its_schema(key: str) -> None:
    protocols.protocol_validate(protocols.protocol_template(key))


def test_medgemini_template_carries_the_published_wording_verbatim() -> None:
    protocol = protocols.protocol_template("medgemini_cxr")
    options = protocol["questions"][0]["options"]
    rendered = {o["value"]: protocols.text_render(o["label"], RUBRIC_NAMES) for o in options}
    assert rendered == MEDGEMINI_WORDING
    assert protocols.outcome_values(protocol, "equivalent_or_better") == {
        "similar",
        "ai_better",
        "ai_much_better",
    }
    assert protocols.outcome_values(protocol, "same_or_superior_management") == {
        "similar",
        "ai_better",
        "ai_much_better",
        "original_better",
    }


def test_reader_sees_report_letters_where_the_rubric_says_ai_and_original() -> None:
    protocol = protocols.protocol_template("medgemini_cxr")
    form = protocols.form_build(protocol, Sides(candidate_side="B"))
    labels = [o["label"] for o in form[0]["options"]]
    text = " ".join(labels)
    assert "AI" not in text
    assert "riginal" not in text
    assert labels[0] == (
        "Report A captures key clinically relevant findings that are not found in Report B. "
        "Report A would result in correct patient management and Report B would not."
    )


@pytest.mark.parametrize("key", ["medgemini_cxr", "flamingo_cxr"])
def test_the_form_is_identical_whichever_side_the_ai_report_is_on(key: str) -> None:
    protocol = protocols.protocol_prepare(protocols.protocol_template(key), ask_ai_guess=True)
    assert protocols.form_build(protocol, Sides(candidate_side="A")) == protocols.form_build(
        protocol, Sides(candidate_side="B")
    )


def test_the_same_letter_means_opposite_sources_when_sides_swap() -> None:
    protocol = protocols.protocol_template("medgemini_cxr")
    common = {"raw_spans": [], "report_texts": {}, "sources": {"A": "ai", "B": "original"}}
    ai_on_a = protocols.answers_resolve(
        protocol, Sides(candidate_side="A"), raw_answers={"comparison": "a"}, **common
    )
    common["sources"] = {"A": "original", "B": "ai"}
    ai_on_b = protocols.answers_resolve(
        protocol, Sides(candidate_side="B"), raw_answers={"comparison": "a"}, **common
    )
    assert ai_on_a.answers["comparison"]["value"] == "ai_much_better"
    assert ai_on_b.answers["comparison"]["value"] == "original_much_better"
    neither = protocols.answers_resolve(
        protocol, Sides(candidate_side="B"), raw_answers={"comparison": "f"}, **common
    )
    assert neither.answers["comparison"]["value"] == "neither_correct"


def test_a_broken_protocol_is_refused_with_each_problem_named() -> None:
    protocol = protocols.protocol_template("radpeer")
    broken = copy.deepcopy(protocol)
    broken["questions"][1]["show_if"] = {"question": "nope", "in": ["2"]}
    broken["questions"].append(copy.deepcopy(broken["questions"][0]))
    with pytest.raises(ValidationError) as caught:
        protocols.protocol_validate(broken)
    messages = caught.value.message_dict["protocol"]
    assert any("show_if must name an earlier question" in m for m in messages)
    assert any("score: the id is used twice" in m for m in messages)
    with pytest.raises(ValidationError) as caught:
        protocols.protocol_validate({"key": "x", "questions": []})
    assert any("'version' is a required property" in m for m in caught.value.messages)


def test_radpeer_modifier_is_only_asked_after_a_discrepancy() -> None:
    protocol = protocols.protocol_template("radpeer")
    sides = Sides(candidate_side="")
    texts = {"": {"findings": "x", "impression": "y"}}
    concur = protocols.answers_resolve(
        protocol,
        sides,
        raw_answers={"score": "a"},
        raw_spans=[],
        sources={"": "ai"},
        report_texts=texts,
    )
    assert concur.answers["score"]["value"] == "1"
    with pytest.raises(ValidationError) as caught:
        protocols.answers_resolve(
            protocol,
            sides,
            raw_answers={"score": "b"},
            raw_spans=[],
            sources={"": "ai"},
            report_texts=texts,
        )
    assert "answers.modifier" in caught.value.message_dict


def test_acceptability_threshold_is_configurable() -> None:
    template = protocols.protocol_template("ct_acceptability")
    default = protocols.protocol_prepare(template, ask_ai_guess=False)
    assert protocols.outcome_values(default, "acceptable") == {"no_revision", "minor_revision"}
    strict = protocols.protocol_prepare(
        template, ask_ai_guess=False, acceptable_threshold="no_revision"
    )
    assert protocols.outcome_values(strict, "acceptable") == {"no_revision"}
    with pytest.raises(ValidationError):
        protocols.protocol_prepare(template, ask_ai_guess=False, acceptable_threshold="bogus")


def test_a_composed_protocol_whose_options_would_reveal_the_side_is_refused() -> None:
    protocol = protocols.protocol_template("medgemini_cxr")
    # The published shorthand "AI < Original" rendered as "A < B" / "B < A" would tell a
    # reader which side is which from the order of the list.
    protocol["questions"][0]["options"][3]["short"] = "{cand_short} < {orig_short}"
    with pytest.raises(ValidationError) as caught:
        protocols.protocol_validate(protocol)
    assert "would reveal it" in caught.value.message_dict["protocol"][0]
