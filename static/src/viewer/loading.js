// How a frame reaches the renderer, the one way (docs/decisions/0201-viewer-frames.md): the
// frame's bytes are fetched by the viewer's FrameFetcher (frames.js), or handed to it by the
// early image's worker (early.js), and Cornerstone's loader takes them from it through its
// compressed-frame registry (setup.js: framesProvide), decodes them in its workers and caches
// the image. A frame the fetcher does not hold when the loader asks (scrolled to before its
// batch came, or its request failed) is requested by the loader itself, as without us.
//
// This module decides what is decoded when: the images drawn first at once, then the whole
// stack, nearest slices first, at prefetch priority so that the slice the radiologist scrolls
// to always jumps the queue; and it counts what is loaded for the overlay and the benchmark.
import { overlayUpdate } from "./display.js";
import { engineIfLoaded } from "./engine.js";
import { FrameFetcher } from "./frames.js";

const PREFETCH_ATTEMPTS = 3;
const PREFETCH_RETRY_MS = 500;
const LOADING_OVERLAY_MS = 250;

/** The image ids ordered by their distance from ``fromIndex``, nearest first. */
export function nearestFirst(imageIds, fromIndex) {
  return imageIds
    .map((imageId, index) => ({ imageId, distance: Math.abs(index - fromIndex) }))
    .sort((a, b) => a.distance - b.distance)
    .map(({ imageId }) => imageId);
}

