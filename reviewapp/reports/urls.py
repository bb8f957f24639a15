from django.urls import path

from reviewapp.reports import views

app_name = "reports"

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("candidates/", views.candidates_upload, name="candidates"),
    path("sources/", views.sources, name="sources"),
]
