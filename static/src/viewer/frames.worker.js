// The viewer's batch worker (frames.js firstFramesFetch): it fetches a stack's batches of
// slices and cuts each answer into frames off the page's thread, then transfers each frame's
// buffer to the page (no copy). Reading a 10 MB answer on the page's thread waited for every
// turn of that thread, which decodes coming back and drawing keep busy while a stack loads.
import { framePartsFetch } from "./multipart.js";

const running = new Map(); // request id -> AbortController

async function partsFetch({ id, url }) {
  const abort = new AbortController();
  running.set(id, abort);
  const parts = await framePartsFetch(url, abort.signal);
  running.delete(id);
  // Each part is a buffer of its own (frameParts' ownBuffers): handed over, not copied.
  self.postMessage({ id, parts }, (parts ?? []).map((part) => part.pixelData.buffer));
}

self.onmessage = ({ data }) => {
  if (data.type === "fetch") partsFetch(data);
  else if (data.type === "abort") running.get(data.id)?.abort();
};
