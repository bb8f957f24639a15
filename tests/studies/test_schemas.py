"""The reader-study JSONFields' schemas: what the services store passes, a malformed document
is refused with a message naming the field and the place, never the value.

alice (reader) drafts and rates; carol (coordinator) builds the studies.
"""

from __future__ import annotations

import copy
import timeit
import uuid

import pytest
from django.core.exceptions import ValidationError

from reviewapp.reports.models import Report
from reviewapp.studies import protocols, schemas, selectors, services
from reviewapp.studies.models import Assignment, Rating, ReaderStudy
from tests.studies.conftest import build_study

pytestmark = pytest.mark.django_db


def _first(study: ReaderStudy, user) -> Assignment:
    return Assignment.objects.filter(reader_study=study, reader=user).order_by("position").first()


def _field_check(model, field: str, value) -> None:
    """What the admin and model forms run: the field's own validators."""
    model._meta.get_field(field).run_validators(value)


def _every_answer_kind() -> dict:
    """A pairwise protocol asking a comparative choice, a per-report yes/no, a per-report text
    and a comparative text: every shape answers_resolve stores."""
    protocol = protocols.protocol_blank()
    protocol["title"] = "Every answer kind"
    protocol["questions"] += [
        {
            "id": "readable",
            "type": "yes_no",
            "scope": "per_report",
            "prompt": "Is this report readable?",
            "required": True,
        },
        {"id": "note", "type": "free_text", "scope": "per_report", "prompt": "Notes"},
        {"id": "why", "type": "free_text", "scope": "comparative", "prompt": "Why?"},
    ]
    return protocol


def test_submitted_and_revised_answers_of_every_kind_match_the_answers_schema(
    coordinator, reader, case_studies
) -> None:
    study = services.reader_study_create(
        user=coordinator, name="Kinds", protocol=_every_answer_kind(), ask_ai_guess=True
    )
    services.cases_add(
        reader_study=study,
        imaging_studies=case_studies[:2],
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    services.panel_set(reader_study=study, readers=[(reader, "")])
    services.assignments_generate(reader_study=study, seed=7)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    assignment = _first(study, reader)
    answers = {
        "preference": "a",
        "readable.A": "a",
        "readable.B": "b",
        "note.A": "Line one.\nLine two.",
        "why": "A names the nodule.",
        "ai_guess": "c",
    }

    rating = services.rating_submit(
        assignment=assignment, reader=reader, answers=answers, idempotency_key=uuid.uuid4()
    ).rating

    stored = Rating.objects.get(pk=rating.pk).answers
    assert {a["side"] for a in stored.values()} == {"", "A", "B"}
    assert stored["note.A"]["text"] == "Line one.\nLine two."
    assert "source" in stored["readable.B"]
    assert "source" not in stored["preference"]
    _field_check(Rating, "answers", stored)
    revised = services.rating_revise(
        assignment=assignment,
        reader=reader,
        expected_version=1,
        answers={**answers, "preference": "c", "note.A": ""},
        idempotency_key=uuid.uuid4(),
    ).rating
    _field_check(Rating, "answers", Rating.objects.get(pk=revised.pk).answers)


def test_answers_that_lose_a_sides_source_or_a_choices_label_are_refused(
    open_study, reader
) -> None:
    assignment = _first(open_study, reader)
    stored = services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "b"},
        idempotency_key=uuid.uuid4(),
    ).rating.answers
    unlabelled = copy.deepcopy(stored)
    del unlabelled["comparison"]["label"]
    sourced = copy.deepcopy(stored)
    sourced["comparison"]["source"] = "ai"  # a comparative answer has no side, so no source
    for bad in (unlabelled, sourced, {"Comparison!": stored["comparison"]}, ["comparison"]):
        with pytest.raises(ValidationError) as caught:
            _field_check(Rating, "answers", bad)
        assert caught.value.error_list[0].code == "invalid_answers"
        assert caught.value.messages[0].startswith("answers does not match its schema")
    with pytest.raises(ValidationError, match=r"comparison: 'label' is a required property"):
        schemas.answers_validate(unlabelled)


