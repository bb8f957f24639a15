// The early image: the study's headers, then its first images, fetched, decoded and drawn in
// this worker onto the viewer's OffscreenCanvas before the page evaluates the engine.
// Only the codec the frame needs is loaded (JPEG 2000 and JPEG-LS, imported on first use, while
// the frame is fetched), so the image is on screen once it is fetched and decoded.
// Why the page waits for it before evaluating the engine rather than doing both at once: the
// evaluation is one long task, and in Chromium a worker's OffscreenCanvas still needs the
// page's main thread to set up and present its frames (and the worker itself to start): drawn
// "in parallel", the early image appeared only after the engine. Measured: see
// docs/decisions/0201-viewer-frames.md.
//
// Drawn as Cornerstone's stack viewport will draw it: fitted and centred the same way, full
// resolution, the image's own VOI (its first window, else the pixel range, after the modality
// rescale), MONOCHROME1 inverted. The decoded pixels go back to the page, which hands them to
// Cornerstone's loader as uncompressed little-endian bytes, so nothing is decoded twice; once
// Cornerstone has drawn every tile, the page removes this canvas and ends the worker.
// Nothing drawn here but pixels: no text, so nothing of the header can reach the screen.
import { ViewerLoadError, firstImages, getDicomText, studyFetch, studyLayout } from "./dicomweb.js";
import { frameFetch } from "./multipart.js";

const LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
const UNCOMPRESSED = new Set(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]);
const JPEG2000 = new Set(["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"]);
const JPEGLS = new Set(["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"]);
const MAX_TILE_COLUMNS = 3; // the viewer's grid (open.js): at most 3 radiographs side by side

const abort = new AbortController();
const steps = { started: performance.timeOrigin + performance.now() }; // for the benchmark
const codecs = {};

function tag(meta, key, index = 0) {
  const values = meta?.[key]?.Value;
  return values && values.length > index ? values[index] : undefined;
}

const num = (meta, key, fallback, index = 0) => {
  const value = Number(tag(meta, key, index));
  return Number.isFinite(value) ? value : fallback;
};

/** What the decode and the display need from the header; null if the early path skips it. */
function pixelModule(meta) {
  const info = {
    rows: num(meta, "00280010", 0),
    columns: num(meta, "00280011", 0),
    bitsAllocated: num(meta, "00280100", 0),
    bitsStored: num(meta, "00280101", 0),
    pixelRepresentation: num(meta, "00280103", 0),
    samplesPerPixel: num(meta, "00280002", 1),
    photometric: String(tag(meta, "00280004") || ""),
    slope: num(meta, "00281053", 1),
    intercept: num(meta, "00281052", 0),
    windowCenter: num(meta, "00281050", null),
    windowWidth: num(meta, "00281051", null),
    voiFunction: String(tag(meta, "00281056") || "LINEAR").toUpperCase(),
    rowSpacing: num(meta, "00280030", null, 0) ?? num(meta, "00181164", 1, 0),
    columnSpacing: num(meta, "00280030", null, 1) ?? num(meta, "00181164", 1, 1),
  };
  // Monochrome only, and the VOI Cornerstone would use too: anything else is left to it.
  const monochrome = info.samplesPerPixel === 1 && /^MONOCHROME[12]$/.test(info.photometric);
  const linear = info.voiFunction === "LINEAR" && !meta?.["00283010"]; // no VOI LUT Sequence
  const sized = info.rows > 0 && info.columns > 0 && [8, 16].includes(info.bitsAllocated);
  return monochrome && linear && sized ? info : null;
}

async function codec(kind) {
  codecs[kind] ??= (async () => {
    const [factory, wasm, make] =
      kind === "openjpeg"
        ? [
            (await import("@cornerstonejs/codec-openjpeg/decodewasmjs")).default,
            new URL("@cornerstonejs/codec-openjpeg/decodewasm", import.meta.url),
            (module) => new module.J2KDecoder(),
          ]
        : [
            (await import("@cornerstonejs/codec-charls/decodewasmjs")).default,
            new URL("@cornerstonejs/codec-charls/decodewasm", import.meta.url),
            (module) => new module.JpegLSDecoder(),
          ];
    const module = await factory({ locateFile: (file) => (file.endsWith(".wasm") ? wasm.href : file) });
    return make(module);
  })();
  return codecs[kind];
}

/**
 * Decode a frame as Cornerstone's worker would: { pixels (typed array), bytes (its
 * little-endian bytes, or null when Cornerstone must decode the original itself) }.
 */