/** The viewer's frame loading: its fetcher, and what it asks Cornerstone to decode. */
export function loadingCreate(v) {
  const { state } = v;
  const fetcher = new FrameFetcher({ signal: v.abort.signal, onSettled: (imageId) => onFrameSettled(imageId) });
  let started = false; // Cornerstone is ready and takes frames from the fetcher
  let stackIds = new Set(); // the images of what is shown: counted as they load
  const loadedIds = new Set();
  const firstIds = new Set(); // the images drawn first: decoded as soon as they are here
  let prefetchDeferred = null;
  let overlaysPending = false;

  // In the cache already, or on its way there (prefetched with the previous case, or asked for).
  const isLoading = (imageId) => Boolean(engineIfLoaded()?.cache.getImageLoadObject(imageId));

  // Until the first image is drawn the stack is only fetched, not decoded: the frames already
  // here when Cornerstone starts are many (twenty a request), and decoding them at once kept
  // the decode workers and the main thread from the first image (bench/RESULTS.md, 2026-12-04).
  function prefetch(imageIds, fromIndex) {
    if (state.firstRenderAt === null) {
      prefetchDeferred = () => prefetch(imageIds, fromIndex);
      return;
    }
    const { Enums, imageLoadPoolManager } = v.cs;
    imageLoadPoolManager.clearRequestStack(Enums.RequestType.Prefetch);
    const order = nearestFirst(imageIds, fromIndex);
    fetcher.queue(order, { skip: isLoading });
    // Frames fetched before Cornerstone was ready are decoded now, nearest first.
    for (const imageId of order) if (fetcher.has(imageId)) prefetchOne(imageId, PREFETCH_ATTEMPTS);
  }

  // Every fetched frame of the stack is decoded; one the fetch failed for is left to the loader;
  // one of a series no longer shown is dropped.
  function onFrameSettled(imageId) {
    if (!started || state.destroyed) return;
    if (firstIds.has(imageId)) decodeNow(imageId);
    else if (stackIds.has(imageId)) {
      if (state.firstRenderAt !== null) prefetchOne(imageId, PREFETCH_ATTEMPTS); // else: prefetch()
    } else fetcher.take(imageId);
  }

  // A busy server may drop a frame request; try again before telling the radiologist.
  function prefetchOne(imageId, attemptsLeft) {
    if (isLoading(imageId)) {
      fetcher.take(imageId); // the loader fetched it itself (a scroll got there first)
      return;
    }
    const { Enums, imageLoadPoolManager, imageLoader } = v.cs;
    imageLoadPoolManager.addRequest(
      () =>
        imageLoader
          .loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch })
          .catch(() => {
            if (state.destroyed || !stackIds.has(imageId)) return;
            if (attemptsLeft > 1) {
              setTimeout(() => prefetchOne(imageId, attemptsLeft - 1), PREFETCH_RETRY_MS);
            } else {
              v.fail("Some images of this series could not be loaded; reload the page to try again.");
            }
          }),
      Enums.RequestType.Prefetch,
      { imageId },
    );
  }

  // The images drawn first are decoded as soon as their bytes are here (onFrameSettled), ahead
  // of the stack's prefetch and while the main thread sets the viewports up; resolves once all
  // are asked for.
  async function decodeFirst(imageIds) {
    for (const imageId of imageIds) {
      firstIds.add(imageId);
      if (fetcher.has(imageId)) decodeNow(imageId);
    }
    await Promise.all(imageIds.map((imageId) => fetcher.settled(imageId).then(() => decodeNow(imageId))));
  }

  function decodeNow(imageId) {
    if (state.destroyed) return;
    if (isLoading(imageId)) {
      fetcher.take(imageId);
      return;
    }
    state.marks.firstDecodeAsked ??= performance.now();
    const { Enums, imageLoader } = v.cs;
    imageLoader
      .loadAndCacheImage(imageId, { priority: -5, requestType: Enums.RequestType.Interaction })
      .catch(() => {}); // reported by onImageLoadFailed once the image is on screen
  }

  function trackLoaded(imageId) {
    if (!stackIds.has(imageId) || loadedIds.has(imageId)) return;
    loadedIds.add(imageId);
    state.stackLoaded = loadedIds.size;
    stackCheckLoaded();
    overlaysUpdateSoon();
  }

  function stackCheckLoaded() {
    if (state.stackLoaded === stackIds.size && state.stackLoadedAt === null) {
      state.stackLoadedAt = performance.now();
      v.element.dispatchEvent(new CustomEvent("viewer:stack-loaded", { detail: { count: stackIds.size } }));
    }
  }

  // Hundreds of images load per second: the "Loading n / N" line is redrawn a few times a
  // second, not once per image (each redraw repaints and composites the page).
  function overlaysUpdateSoon() {
    if (overlaysPending) return;
    overlaysPending = true;
    const update = () => {
      overlaysPending = false;
      if (!state.destroyed) for (const tile of state.tiles) overlayUpdate(v, tile);
    };
    if (state.stackLoadedAt !== null) update();
    else setTimeout(update, LOADING_OVERLAY_MS);
  }

  const onImageLoaded = (event) => {
    state.marks.firstDecoded ??= performance.now();
    trackLoaded(event.detail?.image?.imageId);
  };
  // Prefetch failures are retried (prefetchOne); an image on screen that fails is reported now.
  const onImageLoadFailed = (event) => {
    const imageId = event.detail?.imageId;
    const onScreen = state.tiles.some((tile) => v.viewportOf(tile)?.getCurrentImageId?.() === imageId);
    if (onScreen) v.fail("An image of this study could not be loaded or decoded.");
  };

  return {
    fetcher,
    prefetch,
    decodeFirst,
    stackCheckLoaded,
    /** The frames to fetch before Cornerstone is ready: the first images' first. */
    queue(imageIds) {
      fetcher.queue(imageIds, { skip: isLoading });
    },
    /** Cornerstone is ready: it takes the fetched frames from here on. */
    start() {
      const { Enums, eventTarget, framesProvide } = v.cs;
      started = true;
      v.cleanups.push(framesProvide(fetcher));
      eventTarget.addEventListener(Enums.Events.IMAGE_LOADED, onImageLoaded);
      eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_FAILED, onImageLoadFailed);
      v.cleanups.push(() => {
        eventTarget.removeEventListener(Enums.Events.IMAGE_LOADED, onImageLoaded);
        eventTarget.removeEventListener(Enums.Events.IMAGE_LOAD_FAILED, onImageLoadFailed);
      });
    },
    /** The first image is drawn: the stack's decodes held back until now go ahead. */
    firstDrawn() {
      prefetchDeferred?.();
      prefetchDeferred = null;
    },
    /** What is shown now: its images are counted as they load (those in the cache already). */
    stackSet(imageIds) {
      stackIds = new Set(imageIds);
      loadedIds.clear();
      state.stackLoadedAt = null;
      for (const imageId of imageIds) if (v.cs.cache.getImage(imageId)) loadedIds.add(imageId);
      state.stackLoaded = loadedIds.size;
    },
    stackSize: () => stackIds.size,
    /** For the benchmark: Cornerstone's own load and decode times of the stack's images. */
    timings() {
      const cache = v.cs?.cache;
      const images = cache ? [...stackIds].map((imageId) => cache.getImage(imageId)).filter(Boolean) : [];
      const total = (key) => images.reduce((sum, image) => sum + (Number(image[key]) || 0), 0);
      return { count: images.length, decodeMs: total("decodeTimeInMS"), loadMs: total("loadTimeInMS") };
    },
    stop() {
      fetcher.stop();
      const cs = engineIfLoaded();
      cs?.imageLoadPoolManager.clearRequestStack(cs.Enums.RequestType.Prefetch);
    },
    /** The viewports are gone: so go this study's images and headers. A page that keeps the
     * engine across studies (the reading page) then holds what is shown and what is
     * prefetched, however many cases were read before. */
    forget() {
      engineIfLoaded()?.studyForget(state.series);
    },
  };
}