def test_the_reading_pages_draft_is_kept_and_a_malformed_one_refused(
    coordinator, reader, case_studies
) -> None:
    study = build_study(
        coordinator=coordinator,
        readers=[reader],
        imaging=case_studies[:2],
        protocol_key="error_correction",
    )
    assignment = _first(study, reader)
    # As reading.js saves it: codes by item id, spans as marked (reason not picked yet).
    draft = {
        "answers": {"image_quality": "a"},
        "spans": [
            {
                "side": "",
                "section": "findings",
                "start": 4,
                "end": 9,
                "category": "",
                "significant": False,
                "replacement": "",
            }
        ],
    }
    saved = services.draft_save(assignment=assignment, draft=draft, seq=1)
    assert saved.draft == draft
    _field_check(Assignment, "draft", Assignment.objects.get(pk=assignment.pk).draft)
    _field_check(Assignment, "draft", {})  # what a submit leaves

    bad_spans = {"spans": [{**draft["spans"][0], "start": -1}]}
    for bad, place in (
        ({"answers": {"image_quality": 3}}, "answers/image_quality: must be of type string"),
        (bad_spans, "spans/0/start: must be at least 0"),
        ({"answers": {}, "notes": "x"}, "'notes' was unexpected"),
    ):
        with pytest.raises(ValidationError) as caught:
            services.draft_save(assignment=assignment, draft=bad, seq=2)
        assert caught.value.error_list[0].code == "invalid_draft"
        assert place in caught.value.messages[0]
        assert caught.value.messages[0].startswith("draft does not match its schema")
    assert Assignment.objects.get(pk=assignment.pk).draft_seq == 1


def test_a_malformed_draft_is_a_400_naming_the_field(open_study, reader, api_client_for) -> None:
    assignment = _first(open_study, reader)
    response = api_client_for(reader).put(
        f"/api/v1/my/assignments/{assignment.public_id}/draft",
        {"draft": {"answers": {"comparison": ["a"]}}, "seq": 3},
        format="json",
    )
    assert response.status_code == 400
    assert "draft does not match its schema: answers/comparison" in str(response.json())


def test_a_drawn_samples_record_matches_its_schema_and_a_bad_one_is_refused(
    coordinator, case_studies
) -> None:
    study = services.reader_study_create(
        user=coordinator, name="Sampled", protocol_key="medgemini_cxr"
    )
    services.cases_add_sample(
        reader_study=study, pool=case_studies, per_stratum={"normal": 2, "abnormal": 1}, seed=5
    )
    stored = ReaderStudy.objects.get(pk=study.pk).sample_spec
    assert stored == {"per_stratum": {"normal": 2, "abnormal": 1}, "pool_size": 6}
    _field_check(ReaderStudy, "sample_spec", stored)
    _field_check(ReaderStudy, "sample_spec", {})  # before any sample

    for bad in ({"per_stratum": {"normal": True}, "pool_size": 6}, {"per_stratum": {"x": 1}}):
        with pytest.raises(ValidationError) as caught:
            _field_check(ReaderStudy, "sample_spec", bad)
        assert caught.value.error_list[0].code == "invalid_sample_spec"
        assert caught.value.messages[0].startswith("sample_spec does not match its schema")


def test_every_template_as_a_study_stores_it_matches_the_protocol_field_schema(
    coordinator,
) -> None:
    for key in protocols.TEMPLATE_KEYS:
        study = services.reader_study_create(
            user=coordinator, name=key, protocol_key=key, ask_ai_guess=key.endswith("_cxr")
        )
        _field_check(ReaderStudy, "protocol", ReaderStudy.objects.get(pk=study.pk).protocol)
    broken = protocols.protocol_template("radpeer")
    broken["questions"][0]["type"] = "slider"
    with pytest.raises(ValidationError) as caught:
        _field_check(ReaderStudy, "protocol", broken)
    assert caught.value.error_list[0].code == "invalid_protocol"
    assert "protocol does not match its schema: questions/0/type: must be one of" in str(
        caught.value
    )


def test_schema_checks_on_the_readers_hot_path_cost_well_under_a_millisecond(
    open_study, reader
) -> None:
    assignment = _first(open_study, reader)
    answers = services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "b"},
        idempotency_key=uuid.uuid4(),
    ).rating.answers
    view = selectors.case_view_for_reader(assignment=assignment)
    draft = {"answers": view["rating"]["answers"], "spans": view["rating"]["spans"]}
    for check, value in ((schemas.answers_validate, answers), (schemas.draft_validate, draft)):
        best = min(timeit.repeat(lambda c=check, v=value: c(v), number=200, repeat=3)) / 200
        # A generous bound: the machine running the tests is shared and may be busy.
        assert best < 0.001, f"{check.__name__}: {best * 1e6:.0f} µs"
