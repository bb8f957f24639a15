// The page's side of the early image (early.worker.js): a canvas over the tiles, handed to a
// worker that fetches the headers and the first frames and draws them before the engine is
// ready. Needs no Cornerstone. Returns null where the browser has no OffscreenCanvas: the
// viewer then fetches the headers itself and Cornerstone draws the first image, as before.
import { ViewerLoadError, getDicomJson, studyFetch } from "./dicomweb.js";

/** Page time (performance.now()) of a time taken in the worker as timeOrigin + now(). */
const pageTime = (at) => at - performance.timeOrigin;

export function earlyStart({ root, studyUid, host, signal }) {
  const canvas = document.createElement("canvas");
  if (typeof canvas.transferControlToOffscreen !== "function" || typeof Worker !== "function") return null;
  canvas.className = "viewer-early";
  canvas.setAttribute("aria-hidden", "true");
  host.append(canvas);
  const rect = host.getBoundingClientRect();
  const style = getComputedStyle(host);
  const box = {
    width: rect.width,
    height: rect.height,
    dpr: window.devicePixelRatio || 1,
    gap: Number.parseFloat(style.columnGap) || 0,
    border: 1, // .viewer-tile's border: Cornerstone's canvas fills the tile inside it
    background: style.backgroundColor,
  };
  let worker;
  let offscreen;
  try {
    worker = new Worker(new URL("./early.worker.js", import.meta.url), { type: "module" });
    offscreen = canvas.transferControlToOffscreen();
  } catch {
    worker?.terminate();
    canvas.remove();
    return null;
  }
  const base = new URL(root, window.location.href).href;
  worker.postMessage({ type: "start", root: base, studyUid, canvas: offscreen, box }, [offscreen]);

  const frames = new Map(); // imageId -> { promise, resolve }
  const frameEntry = (imageId) => {
    if (!frames.has(imageId)) {
      let resolve;
      const promise = new Promise((r) => {
        resolve = r;
      });
      frames.set(imageId, { promise, resolve });
    }
    return frames.get(imageId);
  };
  let seriesResolve;
  let seriesReject;
  const series = new Promise((resolve, reject) => {
    seriesResolve = resolve;
    seriesReject = reject;
  });
  let settledResolve;
  const settled = new Promise((resolve) => {
    settledResolve = resolve;
  });
  let fetchedResolve;
  const fetched = new Promise((resolve) => {
    fetchedResolve = resolve;
  });
  settled.then(() => fetchedResolve());
  const early = {
    series,
    /** Resolves once the worker has drawn (or cannot draw) its images, or after ``ms``. */
    settled: (ms) => Promise.race([settled, new Promise((resolve) => setTimeout(resolve, ms))]),
    /** Resolves once the worker holds the bytes of every first image (then it decodes and
     * draws them on its own; only presenting the canvas needs this thread), once it has
     * settled, or after ``ms``. */
    fetched: (ms) => Promise.race([fetched, new Promise((resolve) => setTimeout(resolve, ms))]),
    drawnAt: null,
    drawn: null, // what the worker drew: [{ imageId, lower, upper, invert }]
    marks: {},
    onDrawn: null,
    /** The first frame's bytes as the worker hands them over (null: it could not fetch). */
    frame: (imageId) => frameEntry(imageId).promise,
    /** Cornerstone has drawn every tile: the early canvas goes, and so does its worker. */
    finish() {
      settledResolve();
      canvas.remove();
      worker.terminate();
      for (const { resolve } of frames.values()) resolve(null);
    },
    stop() {
      worker.postMessage({ type: "stop" });
      early.finish();
    },
  };
  worker.onmessage = ({ data }) => {
    if (data.type === "fetched") {
      fetchedResolve();
    } else if (data.type === "none") {
      settledResolve();
    } else if (data.type === "series") {
      early.marks.metadataFetched = pageTime(data.at);
      // The same study, from the worker's answers (any other request is made here).
      const getJson = (url, ...rest) =>
        url in data.answers ? JSON.parse(data.answers[url]) : getDicomJson(url, ...rest);
      studyFetch({ root, studyUid, signal, getJson }).then(seriesResolve, seriesReject);
    } else if (data.type === "error") {
      seriesReject(data.isLoadError ? new ViewerLoadError(data.message) : new Error(data.message));
      settledResolve();
    } else if (data.type === "frame") {
      if (data.fetchedAt) early.marks.firstFetched ??= pageTime(data.fetchedAt);
      frameEntry(data.imageId).resolve(data.frame);
    } else if (data.type === "drawn") {
      early.drawnAt = pageTime(data.at);
      early.marks.earlyDecoded = pageTime(data.decodedAt);
      early.drawn = data.images;
      for (const [step, at] of Object.entries(data.steps)) early.marks[`worker-${step}`] = pageTime(at);
      early.requests = data.requests.map((r) => ({
        name: r.name,
        start: pageTime(r.start),
        firstByte: pageTime(r.firstByte),
        end: pageTime(r.end),
      }));
      early.onDrawn?.();
      settledResolve();
    }
  };
  worker.onerror = () => {
    seriesReject(new Error("The early image worker failed."));
    settledResolve();
    early.finish();
  };
  return early;
}
