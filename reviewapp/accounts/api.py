from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.accounts.authentication import token_expires_at
from reviewapp.accounts.models import Invitation
from reviewapp.accounts.selectors import invitation_get, invitation_links_shown, invitation_list
from reviewapp.accounts.services import (
    MAX_INVITATION_CSV_BYTES,
    InvitationSent,
    api_token_issue,
    api_tokens_revoke,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitations_import_csv,
    user_get_for_admin,
)
from reviewapp.core.errors import ApplicationError
from reviewapp.core.parsers import JSONParser
from reviewapp.core.permissions import IsAdmin, IsCoordinator
from reviewapp.core.roles import user_roles
from reviewapp.studies.api import NoStoreAPIView
from reviewapp.studies.selectors import reader_study_get_for_coordinator


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        data = {"username": request.user.get_username(), "roles": sorted(user_roles(request.user))}
        return Response(self.OutputSerializer(data).data)


class TokenApi(ObtainAuthToken):
    """POST: exchange a username and password for an API token (locked out like the login
    page; a new token once the old one has expired). DELETE: revoke your own token."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]  # ours, with its bounds

    class TokenOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    @extend_schema(responses=TokenOutputSerializer)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = api_token_issue(user=serializer.validated_data["user"])
        data = {"token": token.key, "expires_at": token_expires_at(token)}
        return Response(self.TokenOutputSerializer(data).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        assert isinstance(request.user, AbstractBaseUser)  # IsAuthenticated let it in
        api_tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserTokenRevokeApi(APIView):
    """Revoke another user's API token at once (administrators)."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={204: None, 404: None})
    def delete(self, request: Request, username: str) -> Response:
        api_tokens_revoke(user=user_get_for_admin(username=username))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- invitations ---------------------------------------------------------------------------


class InvitationOut(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    email = serializers.EmailField()
    name = serializers.CharField()
    cohort = serializers.CharField()
    status = serializers.ChoiceField(choices=Invitation.Status.choices)
    outcome = serializers.ChoiceField(choices=Invitation.Outcome.choices)
    invited_by = serializers.CharField(source="invited_by.username", default=None)
    accepted_by = serializers.CharField(source="accepted_by.username", default=None)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField()
    send_count = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    mail_failed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class InvitationSentOut(serializers.Serializer):
    invitation = InvitationOut()
    # The one-time link, only where no mail server is configured (else it went by e-mail).
    link = serializers.CharField(allow_null=True)


def _sent_data(sent: InvitationSent) -> dict[str, Any]:
    link = sent.link if invitation_links_shown() else None
    return InvitationSentOut({"invitation": sent.invitation, "link": link}).data


class _InvitationApi(NoStoreAPIView):
    """Invitations carry personal addresses and, where no mail is sent, live links: the
    study's coordinators and admins only, and no cache keeps them."""

    permission_classes = [IsCoordinator]

    def study(self, request: Request, study_id: str) -> Any:
        return reader_study_get_for_coordinator(user=request.user, public_id=study_id)


class InvitationsApi(_InvitationApi):
    class InvitationIn(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        name = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
        cohort = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    @extend_schema(summary="The study's invitations", responses=InvitationOut(many=True))
    def get(self, request: Request, study_id: str) -> Response:
        study = self.study(request, study_id)
        return Response(InvitationOut(invitation_list(reader_study=study), many=True).data)

    @extend_schema(
        summary="Invite one reader by e-mail address (coordinators of the study, admins)",
        request=InvitationIn,
        responses={201: InvitationSentOut},
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = self.study(request, study_id)
        data = self.InvitationIn(data=request.data)
        data.is_valid(raise_exception=True)
        sent = invitation_create(
            reader_study=study,
            invited_by=request.user,  # type: ignore[arg-type]
            base_url=request.build_absolute_uri("/"),
            **data.validated_data,
        )
        return Response(_sent_data(sent), status=status.HTTP_201_CREATED)


class InvitationsImportApi(_InvitationApi):
    parser_classes = [MultiPartParser]

    ImportOut = inline_serializer(
        "InvitationsImported",
        {
            "invited": InvitationSentOut(many=True),
            "problems": inline_serializer(
                name="InvitationsImportProblem",
                fields={"row": serializers.IntegerField(), "reason": serializers.CharField()},
                many=True,
            ),
        },
    )

    @extend_schema(
        summary="Invite everyone a CSV names (header: email, optionally name and cohort)",
        request={
            "multipart/form-data": inline_serializer(
                name="InvitationsImportUpload", fields={"file": serializers.FileField()}
            )
        },
        responses=ImportOut,
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = self.study(request, study_id)
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("Send the CSV as the multipart field 'file'.", code="no_file")
        if upload.size and upload.size > MAX_INVITATION_CSV_BYTES:
            raise ApplicationError(
                f"The file is larger than {MAX_INVITATION_CSV_BYTES // 1024} KB.", code="too_large"
            )
        result = invitations_import_csv(
            reader_study=study,
            invited_by=request.user,  # type: ignore[arg-type]
            data=upload.read(),
            base_url=request.build_absolute_uri("/"),
        )
        if result.error:
            raise ApplicationError(result.error, code="bad_csv")
        return Response(
            {
                "invited": [_sent_data(s) for s in result.sent],
                "problems": [{"row": p.row, "reason": p.reason} for p in result.problems],
            }
        )


class InvitationResendApi(_InvitationApi):
    @extend_schema(
        summary="Send an invitation again with a new link (the old one stops working)",
        request=None,
        responses=InvitationSentOut,
    )
    def post(self, request: Request, study_id: str, invitation_id: str) -> Response:
        invitation = invitation_get(
            reader_study=self.study(request, study_id), public_id=invitation_id
        )
        sent = invitation_resend(
            invitation=invitation,
            user=request.user,  # type: ignore[arg-type]
            base_url=request.build_absolute_uri("/"),
        )
        return Response(_sent_data(sent))


class InvitationRevokeApi(_InvitationApi):
    @extend_schema(
        summary="Revoke an invitation (its link stops working)",
        request=None,
        responses=InvitationOut,
    )
    def post(self, request: Request, study_id: str, invitation_id: str) -> Response:
        invitation = invitation_get(
            reader_study=self.study(request, study_id), public_id=invitation_id
        )
        revoked = invitation_revoke(invitation=invitation, user=request.user)  # type: ignore[arg-type]
        return Response(InvitationOut(revoked).data)
