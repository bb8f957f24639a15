"""`make demo` seeds rated reader studies through the real services, once: a second run
changes nothing, and the demo analyst finds the arms, the metrics and the progress to walk."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from reviewapp.analysis import arms
from reviewapp.imaging.models import Instance, Study
from reviewapp.metrics import services as metric_services
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies import demo
from reviewapp.studies.models import Assignment, Case, Rating, ReaderStudy

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        "studies": Study.objects.count(),
        "instances": Instance.objects.count(),
        "reports": Report.objects.count(),
        "sources": ReportSource.objects.count(),
        "reader_studies": ReaderStudy.objects.count(),
        "cases": Case.objects.count(),
        "assignments": Assignment.objects.count(),
        "ratings": Rating.objects.count(),
    }


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_the_demo_seeds_rated_studies_once_for_the_analyst_to_walk(
    archive_dirs: Path, capsys
) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert f'Reader study seeded: "{demo.PAIRWISE_NAME}": 24 cases, 68 ratings.' in out
    assert f'Reader study seeded: "{demo.SINGLE_NAME}": 30 cases, 30 ratings.' in out

    # Both models' reports came in through the candidate import, one per demo study.
    for name in ("demo-model-a", "demo-model-b"):
        source = ReportSource.objects.get(kind=ReportSource.Kind.EXTERNAL, name=name)
        assert source.description == demo.PROVENANCE_NOTE
        assert Report.objects.filter(source=source).count() == Study.objects.count() == 10

    pairwise = ReaderStudy.objects.get(name=demo.PAIRWISE_NAME)
    assert pairwise.status == ReaderStudy.Status.OPEN
    assert pairwise.blinding_acknowledged_at is not None
    assert [(a.first_source.label, a.second_source.label) for a in pairwise.arms.all()] == [
        ("Original (radiologist)", "demo-model-a 1.0"),
        ("Original (radiologist)", "demo-model-b 1.0"),
        ("demo-model-a 1.0", "demo-model-b 1.0"),
    ]
    # Radiographs only: the protocol is a chest radiograph scale.
    assert set(pairwise.cases.values_list("imaging_study__modalities", flat=True)) <= {"CR", "DX"}
    reads = Assignment.objects.filter(reader_study=pairwise)
    assert reads.count() == 3 * 24
    open_reads = reads.exclude(status=Assignment.Status.SUBMITTED)
    assert {a.reader.get_username() for a in open_reads} == {"reader1"}
    assert open_reads.count() == demo.LEFT_OPEN

    single = ReaderStudy.objects.get(name=demo.SINGLE_NAME)
    assert single.design == ReaderStudy.Design.EACH_SOURCE
    assert Rating.objects.filter(assignment__reader_study=single).count() == 30

    before = _counts()
    call_command("seed_demo")
    assert "Reader study seeded" not in capsys.readouterr().out
    assert _counts() == before

    analyst = _client("analyst")
    page = analyst.get(reverse("analysis:study", args=[pairwise.public_id])).content.decode()
    for section in (
        'id="headline"',
        'id="arm-rates"',
        'id="arm-differences"',
        'id="bradley-terry"',
    ):
        assert section in page
    assert "demo-model-b 1.0" in page
    # The seeded readers judged model B's edits (a side swapped, a normal impression on an
    # abnormal study) to change management more often than model A's (a finding left out).
    results = arms.arms_results(reader_study=pairwise, n_resamples=200)
    assert results is not None
    management = {
        r["arm"]: r["rate"]
        for r in results["rates"]
        if r["outcome"] == "same_or_superior_management"
    }
    assert management[1] > management[2]

    coordinator = get_user_model().objects.get(username="coordinator")
    for job in metric_services.metric_jobs_create(user=coordinator, reader_study=pairwise):
        metric_services.metric_job_execute(job_pk=job.pk)
    metrics = analyst.get(reverse("metrics:study", args=[pairwise.public_id]))
    assert metrics.status_code == 200
    text = metrics.content.decode()
    assert 'id="agreement-table"' in text
    assert "demo-model-a 1.0" in text
    assert analyst.get(reverse("metrics:study", args=[single.public_id])).status_code == 200

    progress = _client("coordinator").get(reverse("studies:progress", args=[pairwise.public_id]))
    assert progress.status_code == 200
    assert "reader3" in progress.content.decode()
