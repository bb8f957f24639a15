"""The standalone viewer page: who may open it, what it carries, how its bundle is served."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.imaging.models import Study

pytestmark = pytest.mark.django_db


def viewer_url(study: Study | uuid.UUID) -> str:
    public_id = study.public_id if isinstance(study, Study) else study
    return reverse("viewer:study", kwargs={"public_id": public_id})


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("persona", ["coordinator", "analyst", "admin_user"])
def test_archive_staff_open_any_study_in_the_viewer(
    request, persona, imported_ct_study, viewer_bundle
):
    response = client_for(request.getfixturevalue(persona)).get(viewer_url(imported_ct_study))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-study-uid="{imported_ct_study.study_instance_uid}"' in html
    assert 'data-dicomweb-root="/dicomweb"' in html
    assert "data-viewer-help" in html


@pytest.mark.parametrize("persona", ["reader", "outsider"])
def test_readers_and_outsiders_cannot_browse_studies_in_the_viewer(
    request, persona, imported_ct_study
):
    response = client_for(request.getfixturevalue(persona)).get(viewer_url(imported_ct_study))
    assert response.status_code == 403
    assert imported_ct_study.study_instance_uid not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(imported_ct_study):
    response = Client().get(viewer_url(imported_ct_study))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_unknown_study_is_not_found(coordinator):
    assert client_for(coordinator).get(viewer_url(uuid.uuid4())).status_code == 404


def test_viewer_page_has_no_inline_script_and_a_strict_csp(coordinator, imported_ct_study):
    response = client_for(coordinator).get(viewer_url(imported_ct_study))
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts, "the page must load the viewer bundle"
    for attributes, body in scripts:
        assert "src=" in attributes
        assert 'type="module"' in attributes
        assert body.strip() == ""
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "unsafe-inline" not in csp


def test_study_page_links_to_the_viewer(coordinator, imported_ct_study):
    response = client_for(coordinator).get(
        reverse("imaging:study_detail", kwargs={"public_id": imported_ct_study.public_id})
    )
    assert viewer_url(imported_ct_study) in response.content.decode()


def _dist_asset(manifest: Path, suffix: str) -> str:
    names = sorted(p.name for p in (manifest.parent / "assets").glob(f"*{suffix}"))
    assert names, f"no {suffix} in the build"
    return names[0]


def test_codecs_are_served_as_wasm_and_hashed_assets_cached_immutably(viewer_bundle):
    name = _dist_asset(viewer_bundle, ".wasm")
    response = Client().get(f"/static/dist/assets/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/wasm"
    assert "immutable" in response["Cache-Control"]
    worker = _dist_asset(viewer_bundle, ".js")
    assert (
        Client().get(f"/static/dist/assets/{worker}")["Content-Type"].startswith("text/javascript")
    )


def test_page_head_preloads_the_viewer_and_its_imaging_engine(
    coordinator, imported_ct_study, viewer_bundle
):
    """The engine chunk is imported lazily by the viewer; preloaded from the head, the browser
    fetches it while the page is still being parsed instead of after the viewer starts."""
    html = client_for(coordinator).get(viewer_url(imported_ct_study)).content.decode()
    head = html.split("</head>", 1)[0]
    preloaded = re.findall(r'<link rel="modulepreload" href="[^"]*/dist/assets/([^"]+)">', head)
    entries = json.loads(viewer_bundle.read_text())
    assert entries["pages/viewer.js"]["file"].removeprefix("assets/") in preloaded
    assert entries["viewer/setup.js"]["file"].removeprefix("assets/") in preloaded
    # Codecs and their wasm load on demand in the decode workers, not with every page.
    assert not [name for name in preloaded if "wasm" in name or "jpeg" in name]
