// The viewer fetches its frames itself and hands the stored bytes to Cornerstone's loader
// through the loader's compressed-frame registry (setup.js), which decodes them without a
// request of its own. Why not let the loader fetch: it starts only once Cornerstone is
// initialised, and it finds the end of each multipart body by scanning every byte in
// JavaScript on the main thread (most of the client's time per slice). Here the first frames
// are asked for as soon as the headers are in, in parallel with Cornerstone's start, and the
// parts are cut out by their Content-Length (multipart.js). Needs no Cornerstone. A frame
// that cannot be fetched or cut out is simply not held: the loader then fetches it as it
// would have, with its own errors and the viewer's retries.
//
// The slices of a stack are asked for BATCH at a time (our first-frames resource: the first
// frame of each listed instance of a series): the browser pays for every request in its
// network service, its browser process and the page, and on 2 cores that CPU bounded the
// stack. Their answers are read by a worker (frames.worker.js). Figures and the variants
// tried: docs/decisions/0201-viewer-frames.md.

import { frameFetch, framePartsFetch } from "./multipart.js";

// Chromium opens at most 6 HTTP/1.1 connections per host: more requests would only queue.
const CONNECTIONS = 6;
// Slices per request (a few MB of CT); the slice scrolled to jumps the queue regardless
// (Cornerstone's loader fetches it itself when it is not here yet).
export const BATCH = 20;
// A stack slice's image id: the series URL, the instance, and frame 1.
const FIRST_FRAME_ID = /^wadors:(.+)\/instances\/([^/]+)\/frames\/1$/;

/**
 * Fetch the first frames of several instances of one series in one request (image ids of
 * frame 1, all of the series ``seriesUrl``): a Map imageId -> { pixelData, transferSyntaxUid }
 * of those that came back whole (empty when the request failed). The answer is read and cut
 * into frames by the batch worker where there is one (each frame's buffer transferred to this
 * thread), so a busy page thread does not hold the network up.
 */
export async function firstFramesFetch(seriesUrl, imageIds, signal) {
  const held = new Map();
  const sopUids = imageIds.map((imageId) => FIRST_FRAME_ID.exec(imageId)[2]);
  const parts = await partsFetch(`${seriesUrl}/first-frames?instances=${sopUids.join(",")}`, signal);
  if (!parts || signal?.aborted) return held;
  parts.forEach((part, index) => {
    const imageId = imageIds[index];
    const named = part.location?.endsWith(`/instances/${sopUids[index]}/frames/1`);
    if (imageId && named && part.transferSyntaxUid) {
      held.set(imageId, { pixelData: part.pixelData, transferSyntaxUid: part.transferSyntaxUid });
    }
  });
  return held;
}

// The batch worker (frames.worker.js), one a page, made on the first batch; null where the
// browser cannot make it or it broke (the page then reads the answers itself).
let batchWorker;
let lastRequest = 0;
const answers = new Map(); // request id -> resolve(parts or null)

function batchWorkerGet() {
  if (batchWorker !== undefined) return batchWorker;
  try {
    batchWorker = new Worker(new URL("./frames.worker.js", import.meta.url), { type: "module" });
  } catch {
    batchWorker = null;
    return null;
  }
  batchWorker.onmessage = ({ data }) => {
    answers.get(data.id)?.(data.parts);
    answers.delete(data.id);
  };
  // A worker that cannot start or fails answers nothing more: what it was asked for counts as
  // not fetched (the loader fetches those frames itself) and later batches are read here.
  batchWorker.onerror = () => {
    batchWorker.terminate();
    batchWorker = null;
    for (const resolve of answers.values()) resolve(null);
    answers.clear();
  };
  return batchWorker;
}

/** The parts of a multipart answer (frameParts), or null when the request failed. */
function partsFetch(url, signal) {
  const worker = batchWorkerGet();
  if (!worker) return framePartsFetch(url, signal);
  lastRequest += 1;
  const id = lastRequest;
  const parts = new Promise((resolve) => answers.set(id, resolve));
  worker.postMessage({ type: "fetch", id, url: new URL(url, window.location.href).href });
  signal?.addEventListener("abort", () => worker.postMessage({ type: "abort", id }), { once: true });
  return parts;
}

/**
 * Fetches wadors: frames on CONNECTIONS requests at a time, in the order last asked for (the
 * slices of a stack BATCH a request), and holds their bytes until Cornerstone's loader takes
 * them (once: the decoded image lives in its cache).
 */
