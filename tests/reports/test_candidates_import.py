"""External models' reports arrive as CSV, JSONL or ReXrank JSON and become a report source.

carol (coordinator) imports; dave (analyst) may look at sources; alice (reader) never sees one.
All report texts here are written for the test.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from reviewapp.imaging.models import PseudonymMapping, Study
from reviewapp.reports import services
from reviewapp.reports.candidate_formats import report_text_split
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import candidates_import
from reviewapp.studies import services as study_services
from tests.studies.conftest import make_case_study, make_imaging_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def studies() -> list[Study]:
    """Three archived studies: one found by UID, one by accession, one by dataset study id."""
    by_uid, by_accession, by_dataset = (make_case_study(i) for i in range(3))
    PseudonymMapping.objects.create(
        kind=PseudonymMapping.Kind.ACCESSION,
        original="HOSP-778",
        pseudonym=by_accession.accession_pseudonym,
    )
    Study.objects.filter(pk=by_dataset.pk).update(dataset_study_id="s50414267")
    return [by_uid, by_accession, Study.objects.get(pk=by_dataset.pk)]


def _import(data: str | bytes, name: str, **kwargs):
    raw = data.encode() if isinstance(data, str) else data
    return candidates_import(data=raw, file_name=name, source_name="ChestGPT", **kwargs)


def _latest(study: Study, source_name: str = "ChestGPT") -> Report:
    return Report.objects.get(study=study, source__name=source_name, is_latest=True)


# --- splitting a single report string -----------------------------------------------------------


def test_a_report_string_splits_at_its_findings_and_impression_headings() -> None:
    text = (
        "INDICATION: Cough.\nFINDINGS: Heart size is normal.\nNo effusion.\n\n"
        "IMPRESSION: No acute process."
    )
    assert report_text_split(text) == ("Heart size is normal.\nNo effusion.", "No acute process.")
    # Headings inside one line, in any case, as models often write them.
    assert report_text_split("Findings: Lungs clear. Impression: Normal chest.") == (
        "Lungs clear.",
        "Normal chest.",
    )
    assert report_text_split("FINDINGS: Small left effusion.") == ("Small left effusion.", "")


def test_without_headings_the_last_paragraph_is_the_impression_and_one_paragraph_is_findings() -> (
    None
):
    assert report_text_split("Lungs are clear.\nNo pneumothorax.\n\nNormal chest radiograph.") == (
        "Lungs are clear.\nNo pneumothorax.",
        "Normal chest radiograph.",
    )
    # A finding that merely mentions "no findings" is not a heading.
    assert report_text_split("There are no findings of pneumonia. Heart normal.") == (
        "There are no findings of pneumonia. Heart normal.",
        "",
    )


# --- formats ------------------------------------------------------------------------------------


def test_csv_rows_match_by_uid_accession_and_dataset_id_and_bad_rows_are_named(
    studies: list[Study],
) -> None:
    by_uid, by_accession, by_dataset = studies
    data = "\n".join(
        [
            "StudyInstanceUID,AccessionNumber,study_id,findings,impression",
            f'{by_uid.study_instance_uid},,,"Mild cardiomegaly.\nNo effusion.",Cardiomegaly.',
            ",HOSP-778,,Clear lungs.,Normal.",
            ",,s50414267,Left basal atelectasis.,Atelectasis.",
            ",,unknown-id,Something.,Something.",
            f"{by_uid.study_instance_uid},,,Twice.,Twice.",
            ",,,No key.,No key.",
            ",HOSP-778-X,,Not archived.,",
        ]
    )
    result = _import(data, "chestgpt.csv")
    assert result.error == ""
    assert (result.fmt, result.created) == ("csv", 3)
    assert [(p.row, p.reason) for p in result.problems] == [
        (5, "no study in the archive has this dataset study id"),
        (6, "names the same study as record 2"),
        (7, "has neither a StudyInstanceUID nor an AccessionNumber"),
        (8, "no study in the archive has this AccessionNumber"),
    ]
    assert _latest(by_uid).findings == "Mild cardiomegaly.\nNo effusion."
    assert _latest(by_accession).impression == "Normal."
    report = _latest(by_dataset)
    assert (report.kind, report.version, report.source_note) == ("ai", 1, "chestgpt.csv")
    assert report.source.kind == ReportSource.Kind.EXTERNAL
    # The originals are untouched and stay in their own line.
    assert Report.objects.filter(kind=Report.Kind.ORIGINAL, study__in=studies).count() == 3


def test_jsonl_records_with_a_report_string_are_split_and_bad_lines_are_named(
    studies: list[Study],
) -> None:
    by_uid, _, by_dataset = studies
    lines = [
        json.dumps(
            {
                "study_instance_uid": by_uid.study_instance_uid,
                "report": "FINDINGS: Right lower lobe opacity.\nIMPRESSION: Pneumonia.",
            }
        ),
        "",
        json.dumps({"dataset_study_id": "s50414267", "report": "Lungs clear.\n\nNormal."}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"study_id": "s50414267", "findings": 42}),
    ]
    result = _import("\n".join(lines), "preds.jsonl")
    assert (result.fmt, result.created) == ("jsonl", 2)
    assert [(p.row, p.reason) for p in result.problems] == [
        (4, "is not valid JSON"),
        (5, "is not a JSON object"),
        (6, "findings is not a text string"),
    ]
    first = _latest(by_uid)
    assert (first.findings, first.impression) == ("Right lower lobe opacity.", "Pneumonia.")
    second = _latest(by_dataset)
    assert (second.findings, second.impression) == ("Lungs clear.", "Normal.")


def test_rexrank_predictions_keyed_by_study_id_import_and_never_fall_back_to_the_reference(
    studies: list[Study],
) -> None:
    by_uid, by_accession, by_dataset = studies
    Study.objects.filter(pk=by_accession.pk).update(dataset_study_id="s2")
    document = {
        # ReXrank files that merge predictions with the test set carry the reference beside.
        "s50414267": {
            "findings": "REFERENCE FINDINGS.",
            "impression": "REFERENCE IMPRESSION.",
            "model_prediction": "Findings: Stable cardiomediastinal silhouette. "
            "Impression: No acute findings.",
        },
        "s2": {"findings": "Split findings.", "impression": "Split impression."},
        by_uid.study_instance_uid: "Bare string report.\n\nIts impression.",
        "s404": {"report": "Nobody has this study."},
        "s-empty": {"model_prediction": "", "findings": "REFERENCE."},
        "s-bad": 7,
    }
    result = _import(json.dumps(document), "rexrank_predictions.json")
    assert (result.fmt, result.created) == ("rexrank", 3)
    assert [(p.row, p.key, p.reason) for p in result.problems] == [
        (4, "s404", "no study in the archive has this dataset study id or StudyInstanceUID"),
        (5, "s-empty", "findings and impression are both empty"),
        (6, "s-bad", "is not a JSON object"),
    ]
    predicted = _latest(by_dataset)
    assert (predicted.findings, predicted.impression) == (
        "Stable cardiomediastinal silhouette.",
        "No acute findings.",
    )
    assert _latest(by_accession).impression == "Split impression."
    assert _latest(by_uid).impression == "Its impression."


# --- versioning ---------------------------------------------------------------------------------


def test_reimporting_a_study_for_the_same_source_is_its_next_version_and_identical_is_a_no_op(
    studies: list[Study], coordinator
) -> None:
    study = studies[2]
    header = "study_id,findings,impression\n"
    _import(header + "s50414267,Old findings.,Old.", "v1.csv", source_version="1.0")
    again = _import(header + "s50414267,Old findings.,Old.", "v1b.csv", source_version="1.0")
    assert (again.created, again.versioned, again.unchanged) == (0, 0, 1)
    changed = _import(
        header + "s50414267,New findings.,New.", "v2.csv", source_version="1.0", author=coordinator
    )
    assert (changed.created, changed.versioned) == (0, 1)
    line = list(Report.objects.filter(study=study, source__version="1.0").order_by("version"))
    assert [(r.version, r.findings, r.is_latest) for r in line] == [
        (1, "Old findings.", False),
        (2, "New findings.", True),
    ]
    assert line[0].lineage == line[1].lineage
    # Another version of the model is another source, with a line of its own.
    other = _import(header + "s50414267,Old findings.,Old.", "v1.csv", source_version="2.0")
    assert other.created == 1
    assert ReportSource.objects.filter(kind="external", name="ChestGPT").count() == 2


def test_a_source_can_never_be_moved_off_a_report(studies: list[Study]) -> None:
    from django.db import InternalError, ProgrammingError, transaction

    _import("study_id,findings\ns50414267,Text.", "a.csv")
    report = _latest(studies[2])
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        Report.objects.filter(pk=report.pk).update(source=services.report_source_original())


# --- whole-file refusals and source validation --------------------------------------------------


def test_files_that_are_too_large_too_long_or_not_the_format_are_refused_whole(
    studies: list[Study], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _import("study_id,foo\nx,y", "a.csv").error == (
        "The header row needs findings and/or impression, or a report column."
    )
    assert _import("[1, 2]", "a.json").error_code == "bad_file"
    assert _import(b"\x00\x01", "a.csv").error_code == "not_text"
    monkeypatch.setattr(services, "MAX_CANDIDATE_ROWS", 2)
    too_many = _import("study_id,findings\na,x\nb,y\nc,z", "a.csv")
    assert too_many.error == "The file has more than 2 records; split it."
    monkeypatch.setattr(services, "MAX_CANDIDATES_BYTES", 10)
    assert _import("study_id,findings\na,x", "a.csv").error_code == "too_large"
    # Nothing was stored, not even the source.
    assert not ReportSource.objects.filter(kind="external").exists()


def test_provenance_must_be_a_flat_object_of_short_values(studies: list[Study]) -> None:
    data = "study_id,findings\ns50414267,Text."
    bad = _import(data, "a.csv", source_provenance={"nested": {"no": 1}})
    assert bad.error_code == "bad_source"
    assert not ReportSource.objects.filter(kind="external").exists()
    good = _import(
        data, "a.csv", source_description="Fine-tuned on CXR", source_provenance={"seed": 3}
    )
    assert good.source is not None
    assert (good.source.description, good.source.provenance) == ("Fine-tuned on CXR", {"seed": 3})


# --- cases use an external source's reports -------------------------------------------------------


def test_a_pairwise_study_compares_the_original_with_an_external_models_reports(
    studies: list[Study], coordinator
) -> None:
    _import("study_id,findings,impression\ns50414267,Imported candidate.,Fine.", "external.csv")
    source = ReportSource.objects.get(kind="external", name="ChestGPT")
    reader_study = study_services.reader_study_create(
        user=coordinator, name="External vs original", protocol_key="medgemini_cxr"
    )
    added = study_services.cases_add(
        reader_study=reader_study,
        imaging_studies=[studies[2]],
        candidate_reports=Report.objects.filter(source=source, is_latest=True),
    )
    assert added.problems == []
    (case,) = added.added
    assert case.first_report == Report.objects.get(study=studies[2], kind="original")
    assert case.second_report.findings == "Imported candidate."


# --- interfaces -----------------------------------------------------------------------------------


def test_coordinators_import_through_the_api_and_others_are_refused(
    studies: list[Study], api_client_for, coordinator, analyst, reader
) -> None:
    def post(user):
        upload = SimpleUploadedFile(
            "p.jsonl",
            b'{"study_id": "s50414267", "report": "A.\\n\\nB."}\n{"x": 1, "report": "T."}\n',
        )
        return api_client_for(user).post(
            "/api/v1/reports/candidates/import",
            {"file": upload, "source": "ChestGPT", "version": "7", "provenance": '{"seed": 1}'},
            format="multipart",
        )

    assert post(reader).status_code == 403
    assert post(analyst).status_code == 403
    assert post(None).status_code in (401, 403)
    response = post(coordinator)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["format"], body["created"], body["source"]["label"]) == ("jsonl", 1, "ChestGPT 7")
    assert body["problems"] == [
        {"row": 2, "key": "", "reason": "has neither a StudyInstanceUID nor an AccessionNumber"}
    ]
    bad = api_client_for(coordinator).post(
        "/api/v1/reports/candidates/import",
        {"file": SimpleUploadedFile("p.csv", b"nothing,here\n1,2\n"), "source": "ChestGPT"},
        format="multipart",
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "bad_file")


def test_sources_are_listed_with_counts_for_coordinators_and_analysts_never_readers(
    studies: list[Study], api_client_for, coordinator, analyst, reader, outsider
) -> None:
    _import("study_id,findings\ns50414267,Text.", "a.csv", source_description="Ours")
    services.report_source_original()
    for user in (reader, outsider):
        assert api_client_for(user).get("/api/v1/reports/sources").status_code == 403
        client = Client()
        client.force_login(user)
        assert client.get("/reports/sources/").status_code == 403
    listed = {s["label"]: s for s in api_client_for(analyst).get("/api/v1/reports/sources").json()}
    assert listed["ChestGPT"]["report_count"] == 1
    assert listed["ChestGPT"]["description"] == "Ours"
    client = Client()
    client.force_login(coordinator)
    page = client.get("/reports/sources/")
    assert page.status_code == 200
    assert "ChestGPT" in page.content.decode()


def test_the_upload_page_imports_and_names_bad_records(
    studies: list[Study], coordinator, reader
) -> None:
    client = Client()
    client.force_login(reader)
    assert client.get("/reports/candidates/").status_code == 403
    client.force_login(coordinator)
    assert client.get("/reports/candidates/").status_code == 200
    document = {"s50414267": {"model_prediction": "Lungs clear."}, "s-missing": "Text."}
    response = client.post(
        "/reports/candidates/",
        {
            "source": "RadModel",
            "version": "",
            "file": SimpleUploadedFile("preds.json", json.dumps(document).encode()),
        },
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "RadModel (rexrank): 1 created" in text
    assert "s-missing" in text
    assert _latest(studies[2], "RadModel").findings == "Lungs clear."


def test_the_command_imports_a_file_for_a_named_source(
    studies: list[Study], tmp_path, capsys
) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"study_id": "s50414267", "findings": "Cmd."}) + "\n")
    call_command("import_candidates", str(path), "--source", "CmdModel", "--version", "0.1")
    assert "CmdModel 0.1: 1 created" in capsys.readouterr().out
    assert _latest(studies[2], "CmdModel").findings == "Cmd."
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_candidates", str(tmp_path / "x.csv"), "--source", "CmdModel")


def test_originals_and_generated_reports_carry_their_sources(coordinator) -> None:
    study = make_imaging_study(9)
    imported = services.report_original_upsert(study=study, findings="F.", impression="I.")
    assert imported.report.source == services.report_source_original()
    changed = services.report_original_upsert(study=study, findings="F2.", impression="I.")
    assert changed.report.source == imported.report.source


def test_every_configured_model_is_a_source_from_the_start(coordinator) -> None:
    from reviewapp.generation.services import model_config_save

    config = model_config_save(user=coordinator, name="Retrieval baseline", backend="retrieval")
    source = ReportSource.objects.get(model_config=config)
    assert (source.kind, source.label) == ("model", "Retrieval baseline")
