from __future__ import annotations

from django.urls import path

from reviewapp.analysis import views

app_name = "analysis"

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("plan/", views.study_plan, name="plan"),
    path("<uuid:public_id>/", views.study_analysis, name="study"),
    path("<uuid:public_id>/arms.csv", views.study_arms_export, name="arms_export"),
    path(
        "<uuid:public_id>/export/<slug:dataset>.<slug:fmt>",
        views.study_export,
        name="export",
    ),
]
