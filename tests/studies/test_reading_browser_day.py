"""A radiologist's reading day in real Chromium at the screen sizes people use: ten cases with
real radiographs, answered by keyboard alone even right after dragging in the viewer, with
the page itself never scrolling; and the narrower layouts (stacked, then a clear message)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.common import heap_used_after_gc
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.studies.models import Assignment, Rating
from tests.conftest import REPO_ROOT
from tests.imaging.conftest import CXR_JPEG, import_files
from tests.studies.conftest import build_study
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

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"

# Realistic report text: headings, line breaks and a signature the renderer must drop, long
# enough that the panes have to scroll at laptop sizes.
ORIGINAL_FINDINGS = (
    "PA and lateral views of the chest.\n"
    "The cardiomediastinal silhouette is within normal limits for size and contour. "
    "The lungs are clear without focal consolidation, pleural effusion or pneumothorax. "
    "No pulmonary oedema. The hila are unremarkable. Case {n}.\n"
    "Mild degenerative change of the thoracic spine. No acute osseous abnormality.\n"
    "Dictated by Dr Example"
)
AI_FINDINGS = (
    "Heart size is normal. Mediastinal contours are normal. "
    "Both lungs are clear. No pleural effusion. No pneumothorax. Case {n}.\n"
    "Degenerative changes in the thoracic spine."
)


def radiograph_studies(count: int, user, tmp_path: Path, *, paragraphs: int = 1) -> list[Study]:
    """``count`` imaging studies, each one real radiograph with an original and an AI report
    (their findings ``paragraphs`` times over)."""
    paths = [
        _derived_copy(
            CXR_JPEG,
            tmp_path / f"cxr-{n}.dcm",
            series=f"day-{n}",
            number=1,
            StudyInstanceUID=f"2.25.{9_000_000 + n}",
        )
        for n in range(count)
    ]
    _, outcomes = import_files(paths, user=user)
    _release_held(outcomes, user)
    studies = []
    for n, uid in enumerate(o.study_instance_uid for o in outcomes):
        study = Study.objects.get(study_instance_uid=uid)
        Report.objects.create(
            study=study,
            kind=Report.Kind.ORIGINAL,
            findings="\n".join([ORIGINAL_FINDINGS.format(n=n + 1)] * paragraphs),
            impression="No acute cardiopulmonary abnormality.",
        )
        Report.objects.create(
            study=study,
            kind=Report.Kind.AI,
            findings="\n".join([AI_FINDINGS.format(n=n + 1)] * paragraphs),
            impression="No acute cardiopulmonary disease.",
        )
        studies.append(study)
    return studies


# Boxes of what a reader must see without scrolling the page, in viewport pixels.
LAYOUT = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width,
            height: r.height}; };
  const all = (s) => [...document.querySelectorAll(s)].map(box);
  const one = (s) => { const e = document.querySelector(s); return e ? box(e) : null; };
  return {
    scrollHeight: document.scrollingElement.scrollHeight,
    scrollWidth: document.scrollingElement.scrollWidth,
    innerHeight: window.innerHeight, innerWidth: window.innerWidth,
    headings: all('.report h2'),
    firstLines: all('.report .report-text[data-section="findings"]'),
    paneScroll: [...document.querySelectorAll('[data-report-body]')].map((e) => e.scrollTop),
    panes: all('[data-report-body]'),
    legends: all('fieldset.item:not([hidden]) legend'),
    questions: one('.rating-form .questions'),
    submit: one('[data-submit]'),
    viewer: one('[data-viewer]'),
  };
}"""


def assert_everything_in_view(layout: dict) -> None:
    height, width = layout["innerHeight"], layout["innerWidth"]
    assert layout["scrollHeight"] == height, layout  # the page itself never scrolls
    assert layout["scrollWidth"] == width, layout
    assert len(layout["headings"]) == 2
    for heading in layout["headings"]:
        assert heading["top"] >= 0, layout
        assert heading["bottom"] <= height, layout
    for first, pane in zip(layout["firstLines"], layout["panes"], strict=True):
        assert pane["top"] <= first["top"] < pane["bottom"], layout  # opens at its first line
    assert layout["paneScroll"] == [0, 0], layout
    # Report panes of equal height, side by side.
    assert abs(layout["panes"][0]["height"] - layout["panes"][1]["height"]) < 1, layout
    assert layout["panes"][0]["height"] >= 120, layout
    questions = layout["questions"]
    for legend in layout["legends"]:
        assert questions["top"] <= legend["top"], layout
        assert legend["bottom"] <= questions["bottom"], layout
        assert legend["bottom"] <= height, layout
    assert layout["submit"]["top"] >= 0, layout
    assert layout["submit"]["bottom"] <= height, layout
    assert layout["viewer"]["width"] >= width / 2, layout
    assert layout["viewer"]["bottom"] <= height, layout


