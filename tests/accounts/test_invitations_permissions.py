"""Every invitation endpoint and page against every persona, on carol's draft study with one
pending invitation.

alice and bob read, carol coordinates the study, frank coordinates other studies, dave
analyses, eve has no role, root administers. Only carol and root invite, list, send again and
revoke; frank gets a 404 as if the study did not exist; the rest are refused by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from reviewapp.accounts import services
from reviewapp.accounts.models import Invitation
from reviewapp.core.roles import Role
from reviewapp.studies import services as study_services

pytestmark = pytest.mark.django_db
PERSONAS = ["alice", "bob", "carol", "frank", "dave", "eve", "root", "anonymous"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    study: Any
    invitation: Invitation


@pytest.fixture
def world(coordinator, reader, second_reader, analyst, outsider, admin_user, make_user) -> World:
    make_user("frank", Role.COORDINATOR)
    study = study_services.reader_study_create(
        user=coordinator, name="CXR pilot", protocol_key="medgemini_cxr"
    )
    sent = services.invitation_create(
        reader_study=study,
        invited_by=coordinator,
        email="jane.roe@example.org",
        cohort="US",
        base_url="http://testserver/",
    )
    return World(study=study, invitation=sent.invitation)


S = "/api/v1/reader-studies/{study}/invitations"
P = "/studies/{study}/invitations"
# name, method, path, expected status per persona (missing persona: 403)
API_MATRIX: list[tuple[str, str, str, dict[str, int]]] = [
    ("list", "get", S, {"carol": 200, "root": 200, "frank": 404}),
    ("create", "post", S, {"carol": 201, "root": 201, "frank": 404}),
    ("import", "post", S + "/import", {"carol": 200, "root": 200, "frank": 404}),
    ("resend", "post", S + "/{invitation}/resend", {"carol": 200, "root": 200, "frank": 404}),
    ("revoke", "post", S + "/{invitation}/revoke", {"carol": 200, "root": 200, "frank": 404}),
]
PAGES: list[tuple[str, str, str, dict[str, int]]] = [
    ("page", "get", P + "/", {"carol": 200, "root": 200, "frank": 404}),
    ("invite", "post", P + "/", {"carol": 200, "root": 200, "frank": 404}),
    ("import", "post", P + "/import/", {"carol": 200, "root": 200, "frank": 404}),
    ("resend", "post", P + "/{invitation}/resend/", {"carol": 200, "root": 200, "frank": 404}),
    ("revoke", "post", P + "/{invitation}/revoke/", {"carol": 302, "root": 302, "frank": 404}),
]


def _body(name: str, persona: str) -> dict[str, Any] | None:
    # Each allowed persona invites an address of its own, so that the second is not refused
    # as a repeat of the first.
    if name in ("create", "invite"):
        return {"email": f"{persona}.invitee@example.org", "cohort": "US"}
    if name == "import":
        csv = f"email\n{persona}.csv@example.org\n".encode()
        return {"file": SimpleUploadedFile("readers.csv", csv)}
    return None


def _personas_denied_first(allowed: dict[str, int]) -> list[str]:
    return sorted(PERSONAS, key=lambda p: allowed.get(p, 403) < 300)


def _url(path: str, w: World) -> str:
    return path.format(study=w.study.public_id, invitation=w.invitation.public_id)


@pytest.mark.parametrize(
    ("name", "method", "path", "allowed"), API_MATRIX, ids=[m[0] for m in API_MATRIX]
)
def test_invitation_api_by_role(api_client_for, world, name, method, path, allowed) -> None:
    for persona in _personas_denied_first(allowed):
        user = None if persona == "anonymous" else get_user_model().objects.get(username=persona)
        client = api_client_for(user)
        body = _body(name, persona)
        response = getattr(client, method)(
            _url(path, world), body, format="multipart" if name == "import" else "json"
        )
        if persona == "anonymous":
            assert response.status_code in (401, 403)
            continue
        assert response.status_code == allowed.get(persona, 403), (persona, response.content[:300])
        assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("name", "method", "path", "allowed"), PAGES, ids=[p[0] for p in PAGES])
def test_invitation_page_by_role(world, name, method, path, allowed) -> None:
    for persona in _personas_denied_first(allowed):
        client = Client()
        if persona != "anonymous":
            client.force_login(get_user_model().objects.get(username=persona))
        response = getattr(client, method)(_url(path, world), _body(name, persona))
        if persona == "anonymous":
            assert response.status_code == 302
            assert "/accounts/login" in response["Location"]
            continue
        assert response.status_code == allowed.get(persona, 403), (persona, name)
        if response.status_code == 200:
            assert "no-store" in response["Cache-Control"]


def test_a_refused_persona_changes_nothing(world, api_client_for, reader, analyst) -> None:
    before = list(Invitation.objects.values())
    for user in (reader, analyst):
        client = api_client_for(user)
        client.post(_url(S + "/{invitation}/revoke", world))
        client.post(_url(S, world), {"email": "x@example.org"}, format="json")
    assert list(Invitation.objects.values()) == before
