"""The reading page as a radiologist meets it: real images beside the blinded reports, and the
viewer's keys never answering a question (nor the form's keys moving the images), wherever
the reader clicked last."""

from __future__ import annotations

import pytest

from reviewapp.reports.models import Report
from reviewapp.studies.models import Assignment
from tests.imaging.conftest import imported_ct_study  # noqa: F401
from tests.studies.conftest import build_study
from tests.viewer.conftest import (  # noqa: F401
    app_server,
    archive_dirs,
    served_data_dir,
    viewer_bundle,
    viewer_page_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_reader_sees_the_ct_beside_the_reports_and_keys_reach_the_right_place(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    imported_ct_study,  # noqa: F811
) -> None:
    Report.objects.create(
        study=imported_ct_study,
        kind=Report.Kind.ORIGINAL,
        findings="Spiculated mass in the right upper lobe.",
        impression="Right upper lobe mass, suspicious for malignancy.",
    )
    Report.objects.create(
        study=imported_ct_study,
        kind=Report.Kind.AI,
        findings="Right upper lobe mass with spiculated margins.",
        impression="Suspicious right lung mass.",
    )
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[imported_ct_study], name="CT pilot"
    )
    assignment = Assignment.objects.get(reader_study=study, reader=reader)

    viewer = viewer_page_for(reader)
    viewer.open(f"/studies/read/{assignment.public_id}/")
    state = viewer.wait_for_render()
    assert state["mode"] == "stack"
    assert state["tiles"][0]["imageCount"] == 30
    assert viewer.canvas_stats(0)["levels"] > 32  # an image, not a blank canvas
    viewer.screenshot("reading-page-ct")

    # With the focus on the page, letters answer the highlighted question.
    viewer.page.keyboard.press("c")
    comparison = viewer.page.locator('fieldset[data-item="comparison"] input[value="c"]')
    assert comparison.is_checked()

    # After a click on the image, Shift+digits are window presets and the form's letters still
    # answer: the keyboard is shared, and no click changes what a key does.
    viewer.page.locator(".viewer-tile").first.click()
    viewer.page.keyboard.press("Shift+2")
    viewer.settled()
    tile = viewer.state()["tiles"][0]
    assert (round(tile["windowWidth"]), round(tile["windowCenter"])) == (1500, -600)
    viewer.page.keyboard.press("a")
    assert viewer.page.locator('fieldset[data-item="comparison"] input[value="a"]').is_checked()
    # A plain digit is an answer key, never a preset, on the reading page.
    viewer.page.keyboard.press("k")
    viewer.page.keyboard.press("2")
    assert viewer.page.locator('fieldset[data-item="comparison"] input[value="b"]').is_checked()
    tile = viewer.state()["tiles"][0]
    assert (round(tile["windowWidth"]), round(tile["windowCenter"])) == (1500, -600)
    assert viewer.csp_violations() == []
    assert viewer.failed_responses == []
