from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_pages_send_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_api_denies_anonymous_requests_by_default(client: Client) -> None:
    assert client.get("/api/v1/me").status_code in (401, 403)
    assert client.get("/api/schema/").status_code in (401, 403)


def test_a_reader_logs_in_and_sees_their_roles(client: Client, reader) -> None:
    response = client.post(
        reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert client.get("/api/v1/me").json() == {"username": "alice", "roles": ["reader"]}


def test_api_token_authenticates_scripts(api_client_for, analyst) -> None:
    response = api_client_for(analyst).get("/api/v1/me")
    assert response.json()["roles"] == ["analyst"]


def test_login_locks_out_a_username_from_one_address_after_five_failures(
    client: Client, reader
) -> None:
    url = reverse("accounts:login")
    for _ in range(5):
        client.post(url, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    locked = client.post(url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert locked.status_code == 429
    # The same radiologist at another workstation is not locked out by someone else's guesses.
    elsewhere = client.post(
        url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.10"
    )
    assert elsewhere.status_code == 302


def test_the_create_user_command_gives_the_role(db) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("create_user", "frank", "--role", "coordinator", "--password", "Zq8!vT2#mLp9")
    user = get_user_model().objects.get(username="frank")
    assert list(user.groups.values_list("name", flat=True)) == ["coordinator"]


def test_pages_carry_a_content_security_policy(client: Client) -> None:
    response = client.get(reverse("accounts:login"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
