"""Radiograph grey scale in real Chromium: Reset returns exactly the display the image opened
with (a MONOCHROME1 film stays a positive), the overlay says "inverted" exactly when the
picture is inverted from that display, and radiographs get presets of their own (the file's
window, the full range, contrast steps) instead of CT windows."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from reviewapp.imaging.models import Instance
from tests.viewer.test_viewer_browser import decoded

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def tile_state(viewer) -> dict:
    """The first tile's state, with the text its overlay shows under "overlay"."""
    tile = viewer.state()["tiles"][0]
    tile["overlay"] = viewer.page.inner_text(".viewer-tile .viewer-ov-bl")
    return tile


def press(viewer, key: str) -> None:
    """Press a viewer key and wait until Cornerstone has drawn the result."""
    renders = viewer.page.evaluate("() => window.__renders")
    viewer.page.keyboard.press(key)
    viewer.page.wait_for_function("(n) => window.__renders > n", arg=renders)
    viewer.settled()


def monochrome1_display_mean(instance: Instance, tile: dict) -> float:
    """Mean grey level of the middle 60% of rows of the film displayed correctly (high
    values dark) through the tile's window: what canvas_stats(centre=0.6) sees of it."""
    pixels = pydicom.dcmread(instance.file.path).pixel_array.astype(np.float64)
    rows = pixels.shape[0]
    middle = pixels[int(rows * 0.2) : int(rows * 0.8), :]
    low = tile["windowCenter"] - tile["windowWidth"] / 2
    return float((255 * (1 - np.clip((middle - low) / tile["windowWidth"], 0, 1))).mean())


def test_monochrome1_radiograph_reset_restores_the_opening_display_and_the_overlay_tells_the_truth(
    viewer_page_for, coordinator, cxr_studies
):
    mono1 = cxr_studies[0]
    instance = Instance.objects.get(series__study=mono1)
    assert pydicom.dcmread(
        instance.file.path, stop_before_pixels=True
    ).PhotometricInterpretation == ("MONOCHROME1")
    viewer = viewer_page_for(coordinator)
    viewer.open(reverse("viewer:study", kwargs={"public_id": mono1.public_id}))
    viewer.wait_for_render()
    opened = tile_state(viewer)
    assert opened["invert"] is False
    assert "inverted" not in opened["overlay"]
    shown = viewer.canvas_stats(0, centre=0.6)
    # A positive, as pydicom displays MONOCHROME1 through the same window (high values dark):
    # near its mean (resampling and the film's edges move it a little), far from the negative's.
    positive = monochrome1_display_mean(instance, opened)
    assert abs(shown["mean"] - positive) < 25, (shown, positive)
    assert abs(shown["mean"] - positive) < abs(shown["mean"] - (255 - positive)) - 50

    viewer.page.locator(".viewer-tile").first.click()
    press(viewer, "i")
    inverted = viewer.canvas_stats(0, centre=0.6)
    assert tile_state(viewer)["invert"] is True
    assert "inverted" in tile_state(viewer)["overlay"]
    assert inverted["mean"] < shown["mean"] - 60, (shown, inverted)  # the film's negative

    # Narrow the window and zoom in, then Reset: exactly the opening picture, a positive, and
    # no "inverted".
    press(viewer, "3")
    press(viewer, "+")
    assert tile_state(viewer)["windowWidth"] != opened["windowWidth"]
    assert tile_state(viewer)["zoomPercent"] > opened["zoomPercent"]
    press(viewer, " ")
    reset = tile_state(viewer)
    assert (reset["windowWidth"], reset["windowCenter"]) == (
        opened["windowWidth"],
        opened["windowCenter"],
    )
    assert reset["zoomPercent"] == pytest.approx(opened["zoomPercent"])
    assert reset["invert"] is False
    assert reset["overlay"] == opened["overlay"]
    assert "inverted" not in reset["overlay"]
    again = viewer.canvas_stats(0, centre=0.6)
    assert abs(again["mean"] - shown["mean"]) < 1, (shown, again)

    # Invert after Reset inverts the picture and says so.
    press(viewer, "i")
    assert "inverted" in tile_state(viewer)["overlay"]
    assert abs(viewer.canvas_stats(0, centre=0.6)["mean"] - inverted["mean"]) < 3
    press(viewer, "i")
    assert "inverted" not in tile_state(viewer)["overlay"]


def test_radiographs_offer_their_own_presets_not_ct_windows(
    viewer_page_for, coordinator, cxr_studies
):
    viewer = viewer_page_for(coordinator)
    viewer.open(reverse("viewer:study", kwargs={"public_id": cxr_studies[0].public_id}))
    viewer.wait_for_render()
    presets = viewer.page.locator(".viewer-preset").all_inner_texts()
    assert presets == ["Default", "Full range", "More contrast", "Most contrast", "Less contrast"]
    help_text = viewer.page.locator("[data-viewer-help]").inner_text()
    assert "Lung" not in help_text
    assert "Full range" in help_text
    opened = tile_state(viewer)
    viewer.page.locator(".viewer-tile").first.click()

    press(viewer, "2")  # full range: every grey level the decoded image holds
    image = decoded(viewer)
    full = tile_state(viewer)
    assert full["windowWidth"] == pytest.approx(image["max"] - image["min"], abs=1)
    assert full["windowCenter"] == pytest.approx((image["max"] + image["min"]) / 2, abs=1)
    assert "inverted" not in full["overlay"]

    press(viewer, "3")  # more contrast: a narrower window about the file's centre
    narrower = tile_state(viewer)
    assert narrower["windowWidth"] == pytest.approx(opened["windowWidth"] * 0.7, rel=0.01)
    assert narrower["windowCenter"] == pytest.approx(opened["windowCenter"], abs=1)
    more = viewer.canvas_stats(0, centre=0.6)

    press(viewer, "1")  # the file's own window again
    back = tile_state(viewer)
    assert back["windowWidth"] == pytest.approx(opened["windowWidth"], abs=0.5)
    assert back["windowCenter"] == pytest.approx(opened["windowCenter"], abs=0.5)
    default = viewer.canvas_stats(0, centre=0.6)
    assert more["std"] > default["std"]  # the narrower window spreads the grey levels
