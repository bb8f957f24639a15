from django.urls import path

from reviewapp.studies import views

app_name = "studies"

urlpatterns = [
    path("", views.study_list, name="list"),
    path("new/", views.study_new, name="new"),
    path("protocol/new/", views.protocol_new, name="protocol_new"),
    path("reading/", views.worklist, name="worklist"),
    path("reading/<str:study_id>/continue/", views.reading_continue, name="continue"),
    path("read/<str:assignment_id>/", views.read, name="read"),
    path("<str:study_id>/", views.study_detail, name="detail"),
    path("<str:study_id>/cases/add/", views.cases_add, name="cases_add"),
    path("<str:study_id>/panel/", views.panel_save, name="panel"),
    path(
        "<str:study_id>/reading-lists/",
        views.reading_lists_generate,
        name="reading_lists",
    ),
    path("<str:study_id>/open/", views.study_open, name="open"),
    path("<str:study_id>/pause/", views.study_pause, name="pause"),
    path("<str:study_id>/lock/", views.study_lock, name="lock"),
    path("<str:study_id>/design/", views.study_design, name="design"),
    path("<str:study_id>/reading-options/", views.study_reading_options, name="reading_options"),
    path("<str:study_id>/delete/", views.study_delete, name="delete"),
    path("<str:study_id>/cases/<str:case_id>/remove/", views.case_remove, name="case_remove"),
    path(
        "<str:study_id>/refresh-reports/",
        views.study_refresh_reports,
        name="refresh_reports",
    ),
    path("<str:study_id>/practice/", views.study_practice, name="practice"),
    path("<str:study_id>/practice/<str:case_id>/", views.case_practice, name="case_practice"),
    path(
        "<str:study_id>/practice/<str:case_id>/reference/",
        views.case_reference,
        name="case_reference",
    ),
    path("<str:study_id>/progress/", views.study_progress, name="progress"),
    path("<str:study_id>/progress.csv", views.study_progress_export, name="progress_export"),
    path("<str:study_id>/blinding/check/", views.study_blinding_check, name="blinding_check"),
    path(
        "<str:study_id>/blinding/acknowledge/",
        views.study_blinding_acknowledge,
        name="blinding_acknowledge",
    ),
    path("<str:study_id>/protocol/", views.study_protocol, name="protocol"),
    path(
        "<str:study_id>/ratings/<str:assignment_id>/history/",
        views.rating_history,
        name="rating_history",
    ),
]
