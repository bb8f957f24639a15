"""Index a stored DICOM file once, so frames and metadata are served with no DICOM parsing.

Serving a frame then costs one indexed query and one ``os.pread`` per byte range: the ranges
point into the stored file exactly as written, so they stay valid for as long as the file is
not rewritten (stored files never are).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from reviewapp.imaging.ingest.types import InstanceIndex

PIXEL_DATA = Tag(0x7FE0, 0x0010)
EXTENDED_OFFSET_TABLE = Tag(0x7FE0, 0x0001)
EXTENDED_OFFSET_TABLE_LENGTHS = Tag(0x7FE0, 0x0002)
ITEM = 0xE000FFFE  # (FFFE,E000) read as one little-endian uint32: group first
SEQUENCE_DELIMITER = 0xE0DDFFFE
UNDEFINED_LENGTH = 0xFFFFFFFF
AVAILABLE_TRANSFER_SYNTAX = "00083002"

# Binary values longer than this are bulk data (left out of the JSON header, like PixelData):
# overlays, curves, private blobs and the like never belong in /metadata.
BULK_DATA_THRESHOLD = 1024
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Spacings a viewer divides by or scales with; a zero makes Cornerstone render black.
SPACING_KEYWORDS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")

# Start-of-frame markers used to group fragments into frames when there is no offset table:
# JPEG (baseline, lossless, JPEG-LS) SOI and the JPEG 2000 / HTJ2K codestream SOC + SIZ.
FRAME_START_MARKERS = (b"\xff\xd8", b"\xff\x4f\xff\x51")

Range = tuple[int, int]


class FrameIndexError(ValueError):
    """The file's frames cannot be located; ``reason`` is safe to show (no patient data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def index_stored_file(path: Path, ds: Dataset) -> InstanceIndex:
    """Byte ranges of every frame in the file at ``path`` and its DICOM JSON header.

    ``ds`` is the dataset that was written to ``path`` (its header becomes the JSON); the
    ranges come from the file itself, since only the file's own layout can be trusted for
    offsets. Each frame is a list of ranges: more than one when a frame spans fragments.
    Raises FrameIndexError when the frames cannot be located.
    """
    frames = _frame_count(ds)
    frame_ranges = _locate_frames(Path(path), frames=frames)
    return InstanceIndex(
        frame_ranges=frame_ranges,
        dicom_json=dicom_json_header(ds),
        number_of_frames=frames,
    )


def dicom_json_header(ds: Dataset) -> dict[str, Any]:
    """PS3.18 F.2 DICOM JSON of ``ds`` without bulk data and without zero pixel spacings."""
    header = Dataset()
    for elem in ds:
        # Iterating converts raw elements; pixel data is skipped first so it is never loaded.
        if elem.tag == PIXEL_DATA or elem.tag.group == 0x7FE0:
            continue
        if (
            elem.VR in BINARY_VRS
            and elem.value is not None
            and len(elem.value) > BULK_DATA_THRESHOLD
        ):
            continue
        if elem.keyword in SPACING_KEYWORDS and _has_zero(elem.value):
            continue
        header.add(elem)
    result: dict[str, Any] = header.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD)
    transfer_syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if transfer_syntax:
        result[AVAILABLE_TRANSFER_SYNTAX] = {"vr": "UI", "Value": [str(transfer_syntax)]}
    return result


def _has_zero(value: Any) -> bool:
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    try:
        return any(float(v) == 0.0 for v in values)
    except (TypeError, ValueError):
        return True  # an unparseable spacing is as useless to a viewer as a zero one


def _frame_count(ds: Dataset) -> int:
    raw = ds.get("NumberOfFrames", 1)
    try:
        frames = int(raw) if raw not in (None, "") else 1
    except (TypeError, ValueError) as exc:
        raise FrameIndexError("NumberOfFrames is not a number") from exc
    if frames < 1:
        raise FrameIndexError("NumberOfFrames is less than 1")
    return frames


def _locate_frames(path: Path, *, frames: int) -> list[list[Range]]:
    with open(path, "rb") as fh:
        # Stopping before the pixel data leaves the file positioned on the Pixel Data tag (pydicom
        # rewinds to it), which is the one offset the index needs; the pixels are never loaded.
        stored = pydicom.dcmread(fh, stop_before_pixels=True)
        transfer_syntax = stored.file_meta.TransferSyntaxUID
        if transfer_syntax == DeflatedExplicitVRLittleEndian:
            raise FrameIndexError("deflated transfer syntax: frames cannot be served by byte range")
        value_at, length = _pixel_data_header(fh, transfer_syntax)
        if not transfer_syntax.is_encapsulated:
            return _native_frames(stored, value_at, length, frames=frames)
        if length != UNDEFINED_LENGTH:
            raise FrameIndexError("encapsulated Pixel Data must have undefined length")
        basic_offsets, fragments = _read_fragments(fh, start=value_at)
    extended = _extended_offsets(stored)
    return _group_fragments(path, fragments, basic_offsets, extended, frames=frames)


