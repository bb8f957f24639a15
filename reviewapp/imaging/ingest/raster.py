"""PNG and JPEG images of research datasets wrapped as DICOM objects.

Research test sets (MIMIC-CXR-JPG, IU X-ray, CheXpert Plus) come as PNG or JPEG files with a
table of metadata. Each image becomes one real DICOM object built here with pydicom, then goes
through the archive's one import path (safety scan, de-identification, quarantine, indexing),
so the viewer, DICOMweb, generation and de-identification never meet a second kind of image.

Decisions:

* SOP class: Secondary Capture Image Storage. The pixels are a converted copy of what the
  modality produced (often windowed, resized and 8-bit), without the detector, exposure and
  VOI attributes the DX IOD requires; claiming DX For Presentation would be a false header.
  Modality is what the dataset says it is (DX by default, CR if asked), which the archive
  accepts for single-frame secondary captures of radiographs. ``highdicom`` was not used: it
  is not a dependency, and its SC constructor adds nothing the few attributes below need.
* Marked as derived: Image Type ``DERIVED\\SECONDARY``, Conversion Type ``WSD`` and a
  Derivation Description naming the dataset and the file's format. De-identification removes
  every free-text attribute (it may carry a report), Derivation Description included, so the
  archive also records the dataset's name and study id on the imaging study.
* Pixels are stored as decoded, uncompressed (Explicit VR Little Endian), so the stored pixels
  equal the PNG's exactly and a JPEG's as decoded: 8-bit and 16-bit grayscale keep their
  depth; colour images whose three channels are equal everywhere become grayscale (lossless);
  other colour images stay RGB. Alpha is dropped only when fully opaque; a transparent image
  is refused (what the alpha hides is not what the dataset shows). Palette and 1-bit images
  are expanded. Anything else (CMYK, floating point, 32-bit integers beyond 16 bits) is refused.
* UIDs are derived from (dataset, study id[, view], file), so importing the same files again
  makes the same objects, which the import path recognises as already stored.
* Limits come before decoding: the file's size, then the image's declared width, height and
  mode from its header (Pillow reads it without decoding), so a decompression bomb is refused
  before any pixel buffer exists.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from reviewapp.imaging.ingest.dicom_safety import SECONDARY_CAPTURE

MAX_IMAGE_BYTES = 64 * 1024**2
MAX_IMAGE_SIDE = 8192
FORMATS = {"PNG": "PNG", "JPEG": "JPEG"}
MODALITIES = ("DX", "CR")

# Spellings datasets use for a radiograph's view, mapped to DICOM View Position (PS3.16 CID
# 4010 short forms as DX and CR headers carry them). "Frontal" alone does not say AP or PA,
# so it stays unset rather than guessed.
VIEW_POSITIONS = {
    "pa": "PA",
    "posteroanterior": "PA",
    "postero-anterior": "PA",
    "ap": "AP",
    "anteroposterior": "AP",
    "antero-posterior": "AP",
    "ll": "LL",
    "leftlateral": "LL",
    "left lateral": "LL",
    "rl": "RL",
    "rightlateral": "RL",
    "right lateral": "RL",
    "lateral": "LATERAL",
    "lat": "LATERAL",
    "frontal": "",
}
LATERALITIES = {"l": "L", "left": "L", "r": "R", "right": "R", "b": "B", "both": "B", "u": "U"}
_UID_ROOT = "radreview-dataset"


class RasterRefused(Exception):
    """The image cannot become a DICOM object; the message is safe to show."""


@dataclass(frozen=True)
class RasterMeta:
    """What the dataset says about one image (never patient-identifying beyond its ids)."""

    dataset: str
    study_id: str
    file_key: str  # the image's path inside the dataset, as its table names it
    view: str = ""  # the dataset's own view label ("PA", "lateral", "Frontal")
    series_key: str = ""  # images with the same key form one series
    series_number: int = 1
    instance_number: int = 1
    patient_id: str = ""
    study_date: date | None = None
    study_time: str = ""
    laterality: str = ""
    patient_sex: str = ""
    modality: str = "DX"
    body_part: str = ""


def uid_for(*parts: str) -> str:
    """A deterministic ``2.25`` UID from the parts that name an object.

    Not ``pydicom.generate_uid(prefix=None, entropy_srcs=...)``: without a prefix it ignores
    the entropy and returns a random UUID, which would make every re-import new objects."""
    digest = hashlib.sha256("\x00".join([_UID_ROOT, *parts]).encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def view_position(label: str) -> str:
    """The DICOM View Position for a dataset's view label ("" when it does not say)."""
    key = " ".join(label.strip().lower().replace("_", " ").split())
    if key in VIEW_POSITIONS:
        return VIEW_POSITIONS[key]
    return VIEW_POSITIONS.get(key.replace(" ", ""), "")


