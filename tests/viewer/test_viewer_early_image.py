"""The early image (static/src/viewer/early.js): drawn by a worker before the 3.6 MB engine is
ready, with the image's own window and full resolution, then swapped for Cornerstone's
interactive viewport without a visible change; its decoded pixels are the ones Cornerstone
holds (nothing is decoded twice) and equal pydicom's; the tools work after the swap."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.viewer.test_viewer_browser import (
    SAMPLE_STRIDE,
    assert_clean_console,
    decoded,
    pydicom_pixels,
    viewer_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ENGINE_CHUNK = "**/dist/assets/setup-*.js"
OVERLAY_TOP, OVERLAY_BOTTOM = 40, 24


def hold_engine(viewer) -> list:
    """Hold back the engine chunk's response until release() (the list of held routes)."""
    held: list = []

    def hold(route) -> None:
        held.append(route)

    viewer.page.route(ENGINE_CHUNK, hold)
    return held


def release(viewer, held: list) -> None:
    for route in held:
        route.continue_()
    viewer.page.unroute(ENGINE_CHUNK)


def tiles_grey(viewer) -> np.ndarray:
    """What is on screen over the tiles, as grey levels (a screenshot, not a canvas read: the
    early canvas belongs to a worker)."""
    png = viewer.page.locator(".viewer-tiles").screenshot(animations="disabled")
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    # Without the overlay text (top and bottom lines) and the active tile's border, which
    # differ between the two pictures by design.
    return grey[OVERLAY_TOP:-OVERLAY_BOTTOM, 4:-4]


def early_state(viewer) -> dict:
    viewer.page.wait_for_function(
        "() => { const h = document.querySelector('[data-viewer]').viewerHandle;"
        " const s = h && h.state(); return s && (s.earlyDrawn !== null || s.errors.length); }",
        timeout=20_000,
    )
    return viewer.state()


@pytest.mark.parametrize("case", ["cxr-jpeg2000", "ct"])
def test_early_image_is_on_screen_before_the_engine_and_swaps_seamlessly(
    case, viewer_page_for, coordinator, cxr_studies, imported_ct_study
):
    study = cxr_studies[0] if case == "cxr-jpeg2000" else imported_ct_study
    viewer = viewer_page_for(coordinator)
    held = hold_engine(viewer)
    viewer.open(viewer_path(study))
    state = early_state(viewer)
    assert state["errors"] == []
    # Drawn with the engine still held back: Cornerstone has drawn nothing.
    assert held, "the engine chunk was not requested"
    assert state["firstRenderAt"] is None
    assert state["firstImageAt"] is not None
    before = tiles_grey(viewer)
    viewer.screenshot(f"early-{case}")
    assert (before > 8).mean() > 0.05, "the early image is blank"
    assert before.std() > 10, "the early image is uniform"

    release(viewer, held)
    state = viewer.wait_for_render(stack_loaded=case == "ct")
    assert viewer.page.locator(".viewer-early").count() == 0  # swapped out
    after = tiles_grey(viewer)
    viewer.screenshot(f"early-{case}-swapped")
    assert before.shape == after.shape
    # Same place, size and window: only the resampling differs (canvas 2D vs WebGL).
    difference = np.abs(before - after)
    assert difference.mean() < 3, difference.mean()
    assert np.percentile(difference, 99) < 40, np.percentile(difference, 99)
    (drawn,) = state["earlyDrawn"]
    tile = state["tiles"][0]
    assert drawn["lower"] == pytest.approx(tile["windowCenter"] - tile["windowWidth"] / 2, abs=1)
    assert drawn["invert"] is tile["invertFlag"]  # Cornerstone's own MONOCHROME1 flag
    assert_clean_console(viewer)


def test_early_image_pixels_are_handed_to_cornerstone_and_equal_pydicom(
    viewer_page_for, coordinator, cxr_studies
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[0]))
    state = viewer.wait_for_render()
    assert state["earlyDrawn"] is not None
    image = decoded(viewer)
    # Decoded once, by the early worker: Cornerstone received little-endian pixels.
    assert image["transferSyntaxUid"] == LITTLE_ENDIAN
    expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
    assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])


def test_window_level_drag_works_after_the_swap(viewer_page_for, coordinator, cxr_studies):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[0]))
    state = viewer.wait_for_render()
    before = state["tiles"][0]
    box = viewer.page.locator(".viewer-tile").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    viewer.page.mouse.move(x, y)
    viewer.page.mouse.down()
    viewer.page.mouse.move(x + 120, y + 60, steps=6)
    viewer.page.mouse.up()
    viewer.settled()
    after = viewer.state()["tiles"][0]
    assert (after["windowWidth"], after["windowCenter"]) != (
        before["windowWidth"],
        before["windowCenter"],
    )
    assert viewer.page.locator(".viewer-early").count() == 0
    assert_clean_console(viewer)
