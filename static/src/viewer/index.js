// mountViewer(element): the DICOM viewer of the reading page and of the standalone study page.
// This folder is the only code that touches Cornerstone3D.
import "../../css/viewer.css";
import { ViewerLoadError, firstImages, seriesLabel, stackStart, studyFetch, studyLayout } from "./dicomweb.js";
import { earlyStart } from "./early.js";
import { FrameFetcher } from "./frames.js";
import { FORM_KEYS } from "../lib/form_keys.js";
import { MOUSE, actionFor, keyName, keysFor, presetsFor } from "./keymap.js";

export { CT_PRESETS, MOUSE, PROJECTION_PRESETS } from "./keymap.js";

// Cornerstone (3.6 MB with its codecs) is imported on first mount, in parallel with the study's
// metadata and first frames, so the first image does not wait for the bundle before asking for
// them.
let Enums;
let RenderingEngine;
let eventTarget;
let imageLoadPoolManager;
let imageLoader;
let cache;
let csUtils;
let ToolGroupManager;
let MouseBindings;
let KeyboardBindings;
let TOOL_NAMES;
let studyRegister;
let framesProvide;

async function cornerstoneLoad() {
  const engine = await import("./setup.js");
  await engine.cornerstoneReady();
  ({ Enums, RenderingEngine, eventTarget, imageLoadPoolManager, imageLoader, cache, ToolGroupManager } = engine);
  csUtils = engine.utilities;
  ({ MouseBindings, KeyboardBindings } = engine.ToolEnums);
  ({ TOOL_NAMES, studyRegister, framesProvide } = engine);
}
const PAGE_STEP = 10;
// Each zoom key press or button: a quarter more or less magnification.
const ZOOM_STEP = 1.25;
const PREFETCH_ATTEMPTS = 3;
const PREFETCH_RETRY_MS = 500;
const LOADING_OVERLAY_MS = 250;
const EARLY_WAIT_MAX_MS = 1500;
let mountCounter = 0;

function nearestFirst(imageIds, fromIndex) {
  return imageIds
    .map((imageId, index) => ({ imageId, distance: Math.abs(index - fromIndex) }))
    .sort((a, b) => a.distance - b.distance)
    .map(({ imageId }) => imageId);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, val] of Object.entries(attrs)) {
    if (name === "text") node.textContent = val;
    else if (name === "dataset") Object.assign(node.dataset, val);
    else node.setAttribute(name, val);
  }
  for (const child of children) node.append(child);
  return node;
}

function isEditable(node) {
  if (!node || node === document.body) return false;
  return node.isContentEditable || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(node.tagName);
}

function keyTable(entries) {
  return el(
    "table",
    {},
    el("tbody", {}, ...entries.map((k) => el("tr", {}, el("th", { text: k.keys.map(keyName).join(" / ") }), el("td", { text: k.label })))),
  );
}

// Shared keyboard (the reading page): one help for the whole page, the form's keys first.
function buildHelp(container, keys, { shared }) {
  const parts = shared
    ? [
        el("h2", { text: "Keyboard" }),
        el("p", {
          text: "Answer keys always go to the form, wherever you clicked or dragged last; the viewer's keys work whenever you are not typing in a box.",
        }),
        el("h3", { text: "Answering" }),
        keyTable(FORM_KEYS),
        el("h3", { text: "Images" }),
      ]
    : [
        el("h2", { text: "Viewer shortcuts" }),
        el("p", { text: "Keys act while the viewer has the keyboard: click an image to give it, press Tab to leave." }),
      ];
  container.replaceChildren(
    ...parts,
    keyTable(keys),
    el(
      "table",
      {},
      el("tbody", {}, ...MOUSE.map(([what, does]) => el("tr", {}, el("th", { text: what }), el("td", { text: does })))),
    ),
  );
}

/**
 * Mount the viewer on an element carrying data-dicomweb-root and data-study-uid; returns
 * { destroy() }. Mounting the same element twice returns the first handle.
 */
