from django.urls import path

from reviewapp.imaging import views

app_name = "imaging"

urlpatterns = [
    path("studies/", views.study_list, name="study_list"),
    path("upload/", views.upload, name="upload"),
]
