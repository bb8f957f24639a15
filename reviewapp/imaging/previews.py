"""A PNG of an instance's first frame, for the coordinator deciding on a quarantined image.

Rendered on the server so the decision needs no viewer session: the point is to see whether
text is burned into the pixels, so the frame is shown whole, windowed as the file asks (its
VOI LUT or window), else stretched between the 0.5th and 99.5th percentiles so faint text at
either end of the range stays visible. Compressed pixel data decodes through pylibjpeg's
plug-ins (JPEG, JPEG 2000, RLE). The caller authorises; this module only reads stored bytes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from reviewapp.core.errors import ApplicationError
from reviewapp.imaging.ingest.dicom_safety import quiet_pydicom
from reviewapp.imaging.models import Instance

# Large enough to read burned-in text on a radiograph at screen size, small enough to send.
PREVIEW_MAX_SIDE = 1024


def _grey(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    values = apply_modality_lut(pixels, ds).astype(np.float32)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds).astype(np.float32)
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    grey = np.clip((values - low) / (high - low), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 1.0 - grey  # MONOCHROME1 stores bone dark: show it as readers see it
    return (grey * 255.0 + 0.5).astype(np.uint8)


def instance_preview_png(*, instance: Instance) -> bytes:
    """Return the first frame of a stored instance as a windowed PNG.

    Raises ApplicationError (code ``preview_unavailable``) when the pixels cannot be decoded.
    """
    return instance_render(instance=instance, max_side=PREVIEW_MAX_SIDE, image_format="PNG")


def instance_render(
    *,
    instance: Instance,
    frame: int = 1,
    max_side: int = PREVIEW_MAX_SIDE,
    image_format: str = "PNG",
    quality: int = 90,
) -> bytes:
    """One frame (from 1) of a stored instance, windowed as above, as a PNG or JPEG image no
    larger than ``max_side`` on either side. Also what DICOMweb's /rendered and /thumbnail
    answer (a consumer image, PS3.18 8.3.5).

    Raises ApplicationError (code ``preview_unavailable``) when the pixels cannot be decoded,
    FileNotFoundError when the stored file is gone.
    """
    import pydicom

    handle = instance.file.open("rb")  # a missing file is not "undecodable"
    try:
        with handle, quiet_pydicom():
            ds = pydicom.dcmread(handle)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            pixels = ds.pixel_array if frames == 1 else ds.pixel_array[frame - 1]
    except Exception as exc:  # pydicom and its codecs raise many types on undecodable data
        raise ApplicationError(
            "This image's pixels cannot be decoded for a preview; open it in the viewer "
            "or reject it.",
            code="preview_unavailable",
        ) from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples == 1:
        image = Image.fromarray(_grey(ds, pixels), mode="L")
    else:
        image = Image.fromarray(np.asarray(pixels[..., :3], dtype=np.uint8), mode="RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if image_format == "JPEG":
        image.save(out, format="JPEG", quality=quality)
    else:
        image.save(out, format="PNG", optimize=False)
    return out.getvalue()
