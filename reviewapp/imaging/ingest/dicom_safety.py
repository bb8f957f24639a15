"""Parse untrusted DICOM files with limits.

Every file that reaches the archive (upload, zip member, STOW-RS part, command line) is read
through ``read_untrusted``. It never lets pydicom see bytes that have not first passed a flat,
iterative scan of the element structure: pydicom parses nested sequences recursively, so a
30 KB file with a thousand nested sequences makes it (and ``Dataset.walk``) exhaust the stack
or hang. The scan also yields what pydicom will not tell us: whether the pixel data declared
by the header is really in the file (pydicom reads a file cut at 400 bytes without complaint).

Policy decisions (the reasons are clinical or about blinding, see DESIGN.md section 6):

* Only files with the 128-byte preamble, ``DICM`` and a File Meta Information header are
  accepted. Bare data sets (no meta) are rejected by name: guessing their transfer syntax is
  exactly the kind of leniency hostile input exploits.
* Deflated transfer syntaxes are refused: inflating them is a decompression bomb we would have
  to police for no clinical gain (no modality writes them).
* Only radiology image storage SOP classes are imported. Structured reports, encapsulated
  documents, presentation states and key objects can carry the original report text and would
  break blinding. Secondary capture is refused, except single-frame secondary captures whose
  Modality is a projection radiograph (CR, DX, MG): public chest radiograph collections are
  distributed that way. Those always wait in quarantine for a coordinator's eyes.
* ``quarantine_reason``: every secondary capture (single- or multi-frame SOP class) waits for
  a coordinator, whatever its Modality and Burned In Annotation say: a converted image's
  header was written by a conversion script, not by a modality, so nothing in it vouches
  for the pixels. For other images ``BurnedInAnnotation`` = ``NO`` is trusted. ``YES``, any
  other value, or (for projection radiography, ultrasound, angiography and endoscopy, where
  text is routinely burned into the pixels) a missing value sends the file to a
  coordinator. Cross-sectional reconstructions (CT, MR, PET, NM) with no value are accepted,
  since scanners do not burn identifiers into reconstructed slices; CT/MR ``SCREEN SAVE``
  images are the exception and are quarantined.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
from django.conf import settings
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

DEFAULT_MAX_FILE_BYTES = 512 * 1024**2
MAX_SEQUENCE_DEPTH = 12
MAX_ELEMENTS = 200_000
# A decoded frame larger than this would make any decoder (ours, the viewer's) allocate
# gigabytes from a few bytes of compressed input.
MAX_FRAME_BYTES = 256 * 1024**2
MAX_FRAMES = 10_000

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_SHORT_VRS = frozenset(
    {
        b"AE",
        b"AS",
        b"AT",
        b"CS",
        b"DA",
        b"DS",
        b"DT",
        b"FD",
        b"FL",
        b"IS",
        b"LO",
        b"LT",
        b"PN",
        b"SH",
        b"SL",
        b"SS",
        b"ST",
        b"TM",
        b"UI",
        b"UL",
        b"US",
    }
)

_PLAIN_UID = re.compile(r"^[0-9.]{1,64}$")
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED_TRANSFER_SYNTAXES = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"})

REQUIRED_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Rows",
    "Columns",
    "BitsAllocated",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PixelData",
)

# Radiology image storage SOP classes (PS3.4 Annex B), by UID so a renamed entry in pydicom's
# dictionary cannot widen the list.
IMAGE_STORAGE_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
        "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray, For Presentation
        "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray, For Processing
        "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography, For Presentation
        "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography, For Processing
        "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray, For Presentation
        "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray, For Processing
        "1.2.840.10008.5.1.4.1.1.2",  # CT
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
        "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
        "1.2.840.10008.5.1.4.1.1.4",  # MR
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
        "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
        "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound
        "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
        "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
        "1.2.840.10008.5.1.4.1.1.12.1.1",  # Enhanced XA
        "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic
        "1.2.840.10008.5.1.4.1.1.12.2.1",  # Enhanced XRF
        "1.2.840.10008.5.1.4.1.1.13.1.1",  # X-Ray 3D Angiographic
        "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis
        "1.2.840.10008.5.1.4.1.1.13.1.4",  # Breast Projection X-Ray, For Presentation
        "1.2.840.10008.5.1.4.1.1.13.1.5",  # Breast Projection X-Ray, For Processing
        "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
        "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography
        "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
        "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    }
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# The multi-frame secondary capture classes (single bit, grayscale byte and word, true colour)
# sit under the single-frame class's UID.
_SECONDARY_CAPTURE_FAMILY = SECONDARY_CAPTURE + "."
# Modalities whose secondary captures are accepted (into quarantine): converted radiographs.
SECONDARY_CAPTURE_RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "MG"})
# Modalities where text burned into the pixels is routine, so a missing Burned In Annotation
# cannot be read as "NO".
BURN_IN_PRONE_MODALITIES = frozenset(
    {"CR", "DX", "MG", "IO", "PX", "RG", "US", "XA", "RF", "ES", "XC", "OT", "SC", "DOC"}
)


class UnsafeDicomError(Exception):
    """The file cannot be imported; ``reason`` says why in words safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Frame:
    """One open container during the structure scan."""

    kind: str  # "dataset" | "item" | "sequence" | "pixel"
    end: int | None  # absolute end offset, None for undefined length
    explicit: bool
    little: bool


