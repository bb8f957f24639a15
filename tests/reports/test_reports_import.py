"""Original reports arrive as CSV keyed by the hospital's StudyInstanceUID or AccessionNumber."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.reports.services import reports_import_csv
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG

pytestmark = pytest.mark.django_db

CT_UID = str(pydicom.dcmread(CT_FILES[0], stop_before_pixels=True).StudyInstanceUID)
J2K_ACCESSION = str(pydicom.dcmread(CXR_J2K, stop_before_pixels=True).AccessionNumber)
JPEG_UID = str(pydicom.dcmread(CXR_JPEG, stop_before_pixels=True).StudyInstanceUID)


def _csv(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_rows_match_by_original_uid_and_by_accession_and_bad_rows_are_listed(
    imported_ct_study: Study, imported_cxr_studies: list[Study]
) -> None:
    j2k, _ = imported_cxr_studies
    data = _csv(
        "StudyInstanceUID,AccessionNumber,findings,impression,stratum",
        f'{CT_UID},,"Right upper lobe mass.\nHilar nodes.",Suspicious for carcinoma.,Abnormal',
        f",{J2K_ACCESSION},Clear lungs.,Normal chest.,normal",
        "1.2.3.4.5.6.7,,Something.,Something.,normal",
        f"{JPEG_UID},,,,normal",
        ",,No key.,No key.,",
    )
    result = reports_import_csv(data=data, source_name="reports.csv")
    assert (result.created, result.versioned) == (2, 0)
    # Row numbers count records as a spreadsheet shows them: the quoted line break in row 2
    # does not shift later rows.
    assert [(p.row, p.reason) for p in result.problems] == [
        (4, "no study in the archive has this StudyInstanceUID"),
        (5, "findings and impression are both empty"),
        (6, "has neither a StudyInstanceUID nor an AccessionNumber"),
    ]
    ct_report = Report.objects.get(study=imported_ct_study, kind=Report.Kind.ORIGINAL)
    assert ct_report.findings == "Right upper lobe mass.\nHilar nodes."
    assert ct_report.source_note == "reports.csv"
    assert Report.objects.get(study=j2k).impression == "Normal chest."
    assert Study.objects.get(pk=imported_ct_study.pk).stratum == "abnormal"
    assert Study.objects.get(pk=j2k.pk).stratum == "normal"


def test_reimporting_a_changed_text_stores_a_new_version_and_keeps_the_old_one(
    imported_ct_study: Study, coordinator
) -> None:
    header = "study_instance_uid,findings,impression"
    reports_import_csv(data=_csv(header, f"{CT_UID},Old findings.,Old."), source_name="a.csv")
    first = Report.objects.get(study=imported_ct_study)
    result = reports_import_csv(
        data=_csv(header, f"{CT_UID},New findings.,New."),
        source_name="b.csv",
        author=coordinator,
    )
    assert (result.created, result.versioned, result.unchanged) == (0, 1, 0)
    assert result.affected_studies == []
    assert "1 report changed and was stored as a new version." in result.versioned_message
    versions = list(Report.objects.filter(study=imported_ct_study).order_by("version"))
    assert [(r.version, r.findings, r.is_latest) for r in versions] == [
        (1, "Old findings.", False),
        (2, "New findings.", True),
    ]
    old, new = versions
    assert old.pk == first.pk
    assert (old.impression, old.source_note) == ("Old.", "a.csv")
    assert (new.supersedes_id, new.lineage, new.author) == (old.pk, old.lineage, coordinator)
    assert (new.source_note, new.change_reason) == ("b.csv", "re-imported from b.csv")


def test_reimporting_an_identical_text_changes_nothing(imported_ct_study: Study) -> None:
    header = "study_instance_uid,findings,impression"
    reports_import_csv(data=_csv(header, f"{CT_UID},Same.,Same."), source_name="a.csv")
    again = reports_import_csv(data=_csv(header, f"{CT_UID},Same.,Same."), source_name="b.csv")
    assert (again.created, again.versioned, again.unchanged) == (0, 0, 1)
    assert again.versioned_message == ""
    report = Report.objects.get(study=imported_ct_study)
    assert (report.version, report.source_note) == (1, "a.csv")


def test_wrong_encoding_and_malformed_rows_are_named_and_good_rows_import(
    imported_ct_study: Study, imported_cxr_studies: list[Study]
) -> None:
    data = (
        b"StudyInstanceUID,AccessionNumber,findings,impression\n"
        + f"{CT_UID},,Mass.,Carcinoma likely.\n".encode()
        + f",{J2K_ACCESSION},Opacit\xe9 basale.,Pneumonie.\n".encode("latin-1")
        + b'1.2.3,,"unterminated"quote,x\n'
        + f"{JPEG_UID},,Clear.,Normal.,extra\n".encode()
    )
    result = reports_import_csv(data=data, source_name="mixed.csv")
    assert result.created == 1
    reasons = {p.row: p.reason for p in result.problems}
    assert reasons[3] == "is not valid UTF-8 text (save the file as CSV UTF-8)"
    assert reasons[4].startswith("malformed CSV")
    assert reasons[5] == "has 5 fields where the header has 4"
    assert Report.objects.filter(study=imported_ct_study).count() == 1


def test_a_file_without_a_key_column_is_refused_as_a_whole(imported_ct_study: Study) -> None:
    result = reports_import_csv(data=_csv("patient,findings", "x,y"), source_name="x.csv")
    assert "StudyInstanceUID, AccessionNumber or study_id column" in result.error
    assert reports_import_csv(data=b"", source_name="e.csv").error == "The file is empty."
    assert "binary" in reports_import_csv(data=b"PK\x03\x04\x00\x00", source_name="z").error
    assert not Report.objects.exists()


def test_report_text_never_reaches_the_logs(imported_ct_study: Study, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "Zebra-striped sentinel finding"
    reports_import_csv(
        data=_csv("StudyInstanceUID,findings,impression", f"{CT_UID},{secret_text},x"),
        source_name="r.csv",
    )
    assert Report.objects.filter(findings=secret_text).exists()
    assert secret_text not in caplog.text


def test_the_upload_page_lists_bad_rows_by_number(
    client: Client, coordinator, imported_ct_study: Study
) -> None:
    client.force_login(coordinator)
    data = _csv("StudyInstanceUID,findings,impression", f"{CT_UID},Mass.,Cancer.", "9.9.9,x,y")
    response = client.post(
        reverse("reports:upload"), {"file": SimpleUploadedFile("r.csv", data, "text/csv")}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 created" in html
    assert "<td>3</td><td>no study in the archive has this StudyInstanceUID</td>" in html


def test_the_api_imports_and_answers_with_row_problems(
    coordinator, api_client_for, imported_ct_study: Study
) -> None:
    data = _csv("AccessionNumber,findings,impression", "nope,x,y")
    response = api_client_for(coordinator).post(
        "/api/v1/reports/import",
        {"file": SimpleUploadedFile("r.csv", data, "text/csv")},
        format="multipart",
    )
    assert response.status_code == 200
    assert response.json() == {
        "created": 0,
        "versioned": 0,
        "unchanged": 0,
        "problems": [{"row": 2, "reason": "no study in the archive has this AccessionNumber"}],
        "affected_studies": [],
        "message": "",
    }
    bad = api_client_for(coordinator).post(
        "/api/v1/reports/import",
        {"file": SimpleUploadedFile("r.csv", b"a,b\n1,2\n", "text/csv")},
        format="multipart",
    )
    assert bad.status_code == 400
    assert "StudyInstanceUID" in bad.json()["detail"]


def test_the_command_imports_and_prints_each_bad_row(
    imported_ct_study: Study, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "reports.csv"
    path.write_bytes(_csv("StudyInstanceUID,findings,impression", f"{CT_UID},Mass.,x", ",a,b"))
    call_command("import_reports", str(path))
    out = capsys.readouterr().out
    assert "reports.csv: 1 created, 0 new versions, 0 unchanged, 1 rows not imported." in out
    assert "row 3: has neither a StudyInstanceUID nor an AccessionNumber" in out
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_reports", str(tmp_path / "missing.csv"))


def test_clinical_context_imports_with_the_originals_and_reaches_prompts_de_identified(
    imported_ct_study: Study,
) -> None:
    from inference.text import render_prompt
    from reviewapp.generation.inputs import study_input_build

    data = _csv(
        "StudyInstanceUID,findings,impression,Clinical History,Technique,Comparison",
        f'{CT_UID},Right upper lobe mass.,Suspicious.,"Weight loss. Seen by Dr Jones on '
        '03/04/2021.",Axial CT with contrast.,CT of 2020-01-05.',
    )
    result = reports_import_csv(data=data, source_name="reports.csv")
    assert (result.created, result.problems) == (1, [])
    study = Study.objects.get(pk=imported_ct_study.pk)
    # Stored as imported, like report text; the rendering removes names and dates.
    assert study.indication.startswith("Weight loss.")
    assert (study.technique, study.comparison) == ("Axial CT with contrast.", "CT of 2020-01-05.")
    context = study_input_build(study=study).context
    prompt = render_prompt(
        "Indication: {indication} Technique: {technique} Comparison: {comparison}", context
    )
    assert "Weight loss" in prompt
    assert "Axial CT with contrast." in prompt
    for leak in ("Jones", "03/04/2021", "2020-01-05"):
        assert leak not in prompt
