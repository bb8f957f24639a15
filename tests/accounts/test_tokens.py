"""API tokens: they expire, a password change revokes them, and so do their owner and admins.

alice reads, dave analyses with a script, root administers, bob is another reader.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
# DRF answers 403 rather than 401 when the first authentication scheme (the session) names
# no WWW-Authenticate challenge; either way the request is refused.
REFUSED = (401, 403)


def _with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _exchange(username: str) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_script_exchanges_a_password_for_a_token_that_says_when_it_expires(analyst) -> None:
    answer = _exchange("dave")
    assert _with_token(answer["token"]).get("/api/v1/me").status_code == 200
    assert answer["expires_at"] > (timezone.now() + timedelta(days=29)).isoformat()


@override_settings(RADREVIEW_TOKEN_TTL_DAYS=30)
def test_an_expired_token_is_refused_and_the_exchange_gives_a_new_one(analyst) -> None:
    old = _exchange("dave")["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(days=31))

    refused = _with_token(old).get("/api/v1/me")
    assert refused.status_code in REFUSED
    assert "expired" in refused.json()["detail"]

    new = _exchange("dave")["token"]
    assert new != old
    assert _with_token(new).get("/api/v1/me").status_code == 200


def test_a_password_change_revokes_the_token(analyst) -> None:
    old = _exchange("dave")["token"]
    analyst.set_password("a-new-passphrase-for-dave")
    analyst.save()
    assert _with_token(old).get("/api/v1/me").status_code in REFUSED
    assert not Token.objects.filter(user=analyst).exists()


def test_the_changepassword_path_of_the_admin_form_revokes_the_token_too(
    analyst, admin_user
) -> None:
    from django.test import Client

    old = _exchange("dave")["token"]
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post(
        f"/admin/auth/user/{analyst.pk}/password/",
        {"password1": "Zq8!vT2#mLp9-new", "password2": "Zq8!vT2#mLp9-new"},
    )
    assert response.status_code == 302, response.content[:500]
    assert _with_token(old).get("/api/v1/me").status_code in REFUSED


def test_the_owner_revokes_their_token_at_once(analyst) -> None:
    key = _exchange("dave")["token"]
    client = _with_token(key)
    assert client.delete("/api/v1/auth/token").status_code == 204
    assert client.get("/api/v1/me").status_code in REFUSED


def test_an_admin_revokes_anyones_token_and_a_reader_cannot(
    admin_user, reader, second_reader, api_client_for
) -> None:
    bob = _exchange("bob")["token"]

    assert api_client_for(reader).delete("/api/v1/users/bob/token").status_code == 403
    assert _with_token(bob).get("/api/v1/me").status_code == 200

    assert api_client_for(admin_user).delete("/api/v1/users/bob/token").status_code == 204
    assert _with_token(bob).get("/api/v1/me").status_code in REFUSED
    assert api_client_for(admin_user).delete("/api/v1/users/nobody/token").status_code == 404


def test_anonymous_visitors_cannot_revoke_anything(client) -> None:
    assert APIClient().delete("/api/v1/auth/token").status_code in REFUSED