@dataclass
class StructureScan:
    """What the flat scan learnt about a file before pydicom saw it."""

    transfer_syntax: str
    pixel_data_length: int | None = None  # native (defined length) pixel data
    pixel_fragments: int | None = None  # encapsulated: items after the offset table
    max_depth: int = 0
    elements: int = 0


def _tag_name(tag: int) -> str:
    keyword = keyword_for_tag(tag)
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{text} {keyword}" if keyword else text


def _meta_end_and_syntax(data: bytes) -> tuple[int, str]:
    """Walk the group 0002 elements (always explicit VR little endian) after ``DICM``."""
    pos = 132
    syntax = ""
    size = len(data)
    seen = 0
    while pos + 8 <= size:
        group, element = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        seen += 1
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > size:
                raise UnsafeDicomError("truncated: file ends inside the meta header")
            length = struct.unpack_from("<I", data, pos + 8)[0]
            header = 12
        elif vr in _SHORT_VRS:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            header = 8
        else:
            raise UnsafeDicomError("malformed meta header (not explicit VR little endian)")
        if length == _UNDEFINED or pos + header + length > size:
            raise UnsafeDicomError("truncated: file ends inside the meta header")
        if (group << 16 | element) == _TRANSFER_SYNTAX:
            raw = data[pos + header : pos + header + length]
            syntax = raw.decode("ascii", "replace").strip("\x00 ")
        pos += header + length
    if not seen:
        raise UnsafeDicomError("no File Meta Information header after the DICM preamble")
    if not syntax:
        raise UnsafeDicomError("the meta header names no transfer syntax")
    return pos, syntax


