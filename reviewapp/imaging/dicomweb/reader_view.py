"""What of a DICOM header a reader receives: one allow-list, applied on every path to them.

DICOM text is a blinding channel (DESIGN.md section 6). A file converted from a public
collection can keep the collection's label in a descriptor (StudyDescription "No Finding" is
the answer to the case), and de-identification upstream of us can leave PHI in descriptors,
comments and names. Readers need none of it to read the images, so they get only what
display needs; coordinators, analysts and admins keep the full de-identified header.

Decisions:

* An allow-list, not a deny-list: a vendor's new free-text attribute, a private tag that
  slipped through or a descriptor the cleaning misjudged stays away from readers by default.
* Kept: what places, scales, windows and orders the pixels (pixel module, geometry, rescale
  and window, view position, laterality, body part, patient orientation and position, the
  UIDs that address the objects, instance, series and acquisition numbers) and the numeric
  calibration of ultrasound regions and enhanced multi-frame functional groups. Nothing kept
  is free text; the strings kept are coded (CS), numbers or UIDs.
* Dropped, among the rest: every description, protocol name, comment and label, person
  names even pseudonymised, patient id, accession, age, sex, and every date and time. The
  viewer orders images by position and instance number, never by time; dates (even shifted)
  and acquisition times can tell a dataset or a cohort apart, and clinical context reaches
  the reader outside the images, once, for both reports. The window explanation (a label
  like "LUNG") is text too: the viewer has its own presets.
* Whole-instance retrieve (WADO-RS study, series, instance; WADO-URI) gives a reader a
  rebuilt object: the allowed attributes plus the pixel data, as stored (no transcoding).
  The viewer itself only fetches frames, which are pixel bytes and carry no header text; the
  rebuild keeps any other DICOMweb client a reader uses working, for the price of one parse
  and one write per instance retrieved, paid only by readers.
* Computed from the stored header on each request, not stored beside it: tightening this
  list then applies at once to every study already in the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from reviewapp.imaging.ingest.dicom_safety import quiet_pydicom

READER_VISIBLE_KEYWORDS = frozenset(
    {
        # Addressing: which object this is and how its pixels are encoded.
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "FrameOfReferenceUID",
        "AvailableTransferSyntaxUID",
        # Ordering.
        "SeriesNumber",
        "InstanceNumber",
        "AcquisitionNumber",
        # What was imaged and from where.
        "Modality",
        "BodyPartExamined",
        "ViewPosition",
        "Laterality",
        "ImageLaterality",
        "PatientOrientation",
        "PatientPosition",
        # Image pixel module and multi-frame.
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PixelAspectRatio",
        "SmallestImagePixelValue",
        "LargestImagePixelValue",
        "PixelPaddingValue",
        "PixelPaddingRangeLimit",
        "RedPaletteColorLookupTableDescriptor",
        "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor",
        "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData",
        "NumberOfFrames",
        "FrameIncrementPointer",
        "FrameTime",
        # Geometry.
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "NominalScannedPixelSpacing",
        "EstimatedRadiographicMagnificationFactor",
        "SliceThickness",
        "SpacingBetweenSlices",
        "SliceLocation",
        # Modality and VOI transforms.
        "RescaleIntercept",
        "RescaleSlope",
        "RescaleType",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "PresentationLUTShape",
        # Lookup tables some radiographs are displayed through (their explanation, free
        # text, is not in this list, so it is cut from the items).
        "VOILUTSequence",
        "ModalityLUTSequence",
        "LUTDescriptor",
        "LUTData",
        # Enhanced multi-frame: the functional groups that carry geometry and windows (their
        # items are filtered by this same list, so frame labels and comments stay out).
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
        "PixelMeasuresSequence",
        "PlanePositionSequence",
        "PlaneOrientationSequence",
        "FrameVOILUTSequence",
        "PixelValueTransformationSequence",
        # Ultrasound calibration regions (numbers only).
        "SequenceOfUltrasoundRegions",
        "RegionSpatialFormat",
        "RegionDataType",
        "RegionFlags",
        "RegionLocationMinX0",
        "RegionLocationMinY0",
        "RegionLocationMaxX1",
        "RegionLocationMaxY1",
        "ReferencePixelX0",
        "ReferencePixelY0",
        "PhysicalUnitsXDirection",
        "PhysicalUnitsYDirection",
        "ReferencePixelPhysicalValueX",
        "ReferencePixelPhysicalValueY",
        "PhysicalDeltaX",
        "PhysicalDeltaY",
    }
)


def _tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # a typo here must fail at import, not silently hide an attribute
        raise LookupError(f"{keyword} is not a DICOM keyword")
    return int(tag)


READER_VISIBLE_TAGS = frozenset(_tag_of(keyword) for keyword in READER_VISIBLE_KEYWORDS)
# DICOM JSON (PS3.18 F.2) names attributes by eight upper-case hex digits.
READER_VISIBLE_JSON_KEYS = frozenset(f"{tag:08X}" for tag in READER_VISIBLE_TAGS)
PIXEL_DATA_TAG = 0x7FE00010
# Names this list in cache validators, so a reader's browser revalidates after it changes.
READER_VIEW_VERSION = hashlib.sha256(
    " ".join(sorted(READER_VISIBLE_JSON_KEYS)).encode()
).hexdigest()[:12]


def reader_json(header: dict[str, Any]) -> dict[str, Any]:
    """The reader's view of one DICOM JSON header: allowed attributes only, at every depth."""
    result: dict[str, Any] = {}
    for key, attribute in header.items():
        if key.upper() not in READER_VISIBLE_JSON_KEYS:
            continue
        if isinstance(attribute, dict) and attribute.get("vr") == "SQ":
            items = attribute.get("Value") or []
            attribute = {
                "vr": "SQ",
                "Value": [reader_json(item) for item in items if isinstance(item, dict)],
            }
        result[key] = attribute
    return result


def reader_json_text(text: str) -> str:
    """``reader_json`` of a header stored as JSON text, as JSON text."""
    return json.dumps(reader_json(json.loads(text)), separators=(",", ":"))


def reader_dataset(ds: Dataset) -> Dataset:
    """A new data set holding only the allowed attributes of ``ds`` (at every depth)."""
    out = Dataset()
    for elem in ds:
        tag = int(elem.tag)
        if tag not in READER_VISIBLE_TAGS:
            continue
        if elem.VR == "SQ":
            out.add_new(elem.tag, "SQ", Sequence([reader_dataset(item) for item in elem.value]))
        else:
            out.add(elem)
    return out


@quiet_pydicom()
def reader_instance_bytes(handle: Any) -> bytes:
    """The stored instance open in ``handle`` rebuilt for a reader: the allowed attributes
    plus the pixel data as stored, as a Part 10 file with the same transfer syntax."""
    stored = pydicom.dcmread(handle)
    out = reader_dataset(stored)
    if PIXEL_DATA_TAG in stored:
        out.add(stored[PIXEL_DATA_TAG])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = stored.file_meta.MediaStorageSOPClassUID
    meta.MediaStorageSOPInstanceUID = stored.file_meta.MediaStorageSOPInstanceUID
    meta.TransferSyntaxUID = stored.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    out.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, out, enforce_file_format=True)
    return buffer.getvalue()
