"""The metric JSONFields' schemas: what a job stores passes its field validators, a malformed
document is refused naming the field and never echoing report text."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from reviewapp.metrics import services
from reviewapp.metrics.models import MetricJob, MetricResult
from reviewapp.metrics.schemas import metric_detail_validate, metric_values_validate

pytestmark = pytest.mark.django_db


def test_every_stored_result_and_job_passes_its_field_validators(error_study, analyst) -> None:
    for job in services.metric_jobs_create(user=analyst, reader_study=error_study.study):
        services.metric_job_execute(job_pk=job.pk)
    for result in MetricResult.objects.all():
        result.full_clean()
    for job in MetricJob.objects.all():
        job.full_clean()
    assert MetricResult.objects.count() == 36


def test_values_must_be_numbers_and_detail_never_carries_text() -> None:
    with pytest.raises(ValidationError) as refused:
        metric_values_validate({"bleu_4": "0.3"})
    assert "MetricResult.values" in str(refused.value)
    with pytest.raises(ValidationError):
        metric_detail_validate({"candidate_text": "Small left effusion."})
