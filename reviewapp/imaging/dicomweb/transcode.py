"""Whole instances in another transfer syntax, for WADO-RS requests that ask for one.

Only transcodings that lose nothing are offered: between the native little endian syntaxes
(implicit and explicit VR), and from a compressed syntax to a native one by decoding the
pixel data (what the viewer would decode anyway; a lossy source stays as lossy as it was,
and says so in Lossy Image Compression). Single frames of a compressed grayscale instance are
decoded the same way when asked for uncompressed (``frame_decode``); colour frames are not
(their decoded photometric interpretation would differ from the one the metadata states).

The files read here were stored by the import, after its safety checks.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from reviewapp.imaging.dicomweb.media import (
    IMPLICIT_VR_LITTLE_ENDIAN,
    NATIVE_LITTLE_ENDIAN,
    NotAcceptableError,
)
from reviewapp.imaging.ingest.dicom_safety import quiet_pydicom


class TranscodeError(Exception):
    """The stored pixel data could not be decoded (the import decoded its first frame, so
    this means a later frame is damaged)."""


def transcodable(*, stored: str, target: str) -> bool:
    """Whether an instance stored as ``stored`` can be sent as ``target`` without loss."""
    return stored == target or target in NATIVE_LITTLE_ENDIAN


def instance_transcode(data: bytes, *, target: str) -> bytes:
    """The instance file ``data`` re-encoded in the native syntax ``target``."""
    with quiet_pydicom():
        ds = pydicom.dcmread(io.BytesIO(data))
        stored = ds.file_meta.TransferSyntaxUID
        if stored == target:
            return data
        if stored.is_compressed:
            # Decodes every frame and rewrites the pixel module to match (photometric
            # interpretation, planar configuration); the dataset is then explicit VR LE. The
            # instance keeps its UID: it is the same image, as WADO-RS retrieves it.
            try:
                ds.decompress(generate_instance_uid=False)
            except Exception as exc:  # pydicom and its codecs raise many types
                raise TranscodeError("the stored pixel data cannot be decoded") from exc
        ds.file_meta.TransferSyntaxUID = UID(target)
        out = io.BytesIO()
        ds.save_as(
            out,
            enforce_file_format=True,
            implicit_vr=target == IMPLICIT_VR_LITTLE_ENDIAN,
            little_endian=True,
        )
    return out.getvalue()


# What a single frame's decoder needs of the header: the image pixel module.
_PIXEL_MODULE = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
)


def frame_decode(path: str, *, encoded: bytes) -> bytes:
    """One compressed frame of the stored instance at ``path`` as native little endian pixel
    bytes (explicit VR LE layout). Grayscale only: a colour frame raises NotAcceptableError."""
    with quiet_pydicom():
        header = pydicom.dcmread(path, stop_before_pixels=True)
        if int(header.get("SamplesPerPixel", 1)) != 1:
            raise NotAcceptableError(
                "colour frames are served as stored only: ask for multipart/related; "
                'type="application/octet-stream"; transfer-syntax=*'
            )
        frame = Dataset()
        for keyword in _PIXEL_MODULE:
            if keyword in header:
                setattr(frame, keyword, header[keyword].value)
        frame.file_meta = FileMetaDataset()
        frame.file_meta.TransferSyntaxUID = header.file_meta.TransferSyntaxUID
        frame.NumberOfFrames = 1
        frame.add_new(0x7FE00010, "OB", encapsulate([encoded]))
        try:
            pixels = frame.pixel_array
        except Exception as exc:  # pydicom and its codecs raise many types
            raise TranscodeError("the stored pixel data cannot be decoded") from exc
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
