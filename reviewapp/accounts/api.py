from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.accounts.authentication import token_expires_at
from reviewapp.accounts.services import api_token_issue, api_tokens_revoke, user_get_for_admin
from reviewapp.core.parsers import JSONParser
from reviewapp.core.permissions import IsAdmin
from reviewapp.core.roles import user_roles


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
