// Opening a study: the early image (early.js) and the headers first, the frames drawn first
// queued while the engine loads, then the tiles, their viewports and the first draw, after
// which the early image goes. Why the early image is kept, and why the engine waits for it:
// docs/decisions/0201-viewer-frames.md.
import { seriesMenuFill } from "./chrome.js";
import { ViewerLoadError, firstImages, seriesLabel, stackStart, studyFetch, studyLayout } from "./dicomweb.js";
import { earlyStart } from "./early.js";
import { BATCH as FRAMES_BATCH } from "./frames.js";
import { engineIfLoaded, engineLoad } from "./engine.js";
import { nearestFirst } from "./loading.js";
import { prefetchTake, studyPrefetch } from "./prefetch.js";
import { overlaysListen, overlayUpdate } from "./display.js";
import { projectionShow, stackShow, tileActivate, tileMake, tilesEnable, viewportOf } from "./tiles.js";

// The longest the engine waits for the early image: a slow server or a large image must not
// delay the interactive viewer by more than that.
const EARLY_WAIT_MAX_MS = 1500;
// Slices of a stack fetched before its first slice is drawn: that slice and one request's
// worth around it.
const STACK_FETCHED_FIRST = 1 + FRAMES_BATCH;

/** The early image is removed, and its worker ended, once Cornerstone has drawn. */
export function earlyFinish(v) {
  const { early } = v;
  if (!early) return;
  if (early.marks.firstFetched != null) v.state.marks.firstFetched ??= early.marks.firstFetched;
  early.finish();
  v.early = null;
}

function onEarlyDrawn(v) {
  const { early, state } = v;
  if (!early || state.destroyed) return;
  state.marks.earlyDecoded = early.marks.earlyDecoded;
  state.marks.earlyDrawn = early.drawnAt;
  for (const [name, at] of Object.entries(early.marks)) state.marks[name] ??= at;
  state.earlyDrawn = early.drawn;
  state.earlyRequests = early.requests;
  state.firstImageAt ??= early.drawnAt;
  if (state.errors.length === 0) v.setStatus("");
}

// Cornerstone drew a tile: the first time, the viewer is interactive; once every tile is drawn
// the early image goes, swapped in the frame Cornerstone's canvases were drawn in so that no
// frame shows neither.
function renderedListen(v) {
  const { state } = v;
  const onRendered = (event) => {
    const tile = state.tiles.find((t) => t.canvasHost === event.target);
    if (!tile) return;
    if (state.firstRenderAt === null && viewportOf(v, tile)?.getCornerstoneImage?.()) {
      state.firstRenderAt = performance.now();
      state.firstImageAt ??= state.firstRenderAt;
      v.setStatus("");
      v.loading.firstDrawn();
      nextPrefetch(v);
    }
    if (v.early && state.tiles.every((t) => viewportOf(v, t)?.getCornerstoneImage?.())) earlyFinish(v);
    overlayUpdate(v, tile);
  };
  const name = v.cs.Enums.Events.IMAGE_RENDERED;
  // Dispatched on each viewport element, and it does not bubble.
  v.ui.tilesBox.addEventListener(name, onRendered, true);
  return () => v.ui.tilesBox.removeEventListener(name, onRendered, true);
}

// The reading page's next case: its first images are made ready once this one is on screen.
function nextPrefetch(v) {
  const studyUid = v.element.dataset.nextStudyUid;
  if (studyUid && studyUid !== v.studyUid) studyPrefetch({ root: v.root, studyUid, cs: v.cs });
}

