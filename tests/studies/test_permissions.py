"""Every reader-study endpoint and page against every persona.

alice and bob read the study, carol coordinates it, frank coordinates other studies, dave
analyses, eve has no role. Readers reach only their own assignments: bob asking for alice's
gets a 404, exactly as if it did not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from reviewapp.studies import services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study

PERSONAS = ["alice", "bob", "carol", "frank", "dave", "eve", "anonymous"]
DENIED_ROLE = {"anonymous": 403}  # DRF answers 401/403 to anonymous; pages redirect


@dataclass
class World:
    study: Any
    mine: Assignment  # alice's first case, already rated
    unrated: Assignment  # alice's second case


@pytest.fixture
def world(coordinator, reader, second_reader, analyst, outsider, frank) -> World:
    imaging = [make_case_study(i) for i in range(4)]
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=imaging,
        ask_ai_guess=True,
    )
    mine, unrated = Assignment.objects.filter(reader_study=study, reader=reader).order_by(
        "position"
    )[:2]
    services.rating_submit(
        assignment=mine,
        reader=reader,
        answers={"comparison": "c", "ai_guess": "c"},
        idempotency_key=uuid.uuid4(),
    )
    return World(study=study, mine=mine, unrated=unrated)


def _body(w: World, name: str) -> dict[str, Any] | None:
    return {
        "create": {"name": "x", "protocol_key": "radpeer"},
        "add_cases": {"modality": "CR"},
        "panel": {"readers": [{"username": "alice"}]},
        "design": {"design": "all_pairs", "sources": []},
        "generate": {},
        "practice": {"is_practice": True},
        "reference_set": {"answers": {"comparison": "a"}},
        "status": {"action": "pause"},
        "invite": {"email": "jane.roe@example.org", "cohort": "US"},
        "draft": {"draft": {"answers": {"comparison": "a"}}, "seq": 10},
        "submit": {
            "answers": {"comparison": "a", "ai_guess": "c"},
            "idempotency_key": str(uuid.uuid4()),
        },
        "revise": {
            "answers": {"comparison": "b", "ai_guess": "c"},
            "idempotency_key": str(uuid.uuid4()),
            "version": 1,
        },
    }.get(name)


S = "/api/v1/reader-studies/{study}"
M = "/api/v1/my/assignments"
# name, method, path, expected status per persona (missing persona: 403)
API_MATRIX: list[tuple[str, str, str, dict[str, int]]] = [
    ("templates", "get", "/api/v1/protocol-templates", {"carol": 200, "frank": 200, "dave": 200}),
    ("list", "get", "/api/v1/reader-studies", {"carol": 200, "frank": 200, "dave": 200}),
    ("create", "post", "/api/v1/reader-studies", {"carol": 201, "frank": 201}),
    ("detail", "get", S, {"carol": 200, "frank": 404, "dave": 200}),
    ("cases", "get", S + "/cases", {"carol": 200, "frank": 404, "dave": 200}),
    # The study is open, so carol's structural changes are refused (400), not forbidden.
    ("add_cases", "post", S + "/cases", {"carol": 400, "frank": 404, "dave": 404}),
    ("panel", "put", S + "/panel", {"carol": 400, "frank": 404}),
    # Practice cases: chosen and answered in a draft only (400 in this open study).
    ("practice", "post", S + "/cases/{case}/practice", {"carol": 400, "frank": 404}),
    ("reference", "get", S + "/cases/{case}/reference", {"carol": 200, "frank": 404, "dave": 200}),
    (
        "reference_set",
        "put",
        S + "/cases/{case}/reference",
        {"carol": 400, "frank": 404, "dave": 404},
    ),
    # Arms name the sources: staff only; the open study's design is fixed (400).
    ("arms", "get", S + "/arms", {"carol": 200, "frank": 404, "dave": 200}),
    ("design", "post", S + "/arms", {"carol": 400, "frank": 404, "dave": 404}),
    ("key", "get", S + "/assignments", {"carol": 200, "frank": 404, "dave": 200}),
    ("generate", "post", S + "/assignments", {"carol": 400, "frank": 404, "dave": 404}),
    ("status", "post", S + "/status", {"carol": 200, "frank": 404}),
    # Invitations name people's addresses: the study's coordinators (and admins) only; the
    # open study's panel is fixed, so carol's invitation is refused (400), not forbidden.
    ("invitations", "get", S + "/invitations", {"carol": 200, "frank": 404}),
    ("invite", "post", S + "/invitations", {"carol": 400, "frank": 404}),
    ("progress", "get", S + "/progress", {"carol": 200, "frank": 404, "dave": 200}),
    ("blinding", "get", S + "/blinding", {"carol": 200, "frank": 404, "dave": 200}),
    ("steps", "get", S + "/steps", {"carol": 200, "frank": 404, "dave": 200}),
    # The study is open: carol may no longer re-run or acknowledge the check (400).
    ("blinding_run", "post", S + "/blinding", {"carol": 400, "frank": 404, "dave": 404}),
    ("blinding_ack", "post", S + "/blinding/acknowledgement", {"carol": 400, "frank": 404}),
    (
        "staff_history",
        "get",
        S + "/ratings/{mine}/history",
        {"carol": 200, "frank": 404, "dave": 200},
    ),
    # Report sources name every model: coordinators and analysts only, never readers.
    ("sources", "get", "/api/v1/reports/sources", {"carol": 200, "frank": 200, "dave": 200}),
    # Coordinators are let in and told the upload lacks its file and source (400).
    ("candidates", "post", "/api/v1/reports/candidates/import", {"carol": 400, "frank": 400}),
    # Metric tables name every source: analysts and the study's coordinators only.
    (
        "metrics",
        "get",
        "/api/v1/metrics/studies/{study}/",
        {"carol": 200, "dave": 200, "frank": 404},
    ),
    (
        "metric_jobs",
        "post",
        "/api/v1/metrics/studies/{study}/jobs",
        {"carol": 201, "dave": 201, "frank": 404},
    ),
    ("worklist", "get", "/api/v1/my/worklist", {"alice": 200, "bob": 200}),
    ("my_list", "get", M, {"alice": 200, "bob": 200}),
    ("case", "get", M + "/{mine}", {"alice": 200, "bob": 404}),
    ("draft", "put", M + "/{unrated}/draft", {"alice": 200, "bob": 404}),
    ("submit", "post", M + "/{unrated}/rating", {"alice": 201, "bob": 404}),
    ("revise", "put", M + "/{mine}/rating", {"alice": 200, "bob": 404}),
    ("rating", "get", M + "/{mine}/rating", {"alice": 200, "bob": 404}),
    ("history", "get", M + "/{mine}/rating/history", {"alice": 200, "bob": 404}),
]


def _client(api_client_for, name: str):
    if name == "anonymous":
        return api_client_for(None)
    from django.contrib.auth import get_user_model

    return api_client_for(get_user_model().objects.get(username=name))


def _personas_denied_first(allowed: dict[str, int]) -> list[str]:
    # Refused requests change nothing, so they can share one world; the one persona whose
    # request succeeds (and may change state) goes last.
    return sorted(PERSONAS, key=lambda p: allowed.get(p, 403) < 300)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "method", "path", "allowed"), API_MATRIX, ids=[m[0] for m in API_MATRIX]
)
def test_api_endpoint_by_role(api_client_for, world, name, method, path, allowed):
    url = path.format(
        study=world.study.public_id,
        mine=world.mine.public_id,
        unrated=world.unrated.public_id,
        case=world.mine.case.public_id,
    )
    for persona in _personas_denied_first(allowed):
        client = _client(api_client_for, persona)
        response = getattr(client, method)(url, _body(world, name), format="json")
        if persona == "anonymous":
            assert response.status_code in (401, 403)
            continue
        expected = allowed.get(persona, 403)
        assert response.status_code == expected, (persona, name, response.content[:300])
        if persona in ("alice", "bob") and response.status_code < 300:
            assert response["Cache-Control"] == "no-store"


def test_a_foreign_coordinator_does_not_even_see_the_study_listed(api_client_for, world, frank):
    listed = api_client_for(frank).get("/api/v1/reader-studies").json()
    assert listed == []


PAGES: list[tuple[str, str, str, dict[str, int]]] = [
    ("worklist", "get", "/studies/reading/", {"alice": 200, "bob": 200}),
    ("continue", "get", "/studies/reading/{study}/continue/", {"alice": 302, "bob": 302}),
    ("read", "get", "/studies/read/{mine}/", {"alice": 200, "bob": 404}),
    ("list", "get", "/studies/", {"carol": 200, "frank": 200, "dave": 200}),
    ("new", "get", "/studies/new/", {"carol": 200, "frank": 200}),
    ("detail", "get", "/studies/{study}/", {"carol": 200, "frank": 404, "dave": 200}),
    ("open", "post", "/studies/{study}/open/", {"carol": 302, "frank": 404}),
    ("pause", "post", "/studies/{study}/pause/", {"carol": 302, "frank": 404}),
    ("lock", "post", "/studies/{study}/lock/", {"carol": 302, "frank": 404}),
    # carol is let in and told the open study cannot change (it stays as it is)
    ("cases_add", "post", "/studies/{study}/cases/add/", {"carol": 400, "frank": 404}),
    ("design", "post", "/studies/{study}/design/", {"carol": 400, "frank": 404}),
    ("panel", "post", "/studies/{study}/panel/", {"carol": 400, "frank": 404}),
    ("reading_lists", "post", "/studies/{study}/reading-lists/", {"carol": 400, "frank": 404}),
    ("options", "post", "/studies/{study}/reading-options/", {"carol": 400, "frank": 404}),
    ("delete", "post", "/studies/{study}/delete/", {"carol": 400, "frank": 404}),
    ("case_remove", "post", "/studies/{study}/cases/{case}/remove/", {"carol": 400, "frank": 404}),
    ("progress", "get", "/studies/{study}/progress/", {"carol": 200, "frank": 404, "dave": 200}),
    ("invitations", "get", "/studies/{study}/invitations/", {"carol": 200, "frank": 404}),
    ("practice", "get", "/studies/{study}/practice/", {"carol": 200, "frank": 404, "dave": 200}),
    # carol is let in and told the open study's practice cases are fixed
    ("case_practice", "post", "/studies/{study}/practice/{case}/", {"carol": 302, "frank": 404}),
    (
        "case_reference",
        "get",
        "/studies/{study}/practice/{case}/reference/",
        {"carol": 200, "frank": 404, "dave": 200},
    ),
    # names and e-mail of readers: the study's coordinators (and admins) only
    ("progress_csv", "get", "/studies/{study}/progress.csv", {"carol": 200, "frank": 404}),
    ("blinding_run", "post", "/studies/{study}/blinding/check/", {"carol": 400, "frank": 404}),
    (
        "blinding_ack",
        "post",
        "/studies/{study}/blinding/acknowledge/",
        {"carol": 400, "frank": 404},
    ),
    ("sources", "get", "/reports/sources/", {"carol": 200, "frank": 200, "dave": 200}),
    ("metrics", "get", "/metrics/studies/{study}/", {"carol": 200, "frank": 404, "dave": 200}),
    (
        "metrics_run",
        "post",
        "/metrics/studies/{study}/run/",
        {"carol": 302, "frank": 404, "dave": 302},
    ),
    (
        "metrics_csv",
        "get",
        "/metrics/studies/{study}/rexval.csv",
        {"carol": 200, "frank": 404, "dave": 200},
    ),
    ("candidates", "get", "/reports/candidates/", {"carol": 200, "frank": 200}),
    ("protocol_new", "get", "/studies/protocol/new/", {"carol": 200, "frank": 200}),
    ("protocol_from", "get", "/studies/protocol/new/?from={study}", {"carol": 200, "frank": 404}),
    ("protocol", "get", "/studies/{study}/protocol/", {"carol": 200, "frank": 404}),
    # carol is let in and told what is wrong (the post carries no protocol document)
    ("protocol_save", "post", "/studies/{study}/protocol/", {"carol": 400, "frank": 404}),
    (
        "history",
        "get",
        "/studies/{study}/ratings/{mine}/history/",
        {"carol": 200, "frank": 404, "dave": 200},
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "path", "allowed"), PAGES, ids=[p[0] for p in PAGES])
def test_page_by_role(world, name, method, path, allowed):
    from django.contrib.auth import get_user_model

    url = path.format(
        study=world.study.public_id, mine=world.mine.public_id, case=world.mine.case.public_id
    )
    for persona in _personas_denied_first(allowed):
        client = Client()
        if persona != "anonymous":
            client.force_login(get_user_model().objects.get(username=persona))
        response = getattr(client, method)(url)
        if persona == "anonymous":
            assert response.status_code == 302
            assert "/accounts/login" in response["Location"]
            continue
        assert response.status_code == allowed.get(persona, 403), (persona, name)
        if response.status_code == 200:
            assert "no-store" in response["Cache-Control"]
