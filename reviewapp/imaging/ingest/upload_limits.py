"""Refuse oversized uploads before any of their bytes are written anywhere.

Django parses a multipart body (spooling files to disk) the first time anything reads
``request.POST`` or ``request.FILES``, and the CSRF check is such a reader. So the size is
judged from Content-Length first, and a counting upload handler guards bodies that lie about
it; upload views are CSRF-exempt only to run this check, then check CSRF themselves.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


def upload_limit_bytes() -> int:
    return int(settings.RADREVIEW_MAX_UPLOAD_BYTES)


def upload_limit_message(*, sent: int | None = None) -> str:
    limit = upload_limit_bytes()
    sent_text = f" ({human_size(sent)} sent)" if sent else ""
    return (
        f"This upload is too large{sent_text}: the limit is {human_size(limit)} per upload. "
        "Upload the files in smaller parts, or ask an administrator to import them with "
        "`manage.py import_dicom` on the server."
    )


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None


def upload_too_large(request: HttpRequest) -> bool:
    """True when the declared body exceeds the limit; otherwise arm the counting handler."""
    length = declared_length(request)
    if length is not None and length > upload_limit_bytes():
        return True
    request.upload_handlers.insert(0, LimitedUploadHandler(request))
    return False


def upload_exceeded(request: HttpRequest) -> bool:
    """True when the counting handler stopped a body larger than the limit."""
    return any(
        isinstance(handler, LimitedUploadHandler) and handler.exceeded
        for handler in request.upload_handlers
    )


class LimitedUploadHandler(FileUploadHandler):
    """Stops parsing once the files of one request pass the limit."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> Any:
        return None
