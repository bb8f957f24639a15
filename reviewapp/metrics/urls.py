from __future__ import annotations

from django.urls import path

from reviewapp.metrics import views

app_name = "metrics"

urlpatterns = [
    path("studies/<uuid:public_id>/", views.study_metrics, name="study"),
    path("studies/<uuid:public_id>/run/", views.study_metrics_run, name="run"),
    path("studies/<uuid:public_id>/rexval.csv", views.study_metrics_export, name="export"),
]
