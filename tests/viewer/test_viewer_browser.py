"""What a radiologist sees, proved in real headless Chromium against the live server: images are
drawn (not blank, not uniform), the CT stack scrolls, presets change the displayed intensities,
the decoded pixels equal pydicom's, keys stay out of the rating form's way, and nothing on the
viewer breaks the page's CSP."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.uid import JPEGLSLossless, RLELossless

from reviewapp.imaging.models import Instance, Study
from tests.imaging.conftest import CXR_J2K

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE_STRIDE = 101


def viewer_path(study: Study) -> str:
    return reverse("viewer:study", kwargs={"public_id": study.public_id})


def assert_drawn(stats: dict) -> None:
    assert stats["nonBlackFraction"] > 0.05, stats
    assert stats["std"] > 10, stats
    assert stats["levels"] > 32, stats


def assert_clean_console(viewer) -> None:
    assert viewer.csp_violations() == []
    # The browser logs a failed request without its URL; failed_responses names it.
    assert viewer.failed_responses == []
    assert [m for m in viewer.console_errors if "Failed to load resource" not in m] == []


def decoded(viewer, tile: int = 0) -> dict:
    """The decoded frame Cornerstone holds for a tile: its id, sums and every Nth pixel."""
    return viewer.page.evaluate(
        """([tile, stride]) => {
          const image = document.querySelector('[data-viewer]').viewerHandle.decodedImage(tile);
          const pixels = image.pixels;
          let sum = 0, min = Infinity, max = -Infinity;
          for (let i = 0; i < pixels.length; i += 1) {
            const v = pixels[i]; sum += v; if (v < min) min = v; if (v > max) max = v;
          }
          const sample = [];
          for (let i = 0; i < pixels.length; i += stride) sample.push(pixels[i]);
          const { pixels: _, ...rest } = image;
          return { ...rest, length: pixels.length, sum, min, max, sample };
        }""",
        [tile, SAMPLE_STRIDE],
    )


def pydicom_pixels(sop_instance_uid: str, *, pre_scaled: bool, plugin: str = "") -> np.ndarray:
    instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
    ds = pydicom.dcmread(instance.file.path)
    pixels = pixel_array(ds, decoding_plugin=plugin)
    return (apply_modality_lut(pixels, ds) if pre_scaled else pixels).astype(np.float64).ravel()


def press_in_viewer(viewer, key: str) -> None:
    viewer.page.keyboard.press(key)


def wait_for_tile(viewer, predicate: str) -> dict:
    """Wait until the first tile's state satisfies a JS predicate ``t => ...``; return it."""
    viewer.page.wait_for_function(
        f"() => ({predicate})"
        "(document.querySelector('[data-viewer]').viewerHandle.state().tiles[0])",
        timeout=10_000,
    )
    return viewer.state()["tiles"][0]


def test_jpeg2000_chest_radiograph_is_drawn_and_shows_no_patient_data(
    viewer_page_for, coordinator, cxr_studies
):
    j2k_study = cxr_studies[0]
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(j2k_study))
    state = viewer.wait_for_render()
    viewer.screenshot("cxr-jpeg2000")

    assert state["mode"] == "projection"
    assert len(state["tiles"]) == 1
    assert_drawn(viewer.canvas_stats(0))
    overlay = viewer.page.inner_text(".viewer-tiles")
    assert re.search(r"W -?\d+ L -?\d+", overlay)
    assert "Zoom" in overlay
    original = pydicom.dcmread(CXR_J2K, stop_before_pixels=True)
    page_text = viewer.page.inner_text("[data-viewer]")
    for identifying in (original.PatientName, original.PatientID, original.InstitutionName):
        if str(identifying).strip():
            assert str(identifying) not in page_text
    assert_clean_console(viewer)


def test_jpeg_baseline_chest_radiograph_is_drawn(viewer_page_for, coordinator, cxr_studies):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[1]))
    viewer.wait_for_render()
    viewer.screenshot("cxr-jpeg-baseline")
    assert_drawn(viewer.canvas_stats(0))
    assert_clean_console(viewer)


