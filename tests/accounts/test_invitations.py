"""Readers join by invitation: carol invites people to her draft study by e-mail, one by one or
from a CSV; each gets a one-time link that expires, can be revoked or sent again, and seats
its reader on the panel with a cohort.

carol coordinates the study, frank coordinates others, root administers, alice and bob read,
eve has an account (eve@example.org) and no role; Jane Roe and Raj Iyer are new people.
"""

from __future__ import annotations

import hashlib
import html
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from reviewapp.accounts import services
from reviewapp.accounts.models import Invitation
from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role, user_has_role
from reviewapp.reports.models import Report
from reviewapp.studies import services as study_services
from reviewapp.studies.models import ReaderStudy, StudyReader
from tests.studies.conftest import make_case_study

pytestmark = pytest.mark.django_db

BASE = "http://testserver/"
GOOD_PASSWORD = "Quiet-Lantern-4821"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The production hasher's deliberate slowness tests nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(coordinator) -> ReaderStudy:
    draft = study_services.reader_study_create(
        user=coordinator, name="CXR pilot", protocol_key="medgemini_cxr"
    )
    study_services.cases_add(
        reader_study=draft,
        imaging_studies=[make_case_study(i) for i in range(2)],
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    return draft


def _invite(study, by, email="jane.roe@example.org", name="Jane Roe", cohort="US"):
    return services.invitation_create(
        reader_study=study, invited_by=by, email=email, name=name, cohort=cohort, base_url=BASE
    )


def _token(link: str) -> str:
    return urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]


def _lists_drawn(study, coordinator, readers) -> None:
    study_services.panel_set(reader_study=study, readers=[(r, "US") for r in readers])
    study_services.assignments_generate(reader_study=study, seed=7)


# --- the link ------------------------------------------------------------------------------


def test_an_invitation_keeps_only_the_hash_of_its_link(study, coordinator) -> None:
    sent = _invite(study, coordinator)
    token = _token(sent.link)

    assert sent.link.startswith(f"{BASE}accounts/invitation/")
    assert len(token) >= 40  # 256 random bits
    stored = Invitation.objects.get(pk=sent.invitation.pk)
    assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    # Neither the row nor its history holds a working link.
    rows = [
        *Invitation.objects.filter(pk=stored.pk).values(),
        *stored.events.values(),  # type: ignore[attr-defined]
    ]
    assert rows
    assert not any(token in str(value) for row in rows for value in row.values())


def test_a_new_reader_chooses_a_password_and_joins_the_panel_with_the_cohort_once(
    study, coordinator
) -> None:
    sent = _invite(study, coordinator)

    accepted = services.invitation_accept(
        token=_token(sent.link), user=None, username="jane.roe", password=GOOD_PASSWORD
    )

    jane = accepted.user
    assert accepted.joined
    assert "CXR pilot" in accepted.message
    assert "cohort US" in accepted.message
    assert (jane.get_username(), jane.email, jane.first_name) == (  # type: ignore[attr-defined]
        "jane.roe",
        "jane.roe@example.org",
        "Jane Roe",
    )
    assert jane.check_password(GOOD_PASSWORD)
    assert user_has_role(get_user_model().objects.get(pk=jane.pk), Role.READER)
    assert StudyReader.objects.get(reader_study=study, reader=jane).cohort == "US"
    invitation = Invitation.objects.get(pk=sent.invitation.pk)
    assert (invitation.status, invitation.outcome, invitation.accepted_by) == (
        "accepted",
        "joined",
        jane,
    )
    # Single use: the same link again (or raced) is refused, and makes nobody.
    with pytest.raises(ApplicationError) as again:
        services.invitation_accept(
            token=_token(sent.link), user=None, username="jane2", password=GOOD_PASSWORD
        )
    assert again.value.code == "invitation_used"
    assert not get_user_model().objects.filter(username="jane2").exists()


