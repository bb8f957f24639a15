"""The study page as one guided flow: each step says what is done and what is missing, a
refused form comes back as typed with its problem in its own step, and the pages of the
archive, generation, cases and ratings link to one another.

carol coordinates; alice and bob read; frank coordinates other studies.
"""

from __future__ import annotations

import html

import pytest
from django.test import Client

from reviewapp.reports.models import Report
from reviewapp.studies import blinding, selectors, services
from reviewapp.studies.models import Assignment, ReaderStudy
from tests.studies.conftest import make_case_study

pytestmark = pytest.mark.django_db


def _ai():
    # A fresh queryset per use: a module-level one caches the first test's rows.
    return Report.objects.filter(kind=Report.Kind.AI)


def _steps(study: ReaderStudy) -> dict[str, selectors.SetupStep]:
    study.refresh_from_db()
    steps = selectors.reader_study_setup_steps(
        reader_study=study,
        blinding_summary=blinding.blinding_summary(reader_study=study),
        modality_warnings=selectors.cases_modality_warnings(reader_study=study),
    )
    return {s.key: s for s in steps}


def _done(study: ReaderStudy) -> list[str]:
    return [key for key, s in _steps(study).items() if s.is_done]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_each_step_is_done_in_turn_and_says_what_is_missing(coordinator, reader) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    assert _done(study) == ["protocol"]
    assert _steps(study)["cases"].summary.startswith("No cases yet")
    assert _steps(study)["lists"].summary == "Not generated: they need cases and readers first."
    assert _steps(study)["open"].summary == (
        "Not open yet; still missing: cases, readers, reading lists, blinding check."
    )

    services.cases_add(
        reader_study=study, imaging_studies=[make_case_study(0)], candidate_reports=_ai()
    )
    services.panel_set(reader_study=study, readers=[(reader, "")])
    assert _done(study) == ["protocol", "cases", "readers"]
    assert _steps(study)["lists"].summary == "Not generated yet."

    services.assignments_generate(reader_study=study, seed=5)
    assert _steps(study)["lists"].summary == (
        "1 read in 1 list (every reader reads every case), seed 5."
    )
    blinding.blinding_check_record(reader_study=study)
    assert not _steps(study)["blinding"].is_done
    assert "review them and acknowledge" in _steps(study)["blinding"].summary

    blinding.blinding_acknowledge(reader_study=study, user=coordinator)
    assert _steps(study)["open"].summary == "Ready to open."
    services.reader_study_open(reader_study=study)
    assert _done(study) == ["protocol", "cases", "readers", "lists", "blinding", "open"]


def test_a_ct_case_under_a_radiograph_protocol_is_flagged_in_the_overview(coordinator) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(0, modality="CT")],
        candidate_reports=_ai(),
    )

    steps = _steps(study)

    assert steps["cases"].warning == "1 modality warning(s)."
    assert steps["protocol"].warning