def _pixels(path: Path) -> tuple[np.ndarray, str]:
    """Decoded pixels and the photometric interpretation they are stored under."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RasterRefused(f"cannot read the image ({exc.strerror or 'unreadable'})") from exc
    if size > MAX_IMAGE_BYTES:
        raise RasterRefused(
            f"image file is {size:,} bytes; the limit is {MAX_IMAGE_BYTES // 1024**2} MiB"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (and only warns) below twice its pixel limit: we check sides first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Exception as exc:
        # Pillow parses hostile bytes: whatever it raises, the file is not an image we read.
        raise RasterRefused(f"not a readable PNG or JPEG image ({type(exc).__name__})") from exc
    with image:
        if image.format not in FORMATS:
            raise RasterRefused(f"{image.format or 'unknown'} images are not imported (PNG, JPEG)")
        width, height = image.size
        if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
            raise RasterRefused(
                f"image is {width} x {height}; each side must be 1 to {MAX_IMAGE_SIDE} pixels"
            )
        if getattr(image, "n_frames", 1) != 1:
            raise RasterRefused("animated images are not imported")
        try:
            return _decoded(image)
        except RasterRefused:
            raise
        except Exception as exc:
            raise RasterRefused(f"image data cannot be decoded ({type(exc).__name__})") from exc


def _decoded(image: Image.Image) -> tuple[np.ndarray, str]:
    mode = image.mode
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "L":
        return np.asarray(image, dtype=np.uint8), "MONOCHROME2"
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image)
        if values.dtype != np.uint16:
            if values.size and (values.min() < 0 or values.max() > 0xFFFF):
                raise RasterRefused("image values do not fit 16 bits")
            values = values.astype(np.uint16)
        return values, "MONOCHROME2"
    if mode in ("LA", "RGBA"):
        values = np.asarray(image)
        if values[..., -1].min() != 255:
            raise RasterRefused("image has transparent pixels")
        values = values[..., :-1]
        if mode == "LA":
            return np.ascontiguousarray(values[..., 0], dtype=np.uint8), "MONOCHROME2"
        return _colour(values)
    if mode == "RGB":
        return _colour(np.asarray(image))
    raise RasterRefused(f"image mode {mode} is not imported (grayscale or RGB)")


def _colour(values: np.ndarray) -> tuple[np.ndarray, str]:
    # Many datasets save grayscale radiographs as RGB; equal channels lose nothing as gray.
    if np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(
        values[..., 0], values[..., 2]
    ):
        return np.ascontiguousarray(values[..., 0], dtype=np.uint8), "MONOCHROME2"
    return np.ascontiguousarray(values, dtype=np.uint8), "RGB"


def image_format(path: Path) -> str:
    """PNG or JPEG from the file's signature ("" for anything else)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError:
        return ""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    return ""


def dicom_from_raster(path: Path, *, meta: RasterMeta) -> Dataset:
    """Build the Secondary Capture object for one PNG/JPEG image, or raise RasterRefused."""
    fmt = image_format(path)
    if not fmt:
        raise RasterRefused("not a PNG or JPEG file")
    pixels, photometric = _pixels(path)
    if meta.modality not in MODALITIES:
        raise RasterRefused(f"modality {meta.modality} is not one of {', '.join(MODALITIES)}")

    study_uid = uid_for(meta.dataset, meta.study_id)
    series_uid = uid_for(meta.dataset, meta.study_id, "series", meta.series_key)
    sop_uid = uid_for(meta.dataset, meta.study_id, "image", meta.file_key)

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE)
    file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = file_meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    # Patient: the dataset's patient id when it gives one (so priors can be found), else the
    # study stands alone. De-identification turns either into the archive's pseudonym.
    ds.PatientID = (
        f"{meta.dataset}/{meta.patient_id}"
        if meta.patient_id
        else f"{meta.dataset}/{meta.study_id}"
    )[:64]
    ds.PatientName = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = meta.patient_sex if meta.patient_sex in ("M", "F", "O") else ""
    ds.StudyDate = meta.study_date.strftime("%Y%m%d") if meta.study_date else ""
    ds.StudyTime = meta.study_time
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.Modality = meta.modality
    ds.SeriesNumber = meta.series_number
    ds.InstanceNumber = meta.instance_number
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = f"Converted from a {fmt} image of the dataset {meta.dataset}"[:1024]
    position = view_position(meta.view)
    if position:
        ds.ViewPosition = position
    if meta.view:
        ds.SeriesDescription = meta.view.strip()[:64]
    laterality = LATERALITIES.get(meta.laterality.strip().lower(), "")
    if laterality:
        ds.ImageLaterality = laterality
    if meta.body_part:
        ds.BodyPartExamined = meta.body_part[:16]
    ds.PatientOrientation = ""

    rows, columns = pixels.shape[:2]
    ds.Rows = rows
    ds.Columns = columns
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
    else:
        ds.SamplesPerPixel = 1
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    return ds
