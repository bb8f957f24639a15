from __future__ import annotations

from django.urls import path

from reviewapp.generation import views

app_name = "generation"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("models/", views.model_list, name="model_list"),
    path("models/new/", views.model_edit, name="model_create"),
    path("models/<uuid:model_id>/", views.model_edit, name="model_edit"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/retry/", views.run_retry, name="run_retry"),
]
