"""A study's invitation pages, mounted under the study's address (``/studies/<id>/``)."""

from django.urls import path

from reviewapp.accounts import views

app_name = "invitations"

urlpatterns = [
    path("", views.invitations, name="list"),
    path("import/", views.invitations_import, name="import"),
    path("<str:invitation_id>/resend/", views.invitation_resend, name="resend"),
    path("<str:invitation_id>/revoke/", views.invitation_revoke, name="revoke"),
]
