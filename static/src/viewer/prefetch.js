// The next case's images, made ready while the reader reads this one (the reading page names
// the next study: data-next-study-uid): its headers, then the frames drawn first, fetched by a
// FrameFetcher of its own and decoded into Cornerstone's cache through the same registry as
// every frame (loading.js). Opening that study then finds its headers here and its first images
// decoded. One study ahead at most, so the cache holds the case read and the next one.
// Only image requests: nothing of the next case's reports is asked for or held. Its decodes
// take their turn with the current stack's (same priority), not after all of it: a 300-slice
// CT read for a few seconds must not leave the next radiograph undecoded.
import { firstImages, studyFetch, studyLayout } from "./dicomweb.js";
import { FrameFetcher } from "./frames.js";

let ahead = null; // { studyUid, series (promise), abort }

/** Fetch and decode the first images of ``studyUid`` in the background (engine loaded). */
export function studyPrefetch({ root, studyUid, cs }) {
  if (!studyUid || ahead?.studyUid === studyUid) return;
  prefetchDrop();
  const abort = new AbortController();
  const series = studyFetch({ root, studyUid, signal: abort.signal }).then(async (found) => {
    cs.studyRegister(found);
    const imageIds = firstImages(studyLayout(found)).map((image) => image.imageId);
    const fetcher = new FrameFetcher({ signal: abort.signal });
    const provided = cs.framesProvide(fetcher);
    fetcher.queue(imageIds);
    const { Enums, imageLoader } = cs;
    await Promise.all(
      imageIds.map((imageId) =>
        fetcher
          .settled(imageId)
          .then((held) =>
            held && !abort.signal.aborted
              ? imageLoader.loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch })
              : null,
          )
          .catch(() => null), // the viewer loads it again when the case opens, and says what failed
      ),
    );
    provided();
    return found;
  });
  series.catch(() => {}); // a failed prefetch costs nothing: the case opens as without it
  ahead = { studyUid, series, abort };
}

/** The headers prefetched for ``studyUid`` (a promise of its series), handed over once. */
export function prefetchTake(studyUid) {
  if (ahead?.studyUid !== studyUid) return null;
  const { series } = ahead;
  ahead = null;
  return series;
}

/** Stop prefetching (another study is wanted ahead). */
export function prefetchDrop() {
  ahead?.abort.abort();
  ahead = null;
}
