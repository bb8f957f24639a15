from __future__ import annotations

from django.urls import path

from reviewapp.metrics import api

urlpatterns = [
    path(
        "metrics/studies/<uuid:public_id>/", api.StudyMetricsApi.as_view(), name="api-metrics-study"
    ),
    path(
        "metrics/studies/<uuid:public_id>/jobs",
        api.StudyMetricJobsApi.as_view(),
        name="api-metrics-jobs",
    ),
    path("metrics/jobs/<uuid:job_id>/", api.MetricJobApi.as_view(), name="api-metrics-job"),
]
