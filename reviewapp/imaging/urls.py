from django.urls import path

from reviewapp.imaging import views

app_name = "imaging"

urlpatterns = [
    path("studies/", views.study_list, name="study_list"),
    path("studies/<uuid:public_id>/", views.study_detail, name="study_detail"),
    path("upload/", views.upload, name="upload"),
    path("datasets/", views.dataset_upload, name="dataset_upload"),
    path("imports/<uuid:public_id>/", views.import_batch_detail, name="import_batch_detail"),
    path("quarantine/", views.quarantine_list, name="quarantine_list"),
    path("quarantine/<uuid:public_id>/", views.quarantine_decide, name="quarantine_decide"),
    path(
        "quarantine/<uuid:public_id>/preview.png",
        views.quarantine_preview,
        name="quarantine_preview",
    ),
]
