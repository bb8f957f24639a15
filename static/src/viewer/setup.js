// Cornerstone3D, its tools and the DICOM image loader, initialised once per page.
import { Enums as CoreEnums, cache, canRenderFloatTextures, init as coreInit, metaData } from "@cornerstonejs/core";
import { init as dicomImageLoaderInit, wadors } from "@cornerstonejs/dicom-image-loader";
import {
  MagnifyTool,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
} from "@cornerstonejs/tools";

// What the viewer uses, named so the bundler can leave the rest of the libraries out.
export {
  Enums,
  RenderingEngine,
  cache,
  eventTarget,
  imageLoadPoolManager,
  imageLoader,
  utilities,
} from "@cornerstonejs/core";
export { Enums as ToolEnums, ToolGroupManager } from "@cornerstonejs/tools";

export const TOOL_NAMES = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  stackScroll: StackScrollTool.toolName,
  magnify: MagnifyTool.toolName,
};

// Decoding runs in web workers while the main thread fetches, renders and handles the mouse:
// one per core, at least 2 so that a frontal and a lateral radiograph decode side by side.
const DECODE_WORKERS = Math.max(2, Math.min(4, navigator.hardwareConcurrency || 2));

const WEBGL_CONTEXTS = 2;

// Marks for the load-time benchmark: how long evaluating the engine takes versus its init.
performance.mark("viewer:engine-evaluated");
let ready = null;

/** Initialise once; every mount awaits the same promise. */
export function cornerstoneReady() {
  ready ??= (async () => {
    // One stack viewport a tile, at most a few tiles on the page: two offscreen WebGL contexts
    // draw them (Cornerstone's default pool of seven, made for volume layouts, cost the first
    // image main-thread time to create).
    await coreInit({ rendering: { webGlContextCount: WEBGL_CONTEXTS } });
    // The loader purges its metadata on init: series metadata is registered only after this.
    dicomImageLoaderInit({ maxWebWorkers: DECODE_WORKERS });
    toolsInit();
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, MagnifyTool]) addTool(tool);
    // Probing the GPU's texture formats costs main-thread time on the first decode;
    // done here it overlaps the network instead of delaying the first image.
    canRenderFloatTextures();
    performance.mark("viewer:engine-initialised");
  })();
  return ready;
}

/** Give the loader every frame's header (its init purges them: call after cornerstoneReady). */
export function studyRegister(series) {
  for (const s of series) for (const image of s.images) wadors.metaDataManager.add(image.imageId, image.meta);
}

/** Drop a study's decoded images and headers (its viewer is gone). */
export function studyForget(series) {
  for (const s of series) {
    for (const image of s.images) {
      if (cache.getImage(image.imageId)) cache.removeImageLoadObject(image.imageId, { force: true });
      wadors.metaDataManager.remove(image.imageId);
    }
  }
}

/**
 * Let the loader take frames the viewer fetched itself (frames.js) instead of requesting them:
 * its registry of compressed frames is a metadata lookup, answered here once per frame.
 * Returns the function that stops it.
 */
export function framesProvide(fetcher) {
  const type = CoreEnums.MetadataModules.COMPRESSED_FRAME_DATA;
  const provider = (asked, imageId) => (asked === type ? fetcher.take(imageId) : undefined);
  // Above the loader's own providers, which would answer from their (empty) metadata.
  metaData.addProvider(provider, 10_000);
  return () => metaData.removeProvider(provider);
}
