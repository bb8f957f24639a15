from django.urls import path

from reviewapp.imaging import viewer_views

app_name = "viewer"

urlpatterns = [
    path("studies/<uuid:public_id>/", viewer_views.study_viewer, name="study"),
]
