"""``import_dicom`` and ``seed_demo`` on the repository's sample folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from reviewapp.generation.models import ModelConfig
from reviewapp.generation.services import generation_job_create, generation_run_execute
from reviewapp.imaging.models import ImportBatch, Instance, Study
from reviewapp.reports.models import Report, ReportSource
from tests.conftest import SAMPLES

pytestmark = pytest.mark.django_db


def test_import_dicom_walks_the_sample_folder_and_prints_a_summary_and_each_problem(
    archive_dirs: Path, capsys
) -> None:
    call_command("import_dicom", str(SAMPLES))
    captured = capsys.readouterr()
    assert Instance.objects.count() == 32
    assert Study.objects.count() == 3
    batch = ImportBatch.objects.get()
    assert batch.source == ImportBatch.Source.COMMAND
    assert batch.files_total == batch.files_done == 33  # 32 images and ATTRIBUTION.md
    assert "30 imported" in captured.out
    assert "2 quarantined" in captured.out
    assert "1 not imported; 3 studies." in captured.out
    assert "rejected: sampledata/ATTRIBUTION.md:" in captured.out
    assert "quarantined: sampledata/cxr/" in captured.out
    assert "33/33" in captured.err  # the progress bar

    call_command("import_dicom", str(SAMPLES / "ct"), "--no-progress")
    again = capsys.readouterr()
    assert "0 imported, 30 already in the archive" in again.out
    assert Instance.objects.count() == 32


def test_import_dicom_names_a_missing_path(archive_dirs: Path) -> None:
    with pytest.raises(CommandError, match="no/such/folder: no such file or folder"):
        call_command("import_dicom", "no/such/folder")


def test_seed_demo_is_idempotent_and_prints_stable_logins(archive_dirs: Path, capsys) -> None:
    call_command("seed_demo")
    first = capsys.readouterr().out
    logins = json.loads((archive_dirs / "demo_logins.json").read_text())
    assert set(logins) == {"reader1", "reader2", "reader3", "coordinator", "analyst", "admin"}
    for username, password in logins.items():
        assert f"{username}" in first
        assert password in first
    assert get_user_model().objects.get(username="reader1").check_password(logins["reader1"])
    # The four sample studies and six radiographs derived from the sample images.
    assert Study.objects.count() == 10
    assert Report.objects.filter(kind=Report.Kind.ORIGINAL).count() == 10
    assert (
        sorted(Study.objects.values_list("stratum", flat=True)) == ["abnormal"] * 6 + ["normal"] * 4
    )
    assert Study.objects.filter(modalities="CT").count() == 2
    # Each derived radiograph is a patient of its own; the two CTs are one patient.
    assert Study.objects.values("patient_pseudonym").distinct().count() == 9
    first_ct, second_ct = Study.objects.filter(modalities="CT").order_by("study_date")
    originals = Report.objects.filter(kind=Report.Kind.ORIGINAL)
    assert "right upper lobe" in originals.get(study=first_ct).findings.lower()
    assert "interval decrease" in originals.get(study=second_ct).impression.lower()
    assert (second_ct.study_date - first_ct.study_date).days == 91
    for ct in (first_ct, second_ct):
        assert Instance.objects.filter(series__study=ct).count() == 30
    assert not Instance.objects.filter(status=Instance.Status.QUARANTINED).exists()

    call_command("seed_demo")
    second = capsys.readouterr().out
    assert json.loads((archive_dirs / "demo_logins.json").read_text()) == logins
    assert logins["coordinator"] in second
    assert Study.objects.count() == 10
    assert Instance.objects.count() == 68
    # Originals, and the two demo models' reports (the rated studies' candidates).
    assert Report.objects.count() == 30


def test_the_retrieval_baseline_writes_an_ai_report_for_every_demo_study(
    archive_dirs: Path,
) -> None:
    """The demo tour's first step: every demo study, CT included, can be given an AI report."""
    call_command("seed_demo")
    coordinator = get_user_model().objects.get(username="coordinator")
    created = generation_job_create(
        user=coordinator,
        model_config=ModelConfig.objects.get(name="retrieval-baseline"),
        studies=list(Study.objects.all()),
    )

    outcomes = [generation_run_execute(run_pk=run.pk) for run in created.job.runs.all()]

    assert outcomes == ["succeeded"] * 10
    first_ct, second_ct = Study.objects.filter(modalities="CT").order_by("study_date")
    ai_report = Report.objects.get(
        study=first_ct, kind=Report.Kind.AI, source__kind=ReportSource.Kind.MODEL
    )
    assert ai_report.findings == Report.objects.get(study=second_ct, kind="original").findings