def drag_on_image(page) -> None:
    box = page.locator(".viewer-tile").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=6)
    page.mouse.up()


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_reader_walks_ten_cases_by_keyboard_after_using_the_viewer_without_scrolling(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    archive_dirs,  # noqa: F811
    tmp_path,
    width,
    height,
) -> None:
    imaging = radiograph_studies(10, coordinator, tmp_path)
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=imaging, ask_ai_guess=True
    )
    order = list(Assignment.objects.filter(reader_study=study, reader=reader).order_by("position"))
    viewer = viewer_page_for(reader)
    page = viewer.page
    page.set_viewport_size({"width": width, "height": height})
    viewer.open(f"/studies/read/{order[0].public_id}/")

    for index, assignment in enumerate(order):
        page.wait_for_url(re.compile(f"/studies/read/{assignment.public_id}/"))
        tile = viewer.wait_for_render()["tiles"][0]
        assert_everything_in_view(page.evaluate(LAYOUT))
        if index == 0:
            shot = viewer.screenshot(f"reader-{width}x{height}")
            if os.environ.get("RADREVIEW_UPDATE_SCREENSHOTS"):
                shutil.copyfile(shot, SCREENSHOTS / shot.name)

        # The reader works the image: the drag windows it (and gives the viewer the focus).
        drag_on_image(page)
        page.wait_for_function(
            "(w) => document.querySelector('[data-viewer]').viewerHandle.state()"
            ".tiles[0].windowWidth !== w",
            arg=tile["windowWidth"],
        )
        assert page.evaluate(
            "() => document.querySelector('[data-viewer]').contains(document.activeElement)"
        )
        if index == 0:
            # n and p reach the form from the viewer too; the draft is kept either way.
            page.keyboard.press("n")
            page.wait_for_url(re.compile(f"/studies/read/{order[1].public_id}/"))
            viewer.wait_for_render()
            drag_on_image(page)
            page.keyboard.press("p")
            page.wait_for_url(re.compile(f"/studies/read/{assignment.public_id}/"))
            viewer.wait_for_render()
            drag_on_image(page)

        # Letters right after the drag: the comparison, then a digit for the AI guess.
        page.keyboard.press("c")
        assert page.locator('fieldset[data-item="comparison"] input[value="c"]').is_checked()
        page.keyboard.press("3")
        assert page.locator('fieldset[data-item="ai_guess"] input[value="c"]').is_checked()
        assert_everything_in_view(page.evaluate(LAYOUT))
        page.keyboard.press("Control+Enter")

    page.wait_for_url(re.compile("/studies/reading/$"))
    assert "You have rated every case of this study" in page.inner_text("body")
    assert viewer.csp_violations() == []
    assert [r for r in viewer.failed_responses if "/ws/" not in r] == []

    ratings = Rating.objects.filter(assignment__reader=reader)
    assert ratings.count() == 10
    assert {r.answers["comparison"]["value"] for r in ratings} == {"similar"}
    assert {r.ai_guess for r in ratings} == {"dont_know"}


def test_tablet_width_stacks_the_viewer_above_the_reports_and_phones_get_a_message(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    archive_dirs,  # noqa: F811
    tmp_path,
) -> None:
    imaging = radiograph_studies(1, coordinator, tmp_path)
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    assignment = Assignment.objects.get(reader_study=study, reader=reader)
    viewer = viewer_page_for(reader)
    page = viewer.page

    page.set_viewport_size({"width": 900, "height": 1000})
    viewer.open(f"/studies/read/{assignment.public_id}/")
    viewer.wait_for_render()
    layout = page.evaluate(LAYOUT)
    assert page.evaluate("() => window.scrollY") == 0  # opens at the images, not the form
    assert layout["scrollWidth"] == 900, layout  # no sideways scroll
    viewer_box = layout["viewer"]
    assert viewer_box["width"] >= 850, layout
    assert viewer_box["height"] >= 320, layout
    assert viewer.canvas_stats(0)["levels"] > 32  # a usable, drawn viewer
    for heading in layout["headings"]:
        assert heading["top"] >= viewer_box["bottom"], layout  # reports below the images
    assert page.locator(".screen-too-small").is_hidden()
    viewer.screenshot("reader-900x1000")

    # ? shows one help for the page: the answer keys first, then the viewer's (presets on
    # Shift+digit, radiograph presets for a radiograph).
    page.keyboard.press("?")
    help_panel = page.locator("[data-viewer-help]")
    assert help_panel.is_visible()
    text = help_panel.inner_text()
    assert "Answer keys always go to the form" in text
    assert "Ctrl+Enter" in text
    assert "Shift+1" in text
    assert "Default" in text
    assert "Lung" not in text
    page.keyboard.press("Escape")
    assert help_panel.is_hidden()
    # Resizing across the layouts (down to the hidden viewer) breaks nothing on the page; the
    # test server has no websockets, so the status socket's failed attempts are left out.
    assert [m for m in viewer.console_errors if "WebSocket" not in m] == []

    page.set_viewport_size({"width": 600, "height": 900})
    message = page.locator(".screen-too-small")
    assert message.is_visible()
    assert "at least 768 pixels wide" in message.inner_text()
    assert page.locator("[data-viewer]").is_hidden()  # no 0-px viewer left on the page
    layout = page.evaluate(LAYOUT)
    assert layout["scrollWidth"] == 600, layout
    viewer.screenshot("reader-600x900")


