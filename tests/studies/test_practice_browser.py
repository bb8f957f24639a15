"""A reader's first practice cases in real Chromium at 1366x768: two practice cases by keyboard,
each followed by the reader's answers beside the reference answers, then the real cases."""

from __future__ import annotations

import re

import pytest

from reviewapp.studies.models import Assignment, Rating
from tests.studies.conftest import build_study
from tests.studies.test_reading_browser_day import radiograph_studies
from tests.viewer.conftest import (  # noqa: F401
    _derived_copy,
    _release_held,
    app_server,
    archive_dirs,
    served_data_dir,
    viewer_bundle,
    viewer_page_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FEEDBACK_LAYOUT = """() => {
  const box = (e) => e.getBoundingClientRect();
  const feedback = document.querySelector('[data-practice-feedback]');
  return {
    scrollHeight: document.scrollingElement.scrollHeight,
    innerHeight: window.innerHeight,
    feedbackTop: box(feedback).top,
    feedbackBottom: box(feedback).bottom,
    rowsBottom: box(feedback.querySelector('tbody tr:last-child')).bottom,
    headings: [...document.querySelectorAll('.report h2')].map((e) => box(e).top),
    formHidden: document.querySelector('[data-rating-form]').hidden,
    focused: document.activeElement === feedback,
  };
}"""


def test_reader_does_two_practice_cases_by_keyboard_sees_the_reference_then_real_cases(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    archive_dirs,  # noqa: F811
    tmp_path,
) -> None:
    imaging = radiograph_studies(4, coordinator, tmp_path)
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, practice=2)
    order = list(Assignment.objects.filter(reader_study=study, reader=reader).order_by("position"))
    assert [a.case.is_practice for a in order] == [True, True, False, False]
    viewer = viewer_page_for(reader)
    page = viewer.page
    page.set_viewport_size({"width": 1366, "height": 768})
    viewer.open(f"/studies/read/{order[0].public_id}/")

    for index in range(2):
        page.wait_for_url(re.compile(f"/studies/read/{order[index].public_id}/"))
        viewer.wait_for_render()
        counter = page.locator("[data-case-counter]")
        assert counter.inner_text() == f"Practice case {index + 1} of 2"
        assert page.locator("[data-practice-feedback]").count() == 0  # nothing before submitting
        page.keyboard.press("c")  # "Both reports capture similar findings"
        page.keyboard.press("Control+Enter")
        feedback = page.locator("[data-practice-feedback]")
        feedback.wait_for(state="visible")
        assert page.url.endswith(f"/studies/read/{order[index].public_id}/")
        yours = feedback.locator("[data-yours]").inner_text()
        reference = feedback.locator("[data-reference]").inner_text()
        assert "Both reports capture similar findings" in yours
        # The reference (the first report much better) on this reader's own sides.
        first_on = "B" if order[index].candidate_side == "A" else "A"
        assert f"Report {first_on} captures key clinically relevant findings" in reference
        layout = page.evaluate(FEEDBACK_LAYOUT)
        assert layout["scrollHeight"] == layout["innerHeight"], layout  # no page scrolling
        assert layout["feedbackTop"] >= 0, layout
        assert layout["rowsBottom"] <= 768, layout
        assert all(top >= 0 for top in layout["headings"]), layout  # the reports stay in view
        assert layout["formHidden"], layout
        assert layout["focused"], layout
        if index == 0:
            viewer.screenshot("practice-feedback-1366x768")
        page.keyboard.press("n")  # the usual next key continues

    page.wait_for_url(re.compile(f"/studies/read/{order[2].public_id}/"))
    viewer.wait_for_render()
    assert page.locator("[data-case-counter]").inner_text() == "Case 1 of 2"
    page.keyboard.press("c")
    page.keyboard.press("Control+Enter")
    # A real case moves straight on, with no reference shown.
    page.wait_for_url(re.compile(f"/studies/read/{order[3].public_id}/"))
    viewer.wait_for_render()
    assert page.locator("[data-case-counter]").inner_text() == "Case 2 of 2"
    assert page.locator("[data-practice-feedback]").count() == 0
    assert viewer.csp_violations() == []
    assert [m for m in viewer.console_errors if "WebSocket" not in m] == []

    ratings = Rating.objects.filter(assignment__reader=reader)
    assert ratings.count() == 3
    assert {r.answers["comparison"]["value"] for r in ratings} == {"similar"}
