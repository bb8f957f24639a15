"""One rule, one place: the role gate, the public-id fetch and who sees which reader study.

alice reads, carol coordinates the study, frank coordinates another, dave analyses, eve has
no role.
"""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404
from django.test import Client

from reviewapp.analysis.selectors import reader_study_get_for_analyst
from reviewapp.core.access import public_id_get_or_404, public_id_or_404
from reviewapp.core.roles import Role, user_has_role, users_with_role
from reviewapp.studies import selectors, services
from reviewapp.studies.models import ReaderStudy
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db


def test_a_malformed_a_missing_and_a_hidden_id_answer_the_same_404(coordinator):
    study = services.reader_study_create(
        user=coordinator, name="Pilot", protocol_key="medgemini_cxr"
    )
    answers = []
    for public_id in ("not-a-uuid", uuid.uuid4(), study.public_id):
        with pytest.raises(Http404) as caught:
            public_id_get_or_404(ReaderStudy.objects.none(), public_id, what="reader study")
        answers.append(str(caught.value))
    assert answers == ["No such reader study."] * 3
    assert public_id_or_404(str(study.public_id)) == study.public_id


def test_the_role_gate_sends_visitors_to_login_and_refuses_other_roles(reader, coordinator):
    anonymous = Client()
    response = anonymous.get("/generation/")
    assert response.status_code == 302
    assert "login" in response["Location"]
    alice = Client()
    alice.force_login(reader)
    carol = Client()
    carol.force_login(coordinator)
    # One gate for every app's pages: the archive, generation and reader-study pages alike.
    for path in ("/imaging/studies/", "/generation/", "/reports/upload/"):
        assert alice.get(path).status_code == 403, path
        page = carol.get(path)
        assert page.status_code == 200, path
        assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"], path


def test_a_creator_no_longer_coordinating_sees_the_study_neither_to_manage_nor_to_analyse(
    coordinator, reader, make_user
):
    frank = make_user("frank", Role.COORDINATOR)
    # Handing a study over removes the creator from its coordinators; the studies pages and
    # the analysis once disagreed here (analysis still let the creator export the key).
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)], open_it=False
    )
    study.coordinators.set([frank])
    with pytest.raises(Http404):
        selectors.reader_study_get_for_staff(user=coordinator, public_id=study.public_id)
    with pytest.raises(Http404):
        reader_study_get_for_analyst(user=coordinator, public_id=study.public_id)
    assert reader_study_get_for_analyst(user=frank, public_id=study.public_id) == study


def test_a_reader_sees_nothing_of_a_draft_study_anywhere(reader, coordinator):
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)], open_it=False
    )
    assignment = study.assignments.get(reader=reader)
    assert selectors.worklist_for_reader(user=reader) == []
    assert not selectors.assignment_list_for_reader(user=reader).exists()
    with pytest.raises(Http404):
        selectors.assignment_get_for_reader(user=reader, public_id=assignment.public_id)
    assert selectors.next_assignment_id_for_reader(user=reader, study_id=study.public_id) is None
    from reviewapp.imaging.selectors import studies_visible_to

    assert not studies_visible_to(user=reader).exists()


def test_who_counts_as_a_reader_is_the_same_on_the_page_and_in_the_services(
    reader, second_reader, coordinator, analyst, outsider, admin_user
):
    # The study page listed only the reader group, while the panel service (and so the API)
    # also seats administrators: an admin could be seated by the API but not on the page.
    everyone = [reader, second_reader, coordinator, analyst, outsider, admin_user]
    expected = {u.username for u in everyone if user_has_role(u, Role.READER)}
    assert {u.username for u in users_with_role(Role.READER)} == expected
    assert admin_user.username in expected


def test_every_application_error_carries_its_own_code():
    from reviewapp.core.errors import ApplicationError

    with pytest.raises(TypeError):
        ApplicationError("No code given.")  # type: ignore[call-arg]
    assert ApplicationError("Refused.", code="not_draft").code == "not_draft"
