// The viewer fetches its frames itself and hands the stored bytes to Cornerstone's loader
// through the loader's compressed-frame registry (setup.js), which decodes them without a
// request of its own. Why not let the loader fetch: it starts only once Cornerstone is
// initialised, and it finds the end of each multipart body by scanning every byte in
// JavaScript on the main thread (about 5 ms a 512 KB CT frame, most of the client's time per
// slice). Here the first frames are asked for as soon as the headers are in, in parallel with
// Cornerstone's start, and the part is cut out by its header and its closing boundary.
// Needs no Cornerstone. A frame that cannot be fetched or cut out is simply not held: the
// loader then fetches it as it would have, with its own errors and the viewer's retries.

// What Cornerstone's wadors loader asks for: frames as stored, any transfer syntax.
export const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
// Chromium opens at most 6 HTTP/1.1 connections per host: more requests would only queue.
const CONNECTIONS = 6;
// The part header is a few lines; the closing boundary is the last ~50 bytes of the body.
const HEADER_SEARCH_BYTES = 1024;
const CRLF2 = [13, 10, 13, 10];

function indexOfBytes(bytes, token, from, to) {
  const last = Math.min(to, bytes.length) - token.length;
  outer: for (let i = from; i <= last; i += 1) {
    for (let j = 0; j < token.length; j += 1) if (bytes[i + j] !== token[j]) continue outer;
    return i;
  }
  return -1;
}

function lastIndexOfBytes(bytes, token, notBefore) {
  outer: for (let i = bytes.length - token.length; i >= notBefore; i -= 1) {
    for (let j = 0; j < token.length; j += 1) if (bytes[i + j] !== token[j]) continue outer;
    return i;
  }
  return -1;
}

function param(contentType, name) {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*"?([^";]+)"?`, "i").exec(contentType || "");
  return match ? match[1].trim() : null;
}

const ascii = (text) => Array.from(text, (c) => c.charCodeAt(0));

/**
 * The one frame of a single-part multipart/related body as { pixelData, transferSyntaxUid },
 * or null when the body is not what the viewer asked for (the loader then fetches it itself).
 */
export function framePart(contentType, body) {
  const bytes = new Uint8Array(body);
  const boundary = param(contentType, "boundary");
  if (!/^multipart\/related/i.test(contentType || "") || !boundary) return null;
  const headerEnd = indexOfBytes(bytes, CRLF2, 0, HEADER_SEARCH_BYTES);
  if (headerEnd < 0) return null;
  const start = headerEnd + CRLF2.length;
  // The closing delimiter ("--" after the boundary); one frame's URL answers with one part.
  const end = lastIndexOfBytes(bytes, ascii(`\r\n--${boundary}--`), start);
  if (end < 0) return null;
  const partHeader = String.fromCharCode(...bytes.subarray(0, headerEnd));
  const partType = /^content-type:(.*)$/im.exec(partHeader)?.[1] ?? "";
  const transferSyntaxUid = param(partType, "transfer-syntax") || param(contentType, "transfer-syntax");
  if (!transferSyntaxUid || transferSyntaxUid === "*") return null;
  return { pixelData: bytes.subarray(start, end), transferSyntaxUid };
}

/**
 * Fetch one wadors: frame and cut it out of its multipart answer: { pixelData,
 * transferSyntaxUid }, or null when that failed (the loader then fetches it itself). Needs no
 * DOM: the early image's worker (early.worker.js) uses it too.
 */
export async function frameFetch(imageId, signal) {
  try {
    const response = await fetch(imageId.slice("wadors:".length), {
      credentials: "same-origin",
      headers: { Accept: FRAME_ACCEPT },
      signal,
    });
    if (!response.ok) return null;
    const frame = framePart(response.headers.get("Content-Type"), await response.arrayBuffer());
    return frame && !signal?.aborted ? frame : null;
  } catch {
    return null; // aborted, or the network
  }
}

/**
 * Fetches wadors: frames CONNECTIONS at a time, in the order last asked for, and holds their
 * bytes until Cornerstone's loader takes them (once: the decoded image lives in its cache).
 */
export class FrameFetcher {
  constructor({ signal, onSettled }) {
    this.signal = signal;
    this.onSettled = onSettled; // (imageId, held) once per fetch, held false when it failed
    this.pending = [];
    this.inFlight = new Map(); // imageId -> promise of held (boolean)
    this.held = new Map(); // imageId -> { pixelData, transferSyntaxUid }
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
    while (this.inFlight.size < CONNECTIONS && this.pending.length > 0 && !this.signal.aborted) {
      const imageId = this.pending.shift();
      if (this.skip(imageId)) continue;
      const done = this.fetchOne(imageId).then((held) => {
        this.inFlight.delete(imageId);
        this.pump();
        if (!this.signal.aborted) this.onSettled?.(imageId, held);
        return held;
      });
      this.inFlight.set(imageId, done);
    }
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

  async fetchOne(imageId) {
    const frame = await frameFetch(imageId, this.signal);
    if (!frame) return false;
    this.held.set(imageId, frame);
    this.firstHeldAt ??= performance.now();
    return true;
  }
}
