"""Accept-header negotiation and multipart/related bodies for DICOMweb responses."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.uid import UID

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
NATIVE_LITTLE_ENDIAN = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN})

# PS3.18 Table 8.7.3-5: the single-frame media type of each compressed transfer syntax.
IMAGE_MEDIA_TYPES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}

_MEDIA_RANGE = re.compile(r'(?:[^,"]|"[^"]*")+')
_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*("[^"]*"|[^;]*)')


@dataclass(frozen=True)
class MediaRange:
    media_type: str  # lower case, e.g. multipart/related
    params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        return self.params.get(name)


class NotAcceptableError(Exception):
    """No acceptable representation can be served without transcoding."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def accept_parse(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, quality values dropped (order kept)."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = []
    for raw in _MEDIA_RANGE.findall(header):
        text = raw.strip()
        if not text:
            continue
        media_type = text.split(";", 1)[0].strip().lower()
        params = {k.lower(): v.strip().strip('"') for k, v in _PARAM.findall(text)}
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        ranges.append(MediaRange(media_type, params))
    return ranges


def _is_multipart(media_range: MediaRange) -> bool:
    return media_range.media_type in ("multipart/related", "multipart/*", "*/*")


@functools.lru_cache(maxsize=256)
def frame_media_type(accept: str | None, *, transfer_syntax: str) -> tuple[str, str, bool]:
    """(part media type, transfer syntax label, decode) to serve stored frames as, or raise.

    Stored bytes are sent as they are, except where the request asks for uncompressed frames
    (``application/octet-stream`` without a transfer syntax, or explicit VR little endian) of
    a compressed instance: then ``decode`` is True and the frame is decoded (lossless: the
    pixels any viewer would decode; transcode.frame_decode). Native little endian pixel
    bytes are the same whether the file said implicit or explicit VR. Cached: a
    viewer sends the same Accept header with every frame.
    """
    image_type = IMAGE_MEDIA_TYPES.get(transfer_syntax)
    native = transfer_syntax in NATIVE_LITTLE_ENDIAN
    label = EXPLICIT_VR_LITTLE_ENDIAN if native else transfer_syntax
    for media_range in accept_parse(accept):
        bare = media_range.media_type
        if bare in ("*/*", "multipart/*") and not media_range.param("type"):
            return ("application/octet-stream", label, False)
        if bare == "application/octet-stream":
            part_type = bare
        elif _is_multipart(media_range):
            part_type = (media_range.param("type") or "application/octet-stream").lower()
        else:
            part_type = bare  # a bare image/... range
        wanted = media_range.param("transfer-syntax")
        if part_type == "*/*" and wanted in (None, "*", label):
            return ("application/octet-stream", label, False)
        if part_type == "application/octet-stream":
            # PS3.18: application/octet-stream without a transfer syntax means explicit VR
            # little endian; "*" means "as stored", which is what viewers ask for.
            if wanted == "*" or (wanted is None and native) or wanted == label:
                return ("application/octet-stream", label, False)
            if wanted in (None, EXPLICIT_VR_LITTLE_ENDIAN) and UID(transfer_syntax).is_compressed:
                return ("application/octet-stream", EXPLICIT_VR_LITTLE_ENDIAN, True)
        elif (
            image_type
            and part_type in (image_type, "image/*")
            and (wanted in (None, "*") or wanted == label)
        ):
            return (image_type, label, False)
    raise NotAcceptableError(
        f"this frame is stored as {transfer_syntax}; it is served as stored or decoded into "
        f'{EXPLICIT_VR_LITTLE_ENDIAN}: ask for multipart/related; type="application/octet-stream"; '
        f"transfer-syntax=* (as stored) or without a transfer syntax (decoded)"
    )


def dicom_transfer_syntax_choose(
    accept: str | None, *, transfer_syntaxes: Iterable[str]
) -> str | None:
    """How to send whole instances stored in ``transfer_syntaxes``: None to send them as
    stored, or the native syntax to transcode them to (transcode.py). Raise when the Accept
    header asks only for what cannot be made without loss.

    ``type="application/dicom"`` without a transfer syntax means explicit VR little endian
    (PS3.18 8.7.3.5.2); ``transfer-syntax=*`` means as stored.
    """
    stored = set(transfer_syntaxes)
    for media_range in accept_parse(accept):
        if media_range.media_type in ("*/*", "multipart/*"):
            return None
        if media_range.media_type != "multipart/related":
            continue
        if (media_range.param("type") or "application/dicom").lower() != "application/dicom":
            continue
        wanted = media_range.param("transfer-syntax")
        if wanted == "*":
            return None
        target = wanted or EXPLICIT_VR_LITTLE_ENDIAN
        if stored <= {target}:
            return None
        if target in NATIVE_LITTLE_ENDIAN:
            return target
    raise NotAcceptableError(
        f"these instances are stored as {', '.join(sorted(stored))}; they are served as "
        f"stored (transfer-syntax=*) or decoded into {EXPLICIT_VR_LITTLE_ENDIAN} or "
        f'{IMPLICIT_VR_LITTLE_ENDIAN}: ask for multipart/related; type="application/dicom"; '
        f"transfer-syntax=* or one of those"
    )


RENDERED_MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}


def rendered_media_type(accept: str | None) -> tuple[str, str]:
    """(media type, image format) of a rendered answer: JPEG unless PNG is asked for first."""
    for media_range in accept_parse(accept):
        if media_range.media_type in ("*/*", "image/*"):
            return ("image/jpeg", "JPEG")
        if media_range.media_type in RENDERED_MEDIA_TYPES:
            return (media_range.media_type, RENDERED_MEDIA_TYPES[media_range.media_type])
    raise NotAcceptableError("rendered images are offered as image/jpeg or image/png")


def json_acceptable(accept: str | None) -> None:
    """Raise unless the client accepts DICOM JSON (XML is not offered)."""
    for media_range in accept_parse(accept):
        if media_range.media_type in (
            "*/*",
            "application/*",
            "application/json",
            "application/dicom+json",
        ):
            return
    raise NotAcceptableError("only application/dicom+json is offered (not XML)")


def multipart_boundary() -> str:
    return secrets.token_hex(16)


def multipart_part_head(
    *,
    boundary: str,
    content_type: str,
    first: bool,
    length: int | None = None,
    location: str | None = None,
) -> bytes:
    # The part header must be spelled exactly "Content-Type:" (Cornerstone matches it literally)
    # and come first.
    lead = b"" if first else b"\r\n"
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    if location is not None:
        head += f"Content-Location: {location}\r\n"
    return lead + (head + "\r\n").encode("ascii")


def multipart_tail(*, boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def multipart_content_type(*, part_type: str, boundary: str, transfer_syntax: str | None) -> str:
    value = f'multipart/related; type="{part_type}"'
    if transfer_syntax:
        value += f"; transfer-syntax={transfer_syntax}"
    return f"{value}; boundary={boundary}"
