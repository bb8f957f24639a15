"""Bare 403/404/500 pages carry the site's layout and a way back."""

from __future__ import annotations

from django.test import RequestFactory
from django.urls import get_resolver


def test_a_missing_page_has_the_layout_and_a_link_home(client, coordinator) -> None:
    client.force_login(coordinator)

    response = client.get("/studies/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="topbar"' in html
    assert "There is nothing at this address" in html
    assert 'href="/">Back to your start page' in html
    assert ">Reader studies</a>" in html  # the navigation of the signed-in person


def test_a_forbidden_page_has_the_layout_and_a_link_home(client, outsider) -> None:
    client.force_login(outsider)

    response = client.get("/studies/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "You may not open this page" in html
    assert 'href="/">Back to your start page' in html
    assert 'class="topbar"' in html


def test_the_server_error_page_renders_without_the_database_or_a_request_context() -> None:
    # No database fixture: any query while rendering would raise here.
    handler = get_resolver().resolve_error_handler(500)
    request = RequestFactory().get("/anything/")  # no user, no session: as after a crash

    response = handler(request)

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something failed on our side" in html
    assert 'href="/">Back to your start page' in html
    assert 'href="/static/css/app.css"' in html