async function decode(frame, info) {
  const { pixelData, transferSyntaxUid } = frame;
  const wide = info.bitsAllocated === 16;
  const signed = info.pixelRepresentation === 1;
  if (UNCOMPRESSED.has(transferSyntaxUid)) {
    const length = info.rows * info.columns * (wide ? 2 : 1);
    if (pixelData.length < length) return null;
    const bytes = pixelData.slice(0, length); // aligned, and the page keeps its own copy
    const Type = wide ? (signed ? Int16Array : Uint16Array) : signed ? Int8Array : Uint8Array;
    return { pixels: new Type(bytes.buffer), bytes: null, signed };
  }
  let kind = null;
  if (JPEG2000.has(transferSyntaxUid)) kind = "openjpeg";
  else if (JPEGLS.has(transferSyntaxUid)) kind = "charls";
  if (!kind) return null;
  const decoder = await codec(kind);
  decoder.getEncodedBuffer(pixelData.length).set(pixelData);
  decoder.decode();
  const frameInfo = decoder.getFrameInfo();
  if (frameInfo.componentCount !== 1 || frameInfo.width !== info.columns || frameInfo.height !== info.rows) {
    return null;
  }
  const decoded = decoder.getDecodedBuffer().slice(); // out of the codec's memory
  // Cornerstone takes the codestream's own sign for JPEG 2000, the header's for JPEG-LS.
  const codestreamSigned = kind === "openjpeg" ? Boolean(frameInfo.isSigned) : signed;
  const samplesWide = frameInfo.bitsPerSample > 8;
  const Type = samplesWide
    ? codestreamSigned ? Int16Array : Uint16Array
    : codestreamSigned ? Int8Array : Uint8Array;
  const pixels = new Type(decoded.buffer);
  // Handed over as little-endian only where Cornerstone reads those bytes as the same numbers.
  const same = samplesWide === wide && codestreamSigned === signed;
  return { pixels, bytes: same ? new Uint8Array(decoded.buffer) : null, signed: codestreamSigned };
}

/** The window Cornerstone's stack viewport opens the image with: { lower, upper, invert }. */
function initialWindow(decoded, info, value) {
  const invert = info.photometric === "MONOCHROME1";
  if (info.windowCenter !== null && info.windowWidth !== null) {
    // utilities.windowLevel.toLowHighRange for the LINEAR function
    const lower = info.windowCenter - 0.5 - (info.windowWidth - 1) / 2;
    const upper = info.windowCenter - 0.5 + (info.windowWidth - 1) / 2;
    return { lower, upper, invert };
  }
  // No window: the range of the rescaled pixels, as Cornerstone takes it.
  let lower = Infinity;
  let upper = -Infinity;
  for (let i = 0; i < decoded.pixels.length; i += 1) {
    const v = value(i);
    if (v < lower) lower = v;
    if (v > upper) upper = v;
  }
  return { lower, upper, invert };
}

/**
 * Draw the image into ``rect`` (device pixels) as Cornerstone's stack viewport does: fitted
 * (Viewport.getFitParallelScale: the voxel centres' extent fits the canvas) and centred, each
 * screen pixel sampled bilinearly between the four nearest image pixels (its texture
 * sampling, no mipmaps), then the modality rescale and the linear VOI. Only the screen's pixels
 * are computed, so a large radiograph costs what the screen's pixels cost, not its own.
 */
