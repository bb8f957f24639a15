"""``manage.py dicom_receiver``: the DICOM receiver (C-STORE and C-ECHO SCP) in the foreground.

`runner serve` and the compose file start it; it listens until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.imaging.ingest.dimse import receiver_start

_LOOPBACK = ("127.", "::1", "localhost")


class Command(BaseCommand):
    help = "Receive DICOM pushed from a PACS or modality (C-STORE SCP) into the archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="address to listen on")
        parser.add_argument("--port", type=int, default=None, help="TCP port (0: do not start)")
        parser.add_argument("--ae-title", default=None, help="this receiver's AE title")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.RADREVIEW_DICOM_HOST
        port = settings.RADREVIEW_DICOM_PORT if options["port"] is None else options["port"]
        title = options["ae_title"] or settings.RADREVIEW_DICOM_AE_TITLE
        if port == 0:
            self.stdout.write("DICOM receiver off (port 0).")
            return
        allowed = settings.RADREVIEW_DICOM_ALLOWED_CALLING_AES
        if not allowed and not host.startswith(_LOOPBACK):
            # Not refused: a receiver behind a DICOM router may rightly take any caller.
            self.stderr.write(
                "Warning: the DICOM receiver listens beyond loopback and accepts any calling "
                "AE title; set RADREVIEW_DICOM_ALLOWED_CALLING_AES to the senders you expect."
            )
        pynetdicom_log = logging.getLogger("pynetdicom")
        if pynetdicom_log.getEffectiveLevel() < logging.INFO:
            # pynetdicom's debug log prints the received headers: identifiers, names, dates.
            pynetdicom_log.setLevel(logging.INFO)
        try:
            ae, _server = receiver_start(
                host=host, port=port, ae_title=title, allowed_calling_aes=allowed
            )
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another port "
                "with RADREVIEW_DICOM_PORT (0 turns the receiver off)."
            ) from exc
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        callers = ", ".join(allowed) if allowed else "any calling AE title"
        self.stdout.write(
            f"DICOM receiver {title} listening on {host}:{port} ({callers}).", ending="\n"
        )
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            ae.shutdown()
