"""Hostile input gets 400 with a message, never a 500: NUL characters in search filters, a
huge page size or offset, JSON nested thousands deep. carol coordinates, dave analyses."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_page_filter_is_refused_with_a_message(coordinator) -> None:
    client = Client()
    client.force_login(coordinator)
    response = client.get("/imaging/studies/", {"q": "lung\x00"})
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert client.get("/imaging/studies/", {"q": "lung"}).status_code == 200


def test_a_nul_in_an_api_filter_is_refused_with_a_message(api_client_for, analyst) -> None:
    response = api_client_for(analyst).get("/api/v1/studies?modality=CR%00")
    assert response.status_code == 400
    assert response.json()["code"] == "nul_in_query"


@pytest.mark.parametrize(
    "query",
    ["limit=99999999999999999999999", "limit=100000", "limit=-1", "offset=9223372036854775808"],
)
def test_a_page_size_or_offset_out_of_bounds_is_refused_with_a_message(
    api_client_for, analyst, query: str
) -> None:
    response = api_client_for(analyst).get(f"/api/v1/studies?{query}")
    assert response.status_code == 400, response.content
    assert "whole number from" in json.dumps(response.json())


def test_a_page_within_bounds_is_served(api_client_for, analyst) -> None:
    response = api_client_for(analyst).get("/api/v1/studies?limit=1000&offset=5")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_json_nested_five_thousand_deep_is_refused_with_a_message(
    api_client_for, coordinator
) -> None:
    deep = "[" * 5000 + "]" * 5000
    for body in (deep, '{"name": ' + deep + "}", "[" * 65 + "]" * 65):
        response = api_client_for(coordinator).post(
            "/api/v1/reader-studies", data=body, content_type="application/json"
        )
        assert response.status_code == 400, response.content[:200]
        assert "nested deeper than 64 levels" in response.json()["detail"]


def test_json_text_with_a_nul_is_refused_with_a_message(api_client_for, coordinator) -> None:
    response = api_client_for(coordinator).post(
        "/api/v1/reader-studies",
        data=json.dumps({"name": "pilot\x00"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_the_token_exchange_refuses_deep_json_too(db) -> None:
    response = Client().post(
        "/api/v1/auth/token", data="[" * 5000 + "]" * 5000, content_type="application/json"
    )
    assert response.status_code == 400