def test_ct_stack_scrolls_with_wheel_and_keys(viewer_page_for, coordinator, imported_ct_study):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    state = viewer.wait_for_render(stack_loaded=True)
    assert state["mode"] == "stack"
    assert state["stackLoaded"] == state["stackSize"] == 30
    start = state["tiles"][0]["imageIndex"]
    before = viewer.canvas_stats(0)
    assert_drawn(before)
    viewer.screenshot("ct-start")
    assert f"Image {start + 1} / 30" in viewer.page.inner_text(".viewer-tiles")

    box = viewer.page.locator(".viewer-tile").first.bounding_box()
    viewer.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(5):
        viewer.page.mouse.wheel(0, 120)
    viewer.page.wait_for_function(
        "(start) => document.querySelector('[data-viewer]').viewerHandle.state()"
        ".tiles[0].imageIndex !== start",
        arg=start,
    )
    after_wheel = viewer.state()["tiles"][0]["imageIndex"]
    assert after_wheel > start
    viewer.settled()
    assert viewer.canvas_stats(0)["hash"] != before["hash"]

    viewer.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for key, index in (("Home", 0), ("PageDown", 10), ("ArrowDown", 11), ("End", 29)):
        press_in_viewer(viewer, key)
        wait_for_tile(viewer, f"t => t.imageIndex === {index}")
    assert "Image 30 / 30" in viewer.page.inner_text(".viewer-tiles")
    viewer.screenshot("ct-last-slice")
    assert_clean_console(viewer)


def test_ct_presets_change_the_displayed_intensities(
    viewer_page_for, coordinator, imported_ct_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render()
    viewer.page.locator(".viewer-tile").first.click()

    press_in_viewer(viewer, "1")
    viewer.settled()
    soft = viewer.canvas_stats(0)
    tile = viewer.state()["tiles"][0]
    assert (round(tile["windowWidth"]), round(tile["windowCenter"])) == (400, 40)
    assert "W 400 L 40" in viewer.page.inner_text(".viewer-tiles")
    viewer.screenshot("ct-soft-tissue")

    press_in_viewer(viewer, "2")
    viewer.settled()
    lung = viewer.canvas_stats(0)
    tile = viewer.state()["tiles"][0]
    assert (round(tile["windowWidth"]), round(tile["windowCenter"])) == (1500, -600)
    viewer.screenshot("ct-lung")
    # Lung window lifts aerated lung from black to grey: far more of the image is lit.
    assert lung["nonBlackFraction"] > soft["nonBlackFraction"] + 0.1, (soft, lung)
    assert lung["mean"] > soft["mean"] + 10, (soft, lung)

    lung_centre = viewer.canvas_stats(0, centre=0.4)
    press_in_viewer(viewer, "i")
    viewer.settled()
    inverted_centre = viewer.canvas_stats(0, centre=0.4)
    assert viewer.state()["tiles"][0]["invert"] is True
    assert abs(inverted_centre["mean"] - (255 - lung_centre["mean"])) < 3

    press_in_viewer(viewer, " ")
    viewer.settled()
    tile = viewer.state()["tiles"][0]
    assert tile["invert"] is False
    assert (round(tile["windowWidth"]), round(tile["windowCenter"])) != (1500, -600)
    assert_clean_console(viewer)


def test_the_mouse_works_as_in_ohif_left_windows_right_zooms_middle_pans_and_keys_zoom(
    viewer_page_for, coordinator, imported_ct_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render()
    box = viewer.page.locator(".viewer-tile").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def drag(button: str, dx: float, dy: float) -> dict:
        before = viewer.settled()
        viewer.page.mouse.move(x, y)
        viewer.page.mouse.down(button=button)
        viewer.page.mouse.move(x + dx, y + dy, steps=8)
        viewer.page.mouse.up(button=button)
        after = viewer.settled()
        return {key: (before[key], after[key]) for key in before if before[key] != after[key]}

    windowed = drag("left", 60, 40)
    assert set(windowed) == {"windowWidth", "windowCenter"}, windowed
    assert "W {:.0f} L {:.0f}".format(*(v[1] for v in windowed.values())) in (
        viewer.page.inner_text(".viewer-tiles")
    )
    zoomed = drag("right", 0, 80)
    assert set(zoomed) <= {"zoomPercent", "pan"}, zoomed  # it zooms about the pointer
    assert zoomed["zoomPercent"][1] > zoomed["zoomPercent"][0] * 1.2
    panned = drag("middle", 120, 50)
    assert set(panned) == {"pan"}, panned
    (before_x, before_y), (after_x, after_y) = panned["pan"]
    assert after_x > before_x  # the image follows the pointer
    assert after_y > before_y
    assert drag("right", 0, 0) == {}  # a click without a move changes nothing

    # The keyboard zooms too, a quarter at a time ("=" is "+" without Shift).
    def zoom_after(key: str) -> float:
        press_in_viewer(viewer, key)
        return viewer.settled()["zoomPercent"]

    start = viewer.state()["tiles"][0]["zoomPercent"]
    assert zoom_after("+") == pytest.approx(start * 1.25)
    assert zoom_after("=") == pytest.approx(start * 1.25**2)
    assert zoom_after("-") == pytest.approx(start * 1.25)
    assert f"Zoom {start * 1.25:.0f}%" in viewer.page.inner_text(".viewer-tiles")
    assert_clean_console(viewer)


def test_ct_pixels_decoded_in_the_browser_equal_pydicom_in_hounsfield_units(
    viewer_page_for, coordinator, imported_ct_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render()
    image = decoded(viewer)
    expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
    assert image["rows"] * image["columns"] == image["length"] == expected.size
    assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
    assert (image["min"], image["max"]) == (expected.min(), expected.max())
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])
    if image["preScaled"]:
        # Air must read about -1000 HU: rescale slope and intercept were honoured.
        assert image["min"] <= -900


def test_the_stack_comes_twenty_slices_a_request_and_decodes_to_pydicoms_pixels(
    viewer_page_for, coordinator, imported_ct_study
):
    viewer = viewer_page_for(coordinator)
    # Every request of the page and its workers (the batches are fetched by a worker, whose
    # requests are not in the page's own resource timing).
    sent: list[str] = []
    viewer.page.on("request", lambda request: sent.append(request.url))
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render(stack_loaded=True)
    frame_request = re.compile(r"/(frames/1|first-frames\?instances=.*)$")
    requests = [url for url in sent if frame_request.search(url)]
    batches = [url for url in requests if "/first-frames?" in url]
    # The slice shown first comes alone (the early image's request); the other 29 in batches.
    assert len(requests) - len(batches) <= 1, requests
    assert [url.count(",") + 1 for url in batches] == [20, 9], batches

    viewer.page.locator(".viewer-tile").first.click()
    for key in ("Home", "End"):  # both ends of the stack came in a batch
        press_in_viewer(viewer, key)
        index = 0 if key == "Home" else 29
        wait_for_tile(viewer, f"t => t.imageIndex === {index}")
        image = decoded(viewer)
        expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
        assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
        assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])
    assert_clean_console(viewer)


