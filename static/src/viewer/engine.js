// Cornerstone (the imaging engine, with its codecs) is imported on first mount, in parallel with
// the study's metadata and first frames, so the first image does not wait for the bundle before
// asking for them. setup.js is its own chunk: this module is all a page evaluates before it.

let engine = null;

/** The initialised engine (setup.js's exports); every mount awaits the same init. */
export async function engineLoad() {
  const loaded = await import("./setup.js");
  await loaded.cornerstoneReady();
  engine = loaded;
  return loaded;
}

/** The engine if some mount has loaded it, else null (for teardown and the test handle). */
export function engineIfLoaded() {
  return engine;
}
