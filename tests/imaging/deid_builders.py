"""Builders for de-identification and hostile-input tests: marked data sets and raw bytes."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from reviewapp.imaging.ingest.deid import (
    BASIC_PROFILE,
    CLEANED_DESCRIPTORS,
    RETAINED_PATIENT_CHARACTERISTICS,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "sampledata"
CT_DIR = SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax"
CT_FILES = sorted(CT_DIR.glob("*.dcm"))
CXR_J2K = SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"
CXR_JPEG = SAMPLES / "cxr" / "siim_nihcxr14_chest_PA_jpeg.dcm"
ALL_SAMPLES = [*CT_FILES, CXR_J2K, CXR_JPEG]

MARKER_UID_ROOT = "1.2.826.0.1.3680043.10.999."
_DATE_ORIGIN = dt.date(1700, 1, 1)
# Marker dates lie 400 days apart, so no date shifted by 1 to 365 days lands on another.
_DATE_SPACING = 400
_LEAF_SKIP_VRS = {"SQ"}


@dataclass
class Markers:
    """Every marker planted in a data set, to look for after de-identification."""

    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    strings: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    dates: dict[int, str] = field(default_factory=dict)  # tag -> marker date
    numbers: dict[int, set[object]] = field(default_factory=dict)

    def text(self) -> str:
        value = f"MK{next(self.counter):06d}"
        self.strings.add(value)
        return value

    def uid(self) -> str:
        value = f"{MARKER_UID_ROOT}{next(self.counter)}"
        self.uids.add(value)
        return value

    def date(self, tag: int) -> str:
        if tag not in self.dates:
            index = len(self.dates)
            day = _DATE_ORIGIN + dt.timedelta(days=_DATE_SPACING * index)
            self.dates[tag] = day.strftime("%Y%m%d")
        return self.dates[tag]


def _vr(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def _marked_value(tag: int, vr: str, markers: Markers) -> object:
    if vr in ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"):
        return markers.text()
    if vr == "UI":
        return markers.uid()
    if vr == "DA":
        return markers.date(tag)
    if vr == "DT":
        return markers.date(tag) + "120000"
    if vr == "TM":
        return "101010"
    if vr == "AS":
        return "099Y"
    if vr in ("DS", "IS"):
        value = str(700000 + next(markers.counter) % 100000)
        markers.numbers.setdefault(tag, set()).add(value)
        return value
    if vr in ("US", "SS"):
        value = 30000 + next(markers.counter) % 2000
        markers.numbers.setdefault(tag, set()).add(value)
        return value
    if vr in ("UL", "SL", "FL", "FD", "UV", "SV"):
        value = 7_000_000 + next(markers.counter)
        markers.numbers.setdefault(tag, set()).add(value)
        return value
    if vr == "AT":
        return 0x00100010
    return markers.text().encode("ascii")  # OB, OW, UN, OD, OF, OL, OV


def profile_leaf_tags() -> list[int]:
    """Basic-profile attributes (not sequences) that a test data set can carry."""
    tags = []
    for tag in sorted(BASIC_PROFILE):
        group = tag >> 16
        if group in (0x0000, 0x0002, 0x0004) or group & 1:
            continue
        vr = _vr(tag)
        if vr is None or vr in _LEAF_SKIP_VRS:
            continue
        if keyword_for_tag(tag) in RETAINED_PATIENT_CHARACTERISTICS:
            continue
        tags.append(tag)
    return tags


def profile_sequence_tags() -> list[int]:
    return [t for t in sorted(BASIC_PROFILE) if (t >> 16) not in (0, 2, 4) and _vr(t) == "SQ"]


def marked_payload(markers: Markers) -> Dataset:
    """Every basic-profile leaf attribute with a fresh marker, plus marked private elements."""
    ds = Dataset()
    for tag in profile_leaf_tags():
        vr = _vr(tag)
        assert vr is not None
        ds.add_new(tag, vr, _marked_value(tag, vr, markers))
    # Repeating groups from the table: overlay data and comments, curve data.
    ds.add_new(0x60003000, "OW", markers.text().encode("ascii"))
    ds.add_new(0x60004000, "LT", markers.text())
    ds.add_new(0x50003000, "OB", markers.text().encode("ascii"))
    # Person names and free text the table does not list still must not survive.
    ds.add_new(0x00321032, "PN", markers.text())  # Requesting Physician
    ds.add_new(0x00204000, "LT", markers.text())  # Image Comments
    block = ds.private_block(0x0029, markers.text(), create=True)
    block.add_new(0x10, "LO", markers.text())
    block.add_new(0x11, "OB", markers.text().encode("ascii"))
    private_item = Dataset()
    private_item.PatientName = markers.text()
    private_item.add_new(0x00100020, "LO", markers.text())
    block.add_new(0x12, "SQ", Sequence([private_item]))
    for keyword in CLEANED_DESCRIPTORS:
        setattr(ds, keyword, markers.text())
    return ds


def marked_dataset(markers: Markers, *, depth: int = 4) -> Dataset:
    """A CT-shaped data set whose every identifying attribute carries a unique marker, with
    the same payload again inside sequences nested ``depth`` levels deep and inside every
    sequence attribute the profile lists."""
    root = marked_payload(markers)
    for tag in profile_sequence_tags():
        root.add_new(tag, "SQ", Sequence([marked_payload(markers)]))
    chain = (
        "ReferencedImageSequence",  # X/Z/U*: kept, contents de-identified
        "AnatomicRegionSequence",  # not in the table: kept and walked
        "SourceImageSequence",
        "DerivationCodeSequence",
    )
    current = root
    for level in range(depth):
        item = marked_payload(markers)
        setattr(current, chain[level % len(chain)], Sequence([item]))
        current = item
    root.SOPClassUID = CTImageStorage
    root.Modality = "CT"
    root.PatientSex = "F"
    root.PatientAge = "042Y"
    root.PatientWeight = "70"
    root.PatientSize = "1.65"
    root.Rows = 2
    root.Columns = 2
    root.SamplesPerPixel = 1
    root.PhotometricInterpretation = "MONOCHROME2"
    root.BitsAllocated = 16
    root.BitsStored = 12
    root.HighBit = 11
    root.PixelRepresentation = 0
    root.PixelData = b"\x00\x00\x01\x00\x02\x00\x03\x00"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = root.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = markers.text()
    root.file_meta = meta
    root.preamble = markers.text().encode("ascii").ljust(128, b"\x00")
    return root


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def iter_elements(ds: Dataset) -> Iterator[DataElement]:
    """Every element at every depth, without recursion."""
    stack = [ds]
    while stack:
        current = stack.pop()
        for elem in current:
            yield elem
            if elem.VR == "SQ":
                stack.extend(elem.value)


# Raw Part 10 bytes, for inputs pydicom cannot be asked to write.


def _explicit_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def part10_header(transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    ts = transfer_syntax.encode("ascii")
    if len(ts) % 2:
        ts += b"\x00"
    body = _explicit_element(0x0002, 0x0001, b"OB", b"\x00\x01") + _explicit_element(
        0x0002, 0x0010, b"UI", ts
    )
    group_length = _explicit_element(0x0002, 0x0000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * 128 + b"DICM" + group_length + body


def deeply_nested(levels: int, *, defined_length: bool) -> bytes:
    """A CT header followed by ``levels`` sequences nested inside one another (~30 bytes each)."""
    head = part10_header() + _explicit_element(
        0x0008, 0x0016, b"UI", CTImageStorage.encode() + b"\x00"
    )
    if defined_length:
        inner = _explicit_element(0x0008, 0x0100, b"SH", b"X ")
        for _ in range(levels):
            item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
            inner = _explicit_element(0x0008, 0x1140, b"SQ", item)
        return head + inner
    opening = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head + opening * levels + closing * levels
