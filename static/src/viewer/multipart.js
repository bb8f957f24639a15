// Frames out of multipart/related answers: what the viewer's fetcher (frames.js), its batch
// worker (frames.worker.js) and the early image's worker (early.worker.js) share. Each part is
// cut out by the Content-Length of its header (our DICOMweb gives it) instead of scanning the
// body for the boundary. Needs no DOM.

// What Cornerstone's wadors loader asks for: frames as stored, any transfer syntax.
export const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
// A part header is a few lines.
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

function param(contentType, name) {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*"?([^";]+)"?`, "i").exec(contentType || "");
  return match ? match[1].trim() : null;
}

const ascii = (text) => Array.from(text, (c) => c.charCodeAt(0));

/**
 * Every part of a multipart/related answer whose parts give their Content-Length, as
 * [{ location, pixelData, transferSyntaxUid }] in body order, or null when the body is not
 * framed that way; transferSyntaxUid is null where the part does not name a usable one. With
 * ``ownBuffers`` each frame is copied into a buffer of its own, so that handing one to a
 * decode worker (which clones the whole buffer behind a view) carries that frame alone.
 */
export function frameParts(contentType, body, { ownBuffers = true } = {}) {
  const bytes = new Uint8Array(body);
  const boundary = param(contentType, "boundary");
  if (!/^multipart\/related/i.test(contentType || "") || !boundary) return null;
  const delimiter = ascii(`--${boundary}`);
  const startsWith = (token, at) => token.every((byte, i) => bytes[at + i] === byte);
  const parts = [];
  let at = 0;
  for (;;) {
    if (!startsWith(delimiter, at)) return null;
    at += delimiter.length;
    if (bytes[at] === 45 && bytes[at + 1] === 45) return parts; // "--": the closing delimiter
    const headerEnd = indexOfBytes(bytes, CRLF2, at, at + HEADER_SEARCH_BYTES);
    if (headerEnd < 0) return null;
    const header = String.fromCharCode(...bytes.subarray(at, headerEnd));
    const length = Number(/^content-length:\s*(\d+)\s*$/im.exec(header)?.[1] ?? NaN);
    const start = headerEnd + CRLF2.length;
    if (!Number.isInteger(length) || start + length + 2 > bytes.length) return null;
    const partType = /^content-type:(.*)$/im.exec(header)?.[1] ?? "";
    const syntax = param(partType, "transfer-syntax") || param(contentType, "transfer-syntax");
    parts.push({
      location: /^content-location:\s*(\S+)\s*$/im.exec(header)?.[1] ?? null,
      pixelData: ownBuffers ? bytes.slice(start, start + length) : bytes.subarray(start, start + length),
      transferSyntaxUid: syntax && syntax !== "*" ? syntax : null,
    });
    at = start + length;
    if (bytes[at] !== 13 || bytes[at + 1] !== 10) return null;
    at += 2;
  }
}

/**
 * The parts of the multipart answer at ``url`` (frameParts), or null when the request failed,
 * was aborted or the answer is not framed that way.
 */
export async function framePartsFetch(url, signal, { ownBuffers = true } = {}) {
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: FRAME_ACCEPT }, signal });
    if (!response.ok) return null;
    const parts = frameParts(response.headers.get("Content-Type"), await response.arrayBuffer(), { ownBuffers });
    return signal?.aborted ? null : parts;
  } catch {
    return null; // aborted, or the network: the loader fetches what is missing itself
  }
}

/**
 * Fetch one wadors: frame and cut it out of its multipart answer: { pixelData,
 * transferSyntaxUid }, or null when that failed (the loader then fetches it itself).
 */
export async function frameFetch(imageId, signal) {
  // The answer holds this frame alone: no copy needed.
  const parts = await framePartsFetch(imageId.slice("wadors:".length), signal, { ownBuffers: false });
  const part = parts?.length === 1 ? parts[0] : null;
  return part?.transferSyntaxUid ? { pixelData: part.pixelData, transferSyntaxUid: part.transferSyntaxUid } : null;
}
