// The tiles and their Cornerstone viewports: one stack viewport a tile (each radiograph of a
// study side by side, or one tile scrolling a CT or MR series), the rendering engine and the
// mouse tools bound to them.
import { stackStart } from "./dicomweb.js";
import { el } from "./dom.js";

// One rendering engine for the page, made when the first viewer has tiles: it owns the WebGL
// contexts (setup.js sizes its pool), which cost main-thread time to create, so the reading
// page's next case enables its viewports on the engine of the case before instead of building
// another. Each viewer's viewports are named after the viewer (v.id).
let pageEngine = null;

function pageRenderingEngine(cs) {
  pageEngine ??= new cs.RenderingEngine("radreview-viewers");
  return pageEngine;
}

export function viewportOf(v, tile) {
  return tile && v.renderingEngine?.getViewport(tile.viewportId);
}

export function tileActive(v) {
  return v.state.tiles[v.state.activeTile] ?? v.state.tiles[0];
}

export function tileActivate(v, index) {
  v.state.activeTile = index;
  for (const tile of v.state.tiles) tile.element.classList.toggle("viewer-tile-active", tile.index === index);
}

/** A new tile with its overlay lines (label top left); its viewport comes with tilesEnable. */
export function tileMake(v, label) {
  const index = v.state.tiles.length;
  const viewportId = `${v.id}-vp${index}`;
  const canvasHost = el("div", { class: "viewer-canvas" });
  const overlay = {
    label: el("span", { class: "viewer-ov viewer-ov-tl", text: label }),
    slice: el("span", { class: "viewer-ov viewer-ov-tr" }),
    loaded: el("span", { class: "viewer-ov viewer-ov-tr2" }),
    wl: el("span", { class: "viewer-ov viewer-ov-bl" }),
    zoom: el("span", { class: "viewer-ov viewer-ov-br" }),
  };
  const tileEl = el("div", { class: "viewer-tile", dataset: { tile: String(index) } }, canvasHost, ...Object.values(overlay));
  v.ui.tilesBox.append(tileEl);
  const tile = { index, viewportId, element: tileEl, canvasHost, overlay, imageIds: [], imageIndex: 0 };
  tileEl.addEventListener("pointerdown", () => tileActivate(v, index));
  tileEl.addEventListener("pointerenter", () => tileActivate(v, index));
  v.state.tiles.push(tile);
  return tile;
}

/** Give every tile its viewport, and the viewports the mouse tools (keymap.js's MOUSE). */
export function tilesEnable(v) {
  const { Enums, ToolGroupManager, TOOL_NAMES } = v.cs;
  const { MouseBindings, KeyboardBindings } = v.cs.ToolEnums;
  v.renderingEngine = pageRenderingEngine(v.cs);
  for (const tile of v.state.tiles) {
    v.renderingEngine.enableElement({
      viewportId: tile.viewportId,
      type: Enums.ViewportType.STACK,
      element: tile.canvasHost,
      defaultOptions: { background: [0, 0, 0] },
    });
  }
  // Cornerstone makes each viewport element focusable (tabindex -1) and cancels every key
  // pressed on it, Tab included: a click or drag on the image then trapped the keyboard
  // there. A click now focuses the viewer itself, whose keys are ours (input.js); the tools
  // read Shift for the magnifier from the mouse event, not from that listener.
  for (const tile of v.state.tiles) tile.canvasHost.removeAttribute("tabindex");
  const toolGroup = ToolGroupManager.createToolGroup(`${v.id}-tools`);
  v.toolGroup = toolGroup;
  for (const name of Object.values(TOOL_NAMES)) toolGroup.addTool(name);
  toolGroup.setToolActive(TOOL_NAMES.windowLevel, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  toolGroup.setToolActive(TOOL_NAMES.pan, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  toolGroup.setToolActive(TOOL_NAMES.zoom, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  toolGroup.setToolActive(TOOL_NAMES.stackScroll, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  toolGroup.setToolActive(TOOL_NAMES.magnify, {
    bindings: [{ mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift }],
  });
  for (const tile of v.state.tiles) toolGroup.addViewport(tile.viewportId, v.renderingEngine.id);
}

/** The viewports follow the size of the tiles box; returns the function that stops it. */
export function tilesObserve(v) {
  const resizeObserver = new ResizeObserver(() => {
    v.renderingEngine?.resize(true, true);
  });
  resizeObserver.observe(v.ui.tilesBox);
  return () => resizeObserver.disconnect();
}

/** The viewer's tools and viewports go; the page's rendering engine stays for the next one. */
export function tilesDestroy(v) {
  if (v.toolGroup) v.cs.ToolGroupManager.destroyToolGroup(v.toolGroup.id);
  const engine = v.renderingEngine;
  if (!engine) return;
  for (const tile of v.state.tiles) if (engine.getViewport(tile.viewportId)) engine.disableElement(tile.viewportId);
  v.renderingEngine = null;
}

// What a tile showed when its image opened (the file's window, and Cornerstone's own invert
// for MONOCHROME1): Reset returns to exactly this, and "inverted" is measured from it.
export function initialRemember(v, tile) {
  const props = viewportOf(v, tile)?.getProperties() ?? {};
  tile.initial = { voiRange: props.voiRange ? { ...props.voiRange } : null, invert: Boolean(props.invert) };
}

/** Each radiograph on its own tile, once its first decode is asked for (``first``). */
export async function projectionShow(v, images, first) {
  await first;
  await Promise.all(
    images.map(async (image, index) => {
      const tile = v.state.tiles[index];
      const viewport = viewportOf(v, tile);
      tile.imageIds = [image.imageId];
      v.state.marks.setStack ??= performance.now();
      await viewport.setStack([image.imageId], 0);
      initialRemember(v, tile);
      viewport.render();
    }),
  );
}

/** Show series ``seriesIndex`` of the study on the one tile of a stack, from its middle. */
export async function stackShow(v, seriesIndex) {
  const { state } = v;
  const series = state.series[seriesIndex];
  state.seriesIndex = seriesIndex;
  v.ui.seriesSelect.value = String(seriesIndex);
  const tile = state.tiles[0];
  tile.overlay.label.textContent = [series.modality, series.number != null ? `Series ${series.number}` : ""]
    .filter(Boolean)
    .join(" · ");
  const imageIds = series.images.map((image) => image.imageId);
  tile.imageIds = imageIds;
  const start = stackStart(imageIds);
  v.loading.stackSet(imageIds);
  // The rest of the stack is fetched while the first slice is decoded and drawn.
  const first = v.loading.decodeFirst([imageIds[start]]);
  v.loading.prefetch(imageIds, start);
  await first;
  state.marks.setStack ??= performance.now();
  const viewport = viewportOf(v, tile);
  await viewport.setStack(imageIds, start);
  initialRemember(v, tile);
  viewport.render();
  v.loading.stackCheckLoaded();
}