def test_an_expired_link_is_refused(study, coordinator, settings) -> None:
    sent = _invite(study, coordinator)
    expected_days = settings.RADREVIEW_INVITATION_TTL_DAYS
    invitation = sent.invitation
    assert abs(
        invitation.expires_at - (invitation.sent_at + timedelta(days=expected_days))
    ) < timedelta(seconds=1)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    with pytest.raises(ApplicationError) as refused:
        services.invitation_accept(
            token=_token(sent.link), user=None, username="jane", password=GOOD_PASSWORD
        )

    assert refused.value.code == "invitation_expired"
    assert not get_user_model().objects.filter(username="jane").exists()
    # Sending it again renews the link and the expiry.
    again = services.invitation_resend(invitation=invitation, user=coordinator, base_url=BASE)
    assert again.invitation.status == "pending"
    assert again.invitation.send_count == 2


def test_a_revoked_link_stops_working_and_a_link_sent_again_replaces_the_old_one(
    study, coordinator
) -> None:
    first = _invite(study, coordinator)
    second = services.invitation_resend(
        invitation=first.invitation, user=coordinator, base_url=BASE
    )
    assert _token(second.link) != _token(first.link)

    with pytest.raises(ApplicationError) as old:
        services.invitation_accept(
            token=_token(first.link), user=None, username="jane", password=GOOD_PASSWORD
        )
    assert old.value.code == "invitation_unknown"

    services.invitation_revoke(invitation=first.invitation, user=coordinator)
    with pytest.raises(ApplicationError) as revoked:
        services.invitation_accept(
            token=_token(second.link), user=None, username="jane", password=GOOD_PASSWORD
        )
    assert revoked.value.code == "invitation_revoked"
    with pytest.raises(ApplicationError) as resend:
        services.invitation_resend(invitation=first.invitation, user=coordinator, base_url=BASE)
    assert resend.value.code == "invitation_revoked"
    # A revoked invitation no longer blocks the address: it can be invited afresh.
    assert _invite(study, coordinator).invitation.status == "pending"


def test_an_existing_account_is_added_not_duplicated(study, coordinator, outsider, reader) -> None:
    outsider.email = "eve@example.org"
    outsider.save(update_fields=["email"])
    users_before = get_user_model().objects.count()
    sent = _invite(study, coordinator, email="Eve@Example.ORG", name="Eve", cohort="India")
    token = _token(sent.link)

    # Holding the link is not enough to take over an account: its owner logs in.
    with pytest.raises(ApplicationError) as anonymous:
        services.invitation_accept(token=token, user=None, username="eve2", password=GOOD_PASSWORD)
    assert anonymous.value.code == "invitation_log_in"
    with pytest.raises(ApplicationError) as someone_else:
        services.invitation_accept(token=token, user=reader)
    assert someone_else.value.code == "invitation_other_account"

    accepted = services.invitation_accept(token=token, user=outsider)

    assert accepted.user == outsider
    assert accepted.joined
    assert get_user_model().objects.count() == users_before
    assert user_has_role(get_user_model().objects.get(pk=outsider.pk), Role.READER)
    assert StudyReader.objects.get(reader_study=study, reader=outsider).cohort == "India"
    assert outsider.check_password("correct-horse-battery-staple")  # never reset by a link


def test_a_taken_username_and_a_weak_password_are_refused_together(
    study, coordinator, reader
) -> None:
    sent = _invite(study, coordinator)

    with pytest.raises(ValidationError) as refused:
        services.invitation_accept(
            token=_token(sent.link), user=None, username="alice", password="12345678"
        )

    assert set(refused.value.message_dict) == {"username", "password"}
    assert any("common" in m for m in refused.value.message_dict["password"])
    assert Invitation.objects.get(pk=sent.invitation.pk).status == "pending"


def test_an_invitation_accepted_after_the_reading_lists_gives_an_account_not_a_seat(
    study, coordinator, reader
) -> None:
    sent = _invite(study, coordinator)
    _lists_drawn(study, coordinator, [reader])

    accepted = services.invitation_accept(
        token=_token(sent.link), user=None, username="jane", password=GOOD_PASSWORD
    )

    assert not accepted.joined
    assert "not on its panel" in accepted.message
    assert user_has_role(accepted.user, Role.READER)
    assert not StudyReader.objects.filter(reader_study=study, reader=accepted.user).exists()
    invitation = Invitation.objects.get(pk=sent.invitation.pk)
    assert invitation.outcome == Invitation.Outcome.AFTER_LISTS
    # The coordinator sees it in the list.
    carol = Client()
    carol.force_login(coordinator)
    page = carol.get(f"/studies/{study.public_id}/invitations/").content.decode()
    assert "Accepted after the lists were drawn: not on the panel" in page


