"""What a coordinator acts on: reads done, last activity, median time per read, reading time
left (own pace or the study's), status, the reminders list and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from reviewapp.core.roles import Role
from reviewapp.studies import selectors, services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _submit(assignment: Assignment, seconds: float, at: datetime) -> None:
    services.rating_submit(
        assignment=assignment,
        reader=assignment.reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
        active_seconds=seconds,
    )
    Assignment.objects.filter(pk=assignment.pk).update(submitted_at=at)


def _list(study, user) -> list[Assignment]:
    return list(Assignment.objects.filter(reader_study=study, reader=user).order_by("position"))


@pytest.fixture
def gina(make_user):
    return make_user("gina", Role.READER)


def test_each_reader_gets_own_pace_or_the_study_pace_and_a_status(
    coordinator, reader, second_reader, gina
) -> None:
    reader.first_name, reader.last_name, reader.email = "Alice", "Ames", "alice@example.org"
    reader.save()
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader, gina],
        imaging=[make_case_study(i) for i in range(6)],
    )
    alice, bob, gina_list = _list(study, reader), _list(study, second_reader), _list(study, gina)
    for assignment, seconds in zip(alice, [60, 300, 120], strict=False):
        _submit(assignment, seconds, NOW - timedelta(days=1))
    _submit(bob[0], 30, NOW - timedelta(days=10))

    progress = selectors.reader_study_progress(reader_study=study, now=NOW)
    rows = {row["reader"]: row for row in progress["readers"]}

    a = rows["alice"]
    assert (a["submitted"], a["left"]) == (3, len(alice) - 3)
    assert a["median_seconds"] == 120
    assert a["median_text"] == "2 min"
    assert (a["estimate_seconds"], a["estimate_basis"]) == ((len(alice) - 3) * 120, "reader")
    assert a["status"] == "reading"
    assert a["last_activity_text"] == "2026-03-01 12:00 UTC"
    # Three reads in the day since her first: the rest at three a day.
    assert a["reads_per_day"] == 3.0
    finish = (NOW + timedelta(days=(len(alice) - 3) / 3)).date().isoformat()
    assert a["expected_finish"] == finish
    assert a["finish_text"] == f"about {finish} (3.0 reads a day since the first read)"

    # One timed read is too few: bob's estimate uses the study's median of all four reads.
    assert progress["median_seconds"] == 90
    b = rows["bob"]
    assert b["median_seconds"] == 30
    assert (b["estimate_seconds"], b["estimate_basis"]) == ((len(bob) - 1) * 90, "study")
    assert b["status"] == "idle"  # ten days without a submit or a draft save
    assert b["reads_per_day"] == 0.1  # one read in the ten days since his first
    assert b["expected_finish"] == (NOW + timedelta(days=10 * (len(bob) - 1))).date().isoformat()
    assert b["status_text"] == "idle for more than 7 days"

    g = rows["gina"]
    assert (g["status"], g["last_activity"]) == ("not_started", None)
    assert g["estimate_basis"] == "study"
    assert (g["expected_finish"], g["finish_text"]) == (None, "no reads in the last 14 days")

    # A draft save is activity: gina is reading from then on.
    services.draft_save(assignment=gina_list[0], draft={"answers": {"comparison": "a"}}, seq=1)
    progress = selectors.reader_study_progress(reader_study=study, with_contact=True)
    assert {row["reader"]: row["status"] for row in progress["readers"]}["gina"] == "reading"

    lines = progress["reminders"].splitlines()
    assert lines[0] == (
        f"Alice Ames <alice@example.org>: {len(alice) - 3} of {len(alice)} reads left; "
        "last activity 2026-03-01 12:00 UTC"
    )
    assert lines[1].startswith(f"bob <{second_reader.email or 'no e-mail'}>: {len(bob) - 1} of")
    assert lines[2].startswith("gina ")

    # Without contact (an analyst's view) the same figures come without anyone's e-mail.
    figures_only = selectors.reader_study_progress(reader_study=study)
    assert {row["email"] for row in figures_only["readers"]} == {""}
    assert "@" not in figures_only["reminders"]
    assert (
        figures_only["reminders"]
        .splitlines()[0]
        .startswith(f"Alice Ames: {len(alice) - 3} of {len(alice)} reads left")
    )


def test_a_reader_who_has_finished_is_done_has_nothing_left_and_no_reminder(
    coordinator, reader
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(2)]
    )
    for assignment in _list(study, reader):
        _submit(assignment, 45, NOW - timedelta(days=30))

    progress = selectors.reader_study_progress(reader_study=study, now=NOW)
    (row,) = progress["readers"]
    assert (row["status"], row["left"], row["estimate_seconds"]) == ("done", 0, None)
    assert row["median_text"] == "45 s"
    assert progress["reminders"] == ""


def test_a_read_submitted_without_timing_does_not_count_as_fast(coordinator, reader) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(3)]
    )
    first, second, _third = _list(study, reader)
    _submit(first, 0, NOW)
    _submit(second, 200, NOW)
    (row,) = selectors.reader_study_progress(reader_study=study, now=NOW)["readers"]
    assert row["median_seconds"] == 200


def test_the_export_is_the_table_for_the_study_coordinator_and_admins_only(
    coordinator, reader, analyst, frank, admin_user
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(2)]
    )
    _submit(_list(study, reader)[0], 90, NOW)
    url = f"/studies/{study.public_id}/progress.csv"
    expected = {coordinator: 200, admin_user: 200, frank: 404, analyst: 403, reader: 403}
    for user, status in expected.items():
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == status, user.username
    response = Client()
    response.force_login(coordinator)
    body = response.get(url)
    assert body["Content-Type"].startswith("text/csv")
    assert "no-store" in body["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(body.content.decode())))
    assert [(r["reader"], r["submitted"], r["assigned"], r["median_seconds"]) for r in rows] == [
        ("alice", "1", "2", "90.0")
    ]
    assert rows[0]["estimate_basis"] == "study"  # one timed read: the study's pace


def test_the_page_offers_the_export_and_emails_to_its_coordinator_not_to_an_analyst(
    coordinator, reader, analyst
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(2)]
    )
    reader.email = "alice@example.org"
    reader.save(update_fields=["email"])
    link = f"/studies/{study.public_id}/progress.csv"
    for user, shown in ((coordinator, True), (analyst, False)):
        client = Client()
        client.force_login(user)
        page = client.get(f"/studies/{study.public_id}/progress/").content.decode()
        assert (link in page) is shown
        assert "Reminders" in page
        # Readers' e-mail goes to those who send the reminders, not to analysts.
        api = client.get(f"/api/v1/reader-studies/{study.public_id}/progress").json()
        assert (reader.email in page) is shown
        assert ({row["email"] for row in api["readers"]} == {reader.email}) is shown