def scan_structure(data: bytes, *, max_depth: int = MAX_SEQUENCE_DEPTH) -> StructureScan:
    """Check the element structure of a Part 10 file without recursion or value parsing.

    Raises UnsafeDicomError for a missing preamble or meta header, a refused transfer syntax,
    sequences nested deeper than ``max_depth``, lengths that run past the end of the file,
    unknown VRs, or delimiters where none belong.
    """
    if not data:
        raise UnsafeDicomError("empty file (0 bytes)")
    if len(data) < 132 or data[128:132] != b"DICM":
        if data[:2] in (b"\x08\x00", b"\x00\x08"):
            raise UnsafeDicomError(
                "no DICOM preamble or meta header (a bare data set): export it as a DICOM file"
            )
        raise UnsafeDicomError("not a DICOM file (no DICM preamble)")
    pos, syntax = _meta_end_and_syntax(data)
    if syntax in DEFLATED_TRANSFER_SYNTAXES:
        raise UnsafeDicomError(f"deflated transfer syntax {syntax} is not accepted")
    if UID_dictionary.get(syntax, ("", "", ""))[1] != "Transfer Syntax":
        shown = syntax if _PLAIN_UID.match(syntax) else "(not a valid UID)"
        raise UnsafeDicomError(f"unknown transfer syntax {shown}")
    explicit = syntax != _IMPLICIT_LE
    little = syntax != _EXPLICIT_BE
    encapsulated = syntax not in (_IMPLICIT_LE, _EXPLICIT_LE, _EXPLICIT_BE)

    scan = StructureScan(transfer_syntax=syntax)
    size = len(data)
    stack = [_Frame("dataset", size, explicit, little)]
    depth = 0
    while stack:
        frame = stack[-1]
        if frame.end is not None and pos >= frame.end:
            if pos > frame.end:
                raise UnsafeDicomError("malformed: an element runs past the end of its item")
            stack.pop()
            if frame.kind == "sequence":
                depth -= 1
            continue
        if pos + 8 > size:
            raise UnsafeDicomError("truncated: file ends inside a sequence or element header")
        order = "<" if frame.little else ">"
        group, element = struct.unpack_from(order + "HH", data, pos)
        tag = group << 16 | element

        if tag in (_ITEM, _ITEM_END, _SEQUENCE_END):
            length = struct.unpack_from(order + "I", data, pos + 4)[0]
            pos += 8
            if tag == _ITEM:
                if frame.kind == "sequence":
                    end = None if length == _UNDEFINED else pos + length
                    if end is not None and end > size:
                        raise UnsafeDicomError("truncated: file ends inside a sequence item")
                    stack.append(_Frame("item", end, frame.explicit, frame.little))
                elif frame.kind == "pixel":
                    if length == _UNDEFINED:
                        raise UnsafeDicomError("malformed: pixel data fragment of undefined length")
                    if pos + length > size:
                        raise UnsafeDicomError("truncated: file ends inside a pixel data fragment")
                    if len(stack) == 2 and scan.pixel_fragments is not None:
                        scan.pixel_fragments += 1
                    pos += length
                else:
                    raise UnsafeDicomError("malformed: sequence item outside a sequence")
            elif tag == _ITEM_END:
                if frame.kind != "item" or frame.end is not None:
                    raise UnsafeDicomError("malformed: unexpected item delimiter")
                stack.pop()
            else:
                if frame.kind not in ("sequence", "pixel") or frame.end is not None:
                    raise UnsafeDicomError("malformed: unexpected sequence delimiter")
                stack.pop()
                if frame.kind == "sequence":
                    depth -= 1
            continue

        if frame.kind not in ("dataset", "item"):
            raise UnsafeDicomError(
                f"malformed: {_tag_name(tag)} found where a sequence item was expected"
            )
        scan.elements += 1
        if scan.elements > MAX_ELEMENTS:
            raise UnsafeDicomError(f"more than {MAX_ELEMENTS:,} data elements")
        if frame.explicit:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise UnsafeDicomError("truncated: file ends inside an element header")
                length = struct.unpack_from(order + "I", data, pos + 8)[0]
                header = 12
            elif vr in _SHORT_VRS:
                length = struct.unpack_from(order + "H", data, pos + 6)[0]
                header = 8
            elif scan.elements == 1:
                raise UnsafeDicomError(
                    "the data set is not in the explicit VR encoding its meta header names"
                )
            else:
                raise UnsafeDicomError(f"invalid VR (bytes {vr.hex()}) in {_tag_name(tag)}")
            is_sequence = vr == b"SQ"
        else:
            if scan.elements == 1 and all(0x40 < b < 0x5B for b in data[pos + 4 : pos + 6]):
                # pydicom would switch to explicit VR here and read a different structure
                # from the one this scan checked: refuse the mismatch instead.
                raise UnsafeDicomError(
                    "the data set is not in the implicit VR encoding its meta header names"
                )
            length = struct.unpack_from(order + "I", data, pos + 4)[0]
            header = 8
            try:
                vr = dictionary_VR(tag).encode("ascii")
            except KeyError:
                vr = b"UN"
            is_sequence = vr == b"SQ"
        top_level = len(stack) == 1
        if length == _UNDEFINED:
            pos += header
            if tag == _PIXEL_DATA and frame.explicit:
                if top_level:
                    scan.pixel_fragments = -1  # the first item is the Basic Offset Table
                stack.append(_Frame("pixel", None, frame.explicit, frame.little))
            elif is_sequence or vr == b"UN" or not frame.explicit:
                # An undefined-length UN is a sequence encoded in implicit VR little endian
                # (PS3.5 6.2.2), whatever the file's own transfer syntax.
                nested_explicit = frame.explicit and vr != b"UN"
                nested_little = True if vr == b"UN" else frame.little
                depth += 1
                scan.max_depth = max(scan.max_depth, depth)
                if depth > max_depth:
                    raise UnsafeDicomError(f"sequences nested more than {max_depth} deep")
                stack.append(_Frame("sequence", None, nested_explicit, nested_little))
            else:
                raise UnsafeDicomError(f"malformed: undefined length in {_tag_name(tag)}")
            continue
        value_end = pos + header + length
        if value_end > size:
            if tag == _PIXEL_DATA:
                have = max(size - pos - header, 0)
                raise UnsafeDicomError(f"truncated: pixel data has {have:,} of {length:,} bytes")
            raise UnsafeDicomError(f"truncated: file ends inside {_tag_name(tag)}")
        if tag == _PIXEL_DATA and top_level:
            scan.pixel_data_length = length
        nested_explicit, nested_little = frame.explicit, frame.little
        if (
            not is_sequence
            and vr == b"UN"
            and frame.little
            and data[pos + header : pos + header + 4] == b"\xfe\xff\x00\xe0"
        ):
            # pydicom reads a UN value that starts with an item tag as an implicit VR
            # sequence: scan it as one too, or its nesting would escape the depth limit.
            is_sequence = True
            nested_explicit = False
        if is_sequence:
            depth += 1
            scan.max_depth = max(scan.max_depth, depth)
            if depth > max_depth:
                raise UnsafeDicomError(f"sequences nested more than {max_depth} deep")
            stack.append(_Frame("sequence", value_end, nested_explicit, nested_little))
            pos += header
        else:
            pos = value_end
    if not encapsulated and scan.pixel_fragments is not None:
        raise UnsafeDicomError(
            f"pixel data is encapsulated although the transfer syntax {syntax} is uncompressed"
        )
    if encapsulated and scan.pixel_data_length is not None:
        raise UnsafeDicomError(
            f"pixel data is not encapsulated although the transfer syntax {syntax} requires it"
        )
    return scan