export class FrameFetcher {
  constructor({ signal, onSettled }) {
    this.signal = signal;
    this.onSettled = onSettled; // (imageId, held) once per fetch, held false when it failed
    this.pending = [];
    this.inFlight = new Map(); // imageId -> promise of held (boolean)
    this.held = new Map(); // imageId -> { pixelData, transferSyntaxUid }
    this.requests = 0; // own requests in flight (adopted frames are fetched elsewhere)
    this.skip = () => false;
    this.firstHeldAt = null; // for the load-time benchmark
  }

  /** Fetch these image ids, first ones first, instead of whatever was still waiting. */
  queue(imageIds, { skip } = {}) {
    if (skip) this.skip = skip;
    const wanted = new Set(imageIds);
    for (const imageId of this.held.keys()) if (!wanted.has(imageId)) this.held.delete(imageId);
    this.pending = imageIds.filter((imageId) => !this.held.has(imageId) && !this.inFlight.has(imageId));
    this.pump();
  }

  has(imageId) {
    return this.held.has(imageId);
  }

  /** Resolves once the frame's fetch is over (true: its bytes are held or were taken). */
  settled(imageId) {
    if (this.held.has(imageId)) return Promise.resolve(true);
    return this.inFlight.get(imageId) ?? Promise.resolve(false);
  }

  /** The held bytes of a frame, handed over once (the loader's registry lookup). */
  take(imageId) {
    const frame = this.held.get(imageId);
    if (frame) this.held.delete(imageId);
    return frame;
  }

  stop() {
    this.pending = [];
    this.held.clear();
  }

  pump() {
    while (this.requests < CONNECTIONS && this.pending.length > 0 && !this.signal.aborted) {
      const batch = this.nextBatch();
      if (batch.length === 0) continue;
      this.requests += 1;
      const request = this.fetchBatch(batch)
        .catch(() => new Map())
        .finally(() => {
          this.requests -= 1;
          this.pump();
        });
      for (const imageId of batch) {
        const done = request.then((fetched) => {
          this.inFlight.delete(imageId);
          if (!this.signal.aborted) this.onSettled?.(imageId, fetched.has(imageId));
          return fetched.has(imageId);
        });
        this.inFlight.set(imageId, done);
      }
    }
  }

  /** The next image ids to ask for in one request: the first pending one and, if it is a
   * stack slice, the pending slices of its series that follow it in the queue. */
  nextBatch() {
    const first = this.pending.shift();
    if (this.skip(first) || this.inFlight.has(first) || this.held.has(first)) return [];
    const series = FIRST_FRAME_ID.exec(first)?.[1];
    if (!series) return [first];
    const batch = [first];
    const rest = [];
    for (const imageId of this.pending) {
      if (batch.length < BATCH && FIRST_FRAME_ID.exec(imageId)?.[1] === series && !this.skip(imageId)) {
        if (!this.inFlight.has(imageId) && !this.held.has(imageId)) batch.push(imageId);
      } else {
        rest.push(imageId);
      }
    }
    this.pending = rest;
    return batch;
  }

  /** Fetch the batch; a Map of the frames now held. */
  async fetchBatch(imageIds) {
    let fetched;
    if (imageIds.length === 1) {
      const frame = await frameFetch(imageIds[0], this.signal);
      fetched = new Map(frame ? [[imageIds[0], frame]] : []);
    } else {
      fetched = await firstFramesFetch(FIRST_FRAME_ID.exec(imageIds[0])[1], imageIds, this.signal);
    }
    if (this.signal.aborted) return new Map();
    for (const [imageId, frame] of fetched) this.held.set(imageId, frame);
    if (fetched.size > 0) this.firstHeldAt ??= performance.now();
    return fetched;
  }

  /**
   * A frame fetched elsewhere (the early image's worker): counted as in flight until
   * ``frame`` (a promise of { pixelData, transferSyntaxUid } or null) settles, so it is not
   * fetched twice.
   */
  adopt(imageId, frame) {
    if (this.held.has(imageId) || this.inFlight.has(imageId)) return;
    const done = frame.then((got) => {
      this.inFlight.delete(imageId);
      if (got && !this.signal.aborted) {
        this.held.set(imageId, got);
        this.firstHeldAt ??= performance.now();
      }
      this.pump();
      if (!this.signal.aborted) this.onSettled?.(imageId, Boolean(got));
      return Boolean(got);
    });
    this.inFlight.set(imageId, done);
  }
}
