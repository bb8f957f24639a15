"""The blinding check: before a study opens, the coordinator sees what the renderer could not
remove, and must acknowledge it.

carol coordinates, frank coordinates other studies, dave analyses, alice reads.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from reviewapp.core.errors import ApplicationError
from reviewapp.reports.models import Report
from reviewapp.studies import blinding, services
from reviewapp.studies.models import ReaderStudy
from tests.studies.conftest import build_study, make_case_study, make_imaging_study

pytestmark = pytest.mark.django_db

AI_FINDINGS = "The lungs are clear. The cardiac silhouette is normal."
AI_IMPRESSION = "No acute cardiopulmonary process."


def _case_study(index: int, *, findings: str, impression: str):
    study = make_imaging_study(index)
    Report.objects.create(
        study=study, kind=Report.Kind.ORIGINAL, findings=findings, impression=impression
    )
    Report.objects.create(
        study=study, kind=Report.Kind.AI, findings=AI_FINDINGS, impression=AI_IMPRESSION
    )
    return study


def _draft(coordinator, reader, imaging) -> ReaderStudy:
    return build_study(coordinator=coordinator, readers=[reader], imaging=imaging, open_it=False)


def _kinds(tells, case) -> set[str]:
    return {t.kind for t in tells if t.case == str(case.public_id)}


def test_the_check_lists_the_tells_the_renderer_cannot_remove(coordinator, reader) -> None:
    telling = _case_study(
        1,
        findings=(
            "1. THE LUNGS ARE CLEAR.\n2. THE CARDIAC SILHOUETTE IS NORMAL.\n3. STABLE GRANULOMA "
            "SEEN ON THE OUTSIDE FILMS FROM RIVERSIDE GENERAL, UNCHANGED SINCE 2019.\n"
            "4. NO PLEURAL EFFUSION OR PNEUMOTHORAX. 5. DEGENERATIVE CHANGES OF THE SPINE."
        ),
        impression="",
    )
    clean = _case_study(2, findings=AI_FINDINGS + " No effusion.", impression=AI_IMPRESSION)
    study = _draft(coordinator, reader, [telling, clean])

    tells = blinding.blinding_check(reader_study=study)

    assert _kinds(tells, study.cases.get(imaging_study=telling)) == {
        "date_like",  # the year the renderer cannot tell from a measurement
        "list_style",
        "upper_case",
        "section_missing",  # the original has no impression, the AI report has one
        "length_ratio",
    }
    assert _kinds(tells, study.cases.get(imaging_study=clean)) == set()
    messages = [t.message for t in tells]
    assert "Report 1 contains a date-like token." in messages
    assert "Report 1 has no impression; Report 2 has one." in messages
    assert any(m.startswith("Length ratio ") and ":1 (Report 1 is longer)" in m for m in messages)


def test_a_name_left_in_a_sentence_and_a_stray_signature_word_are_listed(
    coordinator, reader
) -> None:
    imaging = _case_study(
        3,
        findings="Outside films from Riverside General show a stable nodule. Please correlate.",
        impression=AI_IMPRESSION,
    )
    study = _draft(coordinator, reader, [imaging])
    tells = blinding.blinding_check(reader_study=study)
    by_kind = {t.kind: t for t in tells if t.report == "first"}
    assert by_kind["name_like"].excerpt == "Riverside General"
    assert by_kind["signature_like"].excerpt.lower() == "please"


def test_an_original_with_a_signature_attestation_and_dictation_line_reads_clean(
    coordinator, reader
) -> None:
    imaging = _case_study(
        4,
        findings=(
            "The lungs are clear. The cardiac silhouette is normal. Electronically signed by Jane "
            "Okafor, MD, 01/02/2020 10:32.\nI have personally reviewed the images.\n"
            "Report dictated by Dr Lindqvist (resident) on 01/02/2020."
        ),
        impression="IMPRESSION: No acute cardiopulmonary process.",
    )
    study = _draft(coordinator, reader, [imaging])
    assert blinding.blinding_check(reader_study=study) == []


def test_a_study_opens_only_after_its_current_check_is_acknowledged(coordinator, reader) -> None:
    study = _draft(coordinator, reader, [make_case_study(i) for i in range(2)])
    with pytest.raises(ApplicationError) as refused:
        services.reader_study_open(reader_study=study)
    assert refused.value.code == "blinding_not_checked"

    blinding.blinding_check_record(reader_study=study)
    with pytest.raises(ApplicationError) as refused:
        services.reader_study_open(reader_study=study)
    assert refused.value.code == "blinding_unacknowledged"

    blinding.blinding_acknowledge(reader_study=study, user=coordinator)
    services.reader_study_open(reader_study=study)
    study.refresh_from_db()
    assert study.status == ReaderStudy.Status.OPEN
    assert study.blinding_acknowledged_by == coordinator
    # The fixtures' original is in capitals, the AI report not: the stored check says so.
    assert {t["kind"] for t in study.blinding_tells} == {"upper_case"}


def test_a_change_to_the_cases_after_acknowledgement_makes_the_check_stale(
    coordinator, reader
) -> None:
    study = _draft(coordinator, reader, [make_case_study(i) for i in range(3)])
    blinding.blinding_check_record(reader_study=study)
    blinding.blinding_acknowledge(reader_study=study, user=coordinator)
    # Once reading lists exist cases can only leave (adding is refused): a removal is the
    # change to the cases a coordinator can still make here.
    services.cases_remove(reader_study=study, cases=[study.cases.order_by("id").first()])
    study.refresh_from_db()
    for attempt in (
        lambda: services.reader_study_open(reader_study=study),
        lambda: blinding.blinding_acknowledge(reader_study=study, user=coordinator),
    ):
        with pytest.raises(ApplicationError) as refused:
            attempt()
        assert refused.value.code == "blinding_check_stale"
    assert not blinding.blinding_summary(reader_study=study)["is_acknowledged"]


def test_running_the_check_again_withdraws_the_acknowledgement(coordinator, reader) -> None:
    study = _draft(coordinator, reader, [make_case_study(1)])
    blinding.blinding_check_record(reader_study=study)
    blinding.blinding_acknowledge(reader_study=study, user=coordinator)
    blinding.blinding_check_record(reader_study=study)
    study.refresh_from_db()
    assert study.blinding_acknowledged_at is None
    with pytest.raises(ApplicationError, match="acknowledge them"):
        services.reader_study_open(reader_study=study)


def test_only_a_coordinator_of_the_study_acknowledges_its_check(
    coordinator, reader, frank, analyst
) -> None:
    study = _draft(coordinator, reader, [make_case_study(1)])
    blinding.blinding_check_record(reader_study=study)
    for someone in (frank, analyst, reader):
        with pytest.raises(PermissionDenied):
            blinding.blinding_acknowledge(reader_study=study, user=someone)


def test_an_open_study_keeps_its_check_and_cannot_rerun_it(open_study) -> None:
    with pytest.raises(ApplicationError) as refused:
        blinding.blinding_check_record(reader_study=open_study)
    assert refused.value.code == "blinding_not_draft"
    assert blinding.blinding_summary(reader_study=open_study)["is_acknowledged"]


def test_stored_tells_are_validated_by_their_schema(open_study) -> None:
    open_study.blinding_tells = [{"case": "x", "kind": "gossip", "report": "first"}]
    with pytest.raises(ValidationError, match="Blinding tells"):
        open_study.full_clean()


def test_the_study_page_lists_the_tells_by_kind_and_takes_the_acknowledgement(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = _draft(coordinator, reader, imaging)
    client = Client()
    client.force_login(coordinator)
    page = client.get(f"/studies/{study.public_id}/").content.decode()
    assert "Run the blinding check" in page
    assert "I have reviewed these tells" not in page

    client.post(f"/studies/{study.public_id}/blinding/check/")
    page = client.get(f"/studies/{study.public_id}/").content.decode()
    assert 'data-tell-kind="upper_case"' in page
    assert "Capitals against lower case (2)" in page
    for case in study.cases.all():
        assert f'href="#case-{case.public_id}"' in page
        assert f'id="case-{case.public_id}"' in page

    response = client.post(f"/studies/{study.public_id}/blinding/acknowledge/", follow=True)
    page = response.content.decode()
    assert "Reviewed and acknowledged by carol" in page
    assert "I have reviewed these tells" not in page
    page = client.post(f"/studies/{study.public_id}/open/", follow=True).content.decode()
    study.refresh_from_db()
    assert study.status == ReaderStudy.Status.OPEN


def test_the_page_says_why_a_study_without_acknowledgement_does_not_open(
    coordinator, reader
) -> None:
    study = _draft(coordinator, reader, [make_case_study(1)])
    client = Client()
    client.force_login(coordinator)
    client.post(f"/studies/{study.public_id}/blinding/check/")
    page = client.post(f"/studies/{study.public_id}/open/", follow=True).content.decode()
    assert "Review the blinding check&#x27;s tells and acknowledge them" in page
    study.refresh_from_db()
    assert study.status == ReaderStudy.Status.DRAFT


def test_the_api_returns_runs_and_acknowledges_the_check(
    api_client_for, coordinator, reader, analyst
) -> None:
    study = _draft(coordinator, reader, [make_case_study(1)])
    url = f"/api/v1/reader-studies/{study.public_id}/blinding"
    carol = api_client_for(coordinator)
    assert carol.get(url).json()["checked_at"] is None
    ran = carol.post(url).json()
    assert ran["tell_count"] == 1
    assert ran["tells"][0]["kind"] == "upper_case"
    assert api_client_for(analyst).post(url + "/acknowledgement").status_code == 403
    acknowledged = carol.post(url + "/acknowledgement").json()
    assert (acknowledged["is_acknowledged"], acknowledged["acknowledged_by"]) == (True, "carol")
    assert api_client_for(analyst).get(url).json()["acknowledged_by"] == "carol"
    assert api_client_for(reader).get(url).status_code == 403


def test_the_analysis_page_and_api_show_the_check_and_who_acknowledged_it(
    open_study, analyst, api_client_for
) -> None:
    client = Client()
    client.force_login(analyst)
    page = client.get(f"/analysis/{open_study.public_id}/").content.decode()
    assert 'id="blinding-acknowledged-by">carol<' in page
    assert "Capitals against lower case (6)" in page
    data = api_client_for(analyst).get(f"/api/v1/analysis/studies/{open_study.public_id}/").json()
    assert data["blinding"]["acknowledged_by"] == "carol"
    assert data["blinding"]["tell_count"] == 6