def test_no_invitation_is_sent_once_the_reading_lists_exist(study, coordinator, reader) -> None:
    pending = _invite(study, coordinator)
    _lists_drawn(study, coordinator, [reader])

    with pytest.raises(ApplicationError) as refused:
        _invite(study, coordinator, email="raj.iyer@example.org")
    assert refused.value.code == "panel_closed"
    assert "never redrawn" in refused.value.message
    with pytest.raises(ApplicationError):
        services.invitation_resend(invitation=pending.invitation, user=coordinator, base_url=BASE)
    # The page says why, and what a pending invitation now means.
    carol = Client()
    carol.force_login(coordinator)
    page = html.unescape(carol.get(f"/studies/{study.public_id}/invitations/").content.decode())
    assert "No invitations can be sent: The reading lists are generated" in page
    assert "1 invitation still pending: whoever accepts now gets an account but no seat" in page
    assert 'id="invite-form"' not in page
    # Withdrawing a pending one is still possible.
    services.invitation_revoke(invitation=pending.invitation, user=coordinator)


def test_only_the_studys_coordinators_and_admins_invite(
    study, coordinator, admin_user, make_user, analyst, reader
) -> None:
    frank = make_user("frank", Role.COORDINATOR)
    for user in (frank, analyst, reader):
        with pytest.raises(PermissionDenied):
            _invite(study, user)
    sent = _invite(study, admin_user)
    for user in (frank, analyst):
        with pytest.raises(PermissionDenied):
            services.invitation_revoke(invitation=sent.invitation, user=user)
        with pytest.raises(PermissionDenied):
            services.invitation_resend(invitation=sent.invitation, user=user, base_url=BASE)
    assert Invitation.objects.get().invited_by == admin_user


def test_an_address_on_the_panel_or_already_invited_is_not_invited_twice(
    study, coordinator, reader
) -> None:
    reader.email = "alice@example.org"
    reader.save(update_fields=["email"])
    study_services.panel_reader_add(reader_study=study, reader=reader, cohort="US")
    _invite(study, coordinator)

    with pytest.raises(ApplicationError) as seated:
        _invite(study, coordinator, email="ALICE@example.org")
    assert seated.value.code == "already_on_panel"
    with pytest.raises(ApplicationError) as twice:
        _invite(study, coordinator, email="Jane.Roe@example.org", cohort="UK")
    assert twice.value.code == "already_invited"
    assert "send it again or revoke it" in twice.value.message
    with pytest.raises(ValidationError) as bad:
        _invite(study, coordinator, email="jane at example")
    assert "not an e-mail address" in str(bad.value)


def test_one_person_sends_a_bounded_number_of_invitations_an_hour(
    study, coordinator, settings
) -> None:
    settings.RADREVIEW_INVITATIONS_PER_HOUR = 2
    first = _invite(study, coordinator, email="a@example.org")
    _invite(study, coordinator, email="b@example.org")

    with pytest.raises(ApplicationError) as limited:
        _invite(study, coordinator, email="c@example.org")
    assert limited.value.code == "rate_limited"
    with pytest.raises(ApplicationError):
        services.invitation_resend(invitation=first.invitation, user=coordinator, base_url=BASE)
    # An hour later the sends have aged out of the window.
    Invitation.objects.update(sent_at=timezone.now() - timedelta(minutes=61))
    assert _invite(study, coordinator, email="c@example.org").invitation.pk


