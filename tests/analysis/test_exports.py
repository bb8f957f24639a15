"""Exports: tidy ratings and error spans as CSV and Parquet, streamed, audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import AbstractUser
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.analysis.exports import export_response
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.selectors import RATING_COLUMNS, SPAN_COLUMNS
from reviewapp.reports.models import Report
from reviewapp.reports.services import report_source_external_save
from reviewapp.studies.models import Assignment, Rating
from tests.analysis.conftest import FINDINGS, RatedStudy

pytestmark = pytest.mark.django_db


def _download(client: Client | APIClient, url: str) -> tuple[StreamingHttpResponse, bytes]:
    response = client.get(url)
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    assert response.streaming
    return response, b"".join(response.streaming_content)  # type: ignore[attr-defined]


def _web_client(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(rated: RatedStudy, dataset: str, fmt: str) -> str:
    return reverse(
        "analysis:export",
        kwargs={"public_id": rated.study.public_id, "dataset": dataset, "fmt": fmt},
    )


def test_ratings_csv_has_one_row_per_reader_case_question_with_the_unblinding_key(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    # The AI reports' model, filled in as for reports stored before sources existed.
    model = report_source_external_save(name="CXR-Gen", version="1.0")
    Report.objects.filter(kind="ai", source__isnull=True).update(source=model)
    response, body = _download(_web_client(analyst), _url(pairwise, "ratings", "csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    text = body.decode("utf-8")
    assert "\r\n" in text  # RFC 4180 line breaks
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        *RATING_COLUMNS,
        "outcome_equivalent_or_better",
        "outcome_same_or_superior_management",
    ]
    assert len(rows) == 24 * 3  # one question
    ratings = Rating.objects.select_related("assignment__case", "assignment__reader")
    by_key = {
        (str(r.assignment.case.public_id), r.assignment.reader.get_username()): r for r in ratings
    }
    pseudonyms = {"alice": "R01", "bob": "R02", "frank": "R03"}
    for username, pseudonym in pseudonyms.items():
        mine = [row for row in rows if row["reader"] == pseudonym]
        assert len(mine) == 24
        for row in mine:
            rating = by_key[(row["case"], username)]
            assignment = rating.assignment
            assert row["answer_value"] == pairwise.answers[(row["case"], username)]
            assert row["source_a"] == assignment.report_a.kind
            assert row["source_b"] == assignment.report_b.kind
            for side, report in (("a", assignment.report_a), ("b", assignment.report_b)):
                assert row[f"source_{side}_id"] == str(report.source.public_id)
                assert row[f"source_{side}_name"] == report.source.label
            names = {row["source_a_name"], row["source_b_name"]}
            assert names == {"Original (radiologist)", "CXR-Gen 1.0"}
            assert row["candidate_side"] == assignment.candidate_side
            assert row["candidate_source"] == "ai"
            assert row["stratum"] == assignment.case.stratum
            assert row["revision_count"] == str(rating.version - 1)
            assert float(row["duration_seconds"]) == 65.0
            assert row["submitted_at"].endswith("Z")
            expected = row["answer_value"] in {"similar", "ai_better", "ai_much_better"}
            assert row["outcome_equivalent_or_better"] == str(int(expected))
    assert {row["cohort"] for row in rows} == {"US", "India"}
    # Pseudonymous: no username leaves in an export.
    for name in ("alice", "bob", "frank"):
        assert name not in text


def test_ratings_parquet_holds_the_same_rows_and_typed_columns(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    client = _web_client(analyst)
    _, csv_body = _download(client, _url(pairwise, "ratings", "csv"))
    response, body = _download(client, _url(pairwise, "ratings", "parquet"))
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body))
    assert str(table.schema.field("submitted_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("outcome_equivalent_or_better").type) == "int8"
    from_parquet = table.to_pandas()
    from_csv = pd.read_csv(io.BytesIO(csv_body), keep_default_na=False)
    assert len(from_parquet) == len(from_csv) == 72
    key = ["case", "reader"]
    left = from_parquet.sort_values(key).reset_index(drop=True)
    right = from_csv.sort_values(key).reset_index(drop=True)
    for column in ("answer_value", "source_a", "candidate_side", "stratum", "rating"):
        assert list(left[column]) == list(right[column])
    assert list(left["outcome_equivalent_or_better"]) == list(right["outcome_equivalent_or_better"])


def test_spans_csv_quotes_the_marked_text_with_its_sentence_and_report_source(
    error_study: RatedStudy, admin_user: AbstractUser
) -> None:
    _, body = _download(_web_client(admin_user), _url(error_study, "spans", "csv"))
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert list(rows[0]) == SPAN_COLUMNS
    significant = [r for r in rows if r["is_significant"] == "true"]
    assert significant
    for row in significant:
        assert row["quoted_text"] == "small left effusion"
        assert row["sentence_index"] == "1"
        assert row["category"] == "false_finding"
        assert row["category_label"] == "Finding present that is not"
        assert row["replacement_text"] == "no effusion"
        start, end = int(row["start"]), int(row["end"])
        assert FINDINGS[start:end] == row["quoted_text"]
    minor = [r for r in rows if r["is_significant"] == "false"]
    assert {r["quoted_text"] for r in minor} == {"Heart size"}
    assert {r["sentence_index"] for r in minor} == {"0"}
    # AI reports of 12 studies: errors where n % 3 != 0, less n=5 (image quality) -> 7;
    # originals where n % 4 == 0 -> 3; two readers, two spans each.
    by_source = pd.Series([r["report_source"] for r in rows]).value_counts()
    assert by_source["ai"] == 7 * 2 * 2
    assert by_source["original"] == 3 * 2 * 2


def test_error_rows_carry_the_significant_error_outcome_only_where_the_question_applied(
    error_study: RatedStudy, analyst: AbstractUser
) -> None:
    _, body = _download(_web_client(analyst), _url(error_study, "ratings", "csv"))
    frame = pd.read_csv(io.BytesIO(body), keep_default_na=False)
    errors = frame[frame["question"] == "errors"]
    # 24 cases x 2 readers, less the 4 ratings of study 5 whose image quality was "no".
    assert len(errors) == 44
    assert set(errors["source"]) == {"ai", "original"}
    significant = pd.to_numeric(errors["outcome_significant_error"]).groupby(errors["source"]).sum()
    assert significant["ai"] == 7 * 2
    assert significant["original"] == 3 * 2
    quality = frame[frame["question"] == "image_quality"]
    assert set(quality["outcome_significant_error"]) == {""}
    assert set(quality["source"]) == {"ai", "original"}


def test_every_export_is_audited_with_its_row_count_per_interface(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
    tmp_path: Path,
) -> None:
    _download(_web_client(analyst), _url(pairwise, "ratings", "csv"))
    _download(
        api_client_for(analyst),
        reverse(
            "api-analysis-export",
            kwargs={"public_id": pairwise.study.public_id, "dataset": "spans", "fmt": "parquet"},
        ),
    )
    out = tmp_path / "ratings.csv"
    call_command(
        "export_ratings", str(pairwise.study.public_id), "--user", "dave", "--output", str(out)
    )
    audits = list(ExportAudit.objects.order_by("created_at"))
    assert [(a.interface, a.dataset, a.format) for a in audits] == [
        ("web", "ratings", "csv"),
        ("api", "spans", "parquet"),
        ("command", "ratings", "csv"),
    ]
    assert all(a.username == "dave" and a.reader_study == pairwise.study for a in audits)
    assert [a.row_count for a in audits] == [72, 0, 72]
    assert all(a.completed_at is not None for a in audits)
    assert len(pd.read_csv(out)) == 72


def test_an_export_is_audited_before_its_first_byte_and_completed_only_at_the_end(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    response = export_response(
        user=analyst, reader_study=pairwise.study, dataset="ratings", fmt="csv", interface="web"
    )
    audit = ExportAudit.objects.get()
    assert (audit.username, audit.completed_at, audit.row_count) == ("dave", None, None)
    content = iter(response)
    header = next(content)
    assert header.startswith(b"study,study_name,")
    # A client that goes away now leaves the audit open: started, never completed.
    audit.refresh_from_db()
    assert audit.completed_at is None
    rest = b"".join(content)
    assert rest.count(b"\r\n") == 72 - header.count(b"\r\n") + 1
    audit.refresh_from_db()
    assert audit.row_count == 72
    assert audit.completed_at is not None


def test_command_exports_parquet_spans_and_refuses_people_without_access(
    error_study: RatedStudy,
    analyst: AbstractUser,
    reader: AbstractUser,
    coordinator: AbstractUser,
    tmp_path: Path,
) -> None:
    out = tmp_path / "spans.parquet"
    call_command(
        "export_ratings", error_study.study.name, "--user", "dave", "--spans",
        "--format", "parquet", "--output", str(out),
    )  # fmt: skip
    assert pq.read_table(out).num_rows == (7 + 3) * 2 * 2
    with pytest.raises(CommandError, match="may not export"):
        call_command("export_ratings", error_study.study.name, "--user", "alice")
    # carol coordinates the pairwise study, not this one (grace does).
    with pytest.raises(CommandError, match="No reader study"):
        call_command("export_ratings", str(error_study.study.public_id), "--user", "carol")
    with pytest.raises(CommandError, match="No single reader study"):
        call_command("export_ratings", "no such study", "--user", "dave")
    assert ExportAudit.objects.count() == 1


def test_unknown_dataset_or_format_is_not_found(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    client = _web_client(analyst)
    assert client.get(_url(pairwise, "patients", "csv")).status_code == 404
    assert client.get(_url(pairwise, "ratings", "xlsx")).status_code == 404
    assert not ExportAudit.objects.exists()


def test_never_submitted_assignments_are_rows_with_their_status_and_no_answers(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    from reviewapp.analysis.results import analysis_results

    assert Assignment.objects.count() == 72
    Rating.objects.filter(assignment__reader__username="frank").delete()
    frank = Assignment.objects.filter(reader__username="frank").order_by("position")
    opened = [a.pk for a in frank[:10]]
    Assignment.objects.filter(pk__in=opened).update(status="in_progress")
    frank.exclude(pk__in=opened).update(status="pending", opened_at=None, first_answer_at=None)
    _, body = _download(_web_client(analyst), _url(pairwise, "ratings", "csv"))
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    assert len(frame) == 72
    assert frame["status"].value_counts().to_dict() == {
        "submitted": 48,
        "pending": 14,
        "in_progress": 10,
    }
    open_rows = frame[frame["status"] != "submitted"]
    assert set(open_rows["reader"]) == {"R03"}
    for column in ("rating", "question", "answer_value", "submitted_at", "source_a"):
        assert set(open_rows[column]) == {""}
    assert set(open_rows["outcome_equivalent_or_better"]) == {""}
    # Reading order: each row carries the reader's list position of the case.
    positions = {
        (str(a.case.public_id), a.reader.get_username()): a.position
        for a in Assignment.objects.select_related("case", "reader")
    }
    names = {"R01": "alice", "R02": "bob", "R03": "frank"}
    for row in frame.itertuples():
        assert int(row.reading_position) == positions[(row.case, names[row.reader])]
    # Analysis counts what was submitted, never the open assignments.
    assert analysis_results(reader_study=pairwise.study, n_resamples=100)["n_ratings"] == 48


def test_csv_may_start_with_a_bom_for_excel_and_parquet_never_does(
    pairwise: RatedStudy, analyst: AbstractUser, api_client_for, tmp_path: Path
) -> None:
    client = _web_client(analyst)
    _, plain = _download(client, _url(pairwise, "ratings", "csv"))
    _, marked = _download(client, _url(pairwise, "ratings", "csv") + "?bom=1")
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert marked == b"\xef\xbb\xbf" + plain
    assert pd.read_csv(io.BytesIO(marked), encoding="utf-8-sig").columns[0] == "study"
    api_url = reverse(
        "api-analysis-export",
        kwargs={"public_id": pairwise.study.public_id, "dataset": "spans", "fmt": "csv"},
    )
    _, api_body = _download(api_client_for(analyst), api_url + "?bom=true")
    assert api_body.startswith(b"\xef\xbb\xbfstudy,")
    _, parquet = _download(client, _url(pairwise, "ratings", "parquet") + "?bom=1")
    assert pq.read_table(io.BytesIO(parquet)).num_rows == 72
    out = tmp_path / "ratings.csv"
    call_command(
        "export_ratings", str(pairwise.study.public_id), "--user", "dave", "--bom",
        "--output", str(out),
    )  # fmt: skip
    assert out.read_bytes() == marked


def test_sidecar_states_the_rules_ci_methods_counts_and_conventions_everywhere(
    pairwise: RatedStudy, analyst: AbstractUser, api_client_for, tmp_path: Path
) -> None:
    import json

    from reviewapp.analysis.exports import HASH_DEFINITION
    from reviewapp.analysis.results import analysis_results
    from reviewapp.analysis.selectors import FREE_TEXT_COLUMNS
    from reviewapp.analysis.stats import INTERVAL_METHODS
    from reviewapp.studies.models import rendering_sha256

    Rating.objects.filter(assignment__reader__username="frank").delete()
    Assignment.objects.filter(reader__username="frank").update(status="pending", opened_at=None)
    client = _web_client(analyst)
    response, body = _download(
        client, _url(pairwise, "sidecar", "json") + "?rule=all&resamples=300&seed=7"
    )
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "private, no-store"
    sidecar = json.loads(body)
    study = pairwise.study
    assert sidecar["study"] == {"id": str(study.public_id), "name": study.name}
    assert sidecar["protocol"] == {"key": study.protocol_key, "version": study.protocol_version}
    assert sidecar["generated_at"].endswith("Z")
    assert sidecar["assignments"] == {"pending": 24, "in_progress": 0, "submitted": 48}
    assert {k: v["rows"] for k, v in sidecar["tables"].items()} == {
        "ratings": 72,
        "spans": 0,
        "reports": len(
            {r for c in study.cases.all() for r in (c.first_rendering_id, c.second_rendering_id)}
            - {None}
        ),
    }
    types = {c["name"]: c["type"] for c in sidecar["tables"]["ratings"]["columns"]}
    assert types["submitted_at"] == "timestamp[us, tz=UTC]"
    assert types["reading_position"] == "int64"
    expected = analysis_results(reader_study=study, n_resamples=300, seed=7, rule="all")
    assert sidecar["analysis"]["rules"] == expected["rules"]
    assert sidecar["analysis"]["rules"]["case_rule"] == "all"
    assert sidecar["analysis"]["rules"]["interval_methods"] == dict(INTERVAL_METHODS)
    assert sidecar["analysis"]["bootstrap"] == {"n_resamples": 300, "seed": 7, "level": 0.95}
    assert sidecar["analysis"]["n_ratings"] == 48
    neutralised = sidecar["csv"]["formula_neutralisation"]
    assert neutralised["columns"] == sorted(FREE_TEXT_COLUMNS)
    assert neutralised["triggers"] == ["=", "+", "-", "@", "\t", "\r"]
    assert sidecar["report_hash"]["definition"] == HASH_DEFINITION
    # The stated definition is the one the hashes are made with.
    import hashlib

    text = "FINDINGS\n" + "Heart." + "\n\nIMPRESSION\n" + "Fine."
    assert rendering_sha256(findings="Heart.", impression="Fine.") == (
        hashlib.sha256(text.encode("utf-8")).hexdigest()
    )
    assert '"FINDINGS\\n" + findings + "\\n\\nIMPRESSION\\n" + impression' in HASH_DEFINITION
    assert sidecar["answer_schema"]["title"] == "Stored answers of one rating"

    api = api_client_for(analyst)
    _, api_body = _download(
        api,
        reverse(
            "api-analysis-export",
            kwargs={"public_id": study.public_id, "dataset": "sidecar", "fmt": "json"},
        ),
    )
    assert json.loads(api_body)["analysis"]["bootstrap"]["n_resamples"] == 2000
    out = tmp_path / "sidecar.json"
    call_command(
        "export_ratings", str(study.public_id), "--user", "dave", "--dataset", "sidecar",
        "--rule", "half", "--output", str(out),
    )  # fmt: skip
    assert json.loads(out.read_text())["analysis"]["rules"]["case_rule"] == "half"
    audits = list(ExportAudit.objects.order_by("created_at").values_list("interface", "dataset"))
    assert audits == [("web", "sidecar"), ("api", "sidecar"), ("command", "sidecar")]
    page = client.get(reverse("analysis:study", args=[study.public_id]) + "?rule=all")
    assert "/export/sidecar.json?rule=all" in page.content.decode()
    assert 'name="bom"' in page.content.decode()
    for wrong in (("sidecar", "csv"), ("ratings", "json")):
        assert client.get(_url(pairwise, *wrong)).status_code == 404


def test_stored_answers_match_the_documented_schema(
    pairwise: RatedStudy, error_study: RatedStudy
) -> None:
    import jsonschema

    from reviewapp.analysis.answers import ANSWER_SCHEMA

    validator = jsonschema.Draft202012Validator(ANSWER_SCHEMA)
    stored = list(Rating.objects.values_list("answers", flat=True))
    assert stored
    for answers in stored:
        assert not list(validator.iter_errors(answers)), answers


# --- what readers saw, provably; and files that are safe to open -----------------------------

# Stored texts whose rendering differs from them: a heading, an ALL-CAPS house style and a
# signature line the renderer removes, so offsets into the rendered text do not fit the stored.
SHOUTED = (
    "FINDINGS: HEART SIZE IS NORMAL. THERE IS A SMALL LEFT EFFUSION.\n"
    "Electronically signed by Dr Ng"
)
LISTED = "- Small left effusion.\n- No pneumothorax."
# A candidate whose rendered text still opens with a spreadsheet formula character: the
# renderer turns list bullets into prose, but keeps what could be clinical text.
FORMULA_LIKE = "=SUM(A1) small left effusion.\n- No pneumothorax."


def _opened_study(
    coordinator: AbstractUser,
    readers: list[AbstractUser],
    *,
    protocol_key: str,
    name: str = "CXR pilot",
    cohort: str = "US",
    candidate_findings: str = LISTED,
    **cases: object,
):
    import uuid as _uuid

    from reviewapp.imaging.models import Study
    from reviewapp.reports.models import Report
    from reviewapp.studies import services

    study = services.reader_study_create(user=coordinator, name=name, protocol_key=protocol_key)
    imaging = []
    for i in range(2):
        one = Study.objects.create(
            study_instance_uid=f"2.25.{_uuid.uuid4().int}",
            patient_pseudonym=f"H{i:03d}",
            modalities="CR",
            stratum="abnormal",
        )
        Report.objects.create(
            study=one, kind="original", findings=SHOUTED, impression="SMALL LEFT EFFUSION."
        )
        Report.objects.create(
            study=one, kind="ai", findings=candidate_findings, impression="Effusion."
        )
        imaging.append(one)
    services.cases_add(
        reader_study=study,
        imaging_studies=imaging,
        candidate_reports=Report.objects.filter(kind="ai"),
        **cases,  # type: ignore[arg-type]
    )
    services.panel_set(reader_study=study, readers=[(r, cohort) for r in readers])
    services.assignments_generate(reader_study=study, seed=7)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    return study


def _study_url(study, dataset: str, fmt: str) -> str:
    return reverse(
        "analysis:export", kwargs={"public_id": study.public_id, "dataset": dataset, "fmt": fmt}
    )


def _csv_frame(client: Client, study, dataset: str) -> pd.DataFrame:
    _, body = _download(client, _study_url(study, dataset, "csv"))
    return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)


def test_export_hashes_equal_the_sha256_of_the_text_the_reader_page_shows(
    coordinator: AbstractUser, reader: AbstractUser, analyst: AbstractUser
) -> None:
    import hashlib
    import uuid as _uuid

    from reviewapp.reports.services import reports_import_csv
    from reviewapp.studies import selectors, services

    study = _opened_study(coordinator, [reader], protocol_key="medgemini_cxr")
    shown: dict[str, dict[str, dict[str, str]]] = {}
    for assignment in Assignment.objects.filter(reader_study=study):
        view = selectors.case_view_for_reader(
            assignment=selectors.assignment_get_for_reader(
                user=reader, public_id=assignment.public_id
            )
        )
        shown[str(assignment.public_id)] = {r["side"]: r for r in view["reports"]}
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"comparison": "c"},
            idempotency_key=_uuid.uuid4(),
        )
    # A corrected original arrives after the ratings: the export still proves what was rated.
    for assignment in Assignment.objects.filter(reader_study=study).select_related("case"):
        uid = assignment.case.imaging_study.study_instance_uid
        reports_import_csv(
            data=f"StudyInstanceUID,findings,impression\n{uid},Corrected.,None.\n".encode(),
            source_name="corrected.csv",
        )

    def sha(section: dict[str, str]) -> str:
        text = "FINDINGS\n" + section["findings"] + "\n\nIMPRESSION\n" + section["impression"]
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    client = _web_client(analyst)
    ratings = _csv_frame(client, study, "ratings")
    reports = _csv_frame(client, study, "reports").set_index("report_version_id")
    assert len(ratings) == 2
    by_rating = {
        str(r.public_id): str(r.assignment.public_id)
        for r in Rating.objects.select_related("assignment")
    }
    for row in ratings.itertuples():
        sides = shown[by_rating[row.rating]]
        assert row.report_a_sha256 == sha(sides["A"])
        assert row.report_b_sha256 == sha(sides["B"])
        assert {row.report_a_version, row.report_b_version} == {"1"}
        # The reports export holds the very texts, so the hash can be recomputed from it.
        for side, version_id in (("A", row.report_a_version_id), ("B", row.report_b_version_id)):
            pinned = reports.loc[version_id]
            assert pinned.rendered_findings.lstrip("'") == sides[side]["findings"]
            assert pinned.rendered_impression == sides[side]["impression"]
            assert pinned.sha256 == sha(sides[side])
    assert "Corrected." not in set(reports["rendered_findings"])
    assert "Heart size is normal. There is a small left effusion." in set(
        reports["rendered_findings"]
    )


def test_spans_export_quotes_the_passage_marked_in_the_rendered_text(
    coordinator: AbstractUser, reader: AbstractUser, analyst: AbstractUser
) -> None:
    import uuid as _uuid

    from reviewapp.studies import selectors, services

    study = _opened_study(
        coordinator, [reader], protocol_key="error_correction", rate_source="original"
    )
    for assignment in Assignment.objects.filter(reader_study=study):
        view = selectors.case_view_for_reader(
            assignment=selectors.assignment_get_for_reader(
                user=reader, public_id=assignment.public_id
            )
        )
        findings = view["reports"][0]["findings"]
        assert findings == "Heart size is normal. There is a small left effusion."
        start = findings.index("small left effusion")
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"image_quality": "a"},
            spans=[
                {
                    "side": "",
                    "section": "findings",
                    "start": start,
                    "end": start + len("small left effusion"),
                    "category": "false_finding",
                    "significant": True,
                    "replacement": "no effusion",
                }
            ],
            idempotency_key=_uuid.uuid4(),
        )
    spans = _csv_frame(_web_client(analyst), study, "spans")
    assert len(spans) == 2
    assert set(spans["quoted_text"]) == {"small left effusion"}
    assert set(spans["sentence_index"]) == {"1"}
    assert set(spans["report_source"]) == {"original"}
    assert all(len(value) == 64 for value in spans["report_sha256"])


def test_csv_neutralises_formulas_in_free_text_cells_and_parquet_keeps_them_raw(
    coordinator: AbstractUser, reader: AbstractUser, analyst: AbstractUser
) -> None:
    import uuid as _uuid

    from reviewapp.analysis.selectors import csv_cell_neutralise
    from reviewapp.studies import services

    name = '=HYPERLINK("http://evil.example","open")'
    study = _opened_study(
        coordinator,
        [reader],
        protocol_key="error_correction",
        name=name,
        cohort="@SUM(1)",
        candidate_findings=FORMULA_LIKE,
        rate_source="candidate",
    )
    for assignment in Assignment.objects.filter(reader_study=study):
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"image_quality": "a"},
            spans=[
                {
                    "side": "",
                    "section": "findings",
                    "start": 0,
                    "end": len("=SUM(A1) small left effusion."),
                    "category": "false_finding",
                    "significant": True,
                    "replacement": "+1 more effusion",
                }
            ],
            idempotency_key=_uuid.uuid4(),
        )
    client = _web_client(analyst)
    spans = _csv_frame(client, study, "spans")
    assert set(spans["study_name"]) == {"'" + name}
    assert set(spans["cohort"]) == {"'@SUM(1)"}
    assert set(spans["quoted_text"]) == {"'=SUM(A1) small left effusion."}
    assert set(spans["replacement_text"]) == {"'+1 more effusion"}
    assert set(spans["start"]) == {"0"}  # numbers are never touched
    reports = _csv_frame(client, study, "reports")
    assert set(reports["rendered_findings"]) == {"'=SUM(A1) small left effusion. No pneumothorax."}
    ratings = _csv_frame(client, study, "ratings")
    assert set(ratings["study_name"]) == {"'" + name}
    assert set(ratings["cohort"]) == {"'@SUM(1)"}
    for fmt_dataset, column, raw in (
        ("spans", "replacement_text", "+1 more effusion"),
        ("reports", "rendered_findings", "=SUM(A1) small left effusion. No pneumothorax."),
        ("ratings", "study_name", name),
    ):
        _, body = _download(client, _study_url(study, fmt_dataset, "parquet"))
        table = pq.read_table(io.BytesIO(body))
        assert set(table.column(column).to_pylist()) == {raw}
    assert csv_cell_neutralise("\tx") == "'\tx"
    assert csv_cell_neutralise("\rx") == "'\rx"
    assert csv_cell_neutralise("Effusion = small") == "Effusion = small"


def test_typed_rows_are_the_same_whatever_the_block_size(error_study: RatedStudy) -> None:
    import pyarrow as pa

    from reviewapp.analysis import rows
    from reviewapp.analysis.selectors import dataset_query

    # Blocks end on whole records: a tiny block gives many batches and the very same table.
    for dataset in ("ratings", "spans"):
        tidy = dataset_query(reader_study=error_study.study, dataset=dataset)
        whole = list(rows.record_batches(tidy))
        split = list(rows.record_batches(tidy, block_bytes=300))
        assert len(split) > len(whole) >= 1
        assert pa.Table.from_batches(split).equals(pa.Table.from_batches(whole))
    ratings = pa.Table.from_batches(
        rows.record_batches(dataset_query(reader_study=error_study.study, dataset="ratings"))
    )
    assert str(ratings.schema.field("submitted_at").type) == "timestamp[us, tz=UTC]"
    assert ratings.column("rating").null_count == 0
    # A text that is empty stays empty; only a missing value is null.
    assert "" in ratings.column("answer_code").to_pylist()
