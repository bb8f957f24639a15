// Cornerstone3D, its tools and the DICOM image loader, initialised once per page.
import { init as coreInit } from "@cornerstonejs/core";
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

// Marks for the load-time benchmark: how long evaluating the engine takes versus its init.
performance.mark("viewer:engine-evaluated");
let ready = null;

/** Initialise once; every mount awaits the same promise. */
export function cornerstoneReady() {
  ready ??= (async () => {
    await coreInit();
    // The loader purges its metadata on init: series metadata is registered only after this.
    dicomImageLoaderInit({
      maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)),
    });
    toolsInit();
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, MagnifyTool]) addTool(tool);
    performance.mark("viewer:engine-initialised");
  })();
  return ready;
}

/** Give the loader every frame's header (its init purges them: call after cornerstoneReady). */
export function studyRegister(series) {
  for (const s of series) for (const image of s.images) wadors.metaDataManager.add(image.imageId, image.meta);
}
