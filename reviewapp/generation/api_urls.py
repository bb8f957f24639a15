from __future__ import annotations

from django.urls import path

from reviewapp.generation import api

urlpatterns = [
    path("generation/models/", api.ModelConfigListApi.as_view(), name="generation-models"),
    path("generation/jobs/", api.JobListCreateApi.as_view(), name="generation-jobs"),
    path("generation/jobs/<uuid:job_id>/", api.JobDetailApi.as_view(), name="generation-job"),
    path(
        "generation/jobs/<uuid:job_id>/cancel/",
        api.JobCancelApi.as_view(),
        name="generation-job-cancel",
    ),
    path("generation/runs/<uuid:run_id>/", api.RunDetailApi.as_view(), name="generation-run"),
    path(
        "generation/runs/<uuid:run_id>/retry/",
        api.RunRetryApi.as_view(),
        name="generation-run-retry",
    ),
]
