"""Guard rails on building a study: what a coordinator is stopped from doing, and told why.

carol coordinates; alice and bob read.
"""

from __future__ import annotations

import html

import pytest
from django.test import Client

from reviewapp.core.errors import ApplicationError
from reviewapp.reports.models import Report
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, Case, ReaderStudy
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db

AI = Report.objects.filter(kind=Report.Kind.AI)


def _draft_with_lists(coordinator, readers, count: int = 2) -> ReaderStudy:
    imaging = [make_case_study(i) for i in range(count)]
    return build_study(coordinator=coordinator, readers=readers, imaging=imaging, open_it=False)


def test_cases_added_after_the_reading_lists_are_refused_with_the_reason(
    coordinator, reader
) -> None:
    study = _draft_with_lists(coordinator, [reader])
    late = make_case_study(10)

    with pytest.raises(ApplicationError) as refused:
        services.cases_add(reader_study=study, imaging_studies=[late], candidate_reports=AI)

    assert refused.value.code == "cases_after_assignments"
    assert "would never be read" in refused.value.message
    assert study.cases.count() == 2


def test_a_sample_drawn_after_the_reading_lists_is_refused_and_its_seed_not_recorded(
    coordinator, reader
) -> None:
    study = _draft_with_lists(coordinator, [reader])

    with pytest.raises(ApplicationError):
        services.cases_add_sample(
            reader_study=study,
            pool=[make_case_study(10)],
            per_stratum={"normal": 1},
            candidate_reports=AI,
            seed=7,
        )

    study.refresh_from_db()
    assert study.sample_seed is None


def test_the_api_refuses_late_cases_with_a_code(coordinator, reader, api_client_for) -> None:
    study = _draft_with_lists(coordinator, [reader])
    late = make_case_study(10)

    response = api_client_for(coordinator).post(
        f"/api/v1/reader-studies/{study.public_id}/cases",
        {"study_uids": [late.study_instance_uid]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "cases_after_assignments"


def test_the_page_explains_why_no_more_cases_can_join(coordinator, reader) -> None:
    study = _draft_with_lists(coordinator, [reader])
    client = Client()
    client.force_login(coordinator)

    page = client.get(f"/studies/{study.public_id}/").content.decode()

    assert "a case added now would never be read" in page
    assert f'action="/studies/{study.public_id}/cases/add/"' not in page


def test_a_coordinator_removes_a_case_and_its_reads_with_confirmation(
    coordinator, reader, second_reader
) -> None:
    study = _draft_with_lists(coordinator, [reader, second_reader], count=3)
    gone, kept = study.cases.order_by("id")[:2]
    client = Client()
    client.force_login(coordinator)
    url = f"/studies/{study.public_id}/cases/{gone.public_id}/remove/"

    page = client.get(f"/studies/{study.public_id}/").content.decode()
    response = client.post(url, follow=True)

    assert f'action="{url}"' in page
    assert "Remove this case from the study and from every reading list?" in page
    assert "removed" in response.content.decode()
    assert not Case.objects.filter(pk=gone.pk).exists()
    assert not Assignment.objects.filter(case_id=gone.pk).exists()
    assert Assignment.objects.filter(case=kept).count() == 2


def test_cases_of_an_open_study_cannot_be_removed(coordinator, reader) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(0)], open_it=True
    )
    case = study.cases.get()
    client = Client()
    client.force_login(coordinator)

    page = client.post(f"/studies/{study.public_id}/cases/{case.public_id}/remove/", follow=True)

    assert "only possible while the study is a draft" in page.content.decode()
    assert Case.objects.filter(pk=case.pk).exists()


def test_a_coordinator_deletes_a_draft_study_but_not_an_open_one(coordinator, reader) -> None:
    draft = _draft_with_lists(coordinator, [reader])
    opened = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(5)], name="Live"
    )
    client = Client()
    client.force_login(coordinator)

    draft_page = client.get(f"/studies/{draft.public_id}/").content.decode()
    deleted = client.post(f"/studies/{draft.public_id}/delete/", follow=True)
    refused = client.post(f"/studies/{opened.public_id}/delete/", follow=True)

    assert 'data-confirm="Delete this draft study' in draft_page
    assert "Delete draft study" not in client.get(f"/studies/{opened.public_id}/").content.decode()
    assert deleted.redirect_chain[-1][0] == "/studies/"
    assert "Draft study &#x27;CXR pilot&#x27; deleted." in deleted.content.decode()
    assert not ReaderStudy.objects.filter(pk=draft.pk).exists()
    assert "only possible while the study is a draft" in refused.content.decode()
    assert ReaderStudy.objects.filter(pk=opened.pk).exists()


def test_ct_cases_in_a_cxr_study_are_accepted_with_a_warning(coordinator, api_client_for) -> None:
    study = services.reader_study_create(user=coordinator, name="CXR", protocol_key="medgemini_cxr")
    make_case_study(0, modality="CR")
    ct = make_case_study(1, modality="CT")

    response = api_client_for(coordinator).post(
        f"/api/v1/reader-studies/{study.public_id}/cases", {}, format="json"
    )
    client = Client()
    client.force_login(coordinator)
    page = client.get(f"/studies/{study.public_id}/").content.decode()

    assert response.status_code == 201
    assert len(response.json()["added"]) == 2
    warning = (
        '1 case(s) are CT images, but the protocol "Med-Gemini CXR comparative scale" is '
        "written for CR, DX"
    )
    assert [w[: len(warning)] for w in response.json()["warnings"]] == [warning]
    assert 'id="modality-warnings"' in page
    assert warning.replace('"', "&quot;") in page
    # The coordinator finds the foreign case in the cases table by the study's one name.
    assert html.escape(ct.label) in page


def test_a_protocol_without_declared_modalities_warns_about_nothing(coordinator) -> None:
    study = services.reader_study_create(user=coordinator, name="Any", protocol_key="radpeer")

    result = services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(0, modality="CT"), make_case_study(1, modality="MR")],
        candidate_reports=AI,
    )

    assert len(result.added) == 2
    assert result.warnings == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "reads_per_case",
            "two",
            "Readers per case must be a whole number (you entered &#x27;two&#x27;).",
        ),
        ("reads_per_case", "0", "Readers per case must be 1 or more (you entered 0)."),
        ("seed", "12a", "Seed must be a whole number (you entered &#x27;12a&#x27;)."),
    ],
)
def test_numeric_fields_of_the_reading_lists_are_explained_in_words(
    coordinator, reader, field, value, message
) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="radpeer")
    services.cases_add(
        reader_study=study, imaging_studies=[make_case_study(0)], candidate_reports=AI
    )
    services.panel_set(reader_study=study, readers=[(reader, "")])
    client = Client()
    client.force_login(coordinator)

    response = client.post(
        f"/studies/{study.public_id}/reading-lists/",
        {"panel_shown": "1", "reader": [str(reader.pk)], field: value},
    )
    page = response.content.decode()

    assert response.status_code == 400
    assert message in page
    assert "invalid literal" not in page
    assert not study.assignments.exists()


def test_a_sample_count_in_words_is_explained_not_crashed_on(coordinator) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="radpeer")
    make_case_study(0)
    client = Client()
    client.force_login(coordinator)

    page = client.post(
        f"/studies/{study.public_id}/cases/add/", {"sample": "normal: ten"}
    ).content.decode()

    assert "The count of stratum &#x27;normal&#x27; must be a whole number" in page
    assert "invalid literal" not in page
    assert not study.cases.exists()
