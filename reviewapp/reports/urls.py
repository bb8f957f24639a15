from django.urls import path

from reviewapp.reports import views

app_name = "reports"

urlpatterns = [path("upload/", views.upload, name="upload")]
