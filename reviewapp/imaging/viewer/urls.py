from django.urls import path

from reviewapp.imaging.viewer import views

app_name = "viewer"

urlpatterns = [
    path("studies/<uuid:public_id>/", views.study_viewer, name="study"),
]