def test_generating_the_lists_saves_the_readers_ticked_beside_them(
    coordinator, reader, second_reader
) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(i) for i in range(2)],
        candidate_reports=_ai(),
    )
    services.panel_set(reader_study=study, readers=[(reader, "US")])  # saved earlier: alice

    response = _client(coordinator).post(
        f"/studies/{study.public_id}/reading-lists/",
        {
            "panel_shown": "1",
            "reader": [str(reader.pk), str(second_reader.pk)],
            f"cohort_{reader.pk}": "US",
            f"cohort_{second_reader.pk}": " India ",
            "same_study_gap": "0",
            "seed": "3",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.public_id}/#step-lists"
    assert dict(study.panel.values_list("reader__username", "cohort")) == {
        "alice": "US",
        "bob": "India",
    }
    assert set(Assignment.objects.filter(reader_study=study).values_list("reader", flat=True)) == {
        reader.pk,
        second_reader.pk,
    }


def test_refused_lists_save_nothing_and_come_back_as_ticked_with_the_problem_in_their_step(
    coordinator, reader, second_reader
) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    services.cases_add(
        reader_study=study, imaging_studies=[make_case_study(0)], candidate_reports=_ai()
    )

    response = _client(coordinator).post(
        f"/studies/{study.public_id}/reading-lists/",
        {
            "panel_shown": "1",
            "reader": [str(second_reader.pk)],
            f"cohort_{second_reader.pk}": "India",
            "reads_per_case": "4",
            "seed": "11",
        },
    )
    page = response.content.decode()

    assert response.status_code == 400
    assert not study.panel.exists()
    assert not study.assignments.exists()
    lists = page[page.index('id="step-lists"') : page.index('id="step-blinding"')]
    assert "Choose between 1 and 1 readers per case." in lists
    assert "data-focus-on-load" in lists
    assert page.count("data-focus-on-load") == 1
    assert f'name="reader" value="{second_reader.pk}" checked' in page
    assert f'name="reader" value="{reader.pk}">' in page
    assert f'name="cohort_{second_reader.pk}" value="India"' in page
    assert 'name="reads_per_case" inputmode="numeric" value="4" aria-invalid="true"' in page
    assert 'name="seed" inputmode="numeric" value="11"' in page


def test_a_refused_add_keeps_the_filters_and_shows_the_problem_among_the_cases(
    coordinator,
) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="radpeer")

    response = _client(coordinator).post(
        f"/studies/{study.public_id}/cases/add/",
        {"modality": "CR", "sample": "normal: 2, abnormal", "sample_seed": "9"},
    )
    page = html.unescape(response.content.decode())

    assert response.status_code == 400
    cases = page[page.index('id="step-cases"') : page.index('id="step-readers"')]
    assert "Write each stratum as name: count (got 'abnormal')." in cases
    assert 'name="modality" placeholder="e.g. CR, DX or CT" value="CR"' in page
    assert 'value="normal: 2, abnormal" aria-invalid="true"' in page
    assert 'name="sample_seed" inputmode="numeric" value="9"' in page


def test_a_new_study_refused_keeps_what_was_typed(coordinator) -> None:
    response = _client(coordinator).post(
        "/studies/new/",
        {"name": "   ", "description": "Pilot of the RADPEER scale", "protocol_key": "radpeer"},
    )
    page = response.content.decode()

    assert response.status_code == 400
    assert "The study was not created" in page
    assert "Pilot of the RADPEER scale</textarea>" in page
    assert 'value="radpeer" checked' in page
    assert 'name="allow_revisions">' in page  # left unticked stays unticked
    assert not ReaderStudy.objects.exists()


def test_a_step_done_says_so_in_its_own_step(coordinator, reader) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="radpeer")
    client = _client(coordinator)

    page = client.post(
        f"/studies/{study.public_id}/panel/",
        {"panel_shown": "1", "reader": [str(reader.pk)], f"cohort_{reader.pk}": "US"},
        follow=True,
    ).content.decode()

    readers = page[page.index('id="step-readers"') : page.index('id="step-lists"')]
    assert "Panel set: 1 reader(s)." in readers
    assert "Panel set" not in page[: page.index('id="step-readers"')]


def test_the_api_lists_the_same_steps_as_the_page(coordinator, reader, api_client_for) -> None:
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="medgemini_cxr")
    services.cases_add(
        reader_study=study, imaging_studies=[make_case_study(0)], candidate_reports=_ai()
    )

    steps = api_client_for(coordinator).get(f"/api/v1/reader-studies/{study.public_id}/steps")

    assert steps.status_code == 200
    assert [(s["key"], s["is_done"]) for s in steps.json()] == [
        ("protocol", True),
        ("cases", True),
        ("readers", False),
        ("lists", False),
        ("blinding", False),
        ("open", False),
    ]
    assert steps.json()[2]["summary"] == "No readers on the panel yet."