def test_a_stack_whose_batches_fail_still_loads_every_slice_through_the_loader(
    viewer_page_for, coordinator, imported_ct_study
):
    # The server refuses every batch of slices (the worker's requests): nothing is held, so
    # Cornerstone's loader fetches each slice itself, and the radiologist sees no error.
    viewer = viewer_page_for(coordinator)
    refused: list[str] = []

    def refuse(route) -> None:
        refused.append(route.request.url)
        route.fulfill(status=503, body="busy")

    viewer.page.context.route(re.compile(r"/first-frames\?"), refuse)
    viewer.open(viewer_path(imported_ct_study))
    state = viewer.wait_for_render(stack_loaded=True)
    assert refused, "no batch was asked for"
    assert state["errors"] == []
    assert state["stackLoaded"] == state["stackSize"] == 30
    viewer.page.locator(".viewer-tile").first.click()
    press_in_viewer(viewer, "End")
    wait_for_tile(viewer, "t => t.imageIndex === 29")
    image = decoded(viewer)
    expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])


def test_jpeg2000_pixels_decoded_in_the_browser_equal_pydicom(
    viewer_page_for, coordinator, cxr_studies
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[0]))
    viewer.wait_for_render()
    image = decoded(viewer)
    assert (image["rows"], image["columns"]) == (1955, 1841)
    expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
    assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])


def test_jpeg_baseline_pixels_decoded_in_the_browser_equal_pydicom(
    viewer_page_for, coordinator, cxr_studies
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[1]))
    viewer.wait_for_render()
    image = decoded(viewer)
    assert (image["rows"], image["columns"]) == (1024, 1024)
    # Lossy JPEG leaves the inverse DCT's rounding to the decoder (libjpeg and libjpeg-turbo
    # differ by one here and there): compare with pydicom through the browser's own library.
    expected = pydicom_pixels(
        image["sopInstanceUid"], pre_scaled=image["preScaled"], plugin="pillow"
    )
    assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])