/** The study's series: prefetched, or from the early image's worker, or fetched here. */
async function seriesFetch(v) {
  const { early, state } = v;
  const prefetched = prefetchTake(v.studyUid);
  if (prefetched) {
    try {
      const series = await prefetched;
      state.marks.metadataFetched = performance.now();
      return series;
    } catch {
      // fetched again below, with the errors a radiologist is shown
    }
  }
  if (early) {
    try {
      const series = await early.series;
      state.marks.metadataFetched = early.marks.metadataFetched;
      return series;
    } catch (error) {
      if (error instanceof ViewerLoadError) throw error;
      earlyFinish(v); // the worker broke: the page fetches the headers itself
    }
  }
  const series = await studyFetch({ root: v.root, studyUid: v.studyUid, signal: v.abort.signal });
  state.marks.metadataFetched = performance.now();
  return series;
}

/** Open the study on the viewer ``v``; resolves once its first images are set up. */
export async function studyOpen(v) {
  const { state, ui } = v;
  state.marks.start = performance.now();
  // Once a page has evaluated the engine (the reading page's next case) Cornerstone draws first.
  v.early = engineIfLoaded()
    ? null
    : earlyStart({ root: v.root, studyUid: v.studyUid, host: ui.tilesBox, signal: v.abort.signal });
  // The engine's evaluation is one long task on this thread, and the early image needs the
  // thread to start its worker, fetch through it and present its canvas (early.worker.js):
  // the engine (already fetched and compiled: <link rel=modulepreload>) is evaluated once the
  // worker holds the first images' bytes, while it decodes them (a JPEG 2000 radiograph's
  // decode takes longer than the evaluation), at most EARLY_WAIT_MAX_MS later.
  const engineAfter = v.early ? v.early.fetched(EARLY_WAIT_MAX_MS) : Promise.resolve();
  if (v.early) v.early.onDrawn = () => onEarlyDrawn(v);
  const engine = engineAfter.then(engineLoad).then((loaded) => {
    state.marks.cornerstoneReady = performance.now();
    return loaded;
  });
  engine.catch(() => {}); // awaited below; not "unhandled" if the headers fail first
  const series = await seriesFetch(v);
  state.marks.seriesReceived = performance.now();
  const layout = studyLayout(series);
  // The worker fetches the first images itself; the fetcher waits for its bytes.
  if (v.early) for (const image of firstImages(layout)) v.loading.fetcher.adopt(image.imageId, v.early.frame(image.imageId));
  // The frames shown first are fetched while Cornerstone is still loading.
  if (layout.mode === "projection") {
    v.loading.queue(layout.images.map((image) => image.imageId));
  } else {
    // The slices around the first: the rest of the stack is fetched once it is drawn
    // (loading.js prefetch), not while the main thread takes in the first image.
    const imageIds = layout.series.images.map((image) => image.imageId);
    v.loading.queue(nearestFirst(imageIds, stackStart(imageIds)).slice(0, STACK_FETCHED_FIRST));
  }
  v.cs = await engine;
  if (state.destroyed) return;
  v.loading.start();
  v.cleanups.push(renderedListen(v), overlaysListen(v));
  v.cs.studyRegister(series);
  state.series = series;
  state.mode = layout.mode;
  v.element.dataset.viewerMode = layout.mode;
  v.presetsFor(layout.mode);
  if (layout.mode === "projection") {
    const imageIds = layout.images.map((image) => image.imageId);
    v.loading.stackSet(imageIds);
    const first = v.loading.decodeFirst(imageIds);
    for (const image of layout.images) tileMake(v, image.view || image.series.modality);
    ui.tilesBox.style.setProperty("--viewer-columns", String(Math.min(layout.images.length, 3)));
    tilesEnable(v);
    await projectionShow(v, layout.images, first);
    v.loading.stackCheckLoaded();
  } else {
    const imageIds = layout.series.images.map((image) => image.imageId);
    v.loading.decodeFirst([imageIds[stackStart(imageIds)]]);
    tileMake(v, "");
    ui.tilesBox.style.setProperty("--viewer-columns", "1");
    tilesEnable(v);
    seriesMenuFill(ui, series.map(seriesLabel));
    await stackShow(v, series.indexOf(layout.series));
  }
  tileActivate(v, 0);
  v.element.dataset.viewerReady = "true";
}