def test_the_link_is_emailed_once_the_invitation_is_committed(
    study, coordinator, django_capture_on_commit_callbacks
) -> None:
    coordinator.first_name, coordinator.last_name = "Carol", "Chen"
    coordinator.save(update_fields=["first_name", "last_name"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sent = _invite(study, coordinator)
        assert mail.outbox == []  # not before the commit
    for callback in callbacks:
        callback()

    (message,) = mail.outbox
    assert message.to == ["jane.roe@example.org"]
    assert message.subject == 'Invitation to read for "CXR pilot"'
    assert sent.link in message.body
    assert "Carol Chen invites you" in message.body
    assert f"{sent.invitation.expires_at:%Y-%m-%d %H:%M} UTC" in message.body


def test_a_mail_server_that_does_not_answer_marks_the_invitation_to_send_again(
    study, coordinator, settings, django_capture_on_commit_callbacks
) -> None:
    # A real SMTP client against a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.EMAIL_TIMEOUT = 5

    with django_capture_on_commit_callbacks(execute=True):
        sent = _invite(study, coordinator)

    assert Invitation.objects.get(pk=sent.invitation.pk).mail_failed_at is not None
    carol = Client()
    carol.force_login(coordinator)
    page = html.unescape(carol.get(f"/studies/{study.public_id}/invitations/").content.decode())
    assert "the e-mail could not be sent: send it again" in page


def test_each_change_is_kept_in_the_history_with_who_and_why(study, coordinator) -> None:
    sent = _invite(study, coordinator)
    services.invitation_resend(invitation=sent.invitation, user=coordinator, base_url=BASE)
    latest = services.invitation_resend(invitation=sent.invitation, user=coordinator, base_url=BASE)
    accepted = services.invitation_accept(
        token=_token(latest.link), user=None, username="jane", password=GOOD_PASSWORD
    )

    events = sent.invitation.events.order_by("pgh_id").select_related("pgh_context")  # type: ignore[attr-defined]
    trail = [
        (e.pgh_label, e.pgh_context.metadata["action"], e.pgh_context.metadata["user"])
        for e in events
    ]
    assert trail == [
        ("insert", "invitation_create", coordinator.pk),
        ("update", "invitation_resend", coordinator.pk),
        ("update", "invitation_resend", coordinator.pk),
        ("update", "invitation_accept", accepted.user.pk),
    ]


# --- CSV -----------------------------------------------------------------------------------


def test_a_csv_invites_the_good_rows_and_names_each_bad_one_with_its_reason(
    study, coordinator
) -> None:
    _invite(study, coordinator, email="already@example.org")
    data = (
        "Name,E-mail,Cohort\r\n"
        "Raj Iyer,raj.iyer@example.org,India\r\n"
        "No Address,,US\r\n"
        "Bad Address,not-an-address,US\r\n"
        "Raj Again,RAJ.IYER@example.org,US\r\n"
        "Already,already@example.org,US\r\n"
        f"Long Cohort,long@example.org,{'x' * 65}\r\n"
        "Too,many,fields,here\r\n"
        "\r\n"
        '"Mei, Lin",mei.lin@example.org,\r\n'
    ).encode()

    result = services.invitations_import_csv(
        reader_study=study, invited_by=coordinator, data=data, base_url=BASE
    )

    assert result.error == ""
    invited = {(s.invitation.name, s.invitation.email, s.invitation.cohort) for s in result.sent}
    assert invited == {
        ("Raj Iyer", "raj.iyer@example.org", "India"),
        ("Mei, Lin", "mei.lin@example.org", ""),
    }
    reasons = {p.row: p.reason for p in result.problems}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "e-mail address" in reasons[3]
    assert "'not-an-address' is not an e-mail address" in reasons[4]
    assert "the same address as row 2" in reasons[5]
    assert "already invited on" in reasons[6]
    assert "cohort is longer than 64" in reasons[7]
    assert "has 4 fields where the header has 3" in reasons[8]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "The file is empty."),
        (b"name,cohort\nJane,US\n", "needs an email column"),
        (b"email\n\x00\x01", "binary data"),
        (b"email\n" + b"p@example.org\n" * 501, "more than 500 rows"),
        (b"email\n" + b"x" * (1024 * 1024), "larger than 1024 KB"),
    ],
    ids=["empty", "no-email-column", "binary", "too-many-rows", "too-large"],
)
def test_a_csv_that_cannot_be_read_is_refused_whole(study, coordinator, data, error) -> None:
    result = services.invitations_import_csv(
        reader_study=study, invited_by=coordinator, data=data, base_url=BASE
    )
    assert error in result.error
    assert not result.sent
    assert not Invitation.objects.exists()


