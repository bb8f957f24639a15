from django.urls import path

from reviewapp.accounts import api
from reviewapp.accounts.api import MeApi, TokenApi, UserTokenRevokeApi

INVITATIONS = "reader-studies/<str:study_id>/invitations"

urlpatterns = [
    path("me", MeApi.as_view(), name="api-me"),
    path("auth/token", TokenApi.as_view(), name="api-token"),
    path("users/<str:username>/token", UserTokenRevokeApi.as_view(), name="api-user-token"),
    path(INVITATIONS, api.InvitationsApi.as_view(), name="reader-study-invitations"),
    path(
        INVITATIONS + "/import",
        api.InvitationsImportApi.as_view(),
        name="reader-study-invitations-import",
    ),
    path(
        INVITATIONS + "/<str:invitation_id>/resend",
        api.InvitationResendApi.as_view(),
        name="reader-study-invitation-resend",
    ),
    path(
        INVITATIONS + "/<str:invitation_id>/revoke",
        api.InvitationRevokeApi.as_view(),
        name="reader-study-invitation-revoke",
    ),
]