def _force_values(ds: Dataset) -> None:
    """Convert every element now so a bad value is refused here, not in a later step."""
    stack = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_SEQUENCE_DEPTH:
            # The scan bounds nesting as it reads the bytes; pydicom must agree or we stop.
            raise UnsafeDicomError(f"sequences nested more than {MAX_SEQUENCE_DEPTH} deep")
        for tag in list(current.keys()):
            try:
                elem = current[tag]
                value = elem.value
            except Exception as exc:
                # pydicom is third-party code fed hostile bytes: any exception here means this
                # element cannot be read. Name the element, never its value (it may be PHI).
                raise UnsafeDicomError(
                    f"invalid value in {_tag_name(int(tag))} ({type(exc).__name__})"
                ) from exc
            if elem.VR == "SQ" and value is not None:
                stack.extend((item, depth + 1) for item in value)


def _sop_class_refusal(sop_class: str, modality: str, frames: int) -> str | None:
    if sop_class in IMAGE_STORAGE_SOP_CLASSES:
        return None
    name = UID_dictionary.get(sop_class, (sop_class,))[0]
    if sop_class == SECONDARY_CAPTURE:
        if modality in SECONDARY_CAPTURE_RADIOGRAPH_MODALITIES and frames == 1:
            return None
        return (
            "secondary capture images are refused: screenshots can show the original report"
            f" (modality {modality or 'missing'})"
        )
    if "Secondary Capture" in name:
        return "secondary capture images are refused: screenshots can show the original report"
    if " SR " in f" {name} " or "Structured Report" in name or "Key Object" in name:
        return "structured report documents are refused: they can carry the original report"
    if "Encapsulated" in name:
        return (
            "encapsulated documents (PDF, CDA, ...) are refused: they can carry the original report"
        )
    if "Presentation State" in name:
        return "presentation states are refused: only images are imported"
    if name == sop_class:
        shown = sop_class if _PLAIN_UID.match(sop_class) else "(not a valid UID)"
        return f"unknown SOP class {shown} is refused: only radiology images are imported"
    return f"{name} objects are refused: only radiology images are imported"