export function mountViewer(element, { sharedKeys = element.hasAttribute("data-viewer-shared-keys") } = {}) {
  if (element.viewerHandle) return element.viewerHandle;
  const shared = sharedKeys;
  let presets = presetsFor("stack");
  let keys = keysFor(presets, { shared });
  mountCounter += 1;
  const id = `radreview-viewer-${mountCounter}`;
  const root = element.dataset.dicomwebRoot || "/dicomweb";
  const studyUid = element.dataset.studyUid;
  const abort = new AbortController();
  const cleanups = [];
  const state = {
    mode: null,
    series: [],
    seriesIndex: -1,
    tiles: [],
    activeTile: 0,
    firstRenderAt: null, // Cornerstone drew: the viewer is interactive
    firstImageAt: null, // the first image is on screen (the early image, or Cornerstone's)
    stackLoadedAt: null,
    marks: {},
    stackLoaded: 0,
    errors: [],
    earlyDrawn: null,
    destroyed: false,
  };

  element.classList.add("viewer", "viewer-mounted");
  if (!element.hasAttribute("tabindex")) element.tabIndex = 0;
  element.setAttribute("role", "application");
  element.setAttribute("aria-label", "Image viewer");

  const seriesSelect = el("select", { class: "viewer-series", "aria-label": "Series", hidden: "" });
  // Filled once the study's modality is known: radiographs and CT get different presets.
  const presetBox = el("span", { class: "viewer-presets" });
  const toolbar = el(
    "div",
    { class: "viewer-toolbar", role: "toolbar", "aria-label": "Viewer tools" },
    seriesSelect,
    presetBox,
    el("button", { type: "button", dataset: { action: "invert" }, title: "Invert (i)", text: "Invert" }),
    el("button", { type: "button", dataset: { action: "zoom-out" }, title: "Zoom out (-)", "aria-label": "Zoom out", text: "−" }),
    el("button", { type: "button", dataset: { action: "zoom-in" }, title: "Zoom in (+)", "aria-label": "Zoom in", text: "+" }),
    el("button", { type: "button", dataset: { action: "actual-size" }, title: "1:1 pixels (z)", text: "1:1" }),
    el("button", { type: "button", dataset: { action: "reset" }, title: "Reset (Space)", text: "Reset" }),
    el("button", { type: "button", dataset: { action: "help" }, title: "Shortcuts (?)", "aria-expanded": "false", text: "?" }),
  );
  const tilesBox = el("div", { class: "viewer-tiles" });
  const status = el("div", { class: "viewer-status", role: "status", "aria-live": "polite", text: "Loading images…" });
  let help = element.querySelector("[data-viewer-help]");
  const helpWasServerRendered = Boolean(help);
  if (!help) help = el("aside", { class: "viewer-help", "data-viewer-help": "" });
  help.hidden = true;
  buildHelp(help, keys, { shared });
  element.replaceChildren(toolbar, tilesBox, status, help);

  // Created once Cornerstone is initialised (its constructor requires it).
  let renderingEngine = null;
  let cornerstoneStarted = false;
  const fetcher = new FrameFetcher({ signal: abort.signal, onSettled: (imageId) => onFrameSettled(imageId) });
  let toolGroup = null;
  let early = null; // the early image (early.js) until Cornerstone has drawn every tile
  const viewportOf = (tile) => tile && renderingEngine?.getViewport(tile.viewportId);

  function setStatus(text, isError = false) {
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle("viewer-error", isError);
  }

  function fail(message) {
    state.errors.push(message);
    setStatus(message, true);
    earlyFinish(); // the message must be seen, not an image that cannot be worked with
  }

  // The early image (early.js) is removed, and its worker ended, once Cornerstone has drawn.
  function earlyFinish() {
    if (!early) return;
    if (early.marks.firstFetched != null) state.marks.firstFetched ??= early.marks.firstFetched;
    early.finish();
    early = null;
  }

  function activeTile() {
    return state.tiles[state.activeTile] ?? state.tiles[0];
  }

  function presetsShow(mode) {
    presets = presetsFor(mode);
    keys = keysFor(presets, { shared });
    presetBox.replaceChildren(
      ...presets.map((p) => {
        const key = shared ? `Shift+${p.key}` : p.key;
        return el("button", { type: "button", class: "viewer-preset", title: `${p.label ?? p.name} (${key})`, dataset: { preset: p.key }, text: p.name });
      }),
    );
    buildHelp(help, keys, { shared });
  }

  // What a tile showed when its image opened (the file's window, and Cornerstone's own invert
  // for MONOCHROME1): Reset returns to exactly this, and "inverted" is measured from it.
  function initialRemember(tile) {
    const props = viewportOf(tile)?.getProperties() ?? {};
    tile.initial = { voiRange: props.voiRange ? { ...props.voiRange } : null, invert: Boolean(props.invert) };
  }

  function isInverted(viewport, tile = state.tiles.find((t) => viewportOf(t) === viewport)) {
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
      const v = pixels[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const scaled = image.preScale?.scaled;
    const slope = scaled ? 1 : image.slope ?? 1;
    const intercept = scaled ? 0 : image.intercept ?? 0;
    tile.range = { imageId: image.imageId, lower: min * slope + intercept, upper: max * slope + intercept };
    return tile.range;
  }

  function presetRange(preset, viewport, tile) {
    if (preset.width) return csUtils.windowLevel.toLowHighRange(preset.width, preset.center);
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

  function zoomPercent(viewport) {
    // Device pixels per image pixel, so 100% is the 1:1 the radiologist asks for.
    if (!viewport.getCornerstoneImage?.()) return null;
    const camera = viewport.getCamera();
    const spacing = viewport.getImageData()?.spacing?.[1] || 1;
    if (!camera?.parallelScale || !viewport.canvas?.height) return null;
    return (viewport.canvas.height / (2 * camera.parallelScale)) * spacing * 100;
  }

  function updateOverlay(tile) {
    const viewport = viewportOf(tile);
    if (!viewport) return;
    const props = viewport.getProperties();
    const lines = tile.overlay;
    if (props?.voiRange) {
      const { windowWidth, windowCenter } = csUtils.windowLevel.toWindowLevel(props.voiRange.lower, props.voiRange.upper);
      lines.wl.textContent = `W ${Math.round(windowWidth)} L ${Math.round(windowCenter)}${isInverted(viewport, tile) ? " · inverted" : ""}`;
    }
    const zoom = zoomPercent(viewport);
    lines.zoom.textContent = zoom ? `Zoom ${zoom >= 10 ? Math.round(zoom) : zoom.toFixed(1)}%` : "";
    const count = viewport.getImageIds().length;
    const index = viewport.getCurrentImageIdIndex();
    tile.imageIndex = index;
    lines.slice.textContent = count > 1 ? `Image ${index + 1} / ${count}` : "";
    lines.loaded.textContent =
      count > 1 && state.stackLoaded < count ? `Loading ${state.stackLoaded} / ${count}` : "";
  }

  function makeTile(label) {
    const index = state.tiles.length;
    const viewportId = `${id}-vp${index}`;
    const canvasHost = el("div", { class: "viewer-canvas" });
    const overlay = {
      label: el("span", { class: "viewer-ov viewer-ov-tl", text: label }),
      slice: el("span", { class: "viewer-ov viewer-ov-tr" }),
      loaded: el("span", { class: "viewer-ov viewer-ov-tr2" }),
      wl: el("span", { class: "viewer-ov viewer-ov-bl" }),
      zoom: el("span", { class: "viewer-ov viewer-ov-br" }),
    };
    const tileEl = el("div", { class: "viewer-tile", dataset: { tile: String(index) } }, canvasHost, ...Object.values(overlay));
    tilesBox.append(tileEl);
    const tile = { index, viewportId, element: tileEl, canvasHost, overlay, imageIds: [], imageIndex: 0 };
    tileEl.addEventListener("pointerdown", () => setActiveTile(index));
    tileEl.addEventListener("pointerenter", () => setActiveTile(index));
    state.tiles.push(tile);
    return tile;
  }

  function setActiveTile(index) {
    state.activeTile = index;
    for (const tile of state.tiles) tile.element.classList.toggle("viewer-tile-active", tile.index === index);
  }

  function enableTiles() {
    renderingEngine = new RenderingEngine(id);
    renderingEngine.setViewports(
      state.tiles.map((tile) => ({
        viewportId: tile.viewportId,
        type: Enums.ViewportType.STACK,
        element: tile.canvasHost,
        defaultOptions: { background: [0, 0, 0] },
      })),
    );
    // Cornerstone makes each viewport element focusable (tabindex -1) and cancels every key
    // pressed on it, Tab included: a click or drag on the image then trapped the keyboard
    // there. A click now focuses the viewer itself, whose keys are ours (onKeyDown); the tools
    // read Shift for the magnifier from the mouse event, not from that listener.
    for (const tile of state.tiles) tile.canvasHost.removeAttribute("tabindex");
    toolGroup = ToolGroupManager.createToolGroup(`${id}-tools`);
    for (const name of Object.values(TOOL_NAMES)) toolGroup.addTool(name);
    toolGroup.setToolActive(TOOL_NAMES.windowLevel, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    toolGroup.setToolActive(TOOL_NAMES.pan, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    toolGroup.setToolActive(TOOL_NAMES.zoom, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    toolGroup.setToolActive(TOOL_NAMES.stackScroll, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    toolGroup.setToolActive(TOOL_NAMES.magnify, {
      bindings: [{ mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift }],
    });
    for (const tile of state.tiles) toolGroup.addViewport(tile.viewportId, id);
  }

  function onRendered(event) {
    const tile = state.tiles.find((t) => t.canvasHost === event.target);
    if (!tile) return;
    if (state.firstRenderAt === null && viewportOf(tile)?.getCornerstoneImage?.()) {
      state.firstRenderAt = performance.now();
      state.firstImageAt ??= state.firstRenderAt;
      setStatus("");
      prefetchDeferred?.();
      prefetchDeferred = null;
    }
    // Swapped in the frame Cornerstone's canvases were drawn in, so no frame shows neither.
    if (early && state.tiles.every((t) => viewportOf(t)?.getCornerstoneImage?.())) earlyFinish();
    updateOverlay(tile);
  }

  // Prefetch the whole stack, nearest slices first: the frames are fetched (frames.js) and each
  // is decoded as it arrives, at prefetch priority so that the slice the radiologist scrolls to
  // always jumps the queue (the loader fetches that one itself if it is not here yet).
  //
  // Until the first image is drawn the stack is only fetched, not decoded: the frames already
  // here when Cornerstone starts are many (twenty a request), and decoding them at once kept
  // the decode workers and the main thread from the first image (interactive 0.2-0.3 s later).
  let prefetchDeferred = null;
  function prefetch(imageIds, fromIndex) {
    if (state.firstRenderAt === null) {
      prefetchDeferred = () => prefetch(imageIds, fromIndex);
      return;
    }
    imageLoadPoolManager.clearRequestStack(Enums.RequestType.Prefetch);
    const order = nearestFirst(imageIds, fromIndex);
    fetcher.queue(order, { skip: isLoading });
    // Frames fetched before Cornerstone was ready are decoded now, nearest first.
    for (const imageId of order) if (fetcher.has(imageId)) prefetchOne(imageId, PREFETCH_ATTEMPTS);
  }

  function isLoading(imageId) {
    return Boolean(cache?.getImageLoadObject(imageId));
  }

  // Every fetched frame of the stack is decoded; one the fetch failed for is left to the loader;
  // one of a series no longer shown is dropped.
  function onFrameSettled(imageId) {
    if (!cornerstoneStarted || state.destroyed) return;
    if (firstIds.has(imageId)) decodeNow(imageId);
    else if (stackIds.has(imageId)) {
      if (state.firstRenderAt !== null) prefetchOne(imageId, PREFETCH_ATTEMPTS); // else: prefetch()
    } else fetcher.take(imageId);
  }

  // A busy server may drop a frame request; try again before telling the radiologist.
  function prefetchOne(imageId, attemptsLeft) {
    if (isLoading(imageId)) {
      fetcher.take(imageId); // the loader fetched it itself (a scroll got there first)
      return;
    }
    imageLoadPoolManager.addRequest(
      () =>
        imageLoader
          .loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch })
          .catch(() => {
            if (state.destroyed || !stackIds.has(imageId)) return;
            if (attemptsLeft > 1) {
              setTimeout(() => prefetchOne(imageId, attemptsLeft - 1), PREFETCH_RETRY_MS);
            } else {
              fail("Some images of this series could not be loaded; reload the page to try again.");
            }
          }),
      Enums.RequestType.Prefetch,
      { imageId },
    );
  }

  const loadedIds = new Set();
  let stackIds = new Set();
  function trackLoaded(imageId) {
    if (!stackIds.has(imageId) || loadedIds.has(imageId)) return;
    loadedIds.add(imageId);
    state.stackLoaded = loadedIds.size;
    if (state.stackLoaded === stackIds.size && state.stackLoadedAt === null) {
      state.stackLoadedAt = performance.now();
      element.dispatchEvent(new CustomEvent("viewer:stack-loaded", { detail: { count: stackIds.size } }));
    }
    overlaysUpdateSoon();
  }
  // Hundreds of images load per second: the "Loading n / N" line is redrawn a few times a
  // second, not once per image (each redraw repaints and composites the page).
  let overlaysPending = false;
  function overlaysUpdateSoon() {
    if (overlaysPending) return;
    overlaysPending = true;
    const update = () => {
      overlaysPending = false;
      if (!state.destroyed) for (const tile of state.tiles) updateOverlay(tile);
    };
    if (state.stackLoadedAt !== null) update();
    else setTimeout(update, LOADING_OVERLAY_MS);
  }
  const onImageLoaded = (event) => {
    state.marks.firstDecoded ??= performance.now();
    trackLoaded(event.detail?.image?.imageId);
  };
  // Prefetch failures are retried (prefetchOne); an image on screen that fails is reported now.
  const onImageLoadFailed = (event) => {
    const imageId = event.detail?.imageId;
    const onScreen = state.tiles.some((tile) => viewportOf(tile)?.getCurrentImageId?.() === imageId);
    if (onScreen) fail("An image of this study could not be loaded or decoded.");
  };

  function listenToCornerstone() {
    eventTarget.addEventListener(Enums.Events.IMAGE_LOADED, onImageLoaded);
    eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_FAILED, onImageLoadFailed);
    // IMAGE_RENDERED and the rest are dispatched on each viewport element and do not bubble.
    tilesBox.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered, true);
    const tileEvents = [Enums.Events.VOI_MODIFIED, Enums.Events.CAMERA_MODIFIED, Enums.Events.STACK_NEW_IMAGE];
    for (const name of tileEvents) tilesBox.addEventListener(name, onTileChanged, true);
    cleanups.push(() => {
      eventTarget.removeEventListener(Enums.Events.IMAGE_LOADED, onImageLoaded);
      eventTarget.removeEventListener(Enums.Events.IMAGE_LOAD_FAILED, onImageLoadFailed);
      tilesBox.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered, true);
      for (const name of tileEvents) tilesBox.removeEventListener(name, onTileChanged, true);
    });
  }
  function onTileChanged(event) {
    const tile = state.tiles.find((t) => t.canvasHost === event.target);
    if (tile) updateOverlay(tile);
  }

  async function showStack(seriesIndex) {
    const series = state.series[seriesIndex];
    state.seriesIndex = seriesIndex;
    seriesSelect.value = String(seriesIndex);
    const tile = state.tiles[0];
    tile.overlay.label.textContent = [series.modality, series.number != null ? `Series ${series.number}` : ""]
      .filter(Boolean)
      .join(" · ");
    const imageIds = series.images.map((image) => image.imageId);
    tile.imageIds = imageIds;
    stackIds = new Set(imageIds);
    loadedIds.clear();
    state.stackLoaded = 0;
    state.stackLoadedAt = null;
    for (const imageId of imageIds) if (cache.getImage(imageId)) loadedIds.add(imageId);
    state.stackLoaded = loadedIds.size;
    const viewport = viewportOf(tile);
    const start = stackStart(imageIds);
    // The rest of the stack is fetched while the first slice is decoded and drawn.
    const first = decodeFirst([imageIds[start]]);
    prefetch(imageIds, start);
    await first;
    state.marks.setStack ??= performance.now();
    await viewport.setStack(imageIds, start);
    initialRemember(tile);
    viewport.render();
    if (loadedIds.size === imageIds.length) trackLoaded(null);
  }

  // The images drawn first are decoded as soon as their bytes are here (onFrameSettled), ahead
  // of the stack's prefetch and while the main thread sets the viewports up; resolves once all
  // are asked for.
  const firstIds = new Set();
  async function decodeFirst(imageIds) {
    for (const imageId of imageIds) {
      firstIds.add(imageId);
      if (fetcher.has(imageId)) decodeNow(imageId);
    }
    await Promise.all(imageIds.map((imageId) => fetcher.settled(imageId).then(() => decodeNow(imageId))));
  }

  function decodeNow(imageId) {
    if (state.destroyed) return;
    if (isLoading(imageId)) {
      fetcher.take(imageId);
      return;
    }
    state.marks.firstDecodeAsked ??= performance.now();
    imageLoader
      .loadAndCacheImage(imageId, { priority: -5, requestType: Enums.RequestType.Interaction })
      .catch(() => {}); // reported by onImageLoadFailed once the image is on screen
  }

  function onEarlyDrawn() {
    if (!early || state.destroyed) return;
    state.marks.earlyDecoded = early.marks.earlyDecoded;
    state.marks.earlyDrawn = early.drawnAt;
    for (const [name, at] of Object.entries(early.marks)) state.marks[name] ??= at;
    state.earlyDrawn = early.drawn;
    state.earlyRequests = early.requests;
    state.firstImageAt ??= early.drawnAt;
    if (state.errors.length === 0) setStatus("");
  }

  async function start() {
    state.marks.start = performance.now();
    early = earlyStart({ root, studyUid, host: tilesBox, signal: abort.signal });
    // The engine's evaluation holds this thread for about a second, and the early image needs
    // it to start its worker and present its canvas (early.worker.js): the image first, then
    // the engine (already fetched and compiled: <link rel=modulepreload>). Bounded, so that a
    // slow server or a large image never delays the interactive viewer by more than that.
    const engineAfter = early ? early.settled(EARLY_WAIT_MAX_MS) : Promise.resolve();
    if (early) early.onDrawn = onEarlyDrawn;
    const cornerstone = engineAfter.then(cornerstoneLoad).then(() => {
      state.marks.cornerstoneReady = performance.now();
    });
    cornerstone.catch(() => {}); // awaited below; not "unhandled" if the headers fail first
    let series = null;
    if (early) {
      try {
        series = await early.series;
        state.marks.metadataFetched = early.marks.metadataFetched;
      } catch (error) {
        if (error instanceof ViewerLoadError) throw error;
        earlyFinish(); // the worker broke: the page fetches the headers itself
      }
    }
    if (!series) {
      series = await studyFetch({ root, studyUid, signal: abort.signal });
      state.marks.metadataFetched = performance.now();
    }
    state.marks.seriesReceived = performance.now();
    const layout = studyLayout(series);
    // The worker fetches the first images itself; the fetcher waits for its bytes.
    if (early) for (const image of firstImages(layout)) fetcher.adopt(image.imageId, early.frame(image.imageId));
    // The frames shown first are fetched while Cornerstone is still loading.
    if (layout.mode === "projection") {
      fetcher.queue(layout.images.map((image) => image.imageId));
    } else {
      const imageIds = layout.series.images.map((image) => image.imageId);
      fetcher.queue(nearestFirst(imageIds, stackStart(imageIds)));
    }
    await cornerstone;
    if (state.destroyed) return;
    cleanups.push(framesProvide(fetcher));
    cornerstoneStarted = true;
    listenToCornerstone();
    studyRegister(series);
    state.series = series;
    state.mode = layout.mode;
    element.dataset.viewerMode = layout.mode;
    presetsShow(layout.mode);
    if (layout.mode === "projection") {
      stackIds = new Set(layout.images.map((image) => image.imageId));
      const first = decodeFirst(layout.images.map((image) => image.imageId));
      for (const image of layout.images) makeTile(image.view || image.series.modality);
      tilesBox.style.setProperty("--viewer-columns", String(Math.min(layout.images.length, 3)));
      enableTiles();
      await first;
      await Promise.all(
        layout.images.map(async (image, index) => {
          const viewport = viewportOf(state.tiles[index]);
          state.tiles[index].imageIds = [image.imageId];
          state.marks.setStack ??= performance.now();
          await viewport.setStack([image.imageId], 0);
          initialRemember(state.tiles[index]);
          viewport.render();
        }),
      );
    } else {
      const imageIds = layout.series.images.map((image) => image.imageId);
      decodeFirst([imageIds[stackStart(imageIds)]]);
      makeTile("");
      tilesBox.style.setProperty("--viewer-columns", "1");
      enableTiles();
      if (state.series.length > 1) {
        seriesSelect.replaceChildren(
          ...state.series.map((s, index) => el("option", { value: String(index), text: seriesLabel(s) })),
        );
        seriesSelect.hidden = false;
      }
      await showStack(state.series.indexOf(layout.series));
    }
    setActiveTile(0);
    element.dataset.viewerReady = "true";
  }

  function withViewport(fn) {
    const tile = activeTile();
    const viewport = tile && viewportOf(tile);
    if (!viewport?.getCornerstoneImage?.()) return;
    fn(viewport, tile);
    viewport.render();
  }

  function scrollTo(target) {
    withViewport((viewport) => {
      const count = viewport.getImageIds().length;
      const index = Math.max(0, Math.min(count - 1, target(viewport.getCurrentImageIdIndex(), count)));
      if (index !== viewport.getCurrentImageIdIndex()) viewport.setImageIdIndex(index);
    });
  }

  function toggleHelp(show = help.hidden) {
    help.hidden = !show;
    toolbar.querySelector('[data-action="help"]')?.setAttribute("aria-expanded", String(show));
  }

  function run(action) {
    if (action.startsWith("preset:")) {
      const preset = presets.find((p) => p.key === action.slice(7));
      if (!preset) return false;
      withViewport((viewport, tile) => {
        const voiRange = presetRange(preset, viewport, tile);
        if (voiRange) viewport.setProperties({ voiRange });
      });
      return true;
    }
    switch (action) {
      case "invert":
        withViewport((viewport) => viewport.setProperties({ invert: !viewport.getProperties().invert }));
        return true;
      case "reset":
        withViewport((viewport, tile) => {
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
        withViewport((viewport) => {
          const camera = viewport.getCamera();
          const factor = action === "zoom-in" ? 1 / ZOOM_STEP : ZOOM_STEP;
          if (camera?.parallelScale) viewport.setCamera({ parallelScale: camera.parallelScale * factor });
        });
        return true;
      case "actual-size":
        withViewport((viewport) => {
          const zoom = zoomPercent(viewport);
          if (zoom && Math.abs(zoom - 100) < 0.5) {
            viewport.resetCamera();
            return;
          }
          const spacing = viewport.getImageData()?.spacing?.[1] || 1;
          viewport.setCamera({ parallelScale: (viewport.canvas.height * spacing) / 2 });
        });
        return true;
      case "previous":
        scrollTo((i) => i - 1);
        return true;
      case "next":
        scrollTo((i) => i + 1);
        return true;
      case "page-up":
        scrollTo((i) => i - PAGE_STEP);
        return true;
      case "page-down":
        scrollTo((i) => i + PAGE_STEP);
        return true;
      case "first":
        scrollTo(() => 0);
        return true;
      case "last":
        scrollTo((_, n) => n - 1);
        return true;
      case "previous-series":
      case "next-series": {
        if (state.mode !== "stack" || state.series.length < 2) return false;
        const step = action === "next-series" ? 1 : -1;
        const next = (state.seriesIndex + step + state.series.length) % state.series.length;
        showStack(next).catch(() => fail("This series could not be shown."));
        return true;
      }
      case "help":
        toggleHelp();
        return true;
      case "close-help":
        if (help.hidden) {
          document.activeElement?.blur();
        } else {
          toggleHelp(false);
        }
        return true;
      default:
        return false;
    }
  }

  // Standalone, keys belong to the viewer while it has the focus (a click on an image gives
  // it). Shared with the reading form, the viewer's keys are the ones the form does not use
  // (actionFor never returns one of those), and they act wherever the focus is not in a form
  // control or text box, where arrows, Space and letters keep their usual meaning.
  function viewerOwnsKey() {
    const focused = document.activeElement;
    if (shared && (!focused || focused === document.body)) return true;
    return element.contains(focused) && (!isEditable(focused) || focused === element);
  }
  const onKeyDown = (event) => {
    if (event.defaultPrevented || !viewerOwnsKey()) return;
    const action = actionFor(event, keys, { shared });
    if (action && run(action)) event.preventDefault();
  };
  // Capture phase: Cornerstone's own key listeners on the viewport cancel every key event.
  document.addEventListener("keydown", onKeyDown, true);
  cleanups.push(() => document.removeEventListener("keydown", onKeyDown, true));

  const onPointerDown = (event) => {
    if (event.target.closest?.(".viewer-tiles")) element.focus({ preventScroll: true });
  };
  // A middle press must not start the browser's autoscroll. Cancelled on mousedown, not on
  // pointerdown: that would suppress the mouse events Cornerstone's pan tool listens to.
  const onMouseDown = (event) => {
    if (event.button === 1 && event.target.closest?.(".viewer-tiles")) event.preventDefault();
  };
  const onContextMenu = (event) => {
    if (event.target.closest?.(".viewer-tiles")) event.preventDefault();
  };
  const onToolbarClick = (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.preset) run(`preset:${button.dataset.preset}`);
    else if (button.dataset.action) run(button.dataset.action);
    // Focus left on the button would make Space press it again instead of resetting.
    element.focus({ preventScroll: true });
  };
  const onSeriesChange = () => {
    showStack(Number(seriesSelect.value)).catch(() => fail("This series could not be shown."));
  };
  element.addEventListener("pointerdown", onPointerDown);
  element.addEventListener("mousedown", onMouseDown);
  element.addEventListener("contextmenu", onContextMenu);
  toolbar.addEventListener("click", onToolbarClick);
  seriesSelect.addEventListener("change", onSeriesChange);
  cleanups.push(() => {
    element.removeEventListener("pointerdown", onPointerDown);
    element.removeEventListener("mousedown", onMouseDown);
    element.removeEventListener("contextmenu", onContextMenu);
  });

  const resizeObserver = new ResizeObserver(() => {
    renderingEngine?.resize(true, true);
  });
  resizeObserver.observe(tilesBox);
  cleanups.push(() => resizeObserver.disconnect());

  const ready = start().catch((error) => {
    if (error?.name === "AbortError" || state.destroyed) return;
    fail(error instanceof ViewerLoadError ? error.message : "The viewer could not start.");
    if (!(error instanceof ViewerLoadError)) console.error(error);
  });

  const handle = {
    ready,
    /** For tests and the benchmark: what the viewer shows, without patient data. */
    state() {
      return {
        mode: state.mode,
        seriesIndex: state.seriesIndex,
        seriesCount: state.series.length,
        activeTile: state.activeTile,
        firstRenderAt: state.firstRenderAt,
        firstImageAt: state.firstImageAt,
        earlyDrawn: state.earlyDrawn ?? null,
        earlyRequests: state.earlyRequests ?? [],
        stackLoadedAt: state.stackLoadedAt,
        marks: { firstFetched: early?.marks.firstFetched ?? fetcher.firstHeldAt, ...state.marks },
        stackLoaded: state.stackLoaded,
        stackSize: stackIds.size,
        errors: [...state.errors],
        tiles: state.tiles.map((tile) => {
          const viewport = viewportOf(tile);
          const props = viewport?.getProperties() ?? {};
          const wl = props.voiRange && csUtils
            ? csUtils.windowLevel.toWindowLevel(props.voiRange.lower, props.voiRange.upper)
            : {};
          return {
            imageIndex: viewport?.getCurrentImageIdIndex() ?? null,
            imageCount: viewport?.getImageIds().length ?? 0,
            windowWidth: wl.windowWidth ?? null,
            windowCenter: wl.windowCenter ?? null,
            // Inverted from the opening display (what the overlay says), and Cornerstone's own
            // flag (true for a MONOCHROME1 image as it opens).
            invert: viewport ? isInverted(viewport, tile) : false,
            invertFlag: Boolean(props.invert),
            zoomPercent: viewport ? zoomPercent(viewport) : null,
            pan: viewport?.getPan?.() ?? null,
            label: tile.overlay.label.textContent,
          };
        }),
      };
    },
    /** For tests: the decoded image on a tile, as Cornerstone holds it in its cache. */
    decodedImage(tileIndex = 0) {
      const tile = state.tiles[tileIndex];
      const viewport = tile && viewportOf(tile);
      const image = viewport?.getCornerstoneImage();
      if (!image) return null;
      const match = /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(image.imageId);
      return {
        sopInstanceUid: match ? decodeURIComponent(match[1]) : null,
        frame: match ? Number(match[2]) : null,
        rows: image.rows,
        columns: image.columns,
        preScaled: Boolean(image.preScale?.scaled),
        slope: image.slope,
        intercept: image.intercept,
        // As handed to the loader: the early image's pixels arrive already decoded.
        transferSyntaxUid: image.transferSyntaxUID ?? null,
        pixels: image.getPixelData(),
      };
    },
    /** For the benchmark: Cornerstone's own load and decode times of the stack's images. */
    loadTimings() {
      const images = cache ? [...stackIds].map((imageId) => cache.getImage(imageId)).filter(Boolean) : [];
      const total = (key) => images.reduce((sum, image) => sum + (Number(image[key]) || 0), 0);
      return { count: images.length, decodeMs: total("decodeTimeInMS"), loadMs: total("loadTimeInMS") };
    },
    run,
    destroy() {
      if (state.destroyed) return;
      state.destroyed = true;
      abort.abort();
      early?.stop();
      early = null;
      fetcher.stop();
      imageLoadPoolManager?.clearRequestStack(Enums.RequestType.Prefetch);
      for (const cleanup of cleanups.reverse()) cleanup();
      toolbar.removeEventListener("click", onToolbarClick);
      seriesSelect.removeEventListener("change", onSeriesChange);
      if (toolGroup) ToolGroupManager.destroyToolGroup(toolGroup.id);
      renderingEngine?.destroy();
      element.replaceChildren(...(helpWasServerRendered ? [help] : []));
      element.classList.remove("viewer-mounted");
      delete element.dataset.viewerReady;
      delete element.viewerHandle;
    },
  };
  element.viewerHandle = handle;
  return handle;
}
