from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.utils import ProgrammingError

from reviewapp.core.errors import ApplicationError, ConflictError
from reviewapp.reports.models import Report
from reviewapp.studies import protocols, selectors, services
from reviewapp.studies.models import Assignment, Rating, RatingWrite, ReaderStudy
from tests.studies.conftest import build_study, make_case_study, make_imaging_study

pytestmark = pytest.mark.django_db


def _first(study: ReaderStudy, user) -> Assignment:
    return Assignment.objects.filter(reader_study=study, reader=user).order_by("position").first()


def test_sides_are_balanced_within_each_reader_and_across_the_panel(
    coordinator, make_user, db
) -> None:
    from reviewapp.core.roles import Role

    readers = [make_user(f"reader{i}", Role.READER) for i in range(5)]
    imaging = [make_case_study(i) for i in range(7)]
    study = build_study(coordinator=coordinator, readers=readers, imaging=imaging, open_it=False)
    total_a = 0
    for reader in readers:
        sides = Counter(
            Assignment.objects.filter(reader_study=study, reader=reader).values_list(
                "candidate_side", flat=True
            )
        )
        assert sides["A"] + sides["B"] == 7
        assert abs(sides["A"] - sides["B"]) == 1  # seven cases: exactly 3/4 or 4/3
        total_a += sides["A"]
    assert abs(total_a - (35 - total_a)) <= 1
    # Report A really is the candidate wherever the side says so.
    for a in Assignment.objects.filter(reader_study=study).select_related("report_a"):
        assert (a.report_a.kind == Report.Kind.AI) == (a.candidate_side == "A")


def test_orders_are_shuffled_per_reader_from_the_recorded_seed(
    coordinator, reader, second_reader, case_studies
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader, second_reader], imaging=case_studies, seed=99
    )
    assert study.assignment_seed == 99

    def order(s: ReaderStudy, user) -> list[tuple[int, str]]:
        return list(
            Assignment.objects.filter(reader_study=s, reader=user)
            .order_by("position")
            .values_list("case__imaging_study_id", "candidate_side")
        )

    again = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=case_studies,
        seed=99,
        name="replay",
    )
    assert order(study, reader) == order(again, reader)
    assert order(study, reader) != order(study, second_reader)
    with pytest.raises(ApplicationError, match=r"never redrawn|only possible while"):
        services.assignments_generate(reader_study=study, seed=1)


def test_k_readers_per_case_spreads_the_load_evenly(coordinator, make_user, db) -> None:
    from reviewapp.core.roles import Role

    readers = [make_user(f"r{i}", Role.READER) for i in range(4)]
    imaging = [make_case_study(i) for i in range(10)]
    study = build_study(
        coordinator=coordinator,
        readers=readers,
        imaging=imaging,
        reads_per_case=3,
        open_it=False,
    )
    per_case = Counter(Assignment.objects.filter(reader_study=study).values_list("case", flat=True))
    assert set(per_case.values()) == {3}
    loads = Counter(Assignment.objects.filter(reader_study=study).values_list("reader", flat=True))
    assert max(loads.values()) - min(loads.values()) <= 1
    assert sum(loads.values()) == 30


def test_stratified_sample_is_reproducible_from_its_seed(coordinator, db) -> None:
    pool = [make_case_study(i, stratum="normal" if i < 6 else "abnormal") for i in range(20)]
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    result = services.cases_add_sample(
        reader_study=study,
        pool=pool,
        per_stratum={"normal": 2, "abnormal": 5},
        candidate_reports=Report.objects.filter(kind="ai"),
        seed=7,
    )
    study.refresh_from_db()
    assert study.sample_seed == 7
    chosen = {c.imaging_study_id for c in result.added}
    assert Counter(c.stratum for c in result.added) == {"normal": 2, "abnormal": 5}
    again, _ = services.stratified_sample(
        pool=list(reversed(pool)), per_stratum={"normal": 2, "abnormal": 5}, seed=7
    )
    assert {s.pk for s in again} == chosen
    with pytest.raises(ValidationError, match="only 6 available"):
        services.cases_add_sample(reader_study=study, pool=pool, per_stratum={"normal": 9}, seed=1)


