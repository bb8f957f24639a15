"""DICOM to model-ready images.

Chest radiographs: the frontal image (and the lateral when a model takes two), modality LUT,
then the file's own VOI window when it has one, else a 0.5-99.5 percentile window (many CR/DX
files carry none); MONOCHROME1 is inverted so bone is white; grey copied to RGB because the
vision towers we target expect three channels.

CT: ``ct_slices`` axial slices sampled evenly along the ordered series (default 16, the
endpoints included), each turned into RGB with one window per channel; by default lung
(-600/1500), mediastinum (40/400) and bone (480/2500), so one image carries what a reader
would see by switching presets. Both are configurable per model (``ct_slices``,
``ct_windows``). Every image is then fitted within ``max_side`` pixels (default 1024,
aspect kept); the model's own processor does its final resize and normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from inference.types import ImageRef, InferenceError, StudyInput

DEFAULT_CT_WINDOWS: tuple[tuple[float, float], ...] = ((-600, 1500), (40, 400), (480, 2500))
DEFAULT_CT_SLICES = 16
DEFAULT_MAX_SIDE = 1024
FRONTAL_VIEWS = {"PA", "AP", "FRONTAL"}
LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "RLD", "LLD"}


@dataclass
class PreparedImages:
    images: list[Image.Image]
    sop_instance_uids: list[str]
    description: dict[str, Any]


def _read(ref: ImageRef) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(ref.path)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise InferenceError(f"Instance {ref.sop_instance_uid} could not be read: {exc}") from exc


def _pixels(ds: pydicom.Dataset, ref: ImageRef) -> np.ndarray:
    try:
        arr = ds.pixel_array
    except Exception as exc:  # missing codec, truncated pixel data...
        raise InferenceError(
            f"Instance {ref.sop_instance_uid} has pixel data that cannot be decoded: {exc}"
        ) from exc
    if arr.ndim == 3 and ds.get("SamplesPerPixel", 1) == 1:
        arr = arr[0]  # multi-frame greyscale: the first frame stands for the instance
    return arr


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    longest = max(image.size)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def radiograph_to_grey(ds: pydicom.Dataset, ref: ImageRef) -> tuple[np.ndarray, str]:
    """Return the image as float32 in [0, 1] (bone bright) and how it was windowed."""
    arr = _pixels(ds, ref)
    if arr.ndim == 3:  # colour (secondary capture): luminance
        grey = arr[..., :3].astype(np.float32).mean(axis=-1) / 255.0
        return grey, "rgb-luminance"
    values = apply_modality_lut(arr, ds).astype(np.float32)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_voi_lut(values, ds).astype(np.float32)
        how = "dicom-voi"
    else:
        how = "percentile-0.5-99.5"
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    grey = np.clip((values - low) / (high - low), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 1.0 - grey
        how += "+invert-monochrome1"
    return grey.astype(np.float32), how


def ct_to_hu(ds: pydicom.Dataset, ref: ImageRef) -> np.ndarray:
    return apply_modality_lut(_pixels(ds, ref), ds).astype(np.float32)


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    low = center - width / 2.0
    return np.clip((hu - low) / max(width, 1.0), 0.0, 1.0)


def _to_image(channels: Sequence[np.ndarray]) -> Image.Image:
    planes = [(np.asarray(c) * 255.0 + 0.5).astype(np.uint8) for c in channels]
    if len(planes) == 1:
        planes = planes * 3
    while len(planes) < 3:
        planes.append(planes[-1])
    return Image.fromarray(np.stack(planes[:3], axis=-1), mode="RGB")


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """Indices of ``wanted`` items spread evenly over ``count``, both ends included."""
    if wanted <= 0 or count <= 0:
        return []
    if wanted >= count:
        return list(range(count))
    if wanted == 1:
        return [count // 2]
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def pick_radiographs(images: Sequence[ImageRef], *, max_images: int) -> list[ImageRef]:
    """The frontal view first, then a lateral when the model takes more than one image."""
    frontal = [r for r in images if r.view_position.upper() in FRONTAL_VIEWS]
    lateral = [r for r in images if r.view_position.upper() in LATERAL_VIEWS]
    other = [r for r in images if r not in frontal and r not in lateral]
    first = (frontal or other or lateral)[:1]
    if not first:
        return []
    picked = list(first)
    if max_images > 1 and lateral and lateral[0] not in picked:
        picked.append(lateral[0])
    return picked


def ct_windows_from(params: dict[str, Any]) -> tuple[tuple[float, float], ...]:
    raw = params.get("ct_windows")
    if not raw:
        return DEFAULT_CT_WINDOWS
    windows = tuple((float(c), float(w)) for c, w in raw)
    if not 1 <= len(windows) <= 3:
        raise InferenceError("ct_windows must list one to three [center, width] pairs.")
    return windows


def prepare_study(
    study: StudyInput, params: dict[str, Any], *, scale: float = 1.0
) -> PreparedImages:
    """Turn a study into the images a vision model sees; ``scale`` < 1 asks for fewer/smaller
    images (the out-of-memory retry)."""
    if not study.images:
        raise InferenceError(f"Study {study.study_key} has no images to generate from.")
    max_side = max(64, int(int(params.get("max_side", DEFAULT_MAX_SIDE)) * scale))
    if study.kind == "CXR":
        max_images = int(params.get("max_images", 2))
        refs = pick_radiographs(study.images, max_images=max_images)
        images, how = [], []
        for ref in refs:
            grey, method = radiograph_to_grey(_read(ref), ref)
            images.append(_fit(_to_image([grey]), max_side))
            how.append(method)
        description = {
            "kind": "CXR",
            "views": [r.view_position or "unknown" for r in refs],
            "windowing": how,
            "max_side": max_side,
        }
        return PreparedImages(images, [r.sop_instance_uid for r in refs], description)
    wanted = max(1, int(int(params.get("ct_slices", DEFAULT_CT_SLICES)) * scale))
    windows = ct_windows_from(params)
    indices = evenly_spaced(len(study.images), wanted)
    refs = [study.images[i] for i in indices]
    images = []
    for ref in refs:
        hu = ct_to_hu(_read(ref), ref)
        images.append(_fit(_to_image([window(hu, c, w) for c, w in windows]), max_side))
    description = {
        "kind": "CT",
        "slices_in_series": len(study.images),
        "slice_indices": indices,
        "windows": [list(w) for w in windows],
        "max_side": max_side,
    }
    return PreparedImages(images, [r.sop_instance_uid for r in refs], description)
