"""Whole instances in another transfer syntax, for WADO-RS requests that ask for one.

Only transcodings that lose nothing are offered: between the native little endian syntaxes
(implicit and explicit VR), and from a compressed syntax to a native one by decoding the
pixel data (what the viewer would decode anyway; a lossy source stays as lossy as it was,
and says so in Lossy Image Compression). Frames and everything else are served as stored.

The files read here were stored by the import, after its safety checks.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.uid import UID

from reviewapp.imaging.dicomweb.media import IMPLICIT_VR_LITTLE_ENDIAN, NATIVE_LITTLE_ENDIAN
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