def test_studies_missing_a_report_are_named_and_the_rest_still_added(coordinator, db) -> None:
    good = make_case_study(1)
    no_ai = make_case_study(2)
    Report.objects.filter(study=no_ai, kind="ai").delete()
    no_original = make_case_study(3)
    Report.objects.filter(study=no_original, kind="original").delete()
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    result = services.cases_add(
        reader_study=study,
        imaging_studies=[good, no_ai, no_original],
        candidate_reports=Report.objects.filter(kind="ai"),
    )
    assert [c.imaging_study for c in result.added] == [good]
    # Each skipped study is named the one way staff pages name studies.
    assert f"Study {no_ai.label}: no AI report of the chosen source." in result.problems
    assert f"Study {no_original.label}: no original report." in result.problems


def test_a_study_cannot_open_while_a_case_lacks_readable_report_text(
    coordinator, reader, case_studies
) -> None:
    # Report texts never change in place, so the unreadable report is one written that way.
    unreadable = make_imaging_study(99)
    Report.objects.create(study=unreadable, kind="original", findings="Clear lungs.")
    Report.objects.create(study=unreadable, kind="ai", findings="Dictated by robot")
    study = build_study(
        coordinator=coordinator,
        readers=[reader],
        imaging=[*case_studies, unreadable],
        open_it=False,
    )
    with pytest.raises(ApplicationError, match="cannot open"):
        services.reader_study_open(reader_study=study)
    assert ReaderStudy.objects.get(pk=study.pk).status == "draft"


def test_submit_stores_source_resolved_answers_and_timings(open_study, reader) -> None:
    assignment = _first(open_study, reader)
    services.assignment_open(assignment=assignment)
    services.draft_save(assignment=assignment, draft={"answers": {"comparison": "b"}}, seq=1)
    result = services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "b"},
        idempotency_key=uuid.uuid4(),
        active_seconds=12.5,
    )
    rating = result.rating
    expected = "ai_better" if assignment.candidate_side == "A" else "original_better"
    assert rating.answers["comparison"]["value"] == expected
    assert {rating.source_a, rating.source_b} == {"ai", "original"}
    assert rating.source_a == ("ai" if assignment.candidate_side == "A" else "original")
    assignment.refresh_from_db()
    assert assignment.status == "submitted"
    assert assignment.opened_at <= assignment.first_answer_at <= assignment.submitted_at
    assert rating.active_seconds == 12.5
    assert assignment.draft == {}


def test_a_retried_submit_returns_the_same_rating(open_study, reader) -> None:
    assignment = _first(open_study, reader)
    key = uuid.uuid4()
    first = services.rating_submit(
        assignment=assignment, reader=reader, answers={"comparison": "c"}, idempotency_key=key
    )
    retry = services.rating_submit(
        assignment=assignment, reader=reader, answers={"comparison": "c"}, idempotency_key=key
    )
    assert retry.rating.pk == first.rating.pk
    assert not retry.created
    assert Rating.objects.count() == 1
    with pytest.raises(ConflictError, match="already used for different answers"):
        services.rating_submit(
            assignment=assignment, reader=reader, answers={"comparison": "d"}, idempotency_key=key
        )
    with pytest.raises(ConflictError, match="already has a submitted rating"):
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"comparison": "d"},
            idempotency_key=uuid.uuid4(),
        )


def test_a_stale_revision_is_refused_not_silently_applied(open_study, reader) -> None:
    assignment = _first(open_study, reader)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    services.rating_revise(
        assignment=assignment,
        reader=reader,
        expected_version=1,
        answers={"comparison": "a"},
        idempotency_key=uuid.uuid4(),
    )
    with pytest.raises(ConflictError, match="now version 2") as caught:
        services.rating_revise(
            assignment=assignment,
            reader=reader,
            expected_version=1,
            answers={"comparison": "e"},
            idempotency_key=uuid.uuid4(),
        )
    assert caught.value.extra == {"version": 2}
    rating = Rating.objects.get(assignment=assignment)
    assert rating.version == 2
    assert rating.answers["comparison"]["code"] == "a"


@pytest.mark.django_db(transaction=True)
def test_history_keeps_every_version_including_raw_sql_updates(open_study, reader) -> None:
    # Each write commits on its own, as in production, so the raw statements below run
    # outside any application context.
    assignment = _first(open_study, reader)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    services.rating_revise(
        assignment=assignment,
        reader=reader,
        expected_version=1,
        answers={"comparison": "b"},
        idempotency_key=uuid.uuid4(),
    )
    rating = Rating.objects.get(assignment=assignment)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE studies_rating SET version = 77 WHERE id = %s", [rating.pk])
    Rating.objects.filter(pk=rating.pk).update(ai_guess="bulk")
    history = selectors.rating_history(rating=rating)
    assert [h["version"] for h in history] == [1, 2, 77, 77]
    assert history[0]["action"] == "rating_submit"
    assert history[0]["by_user_id"] == reader.pk
    assert history[1]["action"] == "rating_revise"
    assert history[2]["action"] == "database change outside the application"
    assert history[3]["ai_guess"] == "bulk"


