"""The protocol editor pages: composing a protocol, editing a draft's, frozen versions, roles."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from reviewapp.studies import protocols, services
from reviewapp.studies.models import Assignment, ReaderStudy
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _likert_protocol() -> dict[str, Any]:
    return {
        "key": "report_quality",
        "version": 1,
        "title": "Report quality",
        "mode": "single",
        "questions": [
            {
                "id": "quality",
                "type": "likert",
                "scope": "per_report",
                "prompt": "How good is this report?",
                "required": True,
                "options": [
                    {"value": "good", "label": "Good"},
                    {"value": "fair", "label": "Fair"},
                    {"value": "poor", "label": "Poor"},
                ],
            },
            {"id": "comment", "type": "free_text", "scope": "per_report", "prompt": "Comment"},
        ],
    }


def test_the_blank_protocol_and_every_template_are_valid_starting_points() -> None:
    blank = protocols.protocol_blank()
    blank["title"] = "Preference"
    protocols.protocol_validate(blank)
    for template in protocols.protocol_templates():
        protocols.protocol_validate(protocols.protocol_next_version(template))


def test_next_version_counts_up_and_leaves_the_study_specific_ai_guess_out() -> None:
    prepared = protocols.protocol_prepare(
        protocols.protocol_template("medgemini_cxr"), ask_ai_guess=True
    )
    following = protocols.protocol_next_version(prepared)
    assert following["version"] == prepared["version"] + 1
    assert protocols.AI_GUESS_ID not in [q["id"] for q in following["questions"]]
    assert protocols.AI_GUESS_ID in [q["id"] for q in prepared["questions"]]


def test_a_coordinator_creates_a_draft_study_from_a_composed_protocol(coordinator) -> None:
    response = _client(coordinator).post(
        "/studies/protocol/new/",
        {"name": "Quality pilot", "protocol": json.dumps(_likert_protocol())},
    )
    study = ReaderStudy.objects.get(name="Quality pilot")
    assert response["Location"] == f"/studies/{study.public_id}/"
    assert (study.protocol_key, study.protocol_version, study.status) == (
        "report_quality",
        1,
        "draft",
    )
    assert [q["id"] for q in study.protocol["questions"]] == ["quality", "comment"]
    assert list(study.coordinators.all()) == [coordinator]


@pytest.mark.parametrize("template", protocols.TEMPLATE_KEYS)
def test_the_editor_opens_on_each_template_and_from_scratch(coordinator, template) -> None:
    client = _client(coordinator)
    page = client.get(f"/studies/protocol/new/?template={template}")
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
    shown = json.loads(page.context["document_text"])
    assert shown == protocols.protocol_template(template)
    assert client.get("/studies/protocol/new/").context["document"] == protocols.protocol_blank()


def test_problems_are_named_and_the_typed_document_is_kept(coordinator) -> None:
    client = _client(coordinator)
    broken = _likert_protocol()
    broken["questions"][0]["options"][1]["value"] = "good"  # a repeated code
    broken["questions"][1]["show_if"] = {"question": "quality", "in": ["great"]}
    page = client.post("/studies/protocol/new/", {"name": "Broken", "protocol": json.dumps(broken)})
    assert page.status_code == 400
    assert "question quality: option values repeat" in page.context["problems"]
    assert any("show_if values ['great'] unknown" in p for p in page.context["problems"])
    assert json.loads(page.context["document_text"]) == broken
    assert not ReaderStudy.objects.filter(name="Broken").exists()

    schema_error = _likert_protocol()
    schema_error["questions"][0]["options"][0]["label"] = ""
    page = client.post(
        "/studies/protocol/new/", {"name": "B", "protocol": json.dumps(schema_error)}
    )
    assert any(p.startswith("questions/0/options/0/label:") for p in page.context["problems"])

    page = client.post("/studies/protocol/new/", {"name": "B", "protocol": "{not json"})
    assert page.status_code == 400
    assert page.context["problems"][0].startswith("(document): not valid JSON")
    assert page.context["document_text"] == "{not json"


def test_a_drafts_protocol_is_edited_in_place(coordinator) -> None:
    study = services.reader_study_create(
        user=coordinator, name="Draft", protocol_key="ct_acceptability"
    )
    client = _client(coordinator)
    page = client.get(f"/studies/{study.public_id}/protocol/")
    assert page.status_code == 200
    assert page.context["is_frozen"] is False
    edited = _likert_protocol()
    response = client.post(
        f"/studies/{study.public_id}/protocol/", {"protocol": json.dumps(edited)}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.protocol_key, study.protocol["title"]) == ("report_quality", "Report quality")


def test_a_protocol_with_ratings_is_frozen_and_offers_a_new_version(coordinator, reader) -> None:
    study = build_study(coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)])
    services.rating_submit(
        assignment=Assignment.objects.get(reader_study=study),
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    client = _client(coordinator)
    page = client.get(f"/studies/{study.public_id}/protocol/")
    text = page.content.decode()
    assert page.context["is_frozen"] is True
    assert "Readers have rated cases with this protocol version" in text
    assert f"/studies/protocol/new/?from={study.public_id}" in text
    assert "Save protocol" not in text
    before = study.protocol
    refused = client.post(
        f"/studies/{study.public_id}/protocol/", {"protocol": json.dumps(_likert_protocol())}
    )
    assert refused.status_code == 400
    assert any("frozen" in p for p in refused.context["problems"])
    study.refresh_from_db()
    assert study.protocol == before

    following = client.get(f"/studies/protocol/new/?from={study.public_id}")
    document = following.context["document"]
    assert (document["key"], document["version"]) == (
        study.protocol_key,
        study.protocol_version + 1,
    )


def test_readers_analysts_and_outsiders_may_not_use_the_editor(
    coordinator, reader, analyst, outsider
) -> None:
    study = services.reader_study_create(user=coordinator, name="S", protocol_key="radpeer")
    for user in (reader, analyst, outsider):
        client = _client(user)
        for url in ("/studies/protocol/new/", f"/studies/{study.public_id}/protocol/"):
            assert client.get(url).status_code == 403, (user, url)
            assert client.post(url, {"protocol": "{}"}).status_code == 403, (user, url)
    assert Client().get("/studies/protocol/new/").status_code == 302  # to the login page


def test_another_coordinators_protocol_is_not_found(coordinator, frank) -> None:
    study = services.reader_study_create(user=coordinator, name="S", protocol_key="radpeer")
    client = _client(frank)
    assert client.get(f"/studies/{study.public_id}/protocol/").status_code == 404
    response = client.post(
        f"/studies/{study.public_id}/protocol/", {"protocol": json.dumps(_likert_protocol())}
    )
    assert response.status_code == 404
    assert client.get(f"/studies/protocol/new/?from={study.public_id}").status_code == 404
    study.refresh_from_db()
    assert study.protocol_key == "radpeer"


def test_a_changed_template_needs_a_new_version_or_key() -> None:
    changed = protocols.protocol_template("radpeer")
    changed["questions"][0]["prompt"] = "Do you agree with this report?"
    with pytest.raises(ValidationError) as caught:
        protocols.protocol_validate(changed)
    assert caught.value.message_dict["protocol"] == [
        "version: these questions differ from the built-in template radpeer v1; give them "
        "version 2 or higher, or a key of their own"
    ]
    protocols.protocol_validate(protocols.protocol_next_version(changed))
    protocols.protocol_validate({**changed, "key": "radpeer_agreement"})
    # Per-study options are not changes: the AI guess and the acceptable threshold.
    protocols.protocol_validate(
        protocols.protocol_prepare(protocols.protocol_template("medgemini_cxr"), ask_ai_guess=True)
    )
    protocols.protocol_validate(
        protocols.protocol_prepare(
            protocols.protocol_template("ct_acceptability"),
            ask_ai_guess=False,
            acceptable_threshold="no_revision",
        )
    )


def test_a_drafts_prepared_protocol_saves_back_unchanged(coordinator) -> None:
    study = services.reader_study_create(
        user=coordinator, name="Draft", protocol_key="medgemini_cxr", ask_ai_guess=True
    )
    client = _client(coordinator)
    shown = client.get(f"/studies/{study.public_id}/protocol/").context["document_text"]
    response = client.post(f"/studies/{study.public_id}/protocol/", {"protocol": shown})
    assert response.status_code == 302
    study.refresh_from_db()
    assert [q["id"] for q in study.protocol["questions"]] == ["comparison", "ai_guess"]


def test_an_unknown_template_is_named_not_a_server_error(coordinator) -> None:
    page = _client(coordinator).get("/studies/protocol/new/?template=nope")
    assert page.status_code == 404
    assert page.context["problems"] == ["Unknown protocol template 'nope'."]