@pytest.mark.parametrize(("codec", "syntax"), [("rle", RLELossless), ("jpeg-ls", JPEGLSLossless)])
def test_lossless_codecs_decode_in_the_browser_to_pydicom_hounsfield_units(
    codec, syntax, viewer_page_for, coordinator, ct_slice_as
):
    study = ct_slice_as(syntax)
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(study))
    viewer.wait_for_render()
    viewer.screenshot(f"ct-slice-{codec}")
    assert_drawn(viewer.canvas_stats(0))
    image = decoded(viewer)
    assert (image["rows"], image["columns"]) == (512, 512)
    expected = pydicom_pixels(image["sopInstanceUid"], pre_scaled=image["preScaled"])
    assert image["sum"] == pytest.approx(expected.sum(), abs=1e-3)
    assert (image["min"], image["max"]) == (expected.min(), expected.max())
    assert np.array_equal(np.asarray(image["sample"]), expected[::SAMPLE_STRIDE])
    assert_clean_console(viewer)


def test_viewer_keys_act_only_while_the_viewer_has_the_focus(
    viewer_page_for, coordinator, imported_ct_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render()
    initial = viewer.state()["tiles"][0]
    # A rating form field beside the viewer, as on the reading page.
    viewer.page.evaluate(
        """() => {
          const input = document.createElement('input');
          input.id = 'rating-field';
          document.querySelector('main').prepend(input);
        }"""
    )
    viewer.page.focus("#rating-field")
    box = viewer.page.locator(".viewer-tile").first.bounding_box()
    viewer.page.mouse.move(box["x"] + 50, box["y"] + 50)
    for key in ("2", "i", "End", "z"):
        viewer.page.keyboard.press(key)
    assert viewer.page.input_value("#rating-field") == "2iz"
    # Nothing focused, pointer over the image: the reading page's rating keys own the keyboard.
    viewer.page.evaluate("() => document.activeElement.blur()")
    for key in ("2", "i", "End"):
        viewer.page.keyboard.press(key)
    after = viewer.state()["tiles"][0]
    assert after["windowWidth"] == initial["windowWidth"]
    assert after["imageIndex"] == initial["imageIndex"]
    assert after["invert"] is False

    viewer.page.locator(".viewer-tile").first.click()
    viewer.page.keyboard.press("2")
    assert round(viewer.state()["tiles"][0]["windowWidth"]) == 1500
    # Esc hands the keyboard back.
    viewer.page.keyboard.press("Escape")
    assert viewer.page.evaluate(
        "() => !document.querySelector('[data-viewer]').contains(document.activeElement)"
    )
    viewer.page.keyboard.press("4")
    assert round(viewer.state()["tiles"][0]["windowWidth"]) == 1500


def test_help_panel_lists_the_shortcuts(viewer_page_for, analyst, imported_ct_study):
    viewer = viewer_page_for(analyst)
    viewer.open(viewer_path(imported_ct_study))
    viewer.wait_for_render()
    help_panel = viewer.page.locator("[data-viewer-help]")
    assert help_panel.is_hidden()
    viewer.page.locator(".viewer-tile").first.click()
    viewer.page.keyboard.press("?")
    assert help_panel.is_visible()
    text = help_panel.inner_text()
    for expected in (
        "Lung window (W 1500 / L -600)",
        "Invert",
        "Reset",
        "Zoom in",
        "Home",
        "PageDown",
    ):
        assert expected in text
    viewer.screenshot("ct-help")
    viewer.page.keyboard.press("Escape")
    assert help_panel.is_hidden()


def test_one_to_one_zoom_shows_one_image_pixel_per_screen_pixel(
    viewer_page_for, coordinator, cxr_studies
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_studies[0]))
    viewer.wait_for_render()
    fitted = viewer.state()["tiles"][0]["zoomPercent"]
    assert fitted < 60  # a 1955x1841 radiograph fitted into a ~800 px tall tile
    viewer.page.locator(".viewer-tile").first.click()
    viewer.page.keyboard.press("z")
    assert viewer.state()["tiles"][0]["zoomPercent"] == pytest.approx(100, abs=0.5)
    assert "Zoom 100%" in viewer.page.inner_text(".viewer-tiles")
    viewer.screenshot("cxr-one-to-one")
    viewer.page.keyboard.press("z")
    assert viewer.state()["tiles"][0]["zoomPercent"] == pytest.approx(fitted, rel=0.01)


