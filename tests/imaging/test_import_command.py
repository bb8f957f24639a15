"""``import_dicom`` and ``seed_demo`` on the repository's sample folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from reviewapp.imaging.models import ImportBatch, Instance, Study
from reviewapp.reports.models import Report
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
    assert set(logins) == {"reader1", "reader2", "coordinator", "analyst", "admin"}
    for username, password in logins.items():
        assert f"{username}" in first
        assert password in first
    assert get_user_model().objects.get(username="reader1").check_password(logins["reader1"])
    assert Study.objects.count() == 3
    assert Report.objects.filter(kind=Report.Kind.ORIGINAL).count() == 3
    assert sorted(Study.objects.values_list("stratum", flat=True)) == [
        "abnormal",
        "abnormal",
        "normal",
    ]
    ct = Study.objects.get(modalities="CT")
    assert "right upper lobe" in Report.objects.get(study=ct).findings.lower()
    assert not Instance.objects.filter(status=Instance.Status.QUARANTINED).exists()

    call_command("seed_demo")
    second = capsys.readouterr().out
    assert json.loads((archive_dirs / "demo_logins.json").read_text()) == logins
    assert logins["coordinator"] in second
    assert Study.objects.count() == 3
    assert Instance.objects.count() == 32
    assert Report.objects.count() == 3
