from __future__ import annotations

from django.urls import path

from reviewapp.analysis import api

urlpatterns = [
    path("analysis/plan/", api.StudyPlanApi.as_view(), name="api-analysis-plan"),
    path(
        "analysis/studies/<uuid:public_id>/",
        api.StudyAnalysisApi.as_view(),
        name="api-analysis-study",
    ),
    path(
        "analysis/studies/<uuid:public_id>/exports/<slug:dataset>.<slug:fmt>",
        api.StudyExportApi.as_view(),
        name="api-analysis-export",
    ),
]