function draw(context, rect, decoded, info) {
  const { pixels } = decoded;
  const { rows, columns } = info;
  const shift = info.pixelRepresentation === 1 && info.bitsStored ? 32 - info.bitsStored : 0;
  const raw = shift ? (i) => (pixels[i] << shift) >> shift : (i) => pixels[i];
  const value = (i) => raw(i) * info.slope + info.intercept;
  const voi = initialWindow(decoded, info, value);
  const widthWorld = Math.max(1, columns - 1) * info.columnSpacing;
  const heightWorld = Math.max(1, rows - 1) * info.rowSpacing;
  const perMm = Math.min(rect.width / widthWorld, rect.height / heightWorld);
  const imageWidth = columns * info.columnSpacing * perMm;
  const imageHeight = rows * info.rowSpacing * perMm;
  const x0 = Math.round(rect.x);
  const y0 = Math.round(rect.y);
  const width = Math.max(1, Math.round(rect.x + rect.width) - x0);
  const height = Math.max(1, Math.round(rect.y + rect.height) - y0);
  const left = rect.x + (rect.width - imageWidth) / 2;
  const top = rect.y + (rect.height - imageHeight) / 2;
  const out = new Uint32Array(width * height).fill(0xff000000); // opaque black
  const scale = voi.upper > voi.lower ? 255 / (voi.upper - voi.lower) : 0;
  const offset = (info.intercept - voi.lower) * scale;
  const gain = info.slope * scale;
  for (let y = 0; y < height; y += 1) {
    const v = ((y0 + y + 0.5 - top) / imageHeight) * rows - 0.5;
    if (v < -0.5 || v > rows - 0.5) continue;
    const r0 = Math.min(rows - 1, Math.max(0, Math.floor(v)));
    const r1 = Math.min(rows - 1, r0 + 1);
    const fy = Math.min(1, Math.max(0, v - r0));
    for (let x = 0; x < width; x += 1) {
      const u = ((x0 + x + 0.5 - left) / imageWidth) * columns - 0.5;
      if (u < -0.5 || u > columns - 0.5) continue;
      const c0 = Math.min(columns - 1, Math.max(0, Math.floor(u)));
      const c1 = Math.min(columns - 1, c0 + 1);
      const fx = Math.min(1, Math.max(0, u - c0));
      const a = raw(r0 * columns + c0);
      const b = raw(r0 * columns + c1);
      const c = raw(r1 * columns + c0);
      const d = raw(r1 * columns + c1);
      const sample = (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
      let grey = Math.min(255, Math.max(0, sample * gain + offset));
      if (voi.invert) grey = 255 - grey;
      grey = Math.round(grey);
      out[y * width + x] = 0xff000000 | (grey << 16) | (grey << 8) | grey; // RGBA, little-endian
    }
  }
  context.putImageData(new ImageData(new Uint8ClampedArray(out.buffer), width, height), x0, y0);
  return voi;
}

/** Tile ``index`` of ``count`` in device pixels, as the viewer's CSS grid lays them out. */
function tileRect(index, count, box) {
  const columns = Math.min(count, MAX_TILE_COLUMNS);
  const rows = Math.ceil(count / columns);
  const width = (box.width - box.gap * (columns - 1)) / columns;
  const height = (box.height - box.gap * (rows - 1)) / rows;
  const x = (index % columns) * (width + box.gap) + box.border;
  const y = Math.floor(index / columns) * (height + box.gap) + box.border;
  const d = box.dpr;
  return { x: x * d, y: y * d, width: (width - 2 * box.border) * d, height: (height - 2 * box.border) * d };
}

const now = () => performance.timeOrigin + performance.now();
const painted = () => new Promise((resolve) => (self.requestAnimationFrame ?? setTimeout)(() => resolve()));

async function start({ root, studyUid, canvas, box }) {
  steps.message = now();
  canvas.width = Math.round(box.width * box.dpr);
  canvas.height = Math.round(box.height * box.dpr);
  const context = canvas.getContext("2d");
  context.fillStyle = box.background;
  context.fillRect(0, 0, canvas.width, canvas.height);
  let series;
  // The answers go to the page as text: parsing it there costs a fraction of cloning the
  // parsed headers of a 300-slice series across threads.
  const answers = {};
  const getJson = async (url, signal, what) => {
    answers[url] = await getDicomText(url, signal, what);
    return JSON.parse(answers[url]);
  };
  try {
    series = await studyFetch({ root, studyUid, signal: abort.signal, getJson });
  } catch (error) {
    if (error?.name === "AbortError") return;
    self.postMessage({ type: "error", message: error.message, isLoadError: error instanceof ViewerLoadError });
    return;
  }
  self.postMessage({ type: "series", answers, at: now() });
  steps.posted = now();
  const images = firstImages(studyLayout(series));
  steps.layout = now();
  // The header names the stored transfer syntax: the codec loads while the frame is fetched.
  for (const image of images) {
    const syntax = String(tag(image.meta, "00083002") || "");
    if (JPEG2000.has(syntax)) codec("openjpeg").catch(() => {});
    else if (JPEGLS.has(syntax)) codec("charls").catch(() => {});
  }
  const rects = images.map((_, index) => tileRect(index, images.length, box));
  context.fillStyle = "#000"; // the viewports' background
  for (const rect of rects) context.fillRect(rect.x, rect.y, rect.width, rect.height);
  const drawn = [];
  steps.filled = now();
  let decodedAt = null;
  let fetching = images.length;
  await Promise.all(
    images.map(async (image, index) => {
      const frame = await frameFetch(image.imageId, abort.signal);
      const fetchedAt = now();
      // Decoding and drawing need no more of the page's thread until the image is presented.
      fetching -= 1;
      if (fetching === 0) self.postMessage({ type: "fetched" });
      if (!frame) {
        self.postMessage({ type: "frame", imageId: image.imageId, frame: null });
        return;
      }
      const info = pixelModule(image.meta);
      let decoded = null;
      try {
        decoded = info && (await decode(frame, info));
      } catch {
        decoded = null; // Cornerstone decodes it, and reports what is wrong with it
      }
      // Raw bytes go back as they came when they are uncompressed or Cornerstone must decode.
      const handed = decoded?.bytes ? { pixelData: decoded.bytes, transferSyntaxUid: LITTLE_ENDIAN } : frame;
      const transfer = handed.pixelData.byteOffset === 0 ? [handed.pixelData.buffer] : [];
      if (decoded) {
        decodedAt ??= now();
        const voi = draw(context, rects[index], decoded, info);
        drawn.push({ imageId: image.imageId, ...voi });
      }
      self.postMessage({ type: "frame", imageId: image.imageId, frame: handed, fetchedAt }, transfer);
    }),
  );
  if (drawn.length === 0) {
    self.postMessage({ type: "none" }); // nothing this worker can draw: the page goes on
    return;
  }
  await painted();
  // For the benchmark: when the worker's requests went out and came back (page clock).
  const requests = performance.getEntriesByType("resource").map((e) => ({
    name: e.name.replace(/^.*\/(series|frames)/, "$1"),
    start: performance.timeOrigin + e.startTime,
    firstByte: performance.timeOrigin + e.responseStart,
    end: performance.timeOrigin + e.responseEnd,
  }));
  self.postMessage({ type: "drawn", at: now(), decodedAt, images: drawn, count: images.length, requests, steps });
}

self.onmessage = ({ data }) => {
  if (data.type === "start") start(data);
  else if (data.type === "stop") abort.abort();
};
