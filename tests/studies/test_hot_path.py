"""The reader's hot path: what each request of 'next case, open, submit' costs in queries,
and that roles loaded with the user are read afresh on every request.

The readers benchmark (bench/readers_bench.py) measures the latency; these counts keep the
work per request from creeping back up unnoticed (SQL compilation is most of its CPU).
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from reviewapp.core.roles import Role
from reviewapp.studies.models import ReaderStudy
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(coordinator, reader) -> ReaderStudy:
    return build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(3)]
    )


def _queries(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return response, [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("how", ["token", "session"])
def test_next_open_submit_cost_a_fixed_handful_of_queries(
    study: ReaderStudy, reader, api_client_for, how: str
) -> None:
    if how == "token":
        client = api_client_for(reader)
    else:
        client = Client()
        client.force_login(reader)
    session_lookup = 0 if how == "token" else 1  # the session row, then user and roles

    response, worklist = _queries(lambda: client.get("/api/v1/my/worklist"))
    assert response.status_code == 200
    following = response.json()["studies"][0]["next_assignment"]
    assert len(worklist) == 2 + session_lookup, worklist

    response, opened = _queries(lambda: client.get(f"/api/v1/my/assignments/{following}"))
    assert response.status_code == 200
    # user and roles; the case with its reports, study and rating; the reader's list of
    # positions; the one UPDATE that records when it was first opened.
    assert len(opened) == 4 + session_lookup, opened
    assert sum(sql.startswith("UPDATE") for sql in opened) == 1

    _, reopened = _queries(lambda: client.get(f"/api/v1/my/assignments/{following}"))
    assert not any(sql.startswith("UPDATE") for sql in reopened), "a revisit wrote the row"

    body = {"answers": {"comparison": "c"}, "idempotency_key": str(uuid.uuid4())}
    response, submitted = _queries(
        lambda: client.post(
            f"/api/v1/my/assignments/{following}/rating", body, content_type="application/json"
        )
    )
    assert response.status_code == 201
    assert response.json()["spans"] == []
    assert response.json()["next"] is not None
    # user and roles; the id check; the row lock and the replay check, the history label (its
    # own statement: core/history.py), the rating, its write record and the assignment inside
    # one transaction (a savepoint here, in the test's transaction); the next case's id.
    assert len(submitted) <= 11 + session_lookup, submitted


def test_a_reader_whose_role_is_withdrawn_is_refused_at_the_next_request(
    study: ReaderStudy, reader, api_client_for
) -> None:
    client = api_client_for(reader)
    assert client.get("/api/v1/my/worklist").status_code == 200

    reader.groups.remove(Group.objects.get(name=Role.READER.value))

    assert client.get("/api/v1/my/worklist").status_code == 403
