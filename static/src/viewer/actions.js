// What each toolbar button and viewer key does (keymap.js names the actions): presets,
// invert, reset, zoom, slices, series and the help panel, on the active tile.
import { helpToggle } from "./chrome.js";
import { actualSizeScale, presetRange, zoomPercent } from "./display.js";
import { stackShow, tileActive, viewportOf } from "./tiles.js";

const PAGE_STEP = 10;
// Each zoom key press or button: a quarter more or less magnification.
const ZOOM_STEP = 1.25;

function withViewport(v, fn) {
  const tile = tileActive(v);
  const viewport = tile && viewportOf(v, tile);
  if (!viewport?.getCornerstoneImage?.()) return;
  fn(viewport, tile);
  viewport.render();
}

function scrollTo(v, target) {
  withViewport(v, (viewport) => {
    const count = viewport.getImageIds().length;
    const index = Math.max(0, Math.min(count - 1, target(viewport.getCurrentImageIdIndex(), count)));
    if (index !== viewport.getCurrentImageIdIndex()) viewport.setImageIdIndex(index);
  });
}

/** Show another series of the study; the radiologist is told if it cannot be. */
export function seriesShow(v, index) {
  stackShow(v, index).catch(() => v.fail("This series could not be shown."));
}

const SCROLLS = {
  previous: (i) => i - 1,
  next: (i) => i + 1,
  "page-up": (i) => i - PAGE_STEP,
  "page-down": (i) => i + PAGE_STEP,
  first: () => 0,
  last: (_, n) => n - 1,
};

/** Do ``action``; false when it does not apply (its key is then left to the page). */
export function actionRun(v, action) {
  if (action.startsWith("preset:")) {
    const preset = v.presets.find((p) => p.key === action.slice(7));
    if (!preset) return false;
    withViewport(v, (viewport, tile) => {
      const voiRange = presetRange(v, preset, viewport, tile);
      if (voiRange) viewport.setProperties({ voiRange });
    });
    return true;
  }
  if (action in SCROLLS) {
    scrollTo(v, SCROLLS[action]);
    return true;
  }
  switch (action) {
    case "invert":
      withViewport(v, (viewport) => viewport.setProperties({ invert: !viewport.getProperties().invert }));
      return true;
    case "reset":
      withViewport(v, (viewport, tile) => {
        // Not resetProperties(): on the GPU path it restores the transfer function recorded
        // before Cornerstone inverted a MONOCHROME1 image while keeping its invert flag, so
        // the film turned into a negative that the flag (and the overlay) called positive.
        // Setting the opening window and invert back keeps flag and picture in step.
        if (tile.initial) {
          viewport.setProperties({
            ...(tile.initial.voiRange ? { voiRange: { ...tile.initial.voiRange } } : {}),
            invert: tile.initial.invert,
          });
        } else {
          viewport.resetProperties();
        }
        viewport.resetCamera();
      });
      return true;
    case "zoom-in":
    case "zoom-out":
      withViewport(v, (viewport) => {
        const camera = viewport.getCamera();
        const factor = action === "zoom-in" ? 1 / ZOOM_STEP : ZOOM_STEP;
        if (camera?.parallelScale) viewport.setCamera({ parallelScale: camera.parallelScale * factor });
      });
      return true;
    case "actual-size":
      withViewport(v, (viewport) => {
        const zoom = zoomPercent(viewport);
        if (zoom && Math.abs(zoom - 100) < 0.5) viewport.resetCamera();
        else viewport.setCamera({ parallelScale: actualSizeScale(viewport) });
      });
      return true;
    case "previous-series":
    case "next-series": {
      const { state } = v;
      if (state.mode !== "stack" || state.series.length < 2) return false;
      const step = action === "next-series" ? 1 : -1;
      seriesShow(v, (state.seriesIndex + step + state.series.length) % state.series.length);
      return true;
    }
    case "help":
      helpToggle(v.ui);
      return true;
    case "close-help":
      if (v.ui.help.hidden) document.activeElement?.blur();
      else helpToggle(v.ui, false);
      return true;
    default:
      return false;
  }
}