def test_reports_scroll_in_their_own_panes_and_together_on_request(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    archive_dirs,  # noqa: F811
    tmp_path,
) -> None:
    imaging = radiograph_studies(1, coordinator, tmp_path, paragraphs=4)
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    assignment = Assignment.objects.get(reader_study=study, reader=reader)
    viewer = viewer_page_for(reader)
    page = viewer.page
    page.set_viewport_size({"width": 1366, "height": 768})
    viewer.open(f"/studies/read/{assignment.public_id}/")
    viewer.wait_for_render()
    first, second = page.locator("[data-report-body]").all()
    scroll_tops = "() => [...document.querySelectorAll('[data-report-body]')].map(e => e.scrollTop)"

    def scroll_first() -> None:
        first.hover()
        page.mouse.wheel(0, 60)
        page.wait_for_function(f"() => ({scroll_tops})()[0] > 0")

    scroll_first()
    assert page.evaluate(scroll_tops)[1] == 0  # each pane on its own
    assert page.evaluate("() => window.scrollY") == 0
    first.evaluate("e => { e.scrollTop = 0; }")

    page.get_by_label("Scroll reports together").check()
    scroll_first()
    page.wait_for_function(f"() => ({scroll_tops})()[1] > 0")
    assert page.evaluate("() => window.scrollY") == 0
    # The choice is remembered for the next case.
    page.reload()
    assert page.get_by_label("Scroll reports together").is_checked()
    assert second.evaluate("e => e.scrollHeight > e.clientHeight")


# Cases a session test reads in one tab: a long sitting, as issue 23 asks of the memory bound.
SESSION_CASES = 50


def test_a_reader_moves_through_fifty_cases_in_one_tab_with_memory_bounded(
    viewer_page_for,  # noqa: F811
    coordinator,
    reader,
    archive_dirs,  # noqa: F811
    tmp_path,
) -> None:
    imaging = radiograph_studies(SESSION_CASES, coordinator, tmp_path)
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    order = list(Assignment.objects.filter(reader_study=study, reader=reader).order_by("position"))
    viewer = viewer_page_for(reader)
    page = viewer.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    viewer.open(f"/studies/read/{order[0].public_id}/")

    heaps, cached = [], []
    for index, assignment in enumerate(order):
        page.wait_for_url(re.compile(f"/studies/read/{assignment.public_id}/"))
        viewer.wait_for_render()
        heaps.append(heap_used_after_gc(page))
        cached.append(
            page.evaluate("() => document.querySelector('[data-viewer]').viewerHandle.cacheBytes()")
        )
        if index < len(order) - 1:
            page.keyboard.press("n")

    # One case's images are in the cache while it is read; a session keeps at most the case
    # being read and the next one, whatever the number of cases behind it.
    one_case = cached[0]
    assert one_case > 0
    assert max(cached) <= 2 * one_case, cached
    # The heap after a collection settles once the first cases have loaded what a session
    # needs; the last ten cases need no more than the first ten (with a margin for the
    # collector's own bookkeeping).
    assert max(heaps[-10:]) <= 1.25 * max(heaps[:10]) + 4 * 2**20, heaps
    assert [r for r in viewer.failed_responses if "/ws/" not in r] == []
    # Whatever the page fetched ahead was images: every request to the server is a case the
    # reader opened, the images, or the page's own code (workers' blob: URLs stay in the page).
    paths = [urlsplit(url).path for url in requested if urlsplit(url).scheme in ("http", "https")]
    others = {
        path
        for path in paths
        if not path.startswith(("/dicomweb/", "/static/", "/studies/read/", "/ws/", "/favicon"))
    }
    assert others == set(), others