def test_radiographs_show_every_view_frontal_left_lateral_right(
    viewer_page_for, coordinator, cxr_lateral_first_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(cxr_lateral_first_study))
    state = viewer.wait_for_render()
    viewer.page.wait_for_function(
        "() => document.querySelector('[data-viewer]').viewerHandle.state().tiles"
        ".every((t) => t.zoomPercent !== null)"
    )
    viewer.screenshot("cxr-pa-and-lateral")
    assert state["mode"] == "projection"
    assert [t["label"] for t in viewer.state()["tiles"]] == ["PA", "LL"]
    left, right = (viewer.page.locator(".viewer-tile").nth(i).bounding_box() for i in (0, 1))
    assert left["x"] + left["width"] <= right["x"] + 1
    assert abs(left["y"] - right["y"]) < 1
    assert_drawn(viewer.canvas_stats(0))
    assert_drawn(viewer.canvas_stats(1))
    assert_clean_console(viewer)


def test_series_switcher_moves_between_the_stacks_of_a_study(
    viewer_page_for, coordinator, ct_two_series_study
):
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(ct_two_series_study))
    viewer.wait_for_render()
    # The series with most slices opens first.
    assert viewer.state()["tiles"][0]["imageCount"] == 30
    switcher = viewer.page.locator("select.viewer-series")
    assert switcher.is_visible()
    labels = switcher.locator("option").all_inner_texts()
    assert labels == ["Series 3 · CT (30 images)", "Series 7 · CT (5 images)"]

    switcher.select_option(label="Series 7 · CT (5 images)")
    tile = wait_for_tile(viewer, "t => t.imageCount === 5")
    assert tile["label"] == "CT · Series 7"
    viewer.page.wait_for_function(
        "() => document.querySelector('[data-viewer]').viewerHandle.state().stackLoadedAt !== null"
    )
    assert_drawn(viewer.canvas_stats(0))

    viewer.page.locator(".viewer-tile").first.click()
    press_in_viewer(viewer, "]")
    assert wait_for_tile(viewer, "t => t.imageCount === 30")["label"] == "CT · Series 3"
    assert_clean_console(viewer)


def test_viewer_says_so_when_images_cannot_be_loaded(
    viewer_page_for, coordinator, imported_ct_study
):
    for instance in Instance.objects.filter(series__study=imported_ct_study):
        Path(instance.file.path).unlink()
    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(imported_ct_study))
    viewer.page.wait_for_function(
        "() => document.querySelector('[data-viewer]').viewerHandle.state().errors.length > 0",
        timeout=30_000,
    )
    status = viewer.page.locator(".viewer-status")
    assert status.is_visible()
    assert "could not be loaded" in status.inner_text()
    viewer.screenshot("ct-missing-files")


def test_a_png_research_dataset_study_opens_with_the_png_pixels(
    viewer_page_for, coordinator, archive_dirs, tmp_path
):
    from reviewapp.imaging.ingest.datasets import DatasetOptions, dataset_import_run
    from reviewapp.imaging.ingest.services import import_batch_create
    from reviewapp.imaging.models import ImportBatch
    from tests.imaging import dataset_builders as build

    root = tmp_path / "dataset"
    pixels = build.gray8(42, (320, 256))
    build.write_png(root / "images/a.png", pixels)
    (root / "manifest.csv").write_text("study_id,image,view\npng-1,images/a.png,PA\n")
    batch = import_batch_create(source=ImportBatch.Source.DATASET, created_by=coordinator)
    result = dataset_import_run(
        batch=batch,
        root=root,
        options=DatasetOptions(name="Synthetic PNG", layout="manifest", release=True),
        requested_by=coordinator,
    )
    assert [o.status for o in result.outcomes] == ["imported"]

    viewer = viewer_page_for(coordinator)
    viewer.open(viewer_path(Study.objects.get(dataset_study_id="png-1")))
    viewer.wait_for_render()
    viewer.screenshot("png-dataset")
    assert_drawn(viewer.canvas_stats(0))
    image = decoded(viewer)
    assert image["length"] == pixels.size
    assert image["sample"] == pixels.ravel()[::SAMPLE_STRIDE].tolist()
    assert_clean_console(viewer)
