"""Multipart frame bodies of the WADO-RS views (frames and first frames).

Two resources answer with frames as stored:
- ``…/instances/{sop}/frames/{list}`` (PS3.18): frames of one instance;
- ``…/series/{series}/first-frames?instances={sop},{sop},…`` (a radreview extension): the
  first frame of each listed instance of one series, in the order listed. A CT or MR stack
  is a few hundred single-frame instances, and a browser pays for every request (its network
  service, browser process and page each handle it): fetching a stack twenty slices a request
  costs the client about a fifth less CPU than one request a slice. Each part names the frame
  it holds (``Content-Location``, the standard frame URL) and its length
  (``Content-Length``), so a client cuts the parts out without scanning for the boundary.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.files.storage import default_storage

from reviewapp.imaging.dicomweb import media, transcode
from reviewapp.imaging.dicomweb.selectors import FrameSource

FIRST_FRAMES_MAX = 50
_UID = re.compile(r"[0-9.]{1,64}")


class InstanceListError(ValueError):
    """The ``instances`` parameter of a first-frames request is not a usable list."""


@dataclass(frozen=True)
class FramePart:
    source: FrameSource
    number: int  # from 1
    location: str | None = None  # the part's Content-Location, if it should name one


def instance_list_parse(text: str | None) -> list[str]:
    """``"1.2.3,1.2.4"`` -> ["1.2.3", "1.2.4"]; raise InstanceListError saying what is wrong."""
    if not text:
        raise InstanceListError("name the instances: ?instances=SOPInstanceUID,SOPInstanceUID,…")
    uids = text.split(",")
    if len(uids) > FIRST_FRAMES_MAX:
        raise InstanceListError(
            f"{len(uids)} instances asked for; at most {FIRST_FRAMES_MAX} per request"
        )
    for uid in uids:
        if not _UID.fullmatch(uid):
            raise InstanceListError(f'"{uid[:80]}" is not a SOP Instance UID')
    if len(set(uids)) != len(uids):
        raise InstanceListError("an instance is listed twice")
    return uids


def first_frame_location(request_path: str, sop_uid: str) -> str:
    """The standard frame URL of an instance's first frame, beside a first-frames request."""
    return f"{request_path.removesuffix('/first-frames')}/instances/{sop_uid}/frames/1"


def frames_body(parts: Sequence[FramePart], *, accept: str | None) -> tuple[bytes, str]:
    """(body, Content-Type) of the multipart/related answer, one part per frame, bytes as
    stored or decoded as the Accept header asks (media.frame_media_type). Raise
    media.NotAcceptableError if a frame cannot be served as asked, transcode.TranscodeError if
    it cannot be decoded, OSError if a file cannot be read."""
    boundary = media.multipart_boundary()
    chunks: list[bytes] = []
    labels: set[str] = set()
    root_type = None
    handles: dict[str, int] = {}
    try:
        for index, part in enumerate(parts):
            part_type, label, decode = media.frame_media_type(
                accept, transfer_syntax=part.source.transfer_syntax_uid
            )
            root_type = root_type or part_type
            labels.add(label)
            ranges = part.source.frame_ranges[part.number - 1]
            fd = handles.get(part.source.file_name)
            if fd is None:
                fd = os.open(default_storage.path(part.source.file_name), os.O_RDONLY)
                handles[part.source.file_name] = fd
            pieces = [os.pread(fd, length, offset) for offset, length in ranges]
            if decode:
                pieces = [
                    transcode.frame_decode(
                        default_storage.path(part.source.file_name), encoded=b"".join(pieces)
                    )
                ]
            chunks.append(
                media.multipart_part_head(
                    boundary=boundary,
                    content_type=f"{part_type}; transfer-syntax={label}",
                    first=index == 0,
                    length=sum(len(piece) for piece in pieces),
                    location=part.location,
                )
            )
            chunks.extend(pieces)
    finally:
        for fd in handles.values():
            os.close(fd)
    chunks.append(media.multipart_tail(boundary=boundary))
    content_type = media.multipart_content_type(
        part_type=root_type or "application/octet-stream",
        boundary=boundary,
        transfer_syntax=labels.pop() if len(labels) == 1 else None,
    )
    return b"".join(chunks), content_type
