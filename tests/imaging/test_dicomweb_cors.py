"""CORS on DICOMweb: a viewer served from an allowed origin may call it; others may not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviewapp.imaging.models import Study

ClientFor = Callable[[AbstractUser | None], APIClient]
VIEWER = "https://viewer.example.org"


@pytest.fixture
def viewer_allowed(settings: object) -> None:
    settings.DICOMWEB_CORS_ALLOWED_ORIGINS = [VIEWER]  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_preflight_from_an_allowed_origin_is_answered_without_credentials(
    viewer_allowed: None,
) -> None:
    preflight = Client().options(
        "/dicomweb/studies",
        HTTP_ORIGIN=VIEWER,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, accept",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == VIEWER
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    assert "Origin" in preflight["Vary"]


@pytest.mark.django_db
def test_answers_to_an_allowed_origin_carry_cors_headers_by_token_and_by_session(
    viewer_allowed: None,
    imported_ct_study: Study,
    coordinator: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    by_token = api_client_for(coordinator).get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)
    assert by_token.status_code == 200
    assert by_token["Access-Control-Allow-Origin"] == VIEWER
    assert "Warning" in by_token["Access-Control-Expose-Headers"]
    browser = Client()
    browser.force_login(coordinator)
    by_session = browser.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)
    assert by_session.status_code == 200
    assert by_session["Access-Control-Allow-Credentials"] == "true"
    # Without credentials the answer is still 401, now readable by the viewer's script.
    anonymous = Client().get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)
    assert anonymous.status_code == 401
    assert anonymous["Access-Control-Allow-Origin"] == VIEWER


@pytest.mark.django_db
def test_other_origins_and_other_paths_get_no_cors_headers(
    viewer_allowed: None, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    stranger = Client().options(
        "/dicomweb/studies",
        HTTP_ORIGIN="https://evil.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "Access-Control-Allow-Origin" not in stranger
    assert stranger.status_code == 401
    api = api_client_for(coordinator).get("/api/v1/studies", HTTP_ORIGIN=VIEWER)
    assert "Access-Control-Allow-Origin" not in api


@pytest.mark.django_db
def test_the_api_token_also_works_as_a_bearer_token_and_stops_when_revoked(
    imported_ct_study: Study, coordinator: AbstractUser
) -> None:
    """OHIF sends the token of its ``?token=`` URL as ``Authorization: Bearer``."""
    token = Token.objects.create(user=coordinator)
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    found = bearer.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)
    assert found.status_code == 200
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [
        imported_ct_study.study_instance_uid
    ]
    assert (
        Client(HTTP_AUTHORIZATION="Bearer not-a-token").get("/dicomweb/studies").status_code == 401
    )
    token.delete()
    assert bearer.get("/dicomweb/studies").status_code == 401
