"""Reports never change under a reader: a changed text is a new version, cases keep the version
(and the rendering) their study opened with, and only a draft study moves to newer versions.

alice and bob read, carol coordinates, eve is an outsider.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.apps import apps
from django.contrib.auth.models import AbstractUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.core.errors import ApplicationError
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.reports.services import AffectedStudy, reports_import_csv
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, Case, ReaderStudy, rendering_sha256
from tests.studies.conftest import build_study

pytestmark = pytest.mark.django_db

NEW_FINDINGS = "FINDINGS: Large right pneumothorax.\nElectronically signed by Dr Smith"
NEW_IMPRESSION = "TENSION PNEUMOTHORAX."


def _reimport(study: Study, findings: str = NEW_FINDINGS, impression: str = NEW_IMPRESSION):
    data = (
        "StudyInstanceUID,findings,impression\n"
        f'{study.study_instance_uid},"{findings}","{impression}"\n'
    ).encode()
    return reports_import_csv(data=data, source_name="corrected.csv")


def _first(study: ReaderStudy, reader: AbstractUser) -> Assignment:
    return Assignment.objects.get(reader_study=study, reader=reader, position=1)


def _reports_shown(client: APIClient, assignment: Assignment) -> list[dict[str, str]]:
    response = client.get(f"/api/v1/my/assignments/{assignment.public_id}")
    assert response.status_code == 200
    return response.json()["reports"]


def test_reimport_after_ratings_keeps_what_the_reader_rated_and_names_the_open_study(
    open_study: ReaderStudy,
    reader: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    assignment = _first(open_study, reader)
    client = api_client_for(reader)
    before = _reports_shown(client, assignment)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "b"},
        idempotency_key=uuid.uuid4(),
    )
    original = assignment.case.first_report

    result = _reimport(assignment.case.imaging_study)

    assert (result.created, result.versioned, result.unchanged) == (0, 1, 0)
    assert result.affected_studies == [
        AffectedStudy(public_id=str(open_study.public_id), name="CXR pilot", status="open", cases=1)
    ]
    assert "Cases in 'CXR pilot' (open) keep the version their readers rated." in (
        result.versioned_message
    )
    # alice's submitted case shows exactly what she rated, through her own API.
    assert _reports_shown(client, assignment) == before
    kept = Report.objects.get(pk=original.pk)
    assert (kept.findings, kept.impression, kept.version) == (
        original.findings,
        original.impression,
        1,
    )
    new = Report.objects.get(study=original.study, kind="original", is_latest=True)
    assert (new.version, new.supersedes_id, new.lineage) == (2, original.pk, original.lineage)
    assert new.findings == NEW_FINDINGS
    case = Case.objects.get(pk=assignment.case_id)
    assert case.first_report_id == original.pk


def test_an_opened_study_shows_its_pinned_rendering_not_a_live_one(
    open_study: ReaderStudy,
    reader: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    assignment = _first(open_study, reader)
    case = Case.objects.select_related("first_rendering", "second_rendering").get(
        pk=assignment.case_id
    )
    assert case.first_rendering is not None
    assert case.second_rendering is not None
    pinned = {
        case.first_report_id: case.first_rendering,
        case.second_report_id: case.second_rendering,
    }
    shown = _reports_shown(api_client_for(reader), assignment)
    for report, side in ((assignment.report_a, shown[0]), (assignment.report_b, shown[1])):
        rendering = pinned[report.pk]
        assert (side["findings"], side["impression"]) == (rendering.findings, rendering.impression)
        assert rendering.sha256 == rendering_sha256(
            findings=side["findings"], impression=side["impression"]
        )
    # The original's dictation footer and ALL-CAPS style are rendered away in what was pinned.
    assert "Dictated" not in case.first_rendering.findings
    assert case.first_rendering.impression == "No acute cardiopulmonary process."


def test_the_database_refuses_to_change_a_reports_text_in_place(open_study: ReaderStudy) -> None:
    report = Case.objects.filter(reader_study=open_study).first().first_report
    with (
        pytest.raises(DatabaseError, match="Cannot update"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE reports_report SET findings = 'Rewritten.' WHERE id = %s", [report.pk]
        )
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic():
        Report.objects.filter(pk=report.pk).update(impression="Rewritten.")
    assert Report.objects.get(pk=report.pk).findings == report.findings


def test_the_database_refuses_to_delete_a_report_a_case_compares(open_study: ReaderStudy) -> None:
    report = Case.objects.filter(reader_study=open_study).first().first_report
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys are checked at commit; check them now, as the commit would.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute("DELETE FROM reports_report WHERE id = %s", [report.pk])
    assert Report.objects.filter(pk=report.pk).exists()


def test_report_history_is_append_only_and_records_every_version(
    open_study: ReaderStudy,
) -> None:
    original = Case.objects.filter(reader_study=open_study).first().first_report
    _reimport(original.study)
    ReportEvent = apps.get_model("reports", "ReportEvent")
    events = list(
        ReportEvent.objects.filter(lineage=original.lineage)
        .order_by("pgh_id")
        .values_list("pgh_label", "version", "is_latest", "findings")
    )
    # (The fixture back-dates creation times, which adds update events of its own between.)
    assert events[0] == ("insert", 1, True, original.findings)
    assert events[-2:] == [
        ("update", 1, False, original.findings),
        ("insert", 2, True, NEW_FINDINGS),
    ]
    assert {e[3] for e in events} == {original.findings, NEW_FINDINGS}
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        ReportEvent.objects.filter(lineage=original.lineage).update(findings="Forged.")
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        ReportEvent.objects.filter(lineage=original.lineage).delete()


def test_a_new_version_of_a_version_that_is_no_longer_latest_is_refused(
    case_studies: list[Study],
) -> None:
    first = Report.objects.get(study=case_studies[0], kind="original")
    _reimport(case_studies[0])
    from reviewapp.reports.services import report_version_create

    with pytest.raises(ApplicationError) as refused:
        report_version_create(previous=first, findings="Other.", impression="", change_reason="x")
    assert refused.value.code == "report_not_latest"


def test_draft_refresh_previews_then_moves_cases_and_assignments_to_the_latest_versions(
    coordinator: AbstractUser,
    reader: AbstractUser,
    second_reader: AbstractUser,
    case_studies: list[Study],
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=case_studies,
        open_it=False,
    )
    case = Case.objects.get(reader_study=study, imaging_study=case_studies[0])
    old = case.first_report
    result = _reimport(case_studies[0])
    assert [(s.name, s.status) for s in result.affected_studies] == [("CXR pilot", "draft")]
    assert "Draft studies ('CXR pilot') keep the previous version" in result.versioned_message
    new = Report.objects.get(study=case_studies[0], kind="original", is_latest=True)
    client = api_client_for(coordinator)
    url = f"/api/v1/reader-studies/{study.public_id}/refresh-reports"

    preview = client.get(url)
    assert preview.status_code == 200
    (move,) = preview.json()["moves"]
    assert (move["case"], move["slot"], move["old_version"], move["new_version"]) == (
        str(case.public_id),
        "first",
        1,
        2,
    )
    assert move["summary"].startswith("findings: ")
    assert "impression: " in move["summary"]
    assert Case.objects.get(pk=case.pk).first_report_id == old.pk  # a preview changes nothing

    applied = client.post(url)
    assert applied.status_code == 200
    assert [m["case"] for m in applied.json()["moved"]] == [str(case.public_id)]
    assert Case.objects.get(pk=case.pk).first_report_id == new.pk
    for assignment in Assignment.objects.filter(case=case):
        assert {assignment.report_a_id, assignment.report_b_id} == {new.pk, case.second_report_id}
    assert client.get(url).json()["moves"] == []
    # Once open, readers see the new version, pinned.
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    assignment = Assignment.objects.get(case=case, reader=reader)
    shown = _reports_shown(api_client_for(reader), assignment)
    side = 0 if assignment.report_a_id == new.pk else 1
    assert shown[side]["findings"] == "Large right pneumothorax."


def test_refresh_is_refused_once_a_study_is_open_and_for_people_without_the_study(
    open_study: ReaderStudy,
    coordinator: AbstractUser,
    reader: AbstractUser,
    outsider: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    case = Case.objects.filter(reader_study=open_study).first()
    _reimport(case.imaging_study)
    url = f"/api/v1/reader-studies/{open_study.public_id}/refresh-reports"
    refused = api_client_for(coordinator).post(url)
    assert refused.status_code == 400
    assert refused.json()["code"] == "not_draft"
    assert Case.objects.get(pk=case.pk).first_report_id == case.first_report_id
    assert api_client_for(reader).post(url).status_code == 403
    assert api_client_for(outsider).get(url).status_code == 403
    with pytest.raises(ApplicationError) as error:
        services.cases_refresh_to_latest(reader_study=open_study)
    assert error.value.code == "not_draft"


def test_the_refresh_page_shows_the_changes_then_moves_on_confirm(
    coordinator: AbstractUser, reader: AbstractUser, case_studies: list[Study]
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=case_studies, open_it=False
    )
    _reimport(case_studies[1])
    client = Client()
    client.force_login(coordinator)
    detail = client.get(reverse("studies:detail", args=[study.public_id])).content.decode()
    assert "1 case compares a report that has a newer version" in detail
    url = reverse("studies:refresh_reports", args=[study.public_id])
    page = client.get(url).content.decode()
    assert 'id="refresh-preview"' in page
    assert "v1 → v2" in page
    response = client.post(url)
    assert response.status_code == 302
    assert 'id="refresh-nothing"' in client.get(url).content.decode()


def test_the_import_page_and_command_name_the_studies_that_keep_the_previous_version(
    open_study: ReaderStudy, coordinator: AbstractUser, tmp_path, capsys
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    first, second = (
        case.imaging_study for case in Case.objects.filter(reader_study=open_study)[:2]
    )

    def csv_for(imaging: Study) -> bytes:
        return (
            "StudyInstanceUID,findings,impression\n"
            f"{imaging.study_instance_uid},Small right effusion.,Effusion.\n"
        ).encode()

    csv = csv_for(first)
    client = Client()
    client.force_login(coordinator)
    html = client.post(
        reverse("reports:upload"), {"file": SimpleUploadedFile("r.csv", csv, "text/csv")}
    ).content.decode()
    assert "1 new version" in html
    assert "Cases in &#x27;CXR pilot&#x27; (open) keep the version their readers rated." in html
    path = tmp_path / "again.csv"
    path.write_bytes(csv_for(second))
    call_command("import_reports", str(path))
    out = capsys.readouterr().out
    assert "again.csv: 0 created, 1 new versions, 0 unchanged, 0 rows not imported." in out
    assert "Cases in 'CXR pilot' (open) keep the version their readers rated." in out
