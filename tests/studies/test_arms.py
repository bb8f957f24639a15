"""Study designs: one model against the original, two models against each other, several
arms in one study; and reading lists that read every arm k times, balance the sides within
each reader for every pair type, and keep two reads of one imaging study apart."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from django.core.exceptions import ValidationError

from reviewapp.core.errors import ApplicationError
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import report_source_original
from reviewapp.studies import reading_lists, services
from reviewapp.studies.models import Assignment, Case, ReaderStudy
from tests.studies.conftest import make_imaging_study

Design = ReaderStudy.Design


def _report(study: Study, source: ReportSource, text: str) -> Report:
    kind = Report.Kind.ORIGINAL if source.kind == ReportSource.Kind.ORIGINAL else Report.Kind.AI
    return Report.objects.create(
        study=study,
        kind=kind,
        source=source,
        findings=f"FINDINGS:\n{text}\nThe cardiomediastinal silhouette is normal.",
        impression="1. No acute cardiopulmonary process.\n\nElectronically signed by Dr Example",
    )


@pytest.fixture
def sources(db: None) -> dict[str, ReportSource]:
    return {
        "original": report_source_original(),
        "a": ReportSource.objects.create(kind="external", name="model-a", version="1"),
        "b": ReportSource.objects.create(kind="external", name="model-b", version="2"),
    }


@pytest.fixture
def archive(sources: dict[str, ReportSource]) -> list[Study]:
    """Eight studies, each with the original and both models' reports; a ninth lacks model B."""
    studies = []
    for index in range(9):
        study = make_imaging_study(index, stratum="normal" if index % 2 else "abnormal")
        for key, source in sources.items():
            if index == 8 and key == "b":
                continue
            _report(study, source, f"Lungs are clear {key} {index}.")
        studies.append(study)
    return studies


def _study(coordinator, protocol_key: str = "medgemini_cxr", **kwargs) -> ReaderStudy:
    return services.reader_study_create(
        user=coordinator, name="Three arms", protocol_key=protocol_key, **kwargs
    )


def test_each_model_against_the_original_makes_one_case_per_study_and_arm(
    coordinator, sources, archive
):
    study = _study(coordinator)
    arms = services.arms_set(
        reader_study=study, design=Design.VS_REFERENCE, sources=[sources["a"], sources["b"]]
    )
    assert [(a.first_source, a.second_source) for a in arms] == [
        (sources["original"], sources["a"]),
        (sources["original"], sources["b"]),
    ]
    result = services.cases_add(reader_study=study, imaging_studies=archive)
    # The ninth study lacks model B's report: skipped whole, so both arms read the same studies.
    assert len(result.added) == 16
    assert result.problems == [f"Study {archive[8].label}: no report from model-b 2."]
    for case in Case.objects.filter(reader_study=study).select_related(
        "arm", "first_report", "second_report"
    ):
        assert case.first_report.source == case.arm.first_source
        assert case.second_report.source == case.arm.second_source


def test_two_models_against_each_other_and_all_pairs(coordinator, sources, archive):
    study = _study(coordinator)
    arms = services.arms_set(
        reader_study=study,
        design=Design.ALL_PAIRS,
        sources=[sources["a"], sources["b"], sources["original"]],
    )
    assert [a.label for a in arms] == [
        "model-b 2 vs model-a 1",
        "Original (radiologist) vs model-a 1",
        "Original (radiologist) vs model-b 2",
    ]
    chosen = _study(coordinator)
    arms = services.arms_set(
        reader_study=chosen, design=Design.CHOSEN_PAIRS, pairs=[(sources["a"], sources["b"])]
    )
    assert len(arms) == 1
    result = services.cases_add(reader_study=chosen, imaging_studies=archive[:8])
    assert len(result.added) == 8
    assert not result.problems


def test_single_report_protocols_rate_every_chosen_source(coordinator, sources, archive):
    study = _study(coordinator, protocol_key="radpeer")
    services.arms_set(reader_study=study, design=Design.EACH_SOURCE, sources=list(sources.values()))
    result = services.cases_add(reader_study=study, imaging_studies=archive[:4])
    assert len(result.added) == 12
    assert all(c.second_report is None for c in result.added)


