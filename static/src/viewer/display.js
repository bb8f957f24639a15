// Window/level, invert and zoom as the radiologist sees them: the presets' windows, the 1:1
// zoom, and each tile's overlay (window, zoom, slice, loading count).
import { viewportOf } from "./tiles.js";

export function isInverted(v, viewport, tile = v.state.tiles.find((t) => viewportOf(v, t) === viewport)) {
  if (!tile?.initial) return false;
  return Boolean(viewport.getProperties()?.invert) !== tile.initial.invert;
}

// The grey levels an image spans, in the units its window is given in.
function pixelRange(tile, image) {
  if (tile.range?.imageId === image.imageId) return tile.range;
  const pixels = image.getPixelData();
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pixels.length; i += 1) {
    const value = pixels[i];
    if (value < min) min = value;
    if (value > max) max = value;
  }
  const scaled = image.preScale?.scaled;
  const slope = scaled ? 1 : image.slope ?? 1;
  const intercept = scaled ? 0 : image.intercept ?? 0;
  tile.range = { imageId: image.imageId, lower: min * slope + intercept, upper: max * slope + intercept };
  return tile.range;
}

/** The window a preset (keymap.js) gives this tile's image, or null when it has none. */
export function presetRange(v, preset, viewport, tile) {
  if (preset.width) return v.cs.utilities.windowLevel.toLowHighRange(preset.width, preset.center);
  const initial = tile.initial?.voiRange;
  if (preset.kind === "full") {
    const { lower, upper } = pixelRange(tile, viewport.getCornerstoneImage());
    return { lower, upper: Math.max(upper, lower + 1) };
  }
  if (!initial) return null;
  if (preset.kind === "initial") return { ...initial };
  const centre = (initial.lower + initial.upper) / 2;
  const half = ((initial.upper - initial.lower) * preset.factor) / 2;
  return { lower: centre - half, upper: centre + half };
}

export function zoomPercent(viewport) {
  // Device pixels per image pixel, so 100% is the 1:1 the radiologist asks for.
  if (!viewport.getCornerstoneImage?.()) return null;
  const camera = viewport.getCamera();
  const spacing = viewport.getImageData()?.spacing?.[1] || 1;
  if (!camera?.parallelScale || !viewport.canvas?.height) return null;
  return (viewport.canvas.height / (2 * camera.parallelScale)) * spacing * 100;
}

/** The camera scale at which one image pixel is one device pixel. */
export function actualSizeScale(viewport) {
  const spacing = viewport.getImageData()?.spacing?.[1] || 1;
  return (viewport.canvas.height * spacing) / 2;
}

export function overlayUpdate(v, tile) {
  const viewport = viewportOf(v, tile);
  if (!viewport) return;
  const props = viewport.getProperties();
  const lines = tile.overlay;
  if (props?.voiRange) {
    const { windowWidth, windowCenter } = v.cs.utilities.windowLevel.toWindowLevel(props.voiRange.lower, props.voiRange.upper);
    lines.wl.textContent = `W ${Math.round(windowWidth)} L ${Math.round(windowCenter)}${isInverted(v, viewport, tile) ? " · inverted" : ""}`;
  }
  const zoom = zoomPercent(viewport);
  lines.zoom.textContent = zoom ? `Zoom ${zoom >= 10 ? Math.round(zoom) : zoom.toFixed(1)}%` : "";
  const count = viewport.getImageIds().length;
  const index = viewport.getCurrentImageIdIndex();
  tile.imageIndex = index;
  lines.slice.textContent = count > 1 ? `Image ${index + 1} / ${count}` : "";
  lines.loaded.textContent = count > 1 && v.state.stackLoaded < count ? `Loading ${v.state.stackLoaded} / ${count}` : "";
}

/** Keep each tile's overlay in step with its viewport; returns the function that stops it. */
export function overlaysListen(v) {
  const { Events } = v.cs.Enums;
  const onTileChanged = (event) => {
    const tile = v.state.tiles.find((t) => t.canvasHost === event.target);
    if (tile) overlayUpdate(v, tile);
  };
  // Dispatched on each viewport element, and they do not bubble.
  const names = [Events.VOI_MODIFIED, Events.CAMERA_MODIFIED, Events.STACK_NEW_IMAGE];
  for (const name of names) v.ui.tilesBox.addEventListener(name, onTileChanged, true);
  return () => {
    for (const name of names) v.ui.tilesBox.removeEventListener(name, onTileChanged, true);
  };
}

/** What a tile shows, for tests and the benchmark (no patient data). */
export function tileSnapshot(v, tile, utilities) {
  const viewport = viewportOf(v, tile);
  const props = viewport?.getProperties() ?? {};
  const wl = props.voiRange && utilities ? utilities.windowLevel.toWindowLevel(props.voiRange.lower, props.voiRange.upper) : {};
  return {
    imageIndex: viewport?.getCurrentImageIdIndex() ?? null,
    imageCount: viewport?.getImageIds().length ?? 0,
    windowWidth: wl.windowWidth ?? null,
    windowCenter: wl.windowCenter ?? null,
    // Inverted from the opening display (what the overlay says), and Cornerstone's own flag
    // (true for a MONOCHROME1 image as it opens).
    invert: viewport ? isInverted(v, viewport, tile) : false,
    invertFlag: Boolean(props.invert),
    zoomPercent: viewport ? zoomPercent(viewport) : null,
    pan: viewport?.getPan?.() ?? null,
    label: tile.overlay.label.textContent,
  };
}