def _pixel_data_header(fh: BinaryIO, transfer_syntax: UID) -> tuple[int, int]:
    """Offset and declared length of the Pixel Data value, read at the file's position."""
    little = transfer_syntax.is_little_endian
    at = fh.tell()
    head = fh.read(8)
    if len(head) < 8:
        raise FrameIndexError("the file has no Pixel Data")
    group, element = struct.unpack("<HH" if little else ">HH", head[:4])
    if (group, element) != (0x7FE0, 0x0010):
        raise FrameIndexError("the file has no Pixel Data (float pixel data is not served)")
    if transfer_syntax.is_implicit_VR:
        (length,) = struct.unpack("<I" if little else ">I", head[4:8])
        return at + 8, length
    # Explicit VR: OB/OW carry two reserved bytes, then a 4-byte length.
    extra = fh.read(4)
    if len(extra) < 4:
        raise FrameIndexError("the Pixel Data header is truncated")
    (length,) = struct.unpack("<I" if little else ">I", extra)
    return at + 12, length


def _native_frames(
    stored: Dataset, value_at: int, length: int, *, frames: int
) -> list[list[Range]]:
    try:
        rows, columns = int(stored.Rows), int(stored.Columns)
        bits = int(stored.BitsAllocated)
        samples = int(stored.get("SamplesPerPixel", 1))
    except (AttributeError, TypeError, ValueError) as exc:
        raise FrameIndexError("image size attributes are missing or not numbers") from exc
    frame_bits = rows * columns * samples * bits
    if frame_bits % 8 and frames > 1:
        raise FrameIndexError("frames of 1-bit pixel data do not start on byte boundaries")
    frame_length = (frame_bits + 7) // 8
    if length == UNDEFINED_LENGTH or length < frame_length * frames:
        raise FrameIndexError(
            f"Pixel Data holds {length} bytes, fewer than {frames} frame(s) of {frame_length} bytes"
        )
    return [[(value_at + i * frame_length, frame_length)] for i in range(frames)]


def _read_fragments(fh: BinaryIO, *, start: int) -> tuple[list[int], list[Range]]:
    """Basic Offset Table and (offset, length) of every fragment's value, from the file."""
    fh.seek(start)
    items: list[tuple[int, int, int]] = []  # (item tag offset, value offset, value length)
    while True:
        at = fh.tell()
        head = fh.read(8)
        if len(head) < 8:
            raise FrameIndexError("encapsulated Pixel Data ends before its delimiter")
        tag, length = struct.unpack("<II", head)
        if tag == SEQUENCE_DELIMITER:
            break
        if tag != ITEM or length == UNDEFINED_LENGTH:
            raise FrameIndexError("encapsulated Pixel Data has a malformed item")
        items.append((at, at + 8, length))
        fh.seek(length, 1)
    if not items:
        raise FrameIndexError("encapsulated Pixel Data has no Basic Offset Table item")
    _, bot_at, bot_length = items[0]
    fh.seek(bot_at)
    table = fh.read(bot_length)
    if bot_length % 4 or len(table) != bot_length:
        raise FrameIndexError("the Basic Offset Table is malformed")
    offsets = list(struct.unpack(f"<{bot_length // 4}I", table))
    return offsets, [(value_at, length) for _, value_at, length in items[1:]]


def _extended_offsets(stored: Dataset) -> list[int] | None:
    if EXTENDED_OFFSET_TABLE not in stored:
        return None
    value = stored[EXTENDED_OFFSET_TABLE].value
    if not value or len(value) % 8:
        raise FrameIndexError("the Extended Offset Table is malformed")
    return list(struct.unpack(f"<{len(value) // 8}Q", value))


def _group_fragments(
    path: Path,
    fragments: list[Range],
    basic_offsets: list[int],
    extended_offsets: list[int] | None,
    *,
    frames: int,
) -> list[list[Range]]:
    if not fragments:
        raise FrameIndexError("encapsulated Pixel Data has no fragments")
    if frames == 1:
        return [list(fragments)]
    if len(fragments) == frames:
        return [[fragment] for fragment in fragments]
    table = extended_offsets if extended_offsets else basic_offsets
    if table:
        return _group_by_offsets(fragments, table, frames=frames)
    return _group_by_markers(path, fragments, frames=frames)


def _group_by_offsets(
    fragments: list[Range], table: list[int], *, frames: int
) -> list[list[Range]]:
    if len(table) != frames or table[0] != 0 or sorted(table) != table:
        raise FrameIndexError(f"the offset table lists {len(table)} frames, not {frames}")
    base = fragments[0][0] - 8  # the first fragment's item tag
    grouped: list[list[Range]] = [[] for _ in range(frames)]
    frame = 0
    for value_at, length in fragments:
        relative = value_at - 8 - base
        while frame + 1 < frames and relative >= table[frame + 1]:
            frame += 1
        grouped[frame].append((value_at, length))
    if any(not ranges for ranges in grouped):
        raise FrameIndexError("the offset table points between fragments")
    return grouped


def _group_by_markers(path: Path, fragments: list[Range], *, frames: int) -> list[list[Range]]:
    grouped: list[list[Range]] = []
    with open(path, "rb") as fh:
        for value_at, length in fragments:
            fh.seek(value_at)
            head = fh.read(4)
            if not grouped or any(head.startswith(marker) for marker in FRAME_START_MARKERS):
                grouped.append([])
            grouped[-1].append((value_at, length))
    if len(grouped) != frames:
        raise FrameIndexError(
            f"{len(fragments)} fragments with no offset table cannot be split into {frames} frames"
        )
    return grouped