def test_designs_that_do_not_fit_the_protocol_are_refused_in_words(coordinator, sources):
    pairwise = _study(coordinator)
    with pytest.raises(ValidationError, match="single-report protocol"):
        services.arms_set(reader_study=pairwise, design=Design.EACH_SOURCE, sources=[sources["a"]])
    with pytest.raises(ValidationError, match="at least one model"):
        services.arms_set(
            reader_study=pairwise, design=Design.VS_REFERENCE, sources=[sources["original"]]
        )
    with pytest.raises(ValidationError, match="paired twice"):
        services.arms_set(
            reader_study=pairwise,
            design=Design.CHOSEN_PAIRS,
            pairs=[(sources["a"], sources["b"]), (sources["b"], sources["a"])],
        )
    guessing = _study(coordinator, ask_ai_guess=True)
    with pytest.raises(ValidationError, match="original report in every pair"):
        services.arms_set(
            reader_study=guessing, design=Design.ALL_PAIRS, sources=[sources["a"], sources["b"]]
        )


def test_the_design_is_fixed_once_cases_exist(coordinator, sources, archive):
    study = _study(coordinator)
    services.arms_set(reader_study=study, design=Design.VS_REFERENCE, sources=[sources["a"]])
    services.cases_add(reader_study=study, imaging_studies=archive[:2])
    with pytest.raises(ApplicationError) as error:
        services.arms_set(reader_study=study, design=Design.ALL_PAIRS, sources=[sources["a"]])
    assert error.value.code == "design_after_cases"


def _three_arm_study(coordinator, readers, archive, sources, *, k, gap=1, seed=99):
    study = _study(coordinator)
    services.arms_set(
        reader_study=study,
        design=Design.CHOSEN_PAIRS,
        pairs=[
            (sources["original"], sources["a"]),
            (sources["original"], sources["b"]),
            (sources["a"], sources["b"]),
        ],
    )
    services.reader_study_reading_options_set(
        reader_study=study, same_study_gap=gap, show_clinical_context=True
    )
    services.cases_add(reader_study=study, imaging_studies=archive[:8])
    services.panel_set(reader_study=study, readers=[(r, "") for r in readers])
    services.assignments_generate(reader_study=study, reads_per_case=k, seed=seed)
    return study


def test_k_readers_per_case_per_arm_with_balanced_loads_sides_and_gaps(
    coordinator, make_user, sources, archive
):
    from reviewapp.core.roles import Role

    readers = [make_user(name, Role.READER) for name in ("ann", "ben", "cat", "dan")]
    study = _three_arm_study(coordinator, readers, archive, sources, k=2, gap=2)
    reads = list(
        Assignment.objects.filter(reader_study=study)
        .select_related("case")
        .order_by("reader_id", "position")
    )
    assert Counter(a.case_id for a in reads) == {c.pk: 2 for c in study.cases.all()}
    per_reader_arm = Counter((a.reader_id, a.case.arm_id) for a in reads)
    for arm in study.arms.all():
        loads = [per_reader_arm[(r.pk, arm.pk)] for r in readers]
        assert max(loads) - min(loads) <= 1
    totals = Counter(a.reader_id for a in reads)
    assert max(totals.values()) - min(totals.values()) <= 1
    sides = Counter((a.reader_id, a.case.arm_id, a.candidate_side) for a in reads)
    for reader in readers:
        for arm in study.arms.all():
            assert abs(sides[(reader.pk, arm.pk, "A")] - sides[(reader.pk, arm.pk, "B")]) <= 1
    for reader in readers:
        mine = [a for a in reads if a.reader_id == reader.pk]
        last: dict[int, int] = {}
        for a in mine:
            imaging = a.case.imaging_study_id
            if imaging in last:
                assert a.position - last[imaging] > 2, "two reads of one study too close"
            last[imaging] = a.position
    # The arms interleave: no reader reads one arm as a block.
    for reader in readers:
        arms_in_order = [a.case.arm_id for a in reads if a.reader_id == reader.pk]
        changes = sum(1 for x, y in itertools.pairwise(arms_in_order) if x != y)
        assert changes > 2


