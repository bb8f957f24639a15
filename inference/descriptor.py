"""The retrieval baseline's image descriptor: small, fixed and cheap.

A 32x32 thumbnail of the frontal radiograph (or of the mean of the central CT slices in the
mediastinal window), normalised to zero mean and unit norm, followed by a 16-bin intensity
histogram weighted to the same scale. Euclidean distance between two descriptors is the
baseline's similarity. Bump ``DESCRIPTOR_VERSION`` whenever the recipe changes: cached
descriptors of another version are recomputed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from inference.preprocess import (
    _read,
    ct_to_hu,
    evenly_spaced,
    pick_radiographs,
    radiograph_to_grey,
    window,
)
from inference.types import InferenceError, StudyInput

DESCRIPTOR_VERSION = "thumb32-hist16-v1"
THUMB = 32
BINS = 16
CT_CENTRAL_SLICES = 3


def _grey_for(study: StudyInput) -> np.ndarray:
    if not study.images:
        raise InferenceError(f"Study {study.study_key} has no images to describe.")
    if study.kind == "CXR":
        ref = pick_radiographs(study.images, max_images=1)[0]
        grey, _ = radiograph_to_grey(_read(ref), ref)
        return grey
    middle = len(study.images) // 2
    indices = evenly_spaced(len(study.images), len(study.images))
    lo = max(0, middle - CT_CENTRAL_SLICES // 2)
    chosen = indices[lo : lo + CT_CENTRAL_SLICES]
    planes = []
    for i in chosen:
        ref = study.images[i]
        planes.append(window(ct_to_hu(_read(ref), ref), 40, 400))
    shape = planes[0].shape
    return np.mean([p for p in planes if p.shape == shape], axis=0)


def describe_grey(grey: np.ndarray) -> np.ndarray:
    thumb = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8)).resize(
        (THUMB, THUMB), Image.Resampling.BOX
    )
    vec = np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    vec = vec - vec.mean()
    norm = float(np.linalg.norm(vec)) or 1.0
    vec = vec / norm
    hist, _ = np.histogram(grey, bins=BINS, range=(0.0, 1.0))
    hist = hist.astype(np.float32) / max(1, int(hist.sum()))
    return np.concatenate([vec, hist]).astype(np.float32)


def study_descriptor(study: StudyInput) -> np.ndarray:
    """Describe a study by one fixed-length float32 vector."""
    return describe_grey(_grey_for(study))
