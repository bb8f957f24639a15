"""Blinding: a reader crawls everything reachable and finds no trace of which report is whose.

The crawl is not a hand-picked list: it starts at the home page, follows every link, form
action and URL found in pages and JSON, and tries every API path of the OpenAPI schema with
every id the reader has been shown, so a new endpoint is covered the day it is added.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from reviewapp.accounts.services import invitation_create
from reviewapp.reports.models import Report
from reviewapp.reports.services import (
    report_source_external_save,
    report_source_original,
    study_context_set,
)
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, ReaderStudy
from tests.studies.conftest import MODEL_NAME, build_study, make_case_study, make_imaging_study

pytestmark = pytest.mark.django_db
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            is_url_attribute = name in ("href", "src", "action") or name.startswith("data-")
            if value and is_url_attribute and value.startswith("/"):
                self.urls.append(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _forbidden(study) -> list[str]:
    reports = Report.objects.filter(
        id__in=[c.first_report_id for c in study.cases.all()]
        + [c.second_report_id for c in study.cases.all()]
    )
    tokens = [
        MODEL_NAME,
        "AI-generated",
        "radiologist)",
        "reports.csv",
        "Dictated",
        "candidate",
        "source",
        '"kind"',
        "ai_much_better",
        "ai_better",
        "original_better",
        "original_much_better",
        "neither_correct",
        "first_report",
        "second_report",
        "report_a",
        "report_b",
        # The blinding check names what gives a report away: for coordinators' eyes only.
        "blinding",
        "date-like",
        "Capitals against lower case",
        "acknowledged",
    ]
    for report in reports:
        tokens.append(str(report.public_id))
        tokens.append(report.created_at.isoformat()[:19])
        tokens.append(report.created_at.strftime("%Y-%m-%d %H:%M"))
    return tokens


def _crawl(client: Client, study_ids: list[str]) -> dict[str, Any]:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    templates = list(schema["paths"])
    seen_ids: set[str] = set(study_ids)
    queue: deque[str] = deque(["/"])
    visited: dict[str, Any] = {}

    def enqueue(url: str) -> None:
        path = urlsplit(url).path
        if path.startswith(("/static/", "/accounts/logout", "/admin/", "/dicomweb/")):
            return
        if path not in visited and path not in queue:
            queue.append(path)

    while True:
        while queue:
            path = queue.popleft()
            response = client.get(path, follow=False)
            visited[path] = response
            if response.status_code in (301, 302):
                enqueue(response["Location"])
                continue
            body = response.content.decode(errors="replace")
            seen_ids.update(UUID_RE.findall(body))
            if "html" in response.get("Content-Type", ""):
                parser = _Links()
                parser.feed(body)
                for url in parser.urls:
                    enqueue(url)
            elif "json" in response.get("Content-Type", ""):
                for text in _strings(response.json()):
                    if text.startswith("/"):
                        enqueue(text)
        # Every API path of the schema, with every id the reader was shown.
        before = len(visited)
        for template in templates:
            params = re.findall(r"\{[^}]+\}", template)
            if not params:
                enqueue(template)
            for value in seen_ids:
                path = template
                for param in params:
                    path = path.replace(param, value)
                enqueue(path)
        for value in seen_ids:
            enqueue(f"/studies/read/{value}/")
            enqueue(f"/studies/reading/{value}/continue/")
            enqueue(f"/studies/{value}/")  # the study page, where the blinding check is shown
            enqueue(f"/studies/{value}/invitations/")  # names and addresses of invitees
            enqueue(f"/studies/{value}/practice/")  # practice cases, for coordinators only
            enqueue(f"/analysis/{value}/")
            enqueue(f"/metrics/studies/{value}/")  # metric tables name every source
            enqueue(f"/metrics/studies/{value}/rexval.csv")
        if not queue and len(visited) == before:
            return visited


def test_a_reader_finds_no_source_label_model_name_report_id_or_date(
    coordinator, reader, second_reader
) -> None:
    imaging = [make_case_study(i) for i in range(4)]
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=imaging,
        ask_ai_guess=True,
    )
    first = Assignment.objects.filter(reader_study=study, reader=reader).order_by("position")[0]
    services.rating_submit(
        assignment=first,
        reader=reader,
        answers={"comparison": "c", "ai_guess": "b"},
        idempotency_key=uuid.uuid4(),
    )
    services.rating_revise(
        assignment=first,
        reader=reader,
        expected_version=1,
        answers={"comparison": "b", "ai_guess": "b"},
        idempotency_key=uuid.uuid4(),
    )
    external = report_source_external_save(name="LeakyModel-X", description="Imported model")
    client = Client()
    client.force_login(reader)
    visited = _crawl(client, [str(study.public_id)])
    ok = {p: r for p, r in visited.items() if r.status_code == 200}
    # The crawl really reached the reading surface: pages, case views, ratings and history.
    reached = " ".join(ok)
    for assignment in Assignment.objects.filter(reader_study=study, reader=reader):
        assert f"/studies/read/{assignment.public_id}/" in ok
        assert f"/api/v1/my/assignments/{assignment.public_id}" in ok
    assert f"/api/v1/my/assignments/{first.public_id}/rating/history" in reached
    assert "/api/v1/my/worklist" in ok
    # The blinding check (stored on the study) is reachable by coordinators and analysts only.
    study_id = study.public_id
    assert study.blinding_tells, "the fixtures leave a tell for the crawl to look for"
    for path in (
        f"/studies/{study_id}/",
        f"/analysis/{study_id}/",
        f"/api/v1/reader-studies/{study_id}/blinding",
        f"/metrics/studies/{study_id}/",
        f"/metrics/studies/{study_id}/rexval.csv",
        f"/api/v1/metrics/studies/{study_id}/",
        f"/api/v1/metrics/studies/{study_id}/jobs",
        f"/studies/{study_id}/invitations/",
        f"/api/v1/reader-studies/{study_id}/invitations",
    ):
        assert path in visited
        assert visited[path].status_code in (302, 403, 404), path
    for path in (
        f"/studies/{study_id}/blinding/check/",
        f"/studies/{study_id}/blinding/acknowledge/",
        f"/api/v1/reader-studies/{study_id}/blinding",
        f"/api/v1/reader-studies/{study_id}/blinding/acknowledgement",
        f"/metrics/studies/{study_id}/run/",
        f"/api/v1/metrics/studies/{study_id}/jobs",
    ):
        assert client.post(path).status_code in (302, 403, 404), path
    # Report sources name every model: coordinators' and analysts' eyes only.
    assert visited["/api/v1/reports/sources"].status_code == 403
    for path in ("/reports/sources/", "/reports/candidates/", "/api/v1/reports/sources"):
        assert client.get(path).status_code in (302, 403, 404), path
    assert client.post("/api/v1/reports/candidates/import").status_code == 403
    # ...and never anyone else's.
    for other in Assignment.objects.filter(reader_study=study, reader=second_reader):
        assert f"/studies/read/{other.public_id}/" not in ok
    forbidden = [*_forbidden(study), external.name, str(external.public_id)]
    for path, response in ok.items():
        if path.startswith(("/api/schema", "/api/docs", "/api/redoc")):
            continue  # the API's own documentation names fields, not any study's data
        text = response.content.decode(errors="replace") + "".join(
            f"{k}: {v}\n" for k, v in response.items()
        )
        for token in forbidden:
            assert token.lower() not in text.lower(), (path, token)
        assert "ETag" not in response
        if path.startswith(("/studies/", "/api/v1/my/")):
            assert "no-store" in response.get("Cache-Control", ""), path


def test_practice_cases_and_their_reference_answers_reveal_no_source(
    coordinator, reader, second_reader
) -> None:
    imaging = [make_case_study(i) for i in range(5)]
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=imaging,
        ask_ai_guess=True,
        practice=2,
    )
    mine = list(Assignment.objects.filter(reader_study=study, reader=reader).order_by("position"))
    assert all(a.case.is_practice for a in mine[:2])
    # Submitted: the reference answers are now shown beside the reader's own.
    services.rating_submit(
        assignment=mine[0],
        reader=reader,
        answers={"comparison": "b", "ai_guess": "a"},
        idempotency_key=uuid.uuid4(),
    )
    client = Client()
    client.force_login(reader)
    visited = _crawl(client, [str(study.public_id)])
    ok = {p: r for p, r in visited.items() if r.status_code == 200}
    feedback = ok[f"/studies/read/{mine[0].public_id}/"].content.decode()
    assert "your answers and the reference answers" in feedback
    assert "Practice case 1 of 2" in feedback
    api = ok[f"/api/v1/my/assignments/{mine[0].public_id}"].json()
    assert api["practice"]["feedback"], api
    assert "Practice case 2 of 2" in ok[f"/studies/read/{mine[1].public_id}/"].content.decode()
    # Coordinators' pages of practice cases (they name sources) stay out of reach.
    assert visited[f"/studies/{study.public_id}/practice/"].status_code in (302, 403, 404)
    for case in study.cases.filter(is_practice=True):
        url = f"/studies/{study.public_id}/practice/{case.public_id}/reference/"
        assert client.get(url).status_code in (302, 403, 404)
        assert client.post(url, {"comparison": "a"}).status_code in (302, 403, 404)
        url = f"/studies/{study.public_id}/practice/{case.public_id}/"
        assert client.post(url, {"is_practice": "0"}).status_code in (302, 403, 404)
    forbidden = _forbidden(study)
    for path, response in ok.items():
        if path.startswith(("/api/schema", "/api/docs", "/api/redoc")):
            continue
        text = response.content.decode(errors="replace")
        for token in forbidden:
            assert token.lower() not in text.lower(), (path, token)
        if "data-practice-feedback" in text:
            # The AI-guess question has no reference answer, so none is shown.
            section = text.split("data-practice-feedback", 1)[1].split("</section>", 1)[0]
            assert "written by the AI" not in section, path


def test_reports_appear_in_a_b_order_and_read_alike_whatever_their_source(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(4)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    client = Client()
    client.force_login(reader)
    forms = []
    for assignment in Assignment.objects.filter(reader_study=study, reader=reader):
        page = client.get(f"/studies/read/{assignment.public_id}/").content.decode()
        assert page.index('data-side="A"') < page.index('data-side="B"')
        data = client.get(f"/api/v1/my/assignments/{assignment.public_id}").json()
        assert [r["side"] for r in data["reports"]] == ["A", "B"]
        for report in data["reports"]:
            assert set(report) == {"side", "label", "findings", "impression"}
            # One renderer: no shouting capitals or dictation footers on either side.
            assert report["findings"][:1].isupper()
            assert not report["findings"].isupper()
            assert "Dictated" not in report["findings"]
        forms.append((assignment.candidate_side, data["form"]))
    sides = {side for side, _ in forms}
    assert sides == {"A", "B"}
    assert all(form == forms[0][1] for _, form in forms)


def test_a_draft_study_is_invisible_to_its_readers(coordinator, reader) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, open_it=False)
    client = Client()
    client.force_login(reader)
    assignment = Assignment.objects.filter(reader_study=study).first()
    assert client.get(f"/api/v1/my/assignments/{assignment.public_id}").status_code == 404
    assert client.get("/api/v1/my/worklist").json() == {"studies": []}


def test_no_field_order_or_text_tells_a_reads_arm_in_a_three_arm_study(
    coordinator, reader, second_reader
) -> None:
    """Model A vs the original, model B vs the original, A vs B: the reader's crawl finds no
    source, arm or design; every read has the same fields; the clinical information of one
    imaging study is the same in every arm."""
    original = report_source_original()
    model_a = report_source_external_save(name="ArmModel-Alpha", version="7")
    model_b = report_source_external_save(name="ArmModel-Beta", version="3")
    imaging = []
    for index in range(4):
        study = make_imaging_study(index)
        study_context_set(
            study=study,
            indication=f"Cough and fever for {index + 2} days. Referred by Dr Smith on 01/02/2020.",
            technique="PA and lateral views of the chest.",
            comparison="None.",
        )
        for source, text in (
            (original, "HEART SIZE NORMAL.\nDictated by Dr Who"),
            (model_a, "FINDINGS: The lungs are clear."),
            (model_b, "1. No focal consolidation.\n2. No pleural effusion."),
        ):
            Report.objects.create(
                study=study,
                kind=Report.Kind.ORIGINAL if source == original else Report.Kind.AI,
                source=source,
                findings=f"{text} {index}",
                impression="No acute disease.",
            )
        imaging.append(study)
    # Reports were written weeks before anyone rates them (a leaked date would then show).
    Report.objects.filter(study__in=imaging).update(created_at=timezone.now() - timedelta(days=20))
    study = services.reader_study_create(
        user=coordinator, name="Three arms", protocol_key="medgemini_cxr"
    )
    arms = services.arms_set(
        reader_study=study,
        design=ReaderStudy.Design.CHOSEN_PAIRS,
        pairs=[(original, model_a), (original, model_b), (model_a, model_b)],
    )
    services.cases_add(reader_study=study, imaging_studies=imaging)
    services.panel_set(reader_study=study, readers=[(reader, ""), (second_reader, "")])
    services.assignments_generate(reader_study=study, seed=11)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    study.refresh_from_db()
    first = Assignment.objects.filter(reader_study=study, reader=reader).order_by("position")[0]
    services.rating_submit(
        assignment=first, reader=reader, answers={"comparison": "c"}, idempotency_key=uuid.uuid4()
    )

    client = Client()
    client.force_login(reader)
    visited = _crawl(client, [str(study.public_id)])
    ok = {p: r for p, r in visited.items() if r.status_code == 200}
    mine = list(Assignment.objects.filter(reader_study=study, reader=reader).select_related("case"))
    assert len(mine) == 12
    for assignment in mine:
        assert f"/studies/read/{assignment.public_id}/" in ok
    forbidden = [
        *_forbidden(study),
        "ArmModel",
        "Alpha",
        "Beta",
        "Dr Smith",
        "01/02/2020",
        "vs_reference",
        "chosen_pairs",
        "all_pairs",
        *(str(a.public_id) for a in arms),
        *(str(s.public_id) for s in (original, model_a, model_b)),
        *(str(c.public_id) for c in study.cases.all()),
    ]
    for path, response in ok.items():
        if path.startswith(("/api/schema", "/api/docs", "/api/redoc")):
            continue
        text = response.content.decode(errors="replace")
        for token in forbidden:
            assert token.lower() not in text.lower(), (path, token)

    views = {a.pk: client.get(f"/api/v1/my/assignments/{a.public_id}").json() for a in mine}
    # Every read carries the same fields, whatever its arm.
    assert len({tuple(sorted(v)) for v in views.values()}) == 1
    # One imaging study shows one clinical panel in all its arms, with names and dates gone.
    by_imaging: dict[int, set[str]] = {}
    for a in mine:
        by_imaging.setdefault(a.case.imaging_study_id, set()).add(
            json.dumps(views[a.pk]["clinical"])
        )
    assert all(len(panels) == 1 for panels in by_imaging.values())
    panel = views[mine[0].pk]["clinical"]
    assert [row["label"] for row in panel] == ["Indication / history", "Technique", "Comparison"]
    page = client.get(f"/studies/read/{mine[0].public_id}/").content.decode()
    assert "Clinical information" in page
    assert page.index("Clinical information") < page.index('data-side="A"')


def test_an_invitation_link_shows_the_invitee_nothing_of_the_reports(coordinator) -> None:
    """The page a one-time link opens is reached before any login: it names the study, the
    inviter and the cohort, and nothing of the cases it holds."""
    study = services.reader_study_create(
        user=coordinator, name="CXR pilot", protocol_key="medgemini_cxr"
    )
    services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(i) for i in range(2)],
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    sent = invitation_create(
        reader_study=study,
        invited_by=coordinator,
        email="jane.roe@example.org",
        cohort="US",
        base_url="http://testserver/",
    )
    path = urlsplit(sent.link).path
    page = Client().get(path)
    assert page.status_code == 200
    text = page.content.decode(errors="replace")
    assert "CXR pilot" in text
    for token in _forbidden(study):
        assert token.lower() not in text.lower(), token
    for case in study.cases.select_related("imaging_study"):
        assert case.imaging_study.study_instance_uid not in text
        assert str(case.public_id) not in text
