from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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
    """Exchange a username and password for an API token (locked out like the login page)."""

    permission_classes = [AllowAny]
