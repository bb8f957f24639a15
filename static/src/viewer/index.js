// mountViewer(element): the DICOM viewer of the reading page and of the standalone study page.
// This folder is the only code that touches Cornerstone. The modules, one concern each:
//   open.js     opening a study: the early image, the headers, the engine, the first draw
//   loading.js  the one way a frame reaches the renderer, and what is decoded when
//   frames.js   fetching frames (a stack's batches through frames.worker.js)
//   multipart.js cutting frames out of their multipart answers (page and workers)
//   dicomweb.js the study's series and image ids from our DICOMweb server
//   early.js    the early image (early.worker.js draws it before the engine is evaluated)
//   engine.js   loading Cornerstone (setup.js initialises it)
//   tiles.js    the tiles, their viewports and the mouse tools
//   display.js  window/level, invert, zoom and each tile's overlay
//   actions.js  what each button and key does; keymap.js lists them
//   input.js    keyboard and mouse bindings
//   chrome.js   toolbar, status line and errors, help panel
import "../../css/viewer.css";
import { chromeBuild, chromeRemove, presetsShow, statusSet } from "./chrome.js";
import { actionRun } from "./actions.js";
import { tileSnapshot } from "./display.js";
import { ViewerLoadError } from "./dicomweb.js";
import { engineIfLoaded } from "./engine.js";
import { inputBind } from "./input.js";
import { keysFor, presetsFor } from "./keymap.js";
import { loadingCreate } from "./loading.js";
import { earlyFinish, studyOpen } from "./open.js";
import { tilesDestroy, tilesObserve, viewportOf } from "./tiles.js";

export { CT_PRESETS, MOUSE, PROJECTION_PRESETS } from "./keymap.js";

let mountCounter = 0;

/**
 * Mount the viewer on an element carrying data-dicomweb-root and data-study-uid; returns
 * { ready, state(), decodedImage(), loadTimings(), run(action), destroy() }. Mounting the same
 * element twice returns the first handle.
 */
export function mountViewer(element, { sharedKeys = element.hasAttribute("data-viewer-shared-keys") } = {}) {
  if (element.viewerHandle) return element.viewerHandle;
  mountCounter += 1;
  const shared = sharedKeys;
  const presets = presetsFor("stack");
  // Everything the modules share about this one viewer.
  const v = {
    element,
    shared,
    id: `radreview-viewer-${mountCounter}`,
    root: element.dataset.dicomwebRoot || "/dicomweb",
    studyUid: element.dataset.studyUid,
    abort: new AbortController(),
    cleanups: [],
    presets,
    keys: keysFor(presets, { shared }),
    ui: null,
    cs: null, // the engine (setup.js), once loaded
    renderingEngine: null, // the page's (tiles.js), once Cornerstone is initialised
    toolGroup: null,
    early: null, // the early image (early.js) until Cornerstone has drawn every tile
    loading: null,
    state: {
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
    },
    viewportOf: (tile) => viewportOf(v, tile),
    setStatus: (text, isError = false) => statusSet(v.ui, text, isError),
    fail(message) {
      v.state.errors.push(message);
      v.setStatus(message, true);
      earlyFinish(v); // the message must be seen, not an image that cannot be worked with
    },
    /** Radiographs and CT get different presets, keys and help. */
    presetsFor(mode) {
      v.presets = presetsFor(mode);
      v.keys = keysFor(v.presets, { shared });
      presetsShow(v.ui, v.presets, v.keys, { shared });
    },
  };
  v.ui = chromeBuild(element, v.keys, { shared });
  v.loading = loadingCreate(v);
  v.cleanups.push(inputBind(v), tilesObserve(v));

  const { state } = v;
  const ready = studyOpen(v).catch((error) => {
    if (error?.name === "AbortError" || state.destroyed) return;
    v.fail(error instanceof ViewerLoadError ? error.message : "The viewer could not start.");
    if (!(error instanceof ViewerLoadError)) console.error(error);
  });

  const handle = {
    ready,
    /** For tests and the benchmark: what the viewer shows, without patient data. */
    state() {
      const utilities = engineIfLoaded()?.utilities;
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
        marks: { firstFetched: v.early?.marks.firstFetched ?? v.loading.fetcher.firstHeldAt, ...state.marks },
        stackLoaded: state.stackLoaded,
        stackSize: v.loading.stackSize(),
        errors: [...state.errors],
        tiles: state.tiles.map((tile) => tileSnapshot(v, tile, utilities)),
      };
    },
    /** For tests: the decoded image on a tile, as Cornerstone holds it in its cache. */
    decodedImage(tileIndex = 0) {
      const image = v.viewportOf(state.tiles[tileIndex])?.getCornerstoneImage();
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
    loadTimings: () => v.loading.timings(),
    /** For tests: the bytes Cornerstone's image cache holds now (every viewer of the page). */
    cacheBytes: () => engineIfLoaded()?.cache.getCacheSize() ?? 0,
    run: (action) => actionRun(v, action),
    destroy() {
      if (state.destroyed) return;
      state.destroyed = true;
      v.abort.abort();
      v.early?.stop();
      v.early = null;
      v.loading.stop();
      for (const cleanup of v.cleanups.reverse()) cleanup();
      tilesDestroy(v);
      v.loading.forget();
      chromeRemove(element, v.ui);
      delete element.viewerHandle;
    },
  };
  element.viewerHandle = handle;
  return handle;
}