def test_rows_beyond_the_hourly_limit_are_named_not_sent(study, coordinator, settings) -> None:
    settings.RADREVIEW_INVITATIONS_PER_HOUR = 1
    data = b"email\na@example.org\nb@example.org\n"

    result = services.invitations_import_csv(
        reader_study=study, invited_by=coordinator, data=data, base_url=BASE
    )

    assert [s.invitation.email for s in result.sent] == ["a@example.org"]
    assert [(p.row, "not sent" in p.reason) for p in result.problems] == [(3, True)]


# --- pages ---------------------------------------------------------------------------------


def test_carol_invites_on_the_page_and_the_reader_lands_on_the_worklist_logged_in(
    study, coordinator
) -> None:
    carol = Client()
    carol.force_login(coordinator)
    detail = carol.get(f"/studies/{study.public_id}/").content.decode()
    assert f'href="/studies/{study.public_id}/invitations/"' in detail

    page = carol.post(
        f"/studies/{study.public_id}/invitations/",
        {"name": "Jane Roe", "email": "jane.roe@example.org", "cohort": "US"},
    )

    assert page.status_code == 200
    (link,) = [s.link for s in page.context["sent"]]
    assert link in page.content.decode()  # shown once, to copy: no mail server here
    jane = Client()
    form = jane.get(urlsplit(link).path)
    assert form.status_code == 200
    assert 'value="jane.roe"' in form.content.decode()  # a username is suggested
    differ = jane.post(
        urlsplit(link).path,
        {"username": "jane.roe", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD + "x"},
    )
    assert differ.status_code == 400
    assert "The two passwords differ." in differ.content.decode()

    landed = jane.post(
        urlsplit(link).path,
        {"username": "jane.roe", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
        follow=True,
    )

    assert landed.redirect_chain[-1][0] == "/studies/reading/"
    text = html.unescape(landed.content.decode())
    assert 'You are on the panel of "CXR pilot" (cohort US)' in text
    # The study is still a draft: the worklist says why it is empty, without contradicting.
    assert "a study you have joined appears here once its coordinator opens it" in text
    assert jane.get("/api/v1/me").json() == {"username": "jane.roe", "roles": ["reader"]}


def test_used_expired_revoked_and_unknown_links_answer_a_page_that_says_why(
    study, coordinator
) -> None:
    used = _invite(study, coordinator, email="used@example.org")
    services.invitation_accept(
        token=_token(used.link), user=None, username="u1", password=GOOD_PASSWORD
    )
    expired = _invite(study, coordinator, email="expired@example.org")
    Invitation.objects.filter(pk=expired.invitation.pk).update(expires_at=timezone.now())
    revoked = _invite(study, coordinator, email="revoked@example.org")
    services.invitation_revoke(invitation=revoked.invitation, user=coordinator)

    cases = [
        (used.link, 410, "This invitation was already used"),
        (expired.link, 410, "This invitation has expired"),
        (revoked.link, 410, "This invitation was withdrawn"),
        (f"{BASE}accounts/invitation/{'A' * 43}/", 404, "This link is not valid"),
    ]
    for link, status, heading in cases:
        response = Client().get(urlsplit(link).path)
        assert response.status_code == status, link
        body = html.unescape(response.content.decode())
        assert heading in body
        assert 'class="brand"' in body  # the site's layout, not a bare error
        posted = Client().post(
            urlsplit(link).path,
            {"username": "x1", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
        )
        assert posted.status_code == status
    assert not get_user_model().objects.filter(username="x1").exists()


def test_an_existing_user_logs_in_from_the_link_and_accepts(study, coordinator, outsider) -> None:
    outsider.email = "eve@example.org"
    outsider.save(update_fields=["email"])
    path = urlsplit(_invite(study, coordinator, email="eve@example.org").link).path
    anonymous = html.unescape(Client().get(path).content.decode())
    assert "log in with it to accept" in anonymous
    assert f"/accounts/login/?next={path.replace('/', '%2F')}" in anonymous

    eve = Client()
    eve.force_login(outsider)
    assert "Accept and join" in eve.get(path).content.decode()
    landed = eve.post(path, follow=True)

    assert landed.redirect_chain[-1][0] == "/studies/reading/"
    assert StudyReader.objects.filter(reader_study=study, reader=outsider).exists()


def test_the_csv_page_lists_the_links_and_each_refused_row(study, coordinator) -> None:
    carol = Client()
    carol.force_login(coordinator)
    upload = SimpleUploadedFile(
        "readers.csv", b"name,email,cohort\nRaj Iyer,raj@example.org,India\nX,bad,US\n"
    )
    page = carol.post(f"/studies/{study.public_id}/invitations/import/", {"file": upload})

    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "1 invited, 1 row not invited." in text
    assert "'bad' is not an e-mail address" in text
    assert 'aria-label="Link for raj@example.org"' in text


def test_with_a_mail_server_the_links_reach_only_the_inbox(
    study, coordinator, settings, django_capture_on_commit_callbacks
) -> None:
    settings.EMAIL_HOST = "smtp.example.org"  # the test mail backend still catches the mail
    carol = Client()
    carol.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        page = carol.post(
            f"/studies/{study.public_id}/invitations/", {"email": "jane.roe@example.org"}
        )

    assert page.status_code == 200
    assert "/accounts/invitation/" not in page.content.decode()
    assert "/accounts/invitation/" in mail.outbox[0].body
    api = carol.post(
        f"/api/v1/reader-studies/{study.public_id}/invitations",
        {"email": "raj@example.org"},
        content_type="application/json",
    )
    assert api.status_code == 201
    assert api.json()["link"] is None


# --- API -----------------------------------------------------------------------------------


def test_the_api_invites_imports_lists_resends_and_revokes(
    study, coordinator, api_client_for
) -> None:
    api = api_client_for(coordinator)
    url = f"/api/v1/reader-studies/{study.public_id}/invitations"

    created = api.post(
        url, {"email": "jane.roe@example.org", "name": "Jane Roe", "cohort": "US"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["invitation"]["status"] == "pending"
    assert body["link"].startswith("http://testserver/accounts/invitation/")
    invitation_id = body["invitation"]["id"]

    twice = api.post(url, {"email": "jane.roe@example.org"}, format="json")
    assert (twice.status_code, twice.json()["code"]) == (400, "already_invited")

    imported = api.post(
        url + "/import",
        {"file": SimpleUploadedFile("r.csv", b"email,cohort\nraj@example.org,India\nnope,US\n")},
        format="multipart",
    )
    assert imported.status_code == 200
    assert [i["invitation"]["email"] for i in imported.json()["invited"]] == ["raj@example.org"]
    assert imported.json()["problems"][0]["row"] == 3
    refused = api.post(
        url + "/import", {"file": SimpleUploadedFile("r.csv", b"name\nx\n")}, format="multipart"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "bad_csv")

    listed = api.get(url)
    assert {i["email"] for i in listed.json()} == {"jane.roe@example.org", "raj@example.org"}
    assert listed["Cache-Control"] == "no-store"

    resent = api.post(f"{url}/{invitation_id}/resend")
    assert resent.status_code == 200
    assert resent.json()["invitation"]["send_count"] == 2
    revoked = api.post(f"{url}/{invitation_id}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"


def test_the_api_answers_429_past_the_hourly_limit(
    study, coordinator, api_client_for, settings
) -> None:
    settings.RADREVIEW_INVITATIONS_PER_HOUR = 1
    api = api_client_for(coordinator)
    url = f"/api/v1/reader-studies/{study.public_id}/invitations"
    assert api.post(url, {"email": "a@example.org"}, format="json").status_code == 201
    limited = api.post(url, {"email": "b@example.org"}, format="json")
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