@pytest.mark.parametrize(
    "statement",
    ["UPDATE studies_ratingevent SET version = 5", "DELETE FROM studies_ratingevent"],
)
def test_the_history_table_refuses_updates_and_deletes(open_study, reader, statement) -> None:
    assignment = _first(open_study, reader)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    with (
        pytest.raises(ProgrammingError, match="Cannot update or delete"),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


def test_drafts_ignore_an_older_save_that_arrives_late(open_study, reader) -> None:
    assignment = _first(open_study, reader)
    services.draft_save(assignment=assignment, draft={"answers": {"comparison": "b"}}, seq=5)
    services.draft_save(assignment=assignment, draft={"answers": {"comparison": "a"}}, seq=4)
    assignment.refresh_from_db()
    assert assignment.draft == {"answers": {"comparison": "b"}}
    assert assignment.draft_seq == 5


def test_nothing_is_accepted_while_paused_or_locked(open_study, reader) -> None:
    assignment = _first(open_study, reader)
    services.reader_study_pause(reader_study=open_study)
    with pytest.raises(ApplicationError, match="paused"):
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"comparison": "c"},
            idempotency_key=uuid.uuid4(),
        )
    services.reader_study_open(reader_study=open_study)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    services.reader_study_lock(reader_study=open_study)
    with pytest.raises(ApplicationError, match="locked"):
        services.rating_revise(
            assignment=assignment,
            reader=reader,
            expected_version=1,
            answers={"comparison": "a"},
            idempotency_key=uuid.uuid4(),
        )
    with pytest.raises(ApplicationError, match="cannot be reopened"):
        services.reader_study_open(reader_study=open_study)


def test_protocol_is_frozen_once_a_rating_exists(open_study, reader) -> None:
    services.rating_submit(
        assignment=_first(open_study, reader),
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    with pytest.raises(ApplicationError, match="frozen"):
        services.reader_study_protocol_update(
            reader_study=open_study, protocol=protocols.protocol_template("flamingo_cxr")
        )


def test_error_correction_stores_spans_and_an_edited_report(
    coordinator, reader, case_studies
) -> None:
    study = build_study(
        coordinator=coordinator,
        readers=[reader],
        imaging=case_studies[:2],
        protocol_key="error_correction",
    )
    assignment = _first(study, reader)
    findings = selectors.case_view_for_reader(assignment=assignment)["reports"][0]["findings"]
    start = findings.index("clear")
    with pytest.raises(ValidationError) as caught:
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"image_quality": "a"},
            spans=[
                {
                    "side": "",
                    "section": "findings",
                    "start": 0,
                    "end": 9999,
                    "category": "false_finding",
                    "significant": True,
                }
            ],
            idempotency_key=uuid.uuid4(),
        )
    assert "spans.0" in caught.value.message_dict
    rating = services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"image_quality": "a"},
        spans=[
            {
                "side": "",
                "section": "findings",
                "start": start,
                "end": start + 5,
                "category": "false_finding",
                "significant": True,
                "replacement": "hyperinflated",
            }
        ],
        idempotency_key=uuid.uuid4(),
    ).rating
    span = rating.error_spans.get()
    assert span.report_id == assignment.report_a_id
    assert (span.category, span.is_significant) == ("false_finding", True)
    edited = rating.edited_report
    assert edited.kind == Report.Kind.EDITED
    assert edited.derived_from_id == assignment.report_a_id
    assert edited.author == reader
    assert "The lungs are hyperinflated." in edited.findings


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_stores_one_rating(coordinator, reader, second_reader) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    assignment = _first(study, reader)
    key = uuid.uuid4()
    barrier = threading.Barrier(4)
    results: list[object] = []

    def submit() -> None:
        try:
            barrier.wait()
            results.append(
                services.rating_submit(
                    assignment=assignment,
                    reader=reader,
                    answers={"comparison": "c"},
                    idempotency_key=key,
                ).rating.pk
            )
        except Exception as error:
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1, results
    assert Rating.objects.filter(assignment=assignment).count() == 1
    assert RatingWrite.objects.filter(idempotency_key=key).count() == 1
