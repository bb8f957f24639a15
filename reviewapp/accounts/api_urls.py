from django.urls import path

from reviewapp.accounts.api import MeApi, TokenApi, UserTokenRevokeApi

urlpatterns = [
    path("me", MeApi.as_view(), name="api-me"),
    path("auth/token", TokenApi.as_view(), name="api-token"),
    path("users/<str:username>/token", UserTokenRevokeApi.as_view(), name="api-user-token"),
]
