"""Practice cases: chosen by the coordinator, read first by every reader with the reference
answers shown after submitting, outside the balance of the real reads and of the progress.

Personas: the coordinator builds the study; alice (reader) and bob (second_reader) read it.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from reviewapp.core.errors import ApplicationError
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import report_source_original
from reviewapp.studies import blinding, protocols, reading_lists, selectors, services
from reviewapp.studies.models import Assignment, Case, Rating, ReaderStudy
from tests.studies.conftest import (
    MODEL_NAME,
    build_study,
    make_case_study,
    make_imaging_study,
    practice_enter,
    reference_form,
)

pytestmark = pytest.mark.django_db


def _draft(coordinator, imaging, *, protocol_key: str = "medgemini_cxr", **kwargs) -> ReaderStudy:
    study = services.reader_study_create(
        user=coordinator, name="Practice pilot", protocol_key=protocol_key, **kwargs
    )
    result = services.cases_add(
        reader_study=study,
        imaging_studies=imaging,
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    assert not result.problems
    return study


def _code(error: pytest.ExceptionInfo) -> str:
    return error.value.code


def _steps(study: ReaderStudy) -> dict[str, selectors.SetupStep]:
    steps = selectors.reader_study_setup_steps(
        reader_study=study,
        blinding_summary=blinding.blinding_summary(reader_study=study),
        modality_warnings=[],
    )
    return {step.key: step for step in steps}


def _list(study: ReaderStudy, user) -> list[Assignment]:
    return list(
        Assignment.objects.filter(reader_study=study, reader=user)
        .select_related("case")
        .order_by("position")
    )


# --- choosing practice cases and their reference answers -------------------------------------


def test_a_coordinator_marks_a_case_as_practice_and_unmarks_it_in_a_draft(coordinator) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging)
    case = study.cases.get(imaging_study=imaging[0])
    changed = services.case_practice_set(reader_study=study, case=case, is_practice=True)
    assert [c.pk for c in changed] == [case.pk]
    assert set(study.cases.filter(is_practice=True)) == {case}
    services.case_reference_set(
        reader_study=study, case=case, answers={"comparison": "c"}, user=coordinator
    )
    case.refresh_from_db()
    assert case.reference_answers["comparison"]["value"] == "similar"
    assert case.reference_set_by == coordinator

    services.case_practice_set(reader_study=study, case=case, is_practice=False)
    case.refresh_from_db()
    assert not case.is_practice
    assert case.reference_answers == {}  # a real case has no reference to leak


def test_practice_is_fixed_once_the_reading_lists_exist_or_the_study_opened(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=imaging, practice=1, open_it=False
    )
    real = study.cases.get(imaging_study=imaging[2])
    with pytest.raises(ApplicationError) as error:
        services.case_practice_set(reader_study=study, case=real, is_practice=True)
    assert _code(error) == "practice_after_reading_lists"
    # Reference answers may still be corrected while the study is a draft...
    practice = study.cases.get(is_practice=True)
    services.case_reference_set(
        reader_study=study, case=practice, answers={"comparison": "b"}, user=coordinator
    )
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    # ...and never once readers may have seen them.
    with pytest.raises(ApplicationError) as error:
        services.case_reference_set(
            reader_study=study, case=practice, answers={"comparison": "c"}, user=coordinator
        )
    assert _code(error) == "not_draft"
    with pytest.raises(ApplicationError) as error:
        services.case_practice_set(reader_study=study, case=real, is_practice=True)
    assert _code(error) == "not_draft"


def test_a_study_keeps_at_least_one_real_case(coordinator) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = _draft(coordinator, imaging)
    first, second = study.cases.order_by("id")
    services.case_practice_set(reader_study=study, case=first, is_practice=True)
    with pytest.raises(ApplicationError) as error:
        services.case_practice_set(reader_study=study, case=second, is_practice=True)
    assert _code(error) == "practice_no_real_case"


def test_reference_answers_pass_the_rating_checks_and_only_practice_cases_have_them(
    coordinator,
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging, ask_ai_guess=True)
    case = study.cases.get(imaging_study=imaging[0])
    with pytest.raises(ApplicationError) as error:
        services.case_reference_set(
            reader_study=study, case=case, answers={"comparison": "c"}, user=coordinator
        )
    assert _code(error) == "not_practice"
    services.case_practice_set(reader_study=study, case=case, is_practice=True)
    for answers, field in (
        ({}, "answers.comparison"),  # required, as for a reader
        ({"comparison": "z"}, "answers.comparison"),  # no such option
        ({"comparison": "c", "nonsense": "a"}, "answers.nonsense"),
        # The AI-guess question has no reference: it would name the AI's report.
        ({"comparison": "c", "ai_guess": "a"}, "answers.ai_guess"),
    ):
        with pytest.raises(ValidationError) as invalid:
            services.case_reference_set(
                reader_study=study, case=case, answers=answers, user=coordinator
            )
        assert field in invalid.value.message_dict, invalid.value.message_dict
    case.refresh_from_db()
    assert case.reference_answers == {}
    services.case_reference_set(
        reader_study=study, case=case, answers={"comparison": "a"}, user=coordinator
    )
    case.refresh_from_db()
    # Stored as a rating's answers are: the value the option means, on the entered sides
    # (the case's second report, the candidate, as Report B).
    assert case.reference_answers["comparison"]["value"] == "original_much_better"


def test_reference_texts_that_name_a_side_or_a_source_are_refused_in_words(coordinator) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging, protocol_key="flamingo_cxr")
    case = study.cases.get(imaging_study=imaging[0])
    services.case_practice_set(reader_study=study, case=case, is_practice=True)
    for text, words in (
        ("Report B misses the effusion.", "would name different reports"),
        ("The AI report misses the effusion.", "which report came from where"),
        (f"The {MODEL_NAME} text misses it.", "which report came from where"),
        ("The original report is terse.", "which report came from where"),
    ):
        with pytest.raises(ValidationError) as invalid:
            services.case_reference_set(
                reader_study=study,
                case=case,
                answers={"preference": "a", "reason": text},
                user=coordinator,
            )
        assert words in " ".join(invalid.value.message_dict["answers.reason"])
    services.case_reference_set(
        reader_study=study,
        case=case,
        answers={"preference": "a", "reason": "Only one report names the small effusion."},
        user=coordinator,
    )


def test_a_draft_with_practice_cases_opens_only_once_each_has_reference_answers(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging)
    case = study.cases.get(imaging_study=imaging[0])
    services.case_practice_set(reader_study=study, case=case, is_practice=True)
    services.panel_set(reader_study=study, readers=[(reader, "")])
    services.assignments_generate(reader_study=study, seed=3)
    # The guided flow says so before the coordinator tries to open.
    steps = _steps(study)
    assert (
        steps["cases"].summary == "3 cases. 1 of them practice, 1 still without reference answers."
    )
    assert steps["open"].summary.endswith(", reference answers of the practice cases.")
    with pytest.raises(ApplicationError) as error:
        services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    assert _code(error) == "practice_reference_missing"
    assert "1 practice case still lacks reference answers" in str(error.value)
    services.case_reference_set(
        reader_study=study, case=case, answers={"comparison": "c"}, user=coordinator
    )
    assert _steps(study)["cases"].summary == "3 cases. 1 of them practice."
    assert "practice" not in _steps(study)["open"].summary
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    assert study.status == ReaderStudy.Status.OPEN


def test_a_new_protocol_drops_the_reference_answers_of_the_old_questions(coordinator) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging)
    practice_enter(study, coordinator=coordinator, imaging=imaging[:1])
    services.reader_study_protocol_update(
        reader_study=study, protocol=protocols.protocol_template("flamingo_cxr")
    )
    assert study.cases.get(is_practice=True).reference_answers == {}


def test_practice_spans_every_arm_of_an_imaging_study(coordinator) -> None:
    original = report_source_original()
    a = ReportSource.objects.create(kind="external", name="model-a", version="1")
    b = ReportSource.objects.create(kind="external", name="model-b", version="1")
    imaging = []
    for index in range(3):
        image = make_imaging_study(index)
        for source in (original, a, b):
            kind = Report.Kind.ORIGINAL if source == original else Report.Kind.AI
            Report.objects.create(
                study=image, kind=kind, source=source, findings=f"Lungs clear {index}."
            )
        imaging.append(image)
    study = services.reader_study_create(
        user=coordinator, name="Arms", protocol_key="medgemini_cxr"
    )
    services.arms_set(
        reader_study=study, design=ReaderStudy.Design.VS_REFERENCE, sources=[original, a, b]
    )
    services.cases_add(reader_study=study, imaging_studies=imaging)
    case = study.cases.filter(imaging_study=imaging[0]).first()
    changed = services.case_practice_set(reader_study=study, case=case, is_practice=True)
    # Read for practice in one arm with the answers shown, then for real in the other, the
    # image would be known: both arms' cases become practice together.
    assert len(changed) == 2
    assert set(study.cases.filter(is_practice=True).values_list("imaging_study", flat=True)) == {
        imaging[0].pk
    }


# --- reading lists ---------------------------------------------------------------------------


def _keys(start: int, count: int) -> list[reading_lists.CaseKey]:
    return [
        reading_lists.CaseKey(case=start + i, imaging=start + i, arm=None) for i in range(count)
    ]


@pytest.mark.parametrize("reads_per_case", [None, 2])
def test_every_reader_reads_the_practice_cases_first_and_the_real_lists_do_not_change(
    reads_per_case,
) -> None:
    real, practice = _keys(100, 13), _keys(1, 3)
    readers = [11, 12, 13, 14]
    draw = {"readers": readers, "reads_per_case": reads_per_case, "pairwise": True, "gap": 1}
    without = reading_lists.reading_lists_draw(cases=real, seed=42, **draw)
    lists = reading_lists.reading_lists_draw(cases=real, practice=practice, seed=42, **draw)
    practice_ids = {k.case for k in practice}
    orders = set()
    for index, reader in enumerate(readers):
        first, rest = lists[reader][:3], lists[reader][3:]
        assert {r.case for r in first} == practice_ids  # all of them, first
        # The real reads are exactly the list the same seed draws without practice cases:
        # practice counts in no balance of loads or sides.
        assert rest == without[reader]
        sides = Counter(r.side for r in first)
        assert abs(sides["A"] - sides["B"]) == 1  # practice sides balanced per reader too
        assert sides["A"] == 2 if index % 2 == 0 else sides["B"] == 2
        orders.add(tuple(r.case for r in first))
    assert len(orders) > 1  # each reader's own seeded order
    again = reading_lists.reading_lists_draw(cases=real, practice=practice, seed=42, **draw)
    assert again == lists


def test_assignments_put_practice_first_with_every_reader_whatever_k(
    coordinator, reader, second_reader
) -> None:
    imaging = [make_case_study(i) for i in range(6)]
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=imaging,
        practice=2,
        reads_per_case=1,
        open_it=False,
    )
    practice = set(study.cases.filter(is_practice=True).values_list("pk", flat=True))
    for user in (reader, second_reader):
        mine = _list(study, user)
        assert {a.case_id for a in mine[:2]} == practice
        assert not any(a.case.is_practice for a in mine[2:])
    # k = 1 shares the four real cases out; practice cases go to both readers.
    real_reads = Assignment.objects.filter(reader_study=study, case__is_practice=False)
    assert real_reads.count() == 4
    assert Counter(real_reads.values_list("reader", flat=True)) == {
        reader.pk: 2,
        second_reader.pk: 2,
    }


def test_practice_cases_alone_cannot_make_reading_lists(coordinator, reader) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = _draft(coordinator, imaging)
    first = study.cases.order_by("id").first()
    services.case_practice_set(reader_study=study, case=first, is_practice=True)
    study.cases.exclude(pk=first.pk).delete()
    services.panel_set(reader_study=study, readers=[(reader, "")])
    with pytest.raises(ValidationError) as invalid:
        services.assignments_generate(reader_study=study, seed=1)
    assert "practice cases are not enough" in str(invalid.value)


# --- reading them ----------------------------------------------------------------------------


def test_the_reader_sees_practice_case_k_of_n_then_case_k_of_the_real_ones(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(5)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, practice=2)
    counters = [
        selectors.case_view_for_reader(assignment=a)["counter"] for a in _list(study, reader)
    ]
    assert counters == [
        "Practice case 1 of 2",
        "Practice case 2 of 2",
        "Case 1 of 3",
        "Case 2 of 3",
        "Case 3 of 3",
    ]
    # The worklist counts the same way: the real cases, practice apart.
    (row,) = selectors.worklist_for_reader(user=reader)
    assert (row["done"], row["total"], row["practice_done"], row["practice_total"]) == (0, 3, 0, 2)
    first = _list(study, reader)[0]
    services.rating_submit(
        assignment=first, reader=reader, answers={"comparison": "c"}, idempotency_key=uuid.uuid4()
    )
    (row,) = selectors.worklist_for_reader(user=reader)
    assert (row["done"], row["total"], row["practice_done"], row["practice_total"]) == (0, 3, 1, 2)
    client = Client()
    client.force_login(reader)
    page = client.get(reverse("studies:worklist")).content.decode()
    assert "0 / 3" in page
    assert "practice 1 / 2" in page


def test_after_submitting_a_practice_case_the_reader_sees_the_reference_on_their_own_sides(
    coordinator, reader, second_reader
) -> None:
    imaging = [make_case_study(i) for i in range(4)]
    study = _draft(coordinator, imaging)
    practice_case = study.cases.get(imaging_study=imaging[0])
    services.case_practice_set(reader_study=study, case=practice_case, is_practice=True)
    # The reference, entered with the candidate as Report B: "B slightly better".
    services.case_reference_set(
        reader_study=study, case=practice_case, answers={"comparison": "d"}, user=coordinator
    )
    assert study.cases.get(pk=practice_case.pk).reference_answers["comparison"]["value"] == (
        "ai_better"
    )
    services.panel_set(reader_study=study, readers=[(reader, ""), (second_reader, "")])
    # Find a seed that shows the candidate on different sides to the two readers.
    for seed in range(50):
        services.assignments_generate(reader_study=study, seed=seed)
        sides = {
            a.reader_id: a.candidate_side
            for a in Assignment.objects.filter(reader_study=study, case=practice_case)
        }
        if len(set(sides.values())) == 2:
            break
        study.assignments.all().delete()
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    seen = {}
    for user in (reader, second_reader):
        assignment = selectors.assignment_get_for_reader(
            user=user,
            public_id=Assignment.objects.get(case=practice_case, reader=user).public_id,
        )
        view = selectors.case_view_for_reader(assignment=assignment)
        assert view["practice"] == {"feedback": None}  # nothing before submitting
        services.rating_submit(
            assignment=assignment,
            reader=user,
            answers={"comparison": "c"},
            idempotency_key=uuid.uuid4(),
        )
        assignment = selectors.assignment_get_for_reader(user=user, public_id=assignment.public_id)
        view = selectors.case_view_for_reader(assignment=assignment)
        (row,) = view["practice"]["feedback"]
        assert row["yours_code"] == "c"
        assert not row["agrees"]
        assert view["can_write"] is False  # the answers first given are kept
        seen[assignment.candidate_side] = row
    # The same reference judgement ("the candidate is slightly better") in each reader's
    # own terms: the report it favours is named by the side that reader saw it on.
    assert seen["B"]["reference"].startswith("Report B")
    assert seen["A"]["reference"].startswith("Report A")
    assert seen["A"]["reference_code"] != seen["B"]["reference_code"]


def test_a_practice_rating_cannot_be_revised(coordinator, reader) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, practice=1)
    first = _list(study, reader)[0]
    services.rating_submit(
        assignment=first, reader=reader, answers={"comparison": "a"}, idempotency_key=uuid.uuid4()
    )
    with pytest.raises(ApplicationError) as error:
        services.rating_revise(
            assignment=first,
            reader=reader,
            expected_version=1,
            answers={"comparison": "b"},
            idempotency_key=uuid.uuid4(),
        )
    assert _code(error) == "practice_submitted"
    assert Rating.objects.get(assignment=first).version == 1


def test_progress_counts_practice_reads_apart(coordinator, reader) -> None:
    imaging = [make_case_study(i) for i in range(4)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, practice=2)
    mine = _list(study, reader)
    for assignment in mine[:3]:
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"comparison": "c"},
            idempotency_key=uuid.uuid4(),
            active_seconds=600 if assignment.case.is_practice else 30,
        )
    progress = selectors.reader_study_progress(reader_study=study)
    (row,) = progress["readers"]
    assert (row["submitted"], row["total"], row["left"]) == (1, 2, 1)
    assert (row["practice_submitted"], row["practice_total"]) == (2, 2)
    assert row["median_seconds"] == 30  # slow practice reads do not set the pace
    assert (progress["submitted"], progress["total"]) == (1, 2)
    assert (progress["practice_submitted"], progress["practice_total"]) == (2, 2)
    csv_text = selectors.progress_csv(progress)
    assert csv_text.splitlines()[0].endswith("practice_submitted,practice_assigned")
    assert csv_text.splitlines()[1].endswith(",2,2")


# --- the pages ------------------------------------------------------------------------------


def test_the_coordinator_marks_practice_and_enters_the_reference_on_pages(
    coordinator, analyst, reader
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging, protocol_key="flamingo_cxr")
    case = study.cases.get(imaging_study=imaging[0])
    client = Client()
    client.force_login(coordinator)
    detail = client.get(reverse("studies:detail", args=[study.public_id])).content.decode()
    assert reverse("studies:practice", args=[study.public_id]) in detail
    response = client.post(
        reverse("studies:case_practice", args=[study.public_id, case.public_id]),
        {"is_practice": "1"},
        follow=True,
    )
    assert "is a practice case; enter its reference answers" in response.content.decode()
    page = response.content.decode()
    reference_url = reverse("studies:case_reference", args=[study.public_id, case.public_id])
    assert reference_url in page
    assert "missing" in page

    form = client.get(reference_url).content.decode()
    # The questions as readers see them, on the entered sides, with the reports' sources.
    assert 'name="preference"' in form
    assert 'name="reason"' in form
    assert "Report A" in form
    assert "Report B" in form
    invalid = client.post(reference_url, {"preference": "a", "reason": "Report A is better."})
    assert invalid.status_code == 400
    text = invalid.content.decode()
    assert "would name different reports" in text
    assert 'value="a" checked' in text  # what was entered is kept
    saved = client.post(
        reference_url,
        {"preference": "a", "reason": "Only one report names the effusion."},
        follow=True,
    )
    assert "Reference answers of" in saved.content.decode()
    assert study.cases.get(pk=case.pk).reference_answers["reason"]["text"] == (
        "Only one report names the effusion."
    )
    again = client.get(reference_url).content.decode()
    assert 'value="a" checked' in again
    assert "Only one report names the effusion." in again

    # Analysts look, never change; readers never reach these pages.
    viewer = Client()
    viewer.force_login(analyst)
    assert viewer.get(reference_url).status_code == 200
    assert viewer.post(reference_url, {"preference": "b"}).status_code == 403
    assert (
        viewer.post(
            reverse("studies:case_practice", args=[study.public_id, case.public_id]),
            {"is_practice": "0"},
        ).status_code
        == 403
    )
    outsider = Client()
    outsider.force_login(reader)
    for url in (reverse("studies:practice", args=[study.public_id]), reference_url):
        assert outsider.get(url).status_code in (302, 403, 404)


def test_the_practice_case_list_shows_the_rule_and_who_may_change_it(coordinator) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging)
    rng = random.Random(1)
    case = rng.choice(list(Case.objects.filter(reader_study=study)))
    services.case_practice_set(reader_study=study, case=case, is_practice=True)
    client = Client()
    client.force_login(coordinator)
    page = client.get(reverse("studies:practice", args=[study.public_id])).content.decode()
    assert "Make it a real case" in page
    assert page.count("Make it a practice case") == 2
    assert "left out of every analysis" in page
    assert reference_form(study) == {"comparison": "a"}


def test_scripts_mark_practice_and_set_reference_answers_through_the_api(
    api_client_for, coordinator, analyst
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = _draft(coordinator, imaging)
    case = study.cases.get(imaging_study=imaging[0])
    api = api_client_for(coordinator)
    base = f"/api/v1/reader-studies/{study.public_id}/cases/{case.public_id}"
    marked = api.post(f"{base}/practice", {"is_practice": True}, format="json")
    assert marked.status_code == 200, marked.content
    assert [c["is_practice"] for c in marked.json()] == [True]
    refused = api.put(f"{base}/reference", {"answers": {"comparison": "z"}}, format="json")
    assert refused.status_code == 400
    assert "answers.comparison" in refused.json()
    saved = api.put(f"{base}/reference", {"answers": {"comparison": "e"}}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["answers"] == {"comparison": "e"}
    listed = api_client_for(analyst).get(f"/api/v1/reader-studies/{study.public_id}/cases")
    assert {c["id"]: c["is_practice"] for c in listed.json()}[str(case.public_id)] is True
    assert api_client_for(analyst).get(f"{base}/reference").json()["answers"] == {"comparison": "e"}
