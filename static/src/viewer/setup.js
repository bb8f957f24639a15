// Cornerstone3D, its tools and the DICOM image loader, initialised once per page.
import { init as coreInit } from "@cornerstonejs/core";
import { init as dicomImageLoaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  MagnifyTool,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
} from "@cornerstonejs/tools";

export const TOOL_NAMES = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  stackScroll: StackScrollTool.toolName,
  magnify: MagnifyTool.toolName,
};

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
  })();
  return ready;
}
