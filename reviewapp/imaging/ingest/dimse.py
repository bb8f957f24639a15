"""The DICOM receiver: a C-STORE SCP (pynetdicom) for PACS and modality push, and C-ECHO.

One association is one ImportBatch (source DICOM push, origin the calling AE title and
address). Each received instance is handed as a file to ``import_batch_add``: the same steps as
an upload (limits, safety checks, de-identification, quarantine, idempotency), so a pushed
instance is judged exactly like an uploaded one. The answer per instance (PS3.4 B.2.3):
- 0x0000 success: stored, or already in the archive (a re-push is idempotent);
- 0xB000 warning "coercion of data elements": stored but quarantined until a coordinator
  reviews it (as STOW-RS answers);
- 0xC000 failure "cannot understand": refused by the import rules; the reason goes into the
  batch's problems and the response's Error Comment;
- 0xA700 failure "out of resources": the archive itself failed (e.g. the database is down), so
  the sender may try again later.
A calling AE title outside RADREVIEW_DICOM_ALLOWED_CALLING_AES, or a called AE title other than
ours, is rejected at association, before any data is sent.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from reviewapp.imaging.ingest.dicom_safety import DEFLATED_TRANSFER_SYNTAXES
from reviewapp.imaging.ingest.services import (
    import_batch_add,
    import_batch_finish,
    import_batch_open,
)
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from reviewapp.imaging.models import ImportBatch

logger = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_WARNING_COERCED = 0xB000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700
ERROR_COMMENT_MAX = 64  # Error Comment (0000,0902) is an LO

# The import rules refuse deflated data sets; not offering them lets the sender pick another.
TRANSFER_SYNTAXES = [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in DEFLATED_TRANSFER_SYNTAXES]


class StoreReceiver:
    """Association handlers of the C-STORE SCP: one import batch per association."""

    def __init__(self, *, allowed_calling_aes: list[str]) -> None:
        self.allowed_calling_aes = [title.strip() for title in allowed_calling_aes]
        self._lock = threading.Lock()
        self._batches: dict[Association, ImportBatch] = {}
        self._received: dict[Association, int] = {}

    def handlers(self) -> list[evt.EventHandlerType]:
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_RELEASED, self.on_end),
            (evt.EVT_ABORTED, self.on_end),
            # A peer that drops the connection sends neither release nor abort.
            (evt.EVT_CONN_CLOSE, self.on_end),
        ]

    def on_requested(self, event: evt.Event) -> None:
        # pynetdicom rejects the association itself; this records who was turned away.
        calling = _calling_ae(event.assoc)
        if self.allowed_calling_aes and calling not in self.allowed_calling_aes:
            logger.warning(
                "DICOM association from AE %r at %s rejected: calling AE title not allowed",
                calling,
                event.assoc.requestor.address,
            )

    def on_echo(self, event: evt.Event) -> int:
        return STATUS_SUCCESS

    def on_store(self, event: evt.Event) -> Dataset | int:
        """Import one pushed instance into the association's batch; answer its status."""
        assoc = event.assoc
        try:
            batch = self._batch_for(assoc)
            with self._lock:
                number = self._received[assoc] = self._received.get(assoc, 0) + 1
            # The file pynetdicom wrote (STORE_RECV_CHUNKED_DATASET): preamble, meta, data set
            # as sent, never decoded here. Named by its place in the association: the sender's
            # UIDs are identifiers the archive replaces.
            incoming = IncomingFile(name=f"instance {number}", path=event.dataset_path)
            outcomes = import_batch_add(batch=batch, incoming=incoming)
        except Exception:
            logger.exception("DICOM receiver could not import an instance")
            return _status(STATUS_OUT_OF_RESOURCES, "the archive could not store it; try again")
        finally:
            # Each association runs in its own thread, and so has its own database connection.
            close_old_connections()
        return _answer(outcomes, batch=batch)

    def on_end(self, event: evt.Event) -> None:
        with self._lock:
            batch = self._batches.pop(event.assoc, None)
            self._received.pop(event.assoc, None)
        if batch is None:
            return
        try:
            import_batch_finish(batch=batch)
            logger.info("DICOM push batch %s finished", batch.public_id)
        finally:
            close_old_connections()

    def _batch_for(self, assoc: Association) -> ImportBatch:
        # Created with the first instance: a C-ECHO (or an empty association) leaves no batch.
        with self._lock:
            batch = self._batches.get(assoc)
        if batch is not None:
            return batch
        origin = f"{_calling_ae(assoc)} at {assoc.requestor.address}"
        batch = import_batch_open(source=ImportBatch.Source.DIMSE, created_by=None, origin=origin)
        with self._lock:
            self._batches[assoc] = batch
        logger.info("DICOM push from AE %r: import batch %s", _calling_ae(assoc), batch.public_id)
        return batch


def _calling_ae(assoc: Association) -> str:
    primitive = assoc.requestor.primitive
    title = primitive.calling_ae_title if primitive is not None else assoc.requestor.ae_title
    return str(title or "").strip()


def _answer(outcomes: list[FileOutcome], *, batch: ImportBatch) -> Dataset | int:
    refused = [o for o in outcomes if o.status == "rejected"]
    if refused or not outcomes:
        reason = refused[0].reason if refused else "nothing could be read"
        # Reasons never carry patient data (FileOutcome), so they may be logged and returned.
        logger.warning("DICOM push batch %s refused an instance: %s", batch.public_id, reason)
        return _status(STATUS_CANNOT_UNDERSTAND, reason)
    quarantined = [o for o in outcomes if o.status == "quarantined"]
    if quarantined:
        return _status(STATUS_WARNING_COERCED, f"quarantined: {quarantined[0].reason}")
    return STATUS_SUCCESS


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    # Latin-1 printable, as LO allows; the sender's log shows it beside the status.
    text = comment.encode("ascii", "replace").decode("ascii").replace("\\", "/")
    status.ErrorComment = text[:ERROR_COMMENT_MAX]
    return status


def receiver_ae(*, ae_title: str, allowed_calling_aes: list[str]) -> tuple[AE, StoreReceiver]:
    """The application entity and its handlers, configured but not yet listening."""
    # Received data sets go straight to a temporary file, not memory: a CT push holds hundreds
    # of instances and several senders may push at once.
    _config.STORE_RECV_CHUNKED_DATASET = True
    ae = AE(ae_title=ae_title)
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax is not None:
            ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    ae.require_calling_aet = list(allowed_calling_aes)
    ae.require_called_aet = True
    receiver = StoreReceiver(allowed_calling_aes=allowed_calling_aes)
    return ae, receiver


def receiver_start(
    *,
    host: str,
    port: int,
    ae_title: str | None = None,
    allowed_calling_aes: list[str] | None = None,
) -> tuple[AE, ThreadedAssociationServer]:
    """Listen for associations in background threads; stop with ``ae.shutdown()``."""
    title = ae_title or settings.RADREVIEW_DICOM_AE_TITLE
    allowed = (
        settings.RADREVIEW_DICOM_ALLOWED_CALLING_AES
        if allowed_calling_aes is None
        else allowed_calling_aes
    )
    ae, receiver = receiver_ae(ae_title=title, allowed_calling_aes=allowed)
    server = ae.start_server((host, port), block=False, evt_handlers=receiver.handlers())
    if server is None:  # only a blocking start returns nothing
        raise RuntimeError("the DICOM receiver did not start")
    return ae, server