def test_the_same_seed_draws_the_same_lists(coordinator, reader, second_reader, sources, archive):
    first = _three_arm_study(coordinator, [reader, second_reader], archive, sources, k=1)
    again = _three_arm_study(coordinator, [reader, second_reader], archive, sources, k=1)

    def lists(study):
        return [
            (
                a.reader_id,
                a.position,
                a.case.imaging_study_id,
                a.case.arm.position,
                a.candidate_side,
            )
            for a in Assignment.objects.filter(reader_study=study)
            .select_related("case__arm")
            .order_by("reader_id", "position")
        ]

    assert lists(first) == lists(again)
    assert first.assignment_seed == 99


def test_a_gap_no_list_can_keep_is_refused_in_words(coordinator, reader, sources, archive):
    study = _study(coordinator)
    services.arms_set(
        reader_study=study,
        design=Design.ALL_PAIRS,
        sources=[sources["original"], sources["a"], sources["b"]],
    )
    services.reader_study_reading_options_set(
        reader_study=study, same_study_gap=3, show_clinical_context=True
    )
    services.cases_add(reader_study=study, imaging_studies=archive[:2])
    services.panel_set(reader_study=study, readers=[(reader, "")])
    with pytest.raises(ValidationError, match="lower the gap"):
        services.assignments_generate(reader_study=study, seed=1)
    assert not study.assignments.exists()


def test_spread_keeps_the_gap_in_tight_and_loose_lists():
    rng = random.Random(5)
    for studies, arms, gap in ((2, 3, 1), (4, 3, 2), (50, 3, 5), (7, 2, 6)):
        items = [
            reading_lists.CaseKey(case=s * 10 + a, imaging=s, arm=a)
            for s in range(studies)
            for a in range(arms)
        ]
        order = reading_lists.spread(items, gap=gap, rng=rng)
        assert sorted(order, key=lambda c: c.case) == sorted(items, key=lambda c: c.case)
        where: dict[int, int] = {}
        for position, item in enumerate(order):
            if item.imaging in where:
                assert position - where[item.imaging] > gap
            where[item.imaging] = position


def test_copied_assignment_rows_are_new_unread_assignments(coordinator, reader, sources, archive):
    study = _three_arm_study(coordinator, [reader], archive, sources, k=1)
    fresh = {
        name: Assignment._meta.get_field(name).get_default()
        for name in ("status", "draft", "draft_seq", "active_seconds", "opened_at", "submitted_at")
    }
    rows = list(Assignment.objects.filter(reader_study=study).values(*fresh, "public_id"))
    assert len(rows) == 24
    assert len({row.pop("public_id") for row in rows}) == 24
    assert all(row == fresh for row in rows)


def test_the_api_sets_the_design_and_lists_the_arms(api_client_for, coordinator, sources, archive):
    study = _study(coordinator)
    client = api_client_for(coordinator)
    url = f"/api/v1/reader-studies/{study.public_id}/arms"
    response = client.post(
        url,
        {
            "design": "vs_reference",
            "sources": [str(sources["a"].public_id), str(sources["b"].public_id)],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert [arm["label"] for arm in response.json()] == [
        "model-a 1 vs Original (radiologist)",
        "model-b 2 vs Original (radiologist)",
    ]
    refused = client.post(url, {"design": "each_source", "sources": []}, format="json")
    assert refused.status_code == 400
    unknown = client.post(
        url, {"design": "all_pairs", "sources": [str(study.public_id)]}, format="json"
    )
    assert unknown.status_code == 400
    assert client.get(url).json()[0]["cases"] == 0


def test_a_draft_with_arms_and_cases_can_be_deleted(coordinator, sources, archive):
    study = _study(coordinator)
    services.arms_set(reader_study=study, design=Design.VS_REFERENCE, sources=[sources["a"]])
    services.cases_add(reader_study=study, imaging_studies=archive[:2])
    services.reader_study_delete(reader_study=study)
    assert not ReaderStudy.objects.filter(pk=study.pk).exists()
    assert not Case.objects.filter(reader_study_id=study.pk).exists()
