// The study as our DICOMweb server describes it: QIDO for its series, one /metadata call per
// series, then wadors: image ids (one per frame) whose metadata is registered with the loader.

const TAG = {
  seriesUid: "0020000E",
  sopUid: "00080018",
  modality: "00080060",
  seriesNumber: "00200011",
  instanceNumber: "00200013",
  numberOfFrames: "00280008",
  position: "00200032",
  orientation: "00200037",
  viewPosition: "00185101",
};

// Projection radiography: every image is shown side by side, not scrolled as a stack.
const PROJECTION_MODALITIES = new Set(["CR", "DX", "MG", "RF", "XA", "IO", "PX"]);
const FRONTAL_VIEWS = new Set(["PA", "AP"]);
const LATERAL_VIEWS = new Set(["LL", "RL", "LAT", "LATERAL", "RLD", "LLD"]);

export class ViewerLoadError extends Error {}

/** The slice a stack opens on: the middle, where most findings are. */
export function stackStart(imageIds) {
  return Math.floor((imageIds.length - 1) / 2);
}

/** The images drawn first: every radiograph of the layout, or the stack's start slice. */
export function firstImages(layout) {
  if (layout.mode === "projection") return layout.images;
  const { images } = layout.series;
  return [images[stackStart(images)]];
}

function value(item, tag, index = 0) {
  const values = item?.[tag]?.Value;
  return values && values.length > index ? values[index] : undefined;
}

/** The text of a DICOM JSON answer ("[]" for 204), or a ViewerLoadError saying what failed. */
export async function getDicomText(url, signal, what) {
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/dicom+json" },
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ViewerLoadError(`Could not reach the image server for ${what}.`);
  }
  if (response.status === 204) return "[]";
  if (!response.ok) {
    const reason =
      response.status === 403 || response.status === 401
        ? "you are not allowed to see these images"
        : response.status === 404
          ? "the images are not in the archive"
          : `the server answered ${response.status}`;
    throw new ViewerLoadError(`Could not load ${what}: ${reason}.`);
  }
  return response.text();
}

export async function getDicomJson(url, signal, what) {
  return JSON.parse(await getDicomText(url, signal, what));
}

// Order slices along the normal of their plane, head first for axial stacks, so the wheel
// moves through the body the way a radiologist expects; instance number when there is no
// geometry.
function sliceOrder(instances) {
  const first = instances[0].meta;
  const orientation = first?.[TAG.orientation]?.Value;
  const hasGeometry =
    orientation?.length === 6 && instances.every((i) => i.meta?.[TAG.position]?.Value?.length === 3);
  if (hasGeometry) {
    const [r0, r1, r2, c0, c1, c2] = orientation.map(Number);
    const normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
    const along = (i) => {
      const p = i.meta[TAG.position].Value.map(Number);
      return p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2];
    };
    return [...instances].sort((a, b) => along(b) - along(a));
  }
  return [...instances].sort(
    (a, b) => (Number(value(a.meta, TAG.instanceNumber)) || 0) - (Number(value(b.meta, TAG.instanceNumber)) || 0),
  );
}

function isAxial(meta) {
  const o = meta?.[TAG.orientation]?.Value?.map(Number);
  if (o?.length !== 6) return true;
  const nz = o[0] * o[4] - o[1] * o[3];
  return Math.abs(nz) > 0.8;
}

function viewRank(view) {
  if (FRONTAL_VIEWS.has(view)) return 0;
  if (LATERAL_VIEWS.has(view)) return 2;
  return 1;
}

/**
 * Fetch the study's series and their metadata, with one wadors: image id per frame. Needs no
 * Cornerstone nor a DOM, so it runs in the early image's worker while Cornerstone loads;
 * setup.js registers the headers after init. ``getJson(url, signal, what)`` answers each
 * request (the page replays the answers the worker fetched).
 */
export async function studyFetch({ root, studyUid, signal, getJson = getDicomJson }) {
  const base = new URL(root, globalThis.location.href).href.replace(/\/+$/, "");
  const studyUrl = `${base}/studies/${encodeURIComponent(studyUid)}`;
  const qido = await getJson(`${studyUrl}/series`, signal, "the list of series");
  const series = await Promise.all(
    qido.map(async (row) => {
      const seriesUid = value(row, TAG.seriesUid);
      const seriesUrl = `${studyUrl}/series/${encodeURIComponent(seriesUid)}`;
      const metadata = await getJson(`${seriesUrl}/metadata`, signal, "the image headers");
      const instances = sliceOrder(
        metadata
          .filter((meta) => value(meta, TAG.sopUid))
          .map((meta) => ({ meta, sopUid: value(meta, TAG.sopUid) })),
      );
      const images = [];
      for (const { meta, sopUid } of instances) {
        const frames = Math.max(1, Number(value(meta, TAG.numberOfFrames)) || 1);
        for (let frame = 1; frame <= frames; frame += 1) {
          images.push({
            imageId: `wadors:${seriesUrl}/instances/${encodeURIComponent(sopUid)}/frames/${frame}`,
            meta,
            sopUid,
            frame,
            view: String(value(meta, TAG.viewPosition) || "").toUpperCase(),
          });
        }
      }
      const modality = String(value(row, TAG.modality) || value(metadata[0], TAG.modality) || "");
      return {
        uid: seriesUid,
        modality,
        number: Number(value(row, TAG.seriesNumber) ?? value(metadata[0], TAG.seriesNumber)) || null,
        isProjection: PROJECTION_MODALITIES.has(modality.toUpperCase()),
        isAxial: instances.length > 0 && isAxial(instances[0].meta),
        images,
      };
    }),
  );
  const withImages = series.filter((s) => s.images.length > 0);
  if (withImages.length === 0) throw new ViewerLoadError("This study has no images to show.");
  withImages.sort((a, b) => (a.number ?? 1e9) - (b.number ?? 1e9));
  return withImages;
}

/** What to show first: every radiograph (frontal left, lateral right), else one stack. */
export function studyLayout(series) {
  const stacks = series.filter((s) => !s.isProjection && s.images.length > 1);
  if (stacks.length === 0) {
    const images = series
      .flatMap((s) => s.images.map((image) => ({ ...image, series: s })))
      .sort((a, b) => viewRank(a.view) - viewRank(b.view));
    return { mode: "projection", images };
  }
  // The axial series with most slices: the reconstruction a report is usually read from.
  const preferred = [...stacks].sort(
    (a, b) => Number(b.isAxial) - Number(a.isAxial) || b.images.length - a.images.length,
  )[0];
  return { mode: "stack", series: preferred };
}

export function seriesLabel(s) {
  const parts = [s.number != null ? `Series ${s.number}` : "Series", s.modality].filter(Boolean);
  return `${parts.join(" · ")} (${s.images.length} image${s.images.length === 1 ? "" : "s"})`;
}