def _int_value(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value in (None, ""):
        if default is None:
            raise UnsafeDicomError(f"{keyword} is empty")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UnsafeDicomError(f"{keyword} is not a number") from None
    return number


def _check_pixels(ds: Dataset, scan: StructureScan) -> None:
    rows = _int_value(ds, "Rows")
    columns = _int_value(ds, "Columns")
    bits = _int_value(ds, "BitsAllocated")
    samples = _int_value(ds, "SamplesPerPixel")
    frames = _int_value(ds, "NumberOfFrames", 1)
    if rows <= 0 or columns <= 0:
        raise UnsafeDicomError(f"image has {rows} rows and {columns} columns")
    if bits not in (1, 8, 16, 32, 64):
        raise UnsafeDicomError(f"Bits Allocated {bits} is not supported")
    if samples not in (1, 3):
        raise UnsafeDicomError(f"Samples per Pixel {samples} is not supported")
    if not 1 <= frames <= MAX_FRAMES:
        raise UnsafeDicomError(f"Number of Frames {frames} is out of range (1 to {MAX_FRAMES:,})")
    frame_bits = rows * columns * samples * bits
    if (
        str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422"
        and scan.pixel_fragments is None
    ):
        # Native YBR_FULL_422 stores two samples per pixel (chroma subsampled), not three.
        frame_bits = rows * columns * 2 * bits
    if frame_bits // 8 > MAX_FRAME_BYTES:
        raise UnsafeDicomError(
            f"a {columns} x {rows} frame would decode to more than {MAX_FRAME_BYTES // 1024**2} MiB"
        )
    if scan.pixel_fragments is not None:
        fragments = max(scan.pixel_fragments, 0)
        if fragments < frames:
            raise UnsafeDicomError(
                f"truncated: encapsulated pixel data has {fragments:,} fragments"
                f" for {frames:,} frames"
            )
        return
    expected = math.ceil(frame_bits * frames / 8)
    actual = scan.pixel_data_length or 0
    if actual < expected:
        raise UnsafeDicomError(f"truncated: pixel data has {actual:,} of {expected:,} bytes")


def _max_file_bytes() -> int:
    return int(getattr(settings, "RADREVIEW_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES))


def read_untrusted(
    path: Path, *, max_bytes: int | None = None, decode_check: bool = False
) -> Dataset:
    """Read one file as DICOM or raise UnsafeDicomError (size, nesting depth, meta header,
    required attributes, pixel data length, refused object types such as SR/PDF/SC).

    ``decode_check`` also decodes the first frame (a fraction of a second for a radiograph),
    so a file whose compressed pixels are corrupt is refused on import rather than failing
    in a reader's viewer."""
    limit = _max_file_bytes() if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            raise UnsafeDicomError(f"file is {size:,} bytes; the limit is {limit:,}")
        with path.open("rb") as handle:
            # Read at most one byte past the limit: the file may have grown since stat().
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UnsafeDicomError(
            f"cannot read the file ({exc.strerror or type(exc).__name__})"
        ) from exc
    if len(data) > limit:
        raise UnsafeDicomError(f"file is larger than the limit of {limit:,} bytes")
    return read_untrusted_bytes(data, decode_check=decode_check)


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple[int, int, int] = (logging.NOTSET, 0, 0)


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's value warnings and log lines: they quote values, which may be PHI.

    pydicom's switches are process-wide, so a count shared by all threads keeps them off
    until the last reader leaves (web threads may read STOW-RS parts concurrently).
    """
    global _quiet_depth, _quiet_saved
    logger = logging.getLogger("pydicom")
    config = pydicom.config.settings
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = (
                logger.level,
                config.reading_validation_mode,
                config.writing_validation_mode,
            )
            logger.setLevel(logging.ERROR)
            config.reading_validation_mode = pydicom.config.IGNORE
            config.writing_validation_mode = pydicom.config.IGNORE
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                level, reading, writing = _quiet_saved
                logger.setLevel(level)
                config.reading_validation_mode = reading
                config.writing_validation_mode = writing


def read_untrusted_bytes(data: bytes, *, decode_check: bool = False) -> Dataset:
    """``read_untrusted`` for bytes already in memory (STOW-RS parts)."""
    scan = scan_structure(data)
    with quiet_pydicom():
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except Exception as exc:
            # Third-party parser on hostile bytes: whatever it raises, the file is unreadable.
            raise UnsafeDicomError(f"unreadable DICOM ({type(exc).__name__})") from exc
        _force_values(ds)
        meta = getattr(ds, "file_meta", None)
        sop_class = str(ds.get("SOPClassUID", "") or "")
        meta_class = str(meta.get("MediaStorageSOPClassUID", "") or "") if meta else ""
        modality = str(ds.get("Modality", "") or "").strip().upper()
        frames = _int_value(ds, "NumberOfFrames", 1) if "SOPClassUID" in ds else 1
        for uid in dict.fromkeys(u for u in (sop_class, meta_class) if u):
            refusal = _sop_class_refusal(uid, modality, frames)
            if refusal:
                raise UnsafeDicomError(refusal)
        missing = [kw for kw in REQUIRED_KEYWORDS if ds.get(kw) in (None, "", b"")]
        if missing:
            truncated = "PixelData" in missing and "SOPClassUID" not in missing
            hint = " (the file may be truncated)" if truncated else ""
            raise UnsafeDicomError(f"missing required attributes: {', '.join(missing)}{hint}")
        _check_pixels(ds, scan)
        if decode_check:
            try:
                pixel_array(ds, index=0)
            except Exception as exc:
                # Decoders are third-party code too (pylibjpeg, openjpeg): any failure means
                # the reader's viewer would fail on the same bytes.
                raise UnsafeDicomError(
                    f"pixel data cannot be decoded ({type(exc).__name__})"
                ) from exc
    return ds


def is_secondary_capture(sop_class: str) -> bool:
    """Whether ``sop_class`` is a secondary capture class, single- or multi-frame."""
    sop_class = sop_class.strip()
    return sop_class == SECONDARY_CAPTURE or sop_class.startswith(_SECONDARY_CAPTURE_FAMILY)


def quarantine_reason(ds: Dataset) -> str | None:
    """Why an image must wait for a coordinator (a secondary capture, or Burned In Annotation
    not NO), or None."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    meta = getattr(ds, "file_meta", None)
    classes = [str(ds.get("SOPClassUID", "") or "")]
    if meta is not None:
        classes.append(str(meta.get("MediaStorageSOPClassUID", "") or ""))
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if any(is_secondary_capture(uid) for uid in classes):
        return (
            "secondary capture: a coordinator must confirm it shows no text, screenshot or"
            f" identifier, whatever its header says (modality {modality or 'missing'},"
            f" Burned In Annotation {burned or 'missing'})"
        )
    if burned == "YES":
        return "Burned In Annotation is YES: the pixels may show patient identifiers"
    if burned and burned != "NO":
        return f"Burned In Annotation is {burned!r}, not NO: the pixels may show identifiers"
    if "SCREEN SAVE" in image_type and burned != "NO":
        return "image type SCREEN SAVE: the pixels may show text or identifiers"
    if not burned and modality in BURN_IN_PRONE_MODALITIES:
        return (
            f"Burned In Annotation is missing on a {modality} image: text is often burned into"
            " these pixels"
        )
    return None
